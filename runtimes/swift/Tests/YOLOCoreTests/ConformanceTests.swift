import Foundation
import XCTest
@testable import YOLOCore

/// The shared conformance vectors (runtimes/conformance/vectors, written by the Python runtime): letterbox geometry,
/// NMS, and every decode vector whose "runtimes" list names swift, each within the file's own tolerances.
/// The Swift runtime decodes no masks, so decode_segment.json and decode_nhwc.json are not loaded here; pose
/// vectors are checked for boxes, scores and classes (keypoints are not decoded).
/// Written against the sources without a Swift toolchain: not yet compiled or run (see README.md).
final class ConformanceTests: XCTestCase {
    static let vectors = URL(fileURLWithPath: #filePath)  // Tests/YOLOCoreTests/ConformanceTests.swift
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("conformance/vectors")

    func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: ConformanceTests.vectors.appendingPathComponent(name))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw MetadataError.invalid("\(name) does not hold a JSON object")
        }
        return object
    }

    func number(_ value: Any?) -> Double {
        if let n = value as? NSNumber { return n.doubleValue }
        if let d = value as? Double { return d }
        if let i = value as? Int { return Double(i) }
        XCTFail("not a number: \(String(describing: value))")
        return .nan
    }

    func integer(_ value: Any?) -> Int { Int(number(value)) }
    func object(_ value: Any?) -> [String: Any] { value as? [String: Any] ?? [:] }
    func array(_ value: Any?) -> [Any] { value as? [Any] ?? [] }
    func floats(_ value: Any?) -> [Float] { array(value).map { Float(number($0)) } }

    func testLetterboxVectors() throws {
        let vector = try load("letterbox.json")
        let tol = object(vector["tolerance"])
        let cases = array(vector["cases"])
        XCTAssertFalse(cases.isEmpty)
        for item in cases {
            let c = object(item), want = object(c["expected"]), name = c["name"] as? String ?? "?"
            let plan = LetterboxPlan.plan(imageWidth: integer(c["source_width"]), imageHeight: integer(c["source_height"]),
                                          targetWidth: integer(c["target_width"]), targetHeight: integer(c["target_height"]),
                                          scaleUp: c["scale_up"] as? Bool ?? true, center: c["center"] as? Bool ?? true)
            XCTAssertEqual(plan.newWidth, integer(want["resized_width"]), name)
            XCTAssertEqual(plan.newHeight, integer(want["resized_height"]), name)
            XCTAssertEqual(plan.top, integer(want["pad_top"]), name)
            XCTAssertEqual(plan.bottom, integer(want["pad_bottom"]), name)
            XCTAssertEqual(plan.left, integer(want["pad_left"]), name)
            XCTAssertEqual(plan.right, integer(want["pad_right"]), name)
            XCTAssertEqual(Double(plan.gainX), number(want["gain_x"]), accuracy: number(tol["gain_atol"]), name)
            XCTAssertEqual(Double(plan.gainY), number(want["gain_y"]), accuracy: number(tol["gain_atol"]), name)
            let input = floats(want["input_point"]), source = array(want["source_point"])
            XCTAssertEqual(Double(plan.toImageX(input[0])), number(source[0]), accuracy: number(tol["point_atol"]), name)
            XCTAssertEqual(Double(plan.toImageY(input[1])), number(source[1]), accuracy: number(tol["point_atol"]), name)
        }
    }

    func testNMSVectors() throws {
        let cases = array(try load("nms.json")["cases"])
        XCTAssertFalse(cases.isEmpty)
        for item in cases {
            let c = object(item)
            let boxes = array(c["boxes"]).map { b -> BoundingBox in
                let v = floats(b)
                return BoundingBox(x1: v[0], y1: v[1], x2: v[2], y2: v[3])
            }
            let keep = NMS.run(boxes: boxes, scores: floats(c["scores"]), classIds: array(c["class_ids"]).map { integer($0) },
                               iouThreshold: Float(number(c["iou_threshold"])), maxDetections: integer(c["max_detections"]),
                               agnostic: c["agnostic"] as? Bool ?? false)
            XCTAssertEqual(keep, array(c["expected_keep"]).map { integer($0) }, "nms case \(c["name"] ?? "?")")
        }
    }

    func checkDecode(_ file: String) throws {
        let vector = try load(file)
        XCTAssertTrue(array(vector["runtimes"]).contains { ($0 as? String) == "swift" }, "\(file) is not meant for the Swift runtime")
        let tol = object(vector["tolerance"])
        let meta = try ModelMetadata.parse(JSONSerialization.data(withJSONObject: vector["metadata"] ?? [String: Any]()), source: file)
        var outputs: [String: OutputTensor] = [:]
        for (name, raw) in object(vector["outputs"]) {
            let t = object(raw)
            outputs[name] = OutputTensor(values: floats(t["values"]), shape: array(t["shape"]).map { integer($0) })
        }
        let image = object(vector["image"])
        let width = integer(image["width"]), height = integer(image["height"])
        let plan = LetterboxPlan.plan(imageWidth: width, imageHeight: height, targetWidth: meta.inputWidth, targetHeight: meta.inputHeight,
                                      scaleUp: meta.preprocessing.scale_up ?? true, center: meta.preprocessing.letterbox_center ?? true)
        let results = try Decoder.decode(outputs: outputs, metadata: meta, plan: plan, imageWidth: width, imageHeight: height)
        let expected = array(vector["expected"])
        XCTAssertFalse(expected.isEmpty, "\(file) expects no detection")
        XCTAssertEqual(results.detections.count, expected.count, file)
        for (i, item) in expected.enumerated() where i < results.detections.count {
            let want = object(item), got = results.detections[i]
            XCTAssertEqual(got.classId, integer(want["class_id"]), "\(file)[\(i)]")
            XCTAssertEqual(got.className, want["class_name"] as? String, "\(file)[\(i)]")
            XCTAssertEqual(Double(got.confidence), number(want["score"]), accuracy: number(tol["score_atol"]), "\(file)[\(i)]")
            let box = array(want["box"]).map { number($0) }
            let b = [got.bbox.x1, got.bbox.y1, got.bbox.x2, got.bbox.y2].map { Double($0) }
            for k in 0..<4 { XCTAssertEqual(b[k], box[k], accuracy: number(tol["box_atol"]), "\(file)[\(i)] box[\(k)]") }
        }
    }

    func testDecodeDetect() throws { try checkDecode("decode_detect.json") }
    func testDecodePose() throws { try checkDecode("decode_pose.json") }
    func testDecodeNMSApplied() throws { try checkDecode("decode_nms_applied.json") }
    /// The default CoreML export (nms: true): Apple's NMS pipeline, `coordinates` beside `confidence`.
    func testDecodeCoreMLPipeline() throws { try checkDecode("decode_coreml_pipeline.json") }
}

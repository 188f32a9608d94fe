import Foundation
import XCTest
@testable import YOLOCore

final class YOLOCoreTests: XCTestCase {
    let metadataJSON = """
    {"task": "detect", "export_format": "coreml", "class_names": ["a", "b"], "input_shape": [192, 192, 3],
     "inputs": [{"name": "image", "shape": [1, 3, 192, 192]}], "outputs": [{"name": "out", "shape": [1, 6, 3]}],
     "preprocessing": {"layout": "NCHW", "pad_value": 114},
     "postprocessing": {"confidence_threshold": 0.25, "iou_threshold": 0.45, "max_detections": 300},
     "output_layout": {"predictions": {"output": "out", "box": [0, 4], "box_format": "cxcywh",
       "box_units": "normalized", "class_scores": [4, 6]}}}
    """

    func metadata(_ text: String? = nil) throws -> ModelMetadata {
        try ModelMetadata.parse(Data((text ?? metadataJSON).utf8))
    }

    func testLetterboxLandscape() {
        let plan = LetterboxPlan.plan(imageWidth: 320, imageHeight: 240, targetWidth: 192, targetHeight: 192)
        XCTAssertEqual(plan.newWidth, 192); XCTAssertEqual(plan.newHeight, 144)
        XCTAssertEqual(plan.top, 24); XCTAssertEqual(plan.left, 0)
    }

    func testLetterboxOddPadding() {
        let plan = LetterboxPlan.plan(imageWidth: 192, imageHeight: 101, targetWidth: 192, targetHeight: 192)
        XCTAssertEqual(plan.top, 45); XCTAssertEqual(plan.bottom, 46)
    }

    func testNMSIsClassAware() {
        let boxes = [BoundingBox(x1: 0, y1: 0, x2: 10, y2: 10), BoundingBox(x1: 1, y1: 1, x2: 10, y2: 10),
                     BoundingBox(x1: 0, y1: 0, x2: 10, y2: 10)]
        XCTAssertEqual(NMS.run(boxes: boxes, scores: [0.9, 0.8, 0.7], classIds: [0, 0, 1], iouThreshold: 0.45,
                               maxDetections: 300, agnostic: false), [0, 2])
        XCTAssertEqual(NMS.run(boxes: boxes, scores: [0.9, 0.8, 0.7], classIds: [0, 0, 1], iouThreshold: 0.45,
                               maxDetections: 300, agnostic: true), [0])
    }

    func testDecodeNormalisedBoxes() throws {
        let meta = try metadata()
        let values: [Float] = [0.5, 0.2, 0.5, 0.5, 0.2, 0.5, 0.25, 0.1, 0.24, 0.25, 0.1, 0.24, 0.9, 0.1, 0.8, 0.05, 0.6, 0.1]
        let plan = LetterboxPlan.plan(imageWidth: 192, imageHeight: 192, targetWidth: 192, targetHeight: 192)
        let results = try Decoder.decode(values: values, shape: [1, 6, 3], metadata: meta, plan: plan, imageWidth: 192, imageHeight: 192)
        XCTAssertEqual(results.detections.count, 2)
        XCTAssertEqual(results.detections[0].bbox, BoundingBox(x1: 72, y1: 72, x2: 120, y2: 120))
        XCTAssertEqual(results.detections[1].className, "b")
    }

    func testMissingKeyIsNamed() {
        XCTAssertThrowsError(try metadata(metadataJSON.replacingOccurrences(of: "\"task\": \"detect\",", with: ""))) {
            XCTAssertTrue("\($0)".contains("task"))
        }
    }

    func testClassCountMismatch() {
        XCTAssertThrowsError(try metadata(metadataJSON.replacingOccurrences(of: "[\"a\", \"b\"]", with: "[\"a\"]"))) {
            XCTAssertTrue("\($0)".contains("class_names"))
        }
    }
}

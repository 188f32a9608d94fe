import Foundation

public enum MetadataError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String { if case let .invalid(m) = self { return m }; return "" }
}

/// The parts of exportkit's metadata.json the runtime reads (Codable; unknown keys are ignored).
public struct ModelMetadata: Codable {
    public struct Tensor: Codable { public let name: String; public let shape: [Int] }
    public struct Preprocessing: Codable {
        public var mean: [Float]? = [0, 0, 0]
        public var std: [Float]? = [255, 255, 255]
        public var color_space: String? = "RGB"
        public var layout: String? = "NCHW"
        public var pad_value: Int? = 114
        public var letterbox_center: Bool? = true
        public var scale_up: Bool? = true
    }
    public struct Postprocessing: Codable {
        public var confidence_threshold: Float? = 0.25
        public var iou_threshold: Float? = 0.45
        public var max_detections: Int? = 300
        public var agnostic_nms: Bool? = false
    }
    /// output_layout.predictions (exportkit/schema/metadata.schema.json, `predictions_layout`). Optional keys
    /// decode as nil when absent; the defaults the schema states are applied where they are read.
    public struct Predictions: Codable {
        public let output: String
        public var shape_order: String? = "batch, channels, anchors"
        public var box: [Int]? = [0, 4]
        public var box_format: String? = "cxcywh"
        public var box_units: String? = "input_pixels"
        public let class_scores: [Int]
        public var scores_activated: Bool? = true
        /// Rows are final detections (in-model NMS, or CoreML's NMS pipeline): no NMS here.
        public var nms_applied: Bool? = false
        /// nms_applied rows of Ultralytics' in-graph NMS: the value holding the class id (class_scores: the score).
        public var class_index: Int? = nil
        /// CoreML's NMS pipeline: per-class scores in this separate output (`confidence`), padded to class_scores_padded_to.
        public var class_scores_output: String? = nil
        public var class_scores_padded_to: Int? = nil
    }
    public struct OutputLayout: Codable { public let predictions: Predictions }

    public static let anchorOrders = ["batch, channels, anchors", "batch, anchors, channels"]
    public static let rowOrders = ["batch, detections, values", "detections, values"]

    public let task: String
    public let export_format: String
    public let class_names: [String]
    public let input_shape: [Int]
    public let inputs: [Tensor]
    public let outputs: [Tensor]
    public let preprocessing: Preprocessing
    public let postprocessing: Postprocessing
    public let output_layout: OutputLayout

    public var inputHeight: Int { input_shape[0] }
    public var inputWidth: Int { input_shape[1] }

    /// Decode and check; errors name the bad key, like the Python and Kotlin runtimes.
    public static func parse(_ data: Data, source: String = "metadata.json") throws -> ModelMetadata {
        let meta: ModelMetadata
        do {
            meta = try JSONDecoder().decode(ModelMetadata.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath.map { $0.stringValue } + [key.stringValue]).joined(separator: ".")
            throw MetadataError.invalid("\(source): \(path) is missing; re-export the model with exportkit")
        } catch let DecodingError.typeMismatch(_, context) {
            let path = context.codingPath.map { $0.stringValue }.joined(separator: ".")
            throw MetadataError.invalid("\(source): \(path) has the wrong type (\(context.debugDescription))")
        } catch {
            throw MetadataError.invalid("\(source) is not valid metadata JSON: \(error)")
        }
        try meta.check(source)
        return meta
    }

    func check(_ source: String) throws {
        guard ["detect", "segment", "pose"].contains(task) else {
            throw MetadataError.invalid("\(source): task is '\(task)', this runtime supports detect, segment, pose")
        }
        guard input_shape.count == 3, input_shape[0] > 0, input_shape[1] > 0 else {
            throw MetadataError.invalid("\(source): input_shape is \(input_shape), expected [height, width, channels]")
        }
        let p = output_layout.predictions
        let scores = p.class_scores
        let order = p.shape_order ?? ModelMetadata.anchorOrders[0]
        let rows = p.nms_applied ?? false
        guard (ModelMetadata.anchorOrders + ModelMetadata.rowOrders).contains(order) else {
            throw MetadataError.invalid("\(source): output_layout.predictions.shape_order is '\(order)', this runtime supports "
                                        + (ModelMetadata.anchorOrders + ModelMetadata.rowOrders).joined(separator: ", "))
        }
        guard ModelMetadata.rowOrders.contains(order) == rows else {
            throw MetadataError.invalid("\(source): output_layout.predictions.shape_order '\(order)' and nms_applied \(rows) disagree "
                                        + "(rows of detections go with nms_applied true)")
        }
        if rows && p.class_scores_output == nil && p.class_index == nil {
            throw MetadataError.invalid("\(source): output_layout.predictions.class_index is missing; re-export the model with exportkit")
        }
        let perClass = !rows || p.class_scores_output != nil
        guard scores.count == 2, scores[0] >= 0, scores[0] < scores[1], !perClass || scores[1] - scores[0] == class_names.count else {
            throw MetadataError.invalid("\(source): class_names lists \(class_names.count) classes but class_scores is \(scores)")
        }
        for name in [p.output, p.class_scores_output].compactMap({ $0 }) where !outputs.contains(where: { $0.name == name }) {
            throw MetadataError.invalid("\(source): output_layout names output '\(name)', not one of \(outputs.map { $0.name })")
        }
    }
}

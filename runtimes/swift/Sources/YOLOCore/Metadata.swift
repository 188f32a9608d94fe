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
    public struct Predictions: Codable {
        public let output: String
        public var shape_order: String? = "batch, channels, anchors"
        public var box: [Int]? = [0, 4]
        public var box_format: String? = "cxcywh"
        public var box_units: String? = "input_pixels"
        public let class_scores: [Int]
        public var scores_activated: Bool? = true
    }
    public struct OutputLayout: Codable { public let predictions: Predictions }

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
        let scores = output_layout.predictions.class_scores
        guard scores.count == 2, scores[1] - scores[0] == class_names.count else {
            throw MetadataError.invalid("\(source): class_names lists \(class_names.count) classes but class_scores is \(scores)")
        }
        guard outputs.contains(where: { $0.name == output_layout.predictions.output }) else {
            throw MetadataError.invalid("\(source): output_layout names output '\(output_layout.predictions.output)', not one of \(outputs.map { $0.name })")
        }
    }
}

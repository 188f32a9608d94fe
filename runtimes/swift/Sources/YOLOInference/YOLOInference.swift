#if canImport(CoreML) && canImport(Vision)
import CoreGraphics
import CoreML
import Foundation
import Vision
import YOLOCore

/// CoreML + Vision: letterbox through Vision's scaleFit crop (centred padding, like Ultralytics' letterbox),
/// decoding and NMS in YOLOCore, thresholds and class names from metadata.json.
public final class YOLOInference {
    public let metadata: ModelMetadata
    private let model: VNCoreMLModel

    /// model: a compiled .mlmodelc or .mlpackage URL; metadata: metadata.json (defaults to the file beside it).
    public init(model url: URL, metadata metadataURL: URL? = nil) throws {
        let metaURL = metadataURL ?? url.deletingLastPathComponent().appendingPathComponent("metadata.json")
        metadata = try ModelMetadata.parse(Data(contentsOf: metaURL), source: metaURL.path)
        let compiled = url.pathExtension == "mlmodelc" ? url : try MLModel.compileModel(at: url)
        model = try VNCoreMLModel(for: MLModel(contentsOf: compiled))
    }

    public func predict(image: CGImage, confThreshold: Float? = nil, iouThreshold: Float? = nil) throws -> Results {
        let request = VNCoreMLRequest(model: model)
        request.imageCropAndScaleOption = .scaleFit
        try VNImageRequestHandler(cgImage: image).perform([request])
        guard let array = (request.results as? [VNCoreMLFeatureValueObservation])?
            .first(where: { $0.featureName == metadata.output_layout.predictions.output })?.featureValue.multiArrayValue
            ?? (request.results as? [VNCoreMLFeatureValueObservation])?.first?.featureValue.multiArrayValue else {
            throw MetadataError.invalid("the model returned no multi-array output '\(metadata.output_layout.predictions.output)'")
        }
        let count = array.count
        var values = [Float](repeating: 0, count: count)
        for i in 0..<count { values[i] = array[i].floatValue }
        let plan = LetterboxPlan.plan(imageWidth: image.width, imageHeight: image.height,
                                      targetWidth: metadata.inputWidth, targetHeight: metadata.inputHeight,
                                      scaleUp: true, center: true)
        return Decoder.decode(values: values, shape: array.shape.map { $0.intValue }, metadata: metadata, plan: plan,
                              imageWidth: image.width, imageHeight: image.height,
                              confThreshold: confThreshold, iouThreshold: iouThreshold)
    }
}
#endif

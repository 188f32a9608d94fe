#if canImport(CoreML) && canImport(CoreGraphics) && canImport(CoreVideo)
import CoreGraphics
import CoreML
import CoreVideo
import Foundation
import YOLOCore

/// CoreML: letterbox with YOLOCore's LetterboxPlan (Ultralytics' arithmetic, padding 114) into a BGRA pixel buffer,
/// run the model, read every multi-array output by name and decode in YOLOCore, thresholds and class names
/// from metadata.json. Handles raw exports (nms: false) and the default export (nms: true): Apple's NMS pipeline
/// (`confidence`, `coordinates`) for detect, Ultralytics' in-graph NMS rows for segment and pose (boxes only).
public final class YOLOInference {
    public let metadata: ModelMetadata
    private let model: MLModel

    /// model: a compiled .mlmodelc or .mlpackage URL; metadata: metadata.json (defaults to the file beside it).
    public init(model url: URL, metadata metadataURL: URL? = nil) throws {
        let metaURL = metadataURL ?? url.deletingLastPathComponent().appendingPathComponent("metadata.json")
        metadata = try ModelMetadata.parse(Data(contentsOf: metaURL), source: metaURL.path)
        let compiled = url.pathExtension == "mlmodelc" ? url : try MLModel.compileModel(at: url)
        model = try MLModel(contentsOf: compiled)
    }

    public func predict(image: CGImage, confThreshold: Float? = nil, iouThreshold: Float? = nil) throws -> Results {
        let plan = LetterboxPlan.plan(imageWidth: image.width, imageHeight: image.height,
                                      targetWidth: metadata.inputWidth, targetHeight: metadata.inputHeight,
                                      scaleUp: metadata.preprocessing.scale_up ?? true, center: metadata.preprocessing.letterbox_center ?? true)
        let pixels = try letterboxed(image, plan: plan)
        var inputs: [String: MLFeatureValue] = [metadata.inputs[0].name: MLFeatureValue(pixelBuffer: pixels)]
        // The NMS pipeline takes its thresholds as inputs (optional, with defaults); pass the ones asked for.
        let declared = model.modelDescription.inputDescriptionsByName
        let iou = Double(iouThreshold ?? metadata.postprocessing.iou_threshold ?? 0.45)
        let conf = Double(confThreshold ?? metadata.postprocessing.confidence_threshold ?? 0.25)
        if declared["iouThreshold"] != nil { inputs["iouThreshold"] = MLFeatureValue(double: iou) }
        if declared["confidenceThreshold"] != nil { inputs["confidenceThreshold"] = MLFeatureValue(double: conf) }
        let found = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: inputs))
        var outputs: [String: OutputTensor] = [:]
        for name in found.featureNames {
            guard let array = found.featureValue(for: name)?.multiArrayValue else { continue }
            var values = [Float](repeating: 0, count: array.count)
            for i in 0..<array.count { values[i] = array[i].floatValue }
            outputs[name] = OutputTensor(values: values, shape: array.shape.map { $0.intValue })
        }
        return try Decoder.decode(outputs: outputs, metadata: metadata, plan: plan, imageWidth: image.width, imageHeight: image.height,
                                  confThreshold: confThreshold, iouThreshold: iouThreshold)
    }

    /// The model input: `image` resized into the plan's content rectangle, the rest filled with pad_value.
    private func letterboxed(_ image: CGImage, plan: LetterboxPlan) throws -> CVPixelBuffer {
        let width = metadata.inputWidth, height = metadata.inputHeight
        var buffer: CVPixelBuffer?
        let attributes = [kCVPixelBufferCGImageCompatibilityKey: true, kCVPixelBufferCGBitmapContextCompatibilityKey: true] as CFDictionary
        guard CVPixelBufferCreate(kCFAllocatorDefault, width, height, kCVPixelFormatType_32BGRA, attributes, &buffer) == kCVReturnSuccess,
              let pixels = buffer else {
            throw MetadataError.invalid("cannot allocate a \(width)x\(height) pixel buffer for the model input")
        }
        CVPixelBufferLockBaseAddress(pixels, [])
        defer { CVPixelBufferUnlockBaseAddress(pixels, []) }
        guard let context = CGContext(data: CVPixelBufferGetBaseAddress(pixels), width: width, height: height, bitsPerComponent: 8,
                                      bytesPerRow: CVPixelBufferGetBytesPerRow(pixels), space: CGColorSpaceCreateDeviceRGB(),
                                      bitmapInfo: CGImageAlphaInfo.noneSkipFirst.rawValue | CGBitmapInfo.byteOrder32Little.rawValue) else {
            throw MetadataError.invalid("cannot draw into the model input buffer")
        }
        let grey = CGFloat(metadata.preprocessing.pad_value ?? 114) / 255
        context.setFillColor(red: grey, green: grey, blue: grey, alpha: 1)
        context.fill(CGRect(x: 0, y: 0, width: width, height: height))
        context.interpolationQuality = .high
        // Core Graphics' origin is the bottom-left corner: the content's top edge sits plan.top rows below the top.
        context.draw(image, in: CGRect(x: plan.left, y: height - plan.top - plan.newHeight, width: plan.newWidth, height: plan.newHeight))
        return pixels
    }
}
#endif

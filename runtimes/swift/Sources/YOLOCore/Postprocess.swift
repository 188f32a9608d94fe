import Foundation

public struct BoundingBox: Equatable {
    public let x1: Float, y1: Float, x2: Float, y2: Float
    public init(x1: Float, y1: Float, x2: Float, y2: Float) { self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2 }
    public func iou(_ o: BoundingBox) -> Float {
        let w = max(0, min(x2, o.x2) - max(x1, o.x1)), h = max(0, min(y2, o.y2) - max(y1, o.y1))
        let inter = w * h
        return inter / ((x2 - x1) * (y2 - y1) + (o.x2 - o.x1) * (o.y2 - o.y1) - inter)
    }
}

public struct Detection: Equatable {
    public let classId: Int, className: String, confidence: Float, bbox: BoundingBox
}

public struct Results { public let detections: [Detection]; public let imageWidth: Int, imageHeight: Int }

/// Greedy NMS, torchvision semantics (drop when IoU > threshold), class-aware via Ultralytics' class offset.
public enum NMS {
    public static let classOffset: Float = 7680

    public static func run(boxes: [BoundingBox], scores: [Float], classIds: [Int], iouThreshold: Float,
                           maxDetections: Int, agnostic: Bool) -> [Int] {
        var shifted = boxes
        if !agnostic {
            let largest = boxes.flatMap { [abs($0.x1), abs($0.y1), abs($0.x2), abs($0.y2)] }.max() ?? 0
            let offset = max(classOffset, largest * 2 + 1)
            shifted = zip(boxes, classIds).map { b, c in
                let d = Float(c) * offset
                return BoundingBox(x1: b.x1 + d, y1: b.y1 + d, x2: b.x2 + d, y2: b.y2 + d)
            }
        }
        let order = scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        var suppressed = [Bool](repeating: false, count: order.count)
        var keep: [Int] = []
        for i in order.indices where !suppressed[i] {
            keep.append(order[i])
            if keep.count == maxDetections { break }
            for j in (i + 1)..<order.count where !suppressed[j] && shifted[order[i]].iou(shifted[order[j]]) > iouThreshold {
                suppressed[j] = true
            }
        }
        return keep
    }
}

/// A raw output tensor: float32 values, row-major, and their shape.
public struct OutputTensor {
    public let values: [Float]
    public let shape: [Int]
    public init(values: [Float], shape: [Int]) { self.values = values; self.shape = shape }

    /// The two axes after an optional leading batch axis of 1: [a, b].
    func matrix(_ name: String) throws -> (Int, Int) {
        let dims = shape.count == 3 && shape[0] == 1 ? Array(shape.dropFirst()) : shape
        guard dims.count == 2, dims[0] * dims[1] == values.count else {
            throw MetadataError.invalid("output '\(name)' has shape \(shape) for \(values.count) values, expected [1, a, b] or [a, b]")
        }
        return (dims[0], dims[1])
    }
}

/// Raw outputs (batch 1) -> Results, as metadata.json's output_layout says: raw anchors either axis order
/// (confidence filter + NMS), Ultralytics' in-model NMS rows (batch, detections, values), or CoreML's NMS pipeline
/// (coordinates beside confidence, detections x values; the default CoreML export): final rows, no NMS.
public enum Decoder {
    /// One predictions output (the layouts without a separate class_scores_output).
    public static func decode(values: [Float], shape: [Int], metadata: ModelMetadata, plan: LetterboxPlan,
                              imageWidth: Int, imageHeight: Int, confThreshold: Float? = nil,
                              iouThreshold: Float? = nil) throws -> Results {
        try decode(outputs: [metadata.output_layout.predictions.output: OutputTensor(values: values, shape: shape)], metadata: metadata,
                   plan: plan, imageWidth: imageWidth, imageHeight: imageHeight, confThreshold: confThreshold, iouThreshold: iouThreshold)
    }

    /// Every output the layout names, by name (CoreML's feature names).
    public static func decode(outputs: [String: OutputTensor], metadata: ModelMetadata, plan: LetterboxPlan,
                              imageWidth: Int, imageHeight: Int, confThreshold: Float? = nil,
                              iouThreshold: Float? = nil, maxDetections: Int? = nil) throws -> Results {
        let p = metadata.output_layout.predictions
        guard let pred = outputs[p.output] else {
            throw MetadataError.invalid("the model has no output '\(p.output)' (outputs: \(outputs.keys.sorted()))")
        }
        let anchorsLast = (p.shape_order ?? "batch, channels, anchors") == "batch, channels, anchors"
        let (first, second) = try pred.matrix(p.output)
        let channels = anchorsLast ? first : second, anchors = anchorsLast ? second : first
        func at(_ c: Int, _ a: Int) -> Float { anchorsLast ? pred.values[c * anchors + a] : pred.values[a * channels + c] }
        let box0 = (p.box ?? [0, 4])[0]
        let needed = max(box0 + 4, p.class_scores_output == nil ? p.class_scores[1] : 0, (p.class_index ?? -1) + 1)
        guard channels >= needed else {
            throw MetadataError.invalid("output '\(p.output)' has \(channels) values per anchor, metadata.json's output_layout needs \(needed)")
        }
        let conf = confThreshold ?? metadata.postprocessing.confidence_threshold ?? 0.25
        let maxDet = maxDetections ?? metadata.postprocessing.max_detections ?? 300
        let normalized = p.box_units == "normalized"
        let sx: Float = normalized ? Float(metadata.inputWidth) : 1, sy: Float = normalized ? Float(metadata.inputHeight) : 1
        func inputBox(_ a: Int) -> BoundingBox {
            let x = at(box0, a) * sx, y = at(box0 + 1, a) * sy, w = at(box0 + 2, a) * sx, h = at(box0 + 3, a) * sy
            return (p.box_format ?? "cxcywh") == "cxcywh"
                ? BoundingBox(x1: x - w / 2, y1: y - h / 2, x2: x + w / 2, y2: y + h / 2)
                : BoundingBox(x1: x, y1: y, x2: w, y2: h)
        }
        var boxes: [BoundingBox] = [], scores: [Float] = [], classes: [Int] = []
        func add(_ a: Int, _ score: Float, _ classId: Int) { boxes.append(inputBox(a)); scores.append(score); classes.append(classId) }

        let keep: [Int]
        if let scoresName = p.class_scores_output {  // CoreML's NMS pipeline: per-class confidence rows, final detections
            guard let confidence = outputs[scoresName] else {
                throw MetadataError.invalid("the model has no output '\(scoresName)' (outputs: \(outputs.keys.sorted()))")
            }
            let (rows, width) = try confidence.matrix(scoresName)
            guard rows == anchors, width >= p.class_scores[1] else {
                throw MetadataError.invalid("output '\(scoresName)' has shape \(confidence.shape), expected \(anchors) rows of at least \(p.class_scores[1]) scores")
            }
            for a in 0..<anchors {
                var best = -Float.greatestFiniteMagnitude, bestClass = 0
                for c in p.class_scores[0]..<p.class_scores[1] where confidence.values[a * width + c] > best {
                    best = confidence.values[a * width + c]; bestClass = c - p.class_scores[0]
                }
                if best > conf { add(a, best, bestClass) }
            }
            keep = Array(boxes.indices.prefix(maxDet))
        } else if p.nms_applied ?? false {  // Ultralytics' in-model NMS: x1 y1 x2 y2 score class per row
            let classIndex = p.class_index ?? 5
            for a in 0..<anchors where at(p.class_scores[0], a) > conf { add(a, at(p.class_scores[0], a), Int(at(classIndex, a))) }
            keep = Array(boxes.indices.prefix(maxDet))
        } else {  // raw anchors: best class, confidence filter, class-aware NMS
            for a in 0..<anchors {
                var best = -Float.greatestFiniteMagnitude, bestClass = 0
                for c in p.class_scores[0]..<p.class_scores[1] {
                    var s = at(c, a)
                    if p.scores_activated == false { s = 1 / (1 + exp(-s)) }
                    if s > best { best = s; bestClass = c - p.class_scores[0] }
                }
                if best > conf { add(a, best, bestClass) }
            }
            keep = NMS.run(boxes: boxes, scores: scores, classIds: classes,
                           iouThreshold: iouThreshold ?? metadata.postprocessing.iou_threshold ?? 0.45,
                           maxDetections: maxDet, agnostic: metadata.postprocessing.agnostic_nms ?? false)
        }
        func clip(_ v: Float, _ limit: Int) -> Float { min(max(v, 0), Float(limit)) }
        let detections = keep.map { k -> Detection in
            let b = boxes[k]
            let name = classes[k] >= 0 && classes[k] < metadata.class_names.count ? metadata.class_names[classes[k]] : "class_\(classes[k])"
            return Detection(classId: classes[k], className: name, confidence: scores[k], bbox: BoundingBox(
                x1: clip(plan.toImageX(b.x1), imageWidth), y1: clip(plan.toImageY(b.y1), imageHeight),
                x2: clip(plan.toImageX(b.x2), imageWidth), y2: clip(plan.toImageY(b.y2), imageHeight)))
        }
        return Results(detections: detections, imageWidth: imageWidth, imageHeight: imageHeight)
    }
}

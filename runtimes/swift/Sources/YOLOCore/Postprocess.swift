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

/// Raw prediction output (batch 1; [channels, anchors] or [anchors, channels], per metadata) -> Results.
public enum Decoder {
    public static func decode(values: [Float], shape: [Int], metadata: ModelMetadata, plan: LetterboxPlan,
                              imageWidth: Int, imageHeight: Int, confThreshold: Float? = nil,
                              iouThreshold: Float? = nil) -> Results {
        let p = metadata.output_layout.predictions
        let dims = Array(shape.drop(while: { $0 == 1 }))
        let anchorsLast = (p.shape_order ?? "batch, channels, anchors") == "batch, channels, anchors"
        let channels = anchorsLast ? dims[0] : dims[1], anchors = anchorsLast ? dims[1] : dims[0]
        func at(_ c: Int, _ a: Int) -> Float { anchorsLast ? values[c * anchors + a] : values[a * channels + c] }
        let conf = confThreshold ?? metadata.postprocessing.confidence_threshold ?? 0.25
        let box0 = (p.box ?? [0, 4])[0]
        let normalized = p.box_units == "normalized"
        let sx: Float = normalized ? Float(metadata.inputWidth) : 1, sy: Float = normalized ? Float(metadata.inputHeight) : 1
        var boxes: [BoundingBox] = [], scores: [Float] = [], classes: [Int] = []
        for a in 0..<anchors {
            var best = -Float.greatestFiniteMagnitude, bestClass = 0
            for c in p.class_scores[0]..<p.class_scores[1] {
                var s = at(c, a)
                if p.scores_activated == false { s = 1 / (1 + exp(-s)) }
                if s > best { best = s; bestClass = c - p.class_scores[0] }
            }
            guard best > conf else { continue }
            let x = at(box0, a) * sx, y = at(box0 + 1, a) * sy, w = at(box0 + 2, a) * sx, h = at(box0 + 3, a) * sy
            boxes.append((p.box_format ?? "cxcywh") == "cxcywh"
                ? BoundingBox(x1: x - w / 2, y1: y - h / 2, x2: x + w / 2, y2: y + h / 2)
                : BoundingBox(x1: x, y1: y, x2: w, y2: h))
            scores.append(best); classes.append(bestClass)
        }
        let keep = NMS.run(boxes: boxes, scores: scores, classIds: classes,
                           iouThreshold: iouThreshold ?? metadata.postprocessing.iou_threshold ?? 0.45,
                           maxDetections: metadata.postprocessing.max_detections ?? 300,
                           agnostic: metadata.postprocessing.agnostic_nms ?? false)
        func clip(_ v: Float, _ limit: Int) -> Float { min(max(v, 0), Float(limit)) }
        let detections = keep.map { k -> Detection in
            let b = boxes[k]
            let name = classes[k] < metadata.class_names.count ? metadata.class_names[classes[k]] : "class_\(classes[k])"
            return Detection(classId: classes[k], className: name, confidence: scores[k], bbox: BoundingBox(
                x1: clip(plan.toImageX(b.x1), imageWidth), y1: clip(plan.toImageY(b.y1), imageHeight),
                x2: clip(plan.toImageX(b.x2), imageWidth), y2: clip(plan.toImageY(b.y2), imageHeight)))
        }
        return Results(detections: detections, imageWidth: imageWidth, imageHeight: imageHeight)
    }
}

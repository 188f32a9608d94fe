import Foundation

/// Ultralytics' LetterBox arithmetic (Python's round is half-to-even: `.toNearestOrEven`).
public struct LetterboxPlan: Equatable {
    public let newWidth: Int, newHeight: Int, top: Int, bottom: Int, left: Int, right: Int
    public let gainX: Float, gainY: Float

    public static func plan(imageWidth: Int, imageHeight: Int, targetWidth: Int, targetHeight: Int,
                            scaleUp: Bool = true, center: Bool = true) -> LetterboxPlan {
        var r = min(Double(targetHeight) / Double(imageHeight), Double(targetWidth) / Double(imageWidth))
        if !scaleUp { r = min(r, 1.0) }
        let newW = max(Int((Double(imageWidth) * r).rounded(.toNearestOrEven)), 1)
        let newH = max(Int((Double(imageHeight) * r).rounded(.toNearestOrEven)), 1)
        var dw = Double(targetWidth - newW), dh = Double(targetHeight - newH)
        if center { dw /= 2; dh /= 2 }
        func rnd(_ v: Double) -> Int { Int(v.rounded(.toNearestOrEven)) }
        return LetterboxPlan(newWidth: newW, newHeight: newH,
                             top: center ? rnd(dh - 0.1) : 0, bottom: rnd(dh + 0.1),
                             left: center ? rnd(dw - 0.1) : 0, right: rnd(dw + 0.1),
                             gainX: Float(Double(newW) / Double(imageWidth)), gainY: Float(Double(newH) / Double(imageHeight)))
    }

    public func toImageX(_ x: Float) -> Float { (x - Float(left)) / gainX }
    public func toImageY(_ y: Float) -> Float { (y - Float(top)) / gainY }
}

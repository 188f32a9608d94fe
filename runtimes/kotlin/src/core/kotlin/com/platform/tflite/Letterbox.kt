package com.platform.tflite

/** An image as packed 0xAARRGGBB pixels, row by row: what Android's Bitmap.getPixels and AWT's getRGB give. */
class ArgbImage(val width: Int, val height: Int, val pixels: IntArray) {
    init {
        require(width > 0 && height > 0) { "image is ${width}x$height, expected a non-empty image" }
        require(pixels.size == width * height) { "image has ${pixels.size} pixels, expected ${width * height}" }
    }
}

/**
 * Ultralytics' LetterBox arithmetic: scale by r = min(H/h, W/w) (at most 1 unless scale-up), resize to
 * (round(w*r), round(h*r)), split the padding with round(d - 0.1) before and round(d + 0.1) after.
 * Python's round() is half-to-even, hence Math.rint.
 */
data class LetterboxPlan(
    val newWidth: Int,
    val newHeight: Int,
    val top: Int,
    val bottom: Int,
    val left: Int,
    val right: Int,
    val gainX: Float,
    val gainY: Float
) {
    /** Input-pixel x back to original-image pixels. */
    fun toImageX(x: Float): Float = (x - left) / gainX

    fun toImageY(y: Float): Float = (y - top) / gainY

    companion object {
        fun plan(imageWidth: Int, imageHeight: Int, targetWidth: Int, targetHeight: Int, scaleUp: Boolean = true, center: Boolean = true): LetterboxPlan {
            var r = Math.min(targetHeight.toDouble() / imageHeight, targetWidth.toDouble() / imageWidth)
            if (!scaleUp) r = Math.min(r, 1.0)
            val newW = Math.max(Math.rint(imageWidth * r).toInt(), 1)
            val newH = Math.max(Math.rint(imageHeight * r).toInt(), 1)
            var dw = (targetWidth - newW).toDouble()
            var dh = (targetHeight - newH).toDouble()
            if (center) { dw /= 2; dh /= 2 }
            val top = if (center) Math.rint(dh - 0.1).toInt() else 0
            val left = if (center) Math.rint(dw - 0.1).toInt() else 0
            return LetterboxPlan(
                newW, newH, top, Math.rint(dh + 0.1).toInt(), left, Math.rint(dw + 0.1).toInt(),
                (newW.toDouble() / imageWidth).toFloat(), (newH.toDouble() / imageHeight).toFloat()
            )
        }
    }
}

/**
 * Letterbox an image into the model's input tensor (float32, batch 1, NCHW or NHWC), normalised as
 * metadata.json says: (pixel - mean) / std per channel, in its colour order.
 *
 * The resize reproduces OpenCV's INTER_LINEAR for 8-bit images (half-pixel centres, 11-bit fixed-point
 * weights, the SIMD vertical pass's rounding), which is what the Python runtime and Ultralytics use, so
 * the tensors agree up to differences in JPEG decoding.
 */
object Letterbox {
    private const val COEF_SCALE = 2048

    fun tensor(image: ArgbImage, pre: Preprocessing): Pair<FloatArray, LetterboxPlan> {
        val plan = LetterboxPlan.plan(image.width, image.height, pre.width, pre.height, pre.scaleUp, pre.center)
        val resized = resizeLinear(image, plan.newWidth, plan.newHeight)
        val w = pre.width
        val h = pre.height
        val plane = w * h
        val out = FloatArray(plane * 3)
        val order = if (pre.colorSpace == "RGB") intArrayOf(16, 8, 0) else intArrayOf(0, 8, 16)
        val nchw = pre.layout == "NCHW"
        for (y in 0 until h) {
            val sy = y - plan.top
            for (x in 0 until w) {
                val sx = x - plan.left
                val inside = sy >= 0 && sy < plan.newHeight && sx >= 0 && sx < plan.newWidth
                val p = if (inside) resized[sy * plan.newWidth + sx] else 0
                for (c in 0 until 3) {
                    val v = if (inside) (p shr order[c]) and 0xFF else pre.padValue
                    val value = (v - pre.mean[c]) / pre.std[c]
                    out[if (nchw) c * plane + y * w + x else (y * w + x) * 3 + c] = value
                }
            }
        }
        return Pair(out, plan)
    }

    /** OpenCV cv::resize(INTER_LINEAR) on 8-bit RGB; returns packed 0x00RRGGBB pixels. */
    fun resizeLinear(image: ArgbImage, dstW: Int, dstH: Int): IntArray {
        if (dstW == image.width && dstH == image.height) return IntArray(image.pixels.size) { image.pixels[it] and 0xFFFFFF }
        val xs = Taps.of(dstW, image.width)
        val ys = Taps.of(dstH, image.height)
        val r0 = IntArray(dstW * 3)
        val r1 = IntArray(dstW * 3)
        val out = IntArray(dstW * dstH)
        for (dy in 0 until dstH) {
            horizontalRow(image, ys.first[dy], xs, r0)
            horizontalRow(image, ys.second[dy], xs, r1)
            val b0 = ys.w0[dy]
            val b1 = ys.w1[dy]
            for (dx in 0 until dstW) {
                var pixel = 0
                for (c in 0 until 3) {
                    val i = dx * 3 + c
                    // The SSE2/NEON vertical pass: mulhi of (value >> 4) by the weight, then (sum + 2) >> 2.
                    val v = ((((r0[i] shr 4) * b0) shr 16) + (((r1[i] shr 4) * b1) shr 16) + 2) shr 2
                    pixel = pixel or (Math.min(255, Math.max(0, v)) shl (16 - 8 * c))
                }
                out[dy * dstW + dx] = pixel
            }
        }
        return out
    }

    /** One source row resampled horizontally into [row] (values scaled by 2048). */
    private fun horizontalRow(image: ArgbImage, sy: Int, xs: Taps, row: IntArray) {
        val base = sy * image.width
        for (dx in xs.first.indices) {
            val p0 = image.pixels[base + xs.first[dx]]
            val p1 = image.pixels[base + xs.second[dx]]
            for (c in 0 until 3) {
                val shift = 16 - 8 * c
                row[dx * 3 + c] = ((p0 shr shift) and 0xFF) * xs.w0[dx] + ((p1 shr shift) and 0xFF) * xs.w1[dx]
            }
        }
    }

    /** Source indices and fixed-point weights for each destination index, as OpenCV computes them. */
    private class Taps(val first: IntArray, val second: IntArray, val w0: IntArray, val w1: IntArray) {
        companion object {
            fun of(dst: Int, src: Int): Taps {
                val taps = LinearTaps.of(dst, src)
                val w0 = IntArray(dst) { Math.rint(((1f - taps.fraction[it]) * COEF_SCALE).toDouble()).toInt() }
                val w1 = IntArray(dst) { Math.rint((taps.fraction[it] * COEF_SCALE).toDouble()).toInt() }
                return Taps(taps.first, taps.second, w0, w1)
            }
        }
    }
}

/**
 * OpenCV's INTER_LINEAR taps along one axis: for each destination index, the two source indices it reads and
 * the weight of the second (half-pixel centres; source indices clamped at the edges, where the weight is 0).
 */
internal class LinearTaps(val first: IntArray, val second: IntArray, val fraction: FloatArray) {
    companion object {
        fun of(dst: Int, src: Int): LinearTaps {
            val scale = 1.0 / (dst.toDouble() / src)
            val first = IntArray(dst)
            val second = IntArray(dst)
            val fraction = FloatArray(dst)
            for (d in 0 until dst) {
                var f = ((d + 0.5) * scale - 0.5).toFloat()
                var s = Math.floor(f.toDouble()).toInt()
                f -= s
                if (s < 0) { s = 0; f = 0f }
                if (s >= src - 1) { s = src - 1; f = 0f }
                first[d] = s
                second[d] = Math.min(s + 1, src - 1)
                fraction[d] = f
            }
            return LinearTaps(first, second, fraction)
        }
    }
}

package com.platform.tflite

/**
 * Instance masks at the original image's resolution, computed as the Python runtime and Ultralytics'
 * `process_mask_native` (retina masks) compute them: mask logits at prototype resolution, an optional 1/2/4x
 * bilinear upsample so the letterbox padding crops on whole pixels, crop the padding, bilinear resize to the
 * image (OpenCV's INTER_LINEAR on floats: half-pixel centres, edge clamped), threshold at 0, and zero every
 * pixel outside the detection's box.
 */
object Masks {
    /** Prototype maps, channels first: map k, row y, column x at `values[(k * height + y) * width + x]`. */
    class Prototypes(val count: Int, val height: Int, val width: Int, val values: FloatArray)

    /** The prototypes output as channel-first maps, whatever its axis order; checks the map count. */
    fun prototypes(output: OutputTensor, count: Int, channelsFirst: Boolean): Prototypes {
        val dims = output.shape.toList().let { if (it.size == 4 && it[0] == 1) it.drop(1) else it }
        if (dims.size != 3) throw MetadataException("prototypes output '${output.name}' has shape ${output.shape.toList()}, expected [1, c, h, w] or [1, h, w, c]")
        val c = if (channelsFirst) dims[0] else dims[2]
        val h = if (channelsFirst) dims[1] else dims[0]
        val w = if (channelsFirst) dims[2] else dims[1]
        if (c != count) throw MetadataException("prototypes output '${output.name}' has $c maps but metadata.json's mask_coefficients span $count")
        if (channelsFirst) return Prototypes(c, h, w, output.values)
        val values = FloatArray(c * h * w)
        for (p in 0 until h * w) for (k in 0 until c) values[k * h * w + p] = output.values[p * c + k]
        return Prototypes(c, h, w, values)
    }

    /** One detection's mask at (imageWidth x imageHeight); [box] in original-image pixels. */
    fun native(protos: Prototypes, coefficients: FloatArray, box: BoundingBox, imageWidth: Int, imageHeight: Int, inputHeight: Int): Mask {
        var map = logits(protos, coefficients)
        var h = protos.height
        var w = protos.width
        val factor = upsampleFactor(h, w, inputHeight, imageHeight, imageWidth)
        if (factor > 1) {
            map = resize(map, w, h, w * factor, h * factor)
            h *= factor
            w *= factor
        }
        val gain = Math.min(h.toDouble() / imageHeight, w.toDouble() / imageWidth)
        val contentH = Math.max(Math.rint(imageHeight * gain).toInt(), 1)
        val contentW = Math.max(Math.rint(imageWidth * gain).toInt(), 1)
        val top = Math.rint((h - contentH) / 2.0 - 0.1).toInt()
        val left = Math.rint((w - contentW) / 2.0 - 0.1).toInt()
        val content = FloatArray(contentW * contentH) { map[(top + it / contentW) * w + left + it % contentW] }
        val full = if (contentW == imageWidth && contentH == imageHeight) content else resize(content, contentW, contentH, imageWidth, imageHeight)
        val pixels = BooleanArray(imageWidth * imageHeight)
        for (y in 0 until imageHeight) {
            if (y < box.y1 || y >= box.y2) continue
            for (x in 0 until imageWidth) {
                val i = y * imageWidth + x
                pixels[i] = x >= box.x1 && x < box.x2 && full[i] > 0f
            }
        }
        return Mask(imageWidth, imageHeight, pixels)
    }

    /** coefficients . prototypes: the mask's logits at prototype resolution. */
    fun logits(protos: Prototypes, coefficients: FloatArray): FloatArray {
        val plane = protos.height * protos.width
        val out = FloatArray(plane)
        for (k in 0 until protos.count) {
            val c = coefficients[k]
            val base = k * plane
            for (p in 0 until plane) out[p] += c * protos.values[base + p]
        }
        return out
    }

    /** Smallest upsample (a divisor of the prototype stride) that crops the letterbox padding on whole pixels. */
    fun upsampleFactor(protoHeight: Int, protoWidth: Int, inputHeight: Int, imageHeight: Int, imageWidth: Int): Int {
        val stride = Math.max(1, Math.rint(inputHeight.toDouble() / protoHeight).toInt())
        val gain = Math.min(stride * protoHeight.toDouble() / imageHeight, stride * protoWidth.toDouble() / imageWidth)
        val pad = (stride * protoHeight - Math.max(Math.rint(imageHeight * gain).toInt(), 1)) or
            (stride * protoWidth - Math.max(Math.rint(imageWidth * gain).toInt(), 1))
        return stride / gcd(stride, pad or (pad / 2))
    }

    private tailrec fun gcd(a: Int, b: Int): Int = if (b == 0) Math.abs(a) else gcd(b, a % b)

    /** OpenCV's cv::resize(INTER_LINEAR) of one float map: half-pixel centres, source indices clamped at the edges. */
    fun resize(src: FloatArray, srcW: Int, srcH: Int, dstW: Int, dstH: Int): FloatArray {
        val xs = LinearTaps.of(dstW, srcW)
        val ys = LinearTaps.of(dstH, srcH)
        val row0 = FloatArray(dstW)
        val row1 = FloatArray(dstW)
        val out = FloatArray(dstW * dstH)
        for (dy in 0 until dstH) {
            horizontal(src, srcW, ys.first[dy], xs, row0)
            horizontal(src, srcW, ys.second[dy], xs, row1)
            val f = ys.fraction[dy]
            for (dx in 0 until dstW) out[dy * dstW + dx] = row0[dx] * (1f - f) + row1[dx] * f
        }
        return out
    }

    private fun horizontal(src: FloatArray, srcW: Int, y: Int, xs: LinearTaps, row: FloatArray) {
        val base = y * srcW
        for (dx in row.indices) {
            val f = xs.fraction[dx]
            row[dx] = src[base + xs.first[dx]] * (1f - f) + src[base + xs.second[dx]] * f
        }
    }
}

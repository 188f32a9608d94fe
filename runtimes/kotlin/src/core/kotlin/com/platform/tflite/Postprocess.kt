package com.platform.tflite

/** A box in original-image pixels, corners (x1, y1) top-left and (x2, y2) bottom-right. */
data class BoundingBox(val x1: Float, val y1: Float, val x2: Float, val y2: Float) {
    val width get() = x2 - x1
    val height get() = y2 - y1

    fun iou(other: BoundingBox): Float = Nms.iou(floatArrayOf(x1, y1, x2, y2), 0, floatArrayOf(other.x1, other.y1, other.x2, other.y2), 0)
}

/** A pose keypoint in original-image pixels; visibility is 1 where the model predicts none. */
data class Keypoint(val name: String, val x: Float, val y: Float, val visibility: Float)

/** A segmentation mask at the original image's resolution: pixel (x, y) is `pixels[y * width + x]`. */
class Mask(val width: Int, val height: Int, val pixels: BooleanArray) {
    operator fun get(x: Int, y: Int): Boolean = pixels[y * width + x]

    val area: Int get() = pixels.count { it }

    fun iou(other: Mask): Float {
        require(width == other.width && height == other.height) { "masks of ${width}x$height and ${other.width}x${other.height}" }
        var inter = 0
        var union = 0
        for (i in pixels.indices) {
            if (pixels[i] && other.pixels[i]) inter++
            if (pixels[i] || other.pixels[i]) union++
        }
        return if (union == 0) 1f else inter.toFloat() / union
    }

    override fun toString() = "Mask(${width}x$height, area=$area)"
}

/** `keypoints` for pose models, `mask` for segmentation models; empty/null otherwise. */
data class Detection(
    val classId: Int,
    val className: String,
    val confidence: Float,
    val bbox: BoundingBox,
    val keypoints: List<Keypoint> = emptyList(),
    val mask: Mask? = null
)

/** One image's detections, highest confidence first; `skeleton` pairs 1-based keypoint indices (pose). */
data class Results(val detections: List<Detection>, val imageWidth: Int, val imageHeight: Int, val skeleton: List<Pair<Int, Int>> = emptyList())

/** Thresholds for one call; unset values come from metadata.json's postprocessing. */
data class Thresholds(val confidence: Float, val iou: Float, val maxDetections: Int, val agnostic: Boolean) {
    init {
        require(confidence in 0f..1f) { "confidence threshold is $confidence, expected a value between 0 and 1" }
        require(iou in 0f..1f) { "IoU threshold is $iou, expected a value between 0 and 1" }
        require(maxDetections >= 1) { "maxDetections is $maxDetections, expected at least 1" }
    }

    companion object {
        fun resolve(post: Postprocessing, confidence: Float? = null, iou: Float? = null, maxDetections: Int? = null, agnostic: Boolean? = null) =
            Thresholds(confidence ?: post.confidenceThreshold, iou ?: post.iouThreshold, maxDetections ?: post.maxDetections, agnostic ?: post.agnosticNms)
    }
}

/**
 * Greedy NMS with torchvision's semantics (a box goes when its IoU with a kept box is > threshold; ties
 * keep input order), class-aware through Ultralytics' per-class coordinate offset unless agnostic.
 */
object Nms {
    const val CLASS_OFFSET = 7680f
    const val MAX_CANDIDATES = 30000

    /** boxes: n x 4 xyxy, flat. Returns kept indices, highest score first. */
    fun run(boxes: FloatArray, scores: FloatArray, classIds: IntArray, iouThreshold: Float, maxDetections: Int, agnostic: Boolean): IntArray {
        val n = scores.size
        if (n == 0) return IntArray(0)
        val shifted = if (agnostic) boxes else {
            var largest = 0f
            for (v in boxes) largest = Math.max(largest, Math.abs(v))
            val offset = Math.max(CLASS_OFFSET, largest * 2 + 1)
            FloatArray(boxes.size) { boxes[it] + classIds[it / 4] * offset }
        }
        val order = (0 until n).sortedWith(Comparator { a, b -> java.lang.Float.compare(scores[b], scores[a]) })
        val suppressed = BooleanArray(n)
        val keep = ArrayList<Int>()
        for (i in order.indices) {
            if (suppressed[i]) continue
            keep.add(order[i])
            if (keep.size == maxDetections) break
            for (j in i + 1 until order.size) {
                if (!suppressed[j] && iou(shifted, order[i] * 4, shifted, order[j] * 4) > iouThreshold) suppressed[j] = true
            }
        }
        return keep.toIntArray()
    }

    fun iou(a: FloatArray, ai: Int, b: FloatArray, bi: Int): Float {
        val w = Math.max(0f, Math.min(a[ai + 2], b[bi + 2]) - Math.max(a[ai], b[bi]))
        val h = Math.max(0f, Math.min(a[ai + 3], b[bi + 3]) - Math.max(a[ai + 1], b[bi + 1]))
        val inter = w * h
        val areaA = (a[ai + 2] - a[ai]) * (a[ai + 3] - a[ai + 1])
        val areaB = (b[bi + 2] - b[bi]) * (b[bi + 3] - b[bi + 1])
        return inter / (areaA + areaB - inter)
    }
}

/** A raw output tensor: float32 values and their shape. */
class OutputTensor(val name: String, val shape: IntArray, val values: FloatArray)

/** Raw prediction output -> Results: confidence filter, NMS, boxes back to image pixels, clipped. */
object Decoder {
    /** [prototypes]: the segment model's prototypes output (null for other tasks). */
    fun decode(output: OutputTensor, meta: ModelMetadata, plan: LetterboxPlan, imageWidth: Int, imageHeight: Int, limits: Thresholds,
               prototypes: OutputTensor? = null): Results {
        val layout = meta.layout
        val pred = Predictions.of(output, layout)
        val found = if (layout.nmsApplied) preselected(pred, layout, limits) else candidates(pred, layout, limits)
        val n = found.size
        val boxes = FloatArray(n * 4)
        for (k in 0 until n) inputBox(pred, found[k].anchor, meta, boxes, k * 4)
        val scores = FloatArray(n) { found[it].score }
        val classIds = IntArray(n) { found[it].classId }
        val keep = if (layout.nmsApplied) IntArray(n) { it } else Nms.run(boxes, scores, classIds, limits.iou, limits.maxDetections, limits.agnostic)
        var detections = keep.map { k ->
            val o = k * 4
            val box = BoundingBox(
                clip(plan.toImageX(boxes[o]), imageWidth), clip(plan.toImageY(boxes[o + 1]), imageHeight),
                clip(plan.toImageX(boxes[o + 2]), imageWidth), clip(plan.toImageY(boxes[o + 3]), imageHeight)
            )
            val id = classIds[k]
            val points = if (meta.task == "pose") keypoints(pred, found[k].anchor, meta, plan, imageWidth, imageHeight) else emptyList()
            Detection(id, meta.classNames.getOrElse(id) { "class_$id" }, scores[k], box, points)
        }
        if (meta.task == "segment") detections = withMasks(detections, pred, keep.map { found[it].anchor }, meta, prototypes, imageWidth, imageHeight)
        return Results(detections, imageWidth, imageHeight, meta.skeleton)
    }

    /** Keypoints of one anchor in original-image pixels, clipped like the boxes (Ultralytics' scale_coords). */
    private fun keypoints(pred: Predictions, anchor: Int, meta: ModelMetadata, plan: LetterboxPlan, imageWidth: Int, imageHeight: Int): List<Keypoint> {
        val layout = meta.layout
        val start = layout.keypointStart ?: return emptyList()
        val dims = layout.keypointDims
        val count = ((layout.keypointEnd ?: start) - start) / dims
        val sx = if (layout.keypointsNormalized) meta.preprocessing.width.toFloat() else 1f
        val sy = if (layout.keypointsNormalized) meta.preprocessing.height.toFloat() else 1f
        return (0 until count).map { j ->
            val at = start + j * dims
            Keypoint(
                meta.keypointNames.getOrElse(j) { "keypoint_$j" },
                clip(plan.toImageX(pred[at, anchor] * sx), imageWidth),
                clip(plan.toImageY(pred[at + 1, anchor] * sy), imageHeight),
                if (dims == 3) pred[at + 2, anchor] else 1f
            )
        }
    }

    /** Attach each detection's mask; like Ultralytics (and the Python runtime), drop detections whose mask is empty. */
    private fun withMasks(detections: List<Detection>, pred: Predictions, anchors: List<Int>, meta: ModelMetadata, prototypes: OutputTensor?,
                          imageWidth: Int, imageHeight: Int): List<Detection> {
        val layout = meta.layout
        val protos = prototypes ?: throw MetadataException("a segment model needs its prototypes output '${layout.prototypes}'")
        val start = layout.maskStart ?: throw MetadataException("metadata.json gives no mask_coefficients for a segment model")
        val count = (layout.maskEnd ?: start) - start
        val maps = Masks.prototypes(protos, count, layout.prototypesChannelsFirst)
        return detections.indices.mapNotNull { i ->
            val coefficients = FloatArray(count) { c -> pred[start + c, anchors[i]] }
            val mask = Masks.native(maps, coefficients, detections[i].bbox, imageWidth, imageHeight, meta.preprocessing.height)
            if (mask.pixels.any { it }) detections[i].copy(mask = mask) else null
        }
    }

    private fun clip(v: Float, limit: Int) = Math.min(Math.max(v, 0f), limit.toFloat())

    private class Candidate(val anchor: Int, val classId: Int, val score: Float)

    /** Predictions of one image seen as (channel, anchor), whatever the output's axis order. */
    private class Predictions(val values: FloatArray, val channels: Int, val anchors: Int, val anchorsLast: Boolean) {
        operator fun get(channel: Int, anchor: Int): Float =
            if (anchorsLast) values[channel * anchors + anchor] else values[anchor * channels + channel]

        companion object {
            fun of(output: OutputTensor, layout: OutputLayout): Predictions {
                val dims = output.shape.dropWhile { it == 1 }.let { if (it.size < 2) listOf(1) + it else it }
                if (dims.size != 2) throw MetadataException("output '${output.name}' has shape ${output.shape.toList()}, expected [1, a, b]")
                val needed = if (layout.nmsApplied) (layout.classIndex ?: 5) + 1 else layout.channels
                return if (layout.anchorsLast) {
                    if (dims[0] < needed) throw MetadataException("output '${output.name}' has ${dims[0]} channels, metadata.json implies at least $needed")
                    Predictions(output.values, dims[0], dims[1], true)
                } else {
                    if (dims[1] < needed) throw MetadataException("output '${output.name}' has ${dims[1]} values per row, metadata.json implies at least $needed")
                    Predictions(output.values, dims[1], dims[0], false)
                }
            }
        }
    }

    private fun candidates(pred: Predictions, layout: OutputLayout, limits: Thresholds): List<Candidate> {
        val found = ArrayList<Candidate>()
        for (a in 0 until pred.anchors) {
            var best = -Float.MAX_VALUE
            var bestClass = 0
            for (c in layout.classStart until layout.classEnd) {
                var s = pred[c, a]
                if (!layout.scoresActivated) s = (1.0 / (1.0 + Math.exp(-s.toDouble()))).toFloat()
                if (s > best) { best = s; bestClass = c - layout.classStart }
            }
            if (best > limits.confidence) found.add(Candidate(a, bestClass, best))
        }
        if (found.size <= Nms.MAX_CANDIDATES) return found
        return found.sortedWith(Comparator { x, y -> java.lang.Float.compare(y.score, x.score) }).take(Nms.MAX_CANDIDATES)
    }

    private fun preselected(pred: Predictions, layout: OutputLayout, limits: Thresholds): List<Candidate> {
        val found = ArrayList<Candidate>()
        val classIndex = layout.classIndex ?: 5
        for (a in 0 until pred.anchors) {
            val s = pred[layout.classStart, a]
            if (s > limits.confidence) found.add(Candidate(a, pred[classIndex, a].toInt(), s))
        }
        return found.take(limits.maxDetections)
    }

    /** xyxy in model-input pixels for one anchor, written at out[at..at+3]. */
    private fun inputBox(pred: Predictions, anchor: Int, meta: ModelMetadata, out: FloatArray, at: Int) {
        val layout = meta.layout
        val sx = if (layout.boxNormalized) meta.preprocessing.width.toFloat() else 1f
        val sy = if (layout.boxNormalized) meta.preprocessing.height.toFloat() else 1f
        val a = pred[layout.boxStart, anchor] * sx
        val b = pred[layout.boxStart + 1, anchor] * sy
        val c = pred[layout.boxStart + 2, anchor] * sx
        val d = pred[layout.boxStart + 3, anchor] * sy
        if (layout.boxCentre) {
            out[at] = a - c / 2; out[at + 1] = b - d / 2; out[at + 2] = a + c / 2; out[at + 3] = b + d / 2
        } else {
            out[at] = a; out[at + 1] = b; out[at + 2] = c; out[at + 3] = d
        }
    }
}

/**
 * Runs a model on a float32 input tensor. Backends: LiteRT's C API through JNA (JVM) and
 * org.tensorflow.lite.Interpreter (Android).
 */
interface TensorRunner : java.io.Closeable {
    /** The input tensor in the model's layout, batch 1; returns every output, in any order, with its name. */
    fun run(input: FloatArray): List<OutputTensor>
}

/** Image -> tensor -> runner -> Results; what both backends' YOLOInference wrap. */
class YoloPipeline(val metadata: ModelMetadata, private val runner: TensorRunner) : java.io.Closeable {
    fun predict(image: ArgbImage, confThreshold: Float? = null, iouThreshold: Float? = null, maxDetections: Int? = null): Results {
        val limits = Thresholds.resolve(metadata.postprocessing, confThreshold, iouThreshold, maxDetections)
        val (tensor, plan) = Letterbox.tensor(image, metadata.preprocessing)
        val outputs = runner.run(tensor)
        val prototypes = metadata.layout.prototypes?.let { output(outputs, it) }
        return Decoder.decode(output(outputs, metadata.layout.predictions), metadata, plan, image.width, image.height, limits, prototypes)
    }

    /** The output metadata.json names; by position in metadata.json's outputs when names differ. */
    private fun output(outputs: List<OutputTensor>, wanted: String): OutputTensor {
        outputs.firstOrNull { it.name == wanted }?.let { return it }
        val position = metadata.outputs.indexOfFirst { it.name == wanted }
        return outputs.getOrNull(position) ?: throw MetadataException("the model has no output '$wanted' (outputs: ${outputs.map { it.name }})")
    }

    override fun close() = runner.close()
}

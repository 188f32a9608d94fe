package com.platform.tflite

/** metadata.json is missing a key, holds a wrong type, or contradicts itself. */
class MetadataException(message: String) : Exception(message)

/** How an image becomes the model's input tensor (metadata.json's `input_shape` and `preprocessing`). */
data class Preprocessing(
    val height: Int,
    val width: Int,
    val layout: String,
    val colorSpace: String,
    val mean: FloatArray,
    val std: FloatArray,
    val padValue: Int,
    val center: Boolean,
    val scaleUp: Boolean
)

/** Default thresholds (metadata.json's `postprocessing`). */
data class Postprocessing(
    val confidenceThreshold: Float,
    val iouThreshold: Float,
    val maxDetections: Int,
    val agnosticNms: Boolean
)

/**
 * Where boxes and scores sit in the raw prediction output ([start, end) channel ranges); for segment, the
 * mask coefficients and the prototypes output; for pose, the keypoints (x, y[, visibility] per keypoint).
 */
data class OutputLayout(
    val predictions: String,
    val anchorsLast: Boolean,
    val nmsApplied: Boolean,
    val boxStart: Int,
    val boxCentre: Boolean,
    val boxNormalized: Boolean,
    val classStart: Int,
    val classEnd: Int,
    val scoresActivated: Boolean,
    val classIndex: Int?,
    val maskStart: Int? = null,
    val maskEnd: Int? = null,
    val prototypes: String? = null,
    val prototypesChannelsFirst: Boolean = true,
    val keypointStart: Int? = null,
    val keypointEnd: Int? = null,
    val keypointDims: Int = 3,
    val keypointsNormalized: Boolean = false
) {
    /** Values per anchor the predictions output must hold. */
    val channels: Int
        get() = listOf(boxStart + 4, classEnd, maskEnd ?: 0, keypointEnd ?: 0, (classIndex ?: -1) + 1).fold(0) { a, b -> Math.max(a, b) }
}

data class TensorInfo(val name: String, val shape: List<Int>)

/** Everything the runtime reads from metadata.json; [parse] checks it and names the bad key. */
data class ModelMetadata(
    val task: String,
    val exportFormat: String,
    val classNames: List<String>,
    val inputs: List<TensorInfo>,
    val outputs: List<TensorInfo>,
    val preprocessing: Preprocessing,
    val postprocessing: Postprocessing,
    val layout: OutputLayout,
    val keypointNames: List<String> = emptyList(),
    /** 1-based keypoint index pairs, as in metadata.json. */
    val skeleton: List<Pair<Int, Int>> = emptyList()
) {
    companion object {
        val TASKS = listOf("detect", "segment", "pose")

        fun parse(text: String, source: String = "metadata.json"): ModelMetadata {
            val root = Json.parse(text) as? Map<*, *> ?: throw MetadataException("$source does not hold a JSON object")
            return build(Keys(root, source, ""))
        }

        private fun build(root: Keys): ModelMetadata {
            val task = root.choice("task", TASKS)
            val names = root.list("class_names").map { it.toString() }
            val meta = ModelMetadata(
                task = task,
                exportFormat = root.string("export_format"),
                classNames = names,
                inputs = tensors(root, "inputs"),
                outputs = tensors(root, "outputs"),
                preprocessing = preprocessing(root),
                postprocessing = postprocessing(root.child("postprocessing")),
                layout = outputLayout(root.child("output_layout"), task),
                keypointNames = if (root.has("keypoint_names")) root.list("keypoint_names").map { it.toString() } else emptyList(),
                skeleton = if (root.has("skeleton")) skeleton(root) else emptyList()
            )
            checkConsistent(root, meta)
            return meta
        }

        private fun tensors(root: Keys, key: String): List<TensorInfo> {
            val entries = root.list(key)
            if (entries.isEmpty()) throw root.fail(key, "is empty")
            return entries.mapIndexed { i, entry ->
                val item = Keys(entry as? Map<*, *> ?: emptyMap<String, Any>(), root.source, "$key[$i].")
                TensorInfo(item.string("name"), item.ints("shape"))
            }
        }

        private fun preprocessing(root: Keys): Preprocessing {
            val shape = root.ints("input_shape")
            if (shape.size != 3 || shape[0] <= 0 || shape[1] <= 0) throw root.fail("input_shape", "is $shape, expected [height, width, channels]")
            val pre = root.child("preprocessing")
            val mean = pre.floats("mean", listOf(0f, 0f, 0f))
            val std = pre.floats("std", listOf(255f, 255f, 255f))
            if (mean.size != 3 || std.size != 3 || std.any { it == 0f }) throw pre.fail("mean/std", "are $mean/$std, expected three values each, std non-zero")
            return Preprocessing(
                height = shape[0],
                width = shape[1],
                layout = pre.choice("layout", listOf("NCHW", "NHWC"), "NCHW"),
                colorSpace = pre.choice("color_space", listOf("RGB", "BGR"), "RGB"),
                mean = mean.toFloatArray(),
                std = std.toFloatArray(),
                padValue = pre.int("pad_value", 114),
                center = pre.bool("letterbox_center", true),
                scaleUp = pre.bool("scale_up", true)
            )
        }

        private fun postprocessing(post: Keys) = Postprocessing(
            confidenceThreshold = post.number("confidence_threshold", 0.25).toFloat(),
            iouThreshold = post.number("iou_threshold", 0.45).toFloat(),
            maxDetections = post.int("max_detections", 300),
            agnosticNms = post.bool("agnostic_nms", false)
        )

        private fun skeleton(root: Keys): List<Pair<Int, Int>> = root.list("skeleton").map { pair ->
            val ends = (pair as? List<*>)?.map { (it as? Double)?.toInt() }
            if (ends == null || ends.size != 2 || ends.any { it == null }) throw root.fail("skeleton", "holds $pair, expected [a, b] keypoint pairs")
            Pair(ends[0]!!, ends[1]!!)
        }

        private fun outputLayout(layout: Keys, task: String): OutputLayout {
            val pred = layout.child("predictions")
            val box = pred.span("box", listOf(0, 4))
            val scores = pred.span("class_scores", null)
            val nmsApplied = pred.bool("nms_applied", false)
            val units = pred.choice("box_units", listOf("input_pixels", "normalized"), "input_pixels")
            val masks = if (task == "segment") pred.span("mask_coefficients", null) else null
            val protos = if (task == "segment") layout.child("prototypes") else null
            val points = if (task == "pose") pred.span("keypoints", null) else null
            val format = if (task == "pose") pred.choice("keypoint_format", listOf("x, y, visibility", "x, y"), "x, y, visibility") else ""
            return OutputLayout(
                predictions = pred.string("output"),
                anchorsLast = pred.choice("shape_order", listOf("batch, channels, anchors", "batch, anchors, channels", "batch, detections, values"),
                    "batch, channels, anchors") == "batch, channels, anchors",
                nmsApplied = nmsApplied,
                boxStart = box[0],
                boxCentre = pred.choice("box_format", listOf("cxcywh", "xyxy"), "cxcywh") == "cxcywh",
                boxNormalized = units == "normalized",
                classStart = scores[0],
                classEnd = scores[1],
                scoresActivated = pred.bool("scores_activated", true),
                classIndex = if (nmsApplied) pred.int("class_index", null) else null,
                maskStart = masks?.get(0),
                maskEnd = masks?.get(1),
                prototypes = protos?.string("output"),
                prototypesChannelsFirst = protos?.choice("shape_order", listOf("batch, coefficients, height, width", "batch, height, width, coefficients"),
                    "batch, coefficients, height, width") != "batch, height, width, coefficients",
                keypointStart = points?.get(0),
                keypointEnd = points?.get(1),
                keypointDims = if (format == "x, y") 2 else 3,
                keypointsNormalized = task == "pose" && pred.choice("keypoint_units", listOf("input_pixels", "normalized"), units) == "normalized"
            )
        }

        private fun checkConsistent(root: Keys, meta: ModelMetadata) {
            val layout = meta.layout
            if (!layout.nmsApplied && layout.classEnd - layout.classStart != meta.classNames.size) {
                throw root.fail("class_names", "lists ${meta.classNames.size} classes but output_layout.predictions.class_scores spans ${layout.classEnd - layout.classStart}")
            }
            for (name in listOf(layout.predictions, layout.prototypes)) {
                if (name != null && meta.outputs.none { it.name == name }) {
                    throw root.fail("output_layout", "names output '$name', not one of outputs ${meta.outputs.map { it.name }}")
                }
            }
            val start = layout.keypointStart
            val end = layout.keypointEnd
            if (start != null && end != null && meta.keypointNames.isNotEmpty() && (end - start) / layout.keypointDims != meta.keypointNames.size) {
                throw root.fail("keypoint_names", "lists ${meta.keypointNames.size} names for ${(end - start) / layout.keypointDims} keypoints")
            }
        }
    }
}

/** Typed access to one JSON object; every failure names the file and the full key. */
internal class Keys(private val data: Map<*, *>, val source: String, private val prefix: String) {
    fun fail(key: String, problem: String) = MetadataException("$source: $prefix$key $problem; re-export the model with exportkit")

    private fun raw(key: String, default: Any?, hasDefault: Boolean): Any? {
        if (!data.containsKey(key)) {
            if (!hasDefault) throw fail(key, "is missing")
            return default
        }
        return data[key]
    }

    fun has(key: String): Boolean = data.containsKey(key)

    fun child(key: String): Keys = Keys(raw(key, null, false) as? Map<*, *> ?: throw fail(key, "is not an object"), source, "$prefix$key.")

    fun string(key: String): String = raw(key, null, false) as? String ?: throw fail(key, "is ${data[key]}, expected a string")

    fun choice(key: String, choices: List<String>, default: String? = null): String {
        val value = raw(key, default, default != null) as? String ?: throw fail(key, "is ${data[key]}, expected a string")
        if (value !in choices) throw fail(key, "is '$value', this runtime supports ${choices.joinToString(", ")}")
        return value
    }

    fun list(key: String): List<Any?> = raw(key, null, false) as? List<Any?> ?: throw fail(key, "is ${data[key]}, expected a list")

    fun number(key: String, default: Double?): Double =
        raw(key, default, default != null) as? Double ?: throw fail(key, "is ${data[key]}, expected a number")

    fun int(key: String, default: Int?): Int {
        val value = number(key, default?.toDouble())
        if (value != Math.floor(value)) throw fail(key, "is $value, expected an integer")
        return value.toInt()
    }

    fun bool(key: String, default: Boolean): Boolean = raw(key, default, true) as? Boolean ?: throw fail(key, "is ${data[key]}, expected true or false")

    fun ints(key: String): List<Int> = list(key).map {
        val v = it as? Double ?: throw fail(key, "is ${data[key]}, expected integers")
        if (v != Math.floor(v)) throw fail(key, "is ${data[key]}, expected integers")
        v.toInt()
    }

    fun floats(key: String, default: List<Float>): List<Float> {
        if (!data.containsKey(key)) return default
        return list(key).map { (it as? Double ?: throw fail(key, "is ${data[key]}, expected numbers")).toFloat() }
    }

    fun span(key: String, default: List<Int>?): List<Int> {
        val value = if (!data.containsKey(key) && default != null) default else ints(key)
        if (value.size != 2 || value[0] < 0 || value[0] >= value[1]) throw fail(key, "is $value, expected [start, end) channel indices")
        return value
    }
}

package com.platform.tflite

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import java.io.File

/**
 * The shared conformance vectors (runtimes/conformance/vectors, written by the Python runtime): letterbox
 * geometry, NMS, and one decode case per output layout, each within the file's own tolerances.
 * The folder comes from -Dconformance.vectors (the Makefile sets it).
 */
class ConformanceTest {
    private val dir = File(System.getProperty("conformance.vectors") ?: "../conformance/vectors")

    private fun load(name: String): Map<*, *> = Json.parse(File(dir, name).readText()) as Map<*, *>

    private fun Map<*, *>.map(key: String) = this[key] as Map<*, *>
    private fun Map<*, *>.list(key: String) = this[key] as List<*>
    private fun Map<*, *>.num(key: String) = (this[key] as Double)
    private fun Map<*, *>.int(key: String) = (this[key] as Double).toInt()
    private fun Map<*, *>.bool(key: String) = this[key] as Boolean
    private fun List<*>.num(i: Int) = (this[i] as Double)

    @Test fun letterboxVectors() {
        val vector = load("letterbox.json")
        val tol = vector.map("tolerance")
        val cases = vector.list("cases")
        assertTrue(cases.isNotEmpty())
        for (item in cases) {
            val c = item as Map<*, *>
            val want = c.map("expected")
            val name = c["name"]
            val plan = LetterboxPlan.plan(c.int("source_width"), c.int("source_height"), c.int("target_width"), c.int("target_height"),
                c.bool("scale_up"), c.bool("center"))
            assertEquals("$name resized width", want.int("resized_width"), plan.newWidth)
            assertEquals("$name resized height", want.int("resized_height"), plan.newHeight)
            assertEquals("$name top", want.int("pad_top"), plan.top)
            assertEquals("$name bottom", want.int("pad_bottom"), plan.bottom)
            assertEquals("$name left", want.int("pad_left"), plan.left)
            assertEquals("$name right", want.int("pad_right"), plan.right)
            assertEquals("$name gain x", want.num("gain_x"), plan.gainX.toDouble(), tol.num("gain_atol"))
            assertEquals("$name gain y", want.num("gain_y"), plan.gainY.toDouble(), tol.num("gain_atol"))
            val input = want.list("input_point")
            val source = want.list("source_point")
            assertEquals("$name x back", source.num(0), plan.toImageX(input.num(0).toFloat()).toDouble(), tol.num("point_atol"))
            assertEquals("$name y back", source.num(1), plan.toImageY(input.num(1).toFloat()).toDouble(), tol.num("point_atol"))
        }
    }

    @Test fun nmsVectors() {
        val cases = load("nms.json").list("cases")
        assertTrue(cases.isNotEmpty())
        for (item in cases) {
            val c = item as Map<*, *>
            val boxes = c.list("boxes").flatMap { b -> (b as List<*>).map { (it as Double).toFloat() } }.toFloatArray()
            val scores = c.list("scores").map { (it as Double).toFloat() }.toFloatArray()
            val classes = c.list("class_ids").map { (it as Double).toInt() }.toIntArray()
            val keep = Nms.run(boxes, scores, classes, c.num("iou_threshold").toFloat(), c.int("max_detections"), c.bool("agnostic"))
            assertEquals("nms case ${c["name"]}", c.list("expected_keep").map { (it as Double).toInt() }, keep.toList())
        }
    }

    private fun tensor(outputs: Map<*, *>, name: String): OutputTensor {
        val t = outputs.map(name)
        return OutputTensor(name, t.list("shape").map { (it as Double).toInt() }.toIntArray(), t.list("values").map { (it as Double).toFloat() }.toFloatArray())
    }

    private fun rleMask(mask: Map<*, *>): BooleanArray {
        val size = mask.list("size")
        val pixels = BooleanArray(size.num(0).toInt() * size.num(1).toInt())
        var at = 0
        var on = false
        for (run in mask.list("counts")) {
            repeat((run as Double).toInt()) { pixels[at++] = on }
            on = !on
        }
        return pixels
    }

    private fun checkDecode(file: String) {
        val vector = load(file)
        val tol = vector.map("tolerance")
        val meta = ModelMetadata.parse(toJson(vector["metadata"]), file)
        val outputs = vector.map("outputs")
        val width = vector.map("image").int("width")
        val height = vector.map("image").int("height")
        val pre = meta.preprocessing
        val plan = LetterboxPlan.plan(width, height, pre.width, pre.height, pre.scaleUp, pre.center)
        val protos = meta.layout.prototypes?.let { tensor(outputs, it) }
        val results = Decoder.decode(tensor(outputs, meta.layout.predictions), meta, plan, width, height, Thresholds.resolve(meta.postprocessing), protos)
        val expected = vector.list("expected")
        assertTrue("$file expects detections", expected.isNotEmpty())
        assertEquals("$file detections", expected.size, results.detections.size)
        for ((i, item) in expected.withIndex()) {
            val want = item as Map<*, *>
            val got = results.detections[i]
            assertEquals("$file[$i] class", want.int("class_id"), got.classId)
            assertEquals("$file[$i] class name", want["class_name"], got.className)
            assertEquals("$file[$i] score", want.num("score"), got.confidence.toDouble(), tol.num("score_atol"))
            val box = want.list("box")
            val b = listOf(got.bbox.x1, got.bbox.y1, got.bbox.x2, got.bbox.y2)
            for (k in 0 until 4) assertEquals("$file[$i] box[$k]", box.num(k), b[k].toDouble(), tol.num("box_atol"))
            if (want.containsKey("keypoints")) {
                val points = want.list("keypoints")
                assertEquals("$file[$i] keypoints", points.size, got.keypoints.size)
                for ((k, p) in points.withIndex()) {
                    val xyv = p as List<*>
                    assertEquals("$file[$i] keypoint $k x", xyv.num(0), got.keypoints[k].x.toDouble(), tol.num("keypoint_atol"))
                    assertEquals("$file[$i] keypoint $k y", xyv.num(1), got.keypoints[k].y.toDouble(), tol.num("keypoint_atol"))
                    assertEquals("$file[$i] keypoint $k visibility", xyv.num(2), got.keypoints[k].visibility.toDouble(), tol.num("visibility_atol"))
                }
            }
            if (want.containsKey("mask")) {
                val mask = got.mask ?: throw AssertionError("$file[$i] has no mask")
                val pixels = rleMask(want.map("mask"))
                assertEquals("$file[$i] mask area (vector)", want.map("mask").int("area"), pixels.count { it })
                assertEquals("$file[$i] mask size", pixels.size, mask.pixels.size)
                val differing = pixels.indices.count { pixels[it] != mask.pixels[it] }
                assertTrue("$file[$i] mask differs in $differing pixels", differing <= tol.int("mask_differing_pixels_max"))
            }
        }
    }

    @Test fun decodeDetect() = checkDecode("decode_detect.json")

    @Test fun decodeSegment() = checkDecode("decode_segment.json")

    @Test fun decodePose() = checkDecode("decode_pose.json")

    @Test fun decodeNmsApplied() = checkDecode("decode_nms_applied.json")

    @Test fun decodeNhwc() = checkDecode("decode_nhwc.json")

    /** A parsed JSON value back to text, so ModelMetadata.parse reads the vector's metadata as it reads a file. */
    private fun toJson(value: Any?): String = when (value) {
        null -> "null"
        is String -> "\"" + value.replace("\\", "\\\\").replace("\"", "\\\"") + "\""
        is Double -> if (value == Math.floor(value) && Math.abs(value) < 1e15) value.toLong().toString() else value.toString()
        is Boolean -> value.toString()
        is List<*> -> value.joinToString(",", "[", "]") { toJson(it) }
        is Map<*, *> -> value.entries.joinToString(",", "{", "}") { toJson(it.key as String) + ":" + toJson(it.value) }
        else -> throw IllegalArgumentException("not a JSON value: $value")
    }
}

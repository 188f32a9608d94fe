package com.platform.tflite

import org.junit.AfterClass
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.BeforeClass
import org.junit.Test
import java.io.File

/**
 * The JVM backend on real .tflite exports (detect, segment, pose) matches the Python runtime on the same
 * artifacts and images.
 *
 * System properties (set by `make test`): parity.exports (export folders, ':'-separated, each holding
 * model.tflite, metadata.json and python_detections.json from scripts/python_detections.py), parity.images
 * (folder of .jpg), litert.library.
 * Criteria: same count, same class, IoU > 0.99, |confidence difference| < 1e-2, in confidence order; masks
 * IoU > 0.95 at the image's resolution; keypoints within 1 pixel, visibility within 1e-2.
 */
class ParityTest {
    companion object {
        const val MIN_IOU = 0.99f
        const val MAX_CONFIDENCE_DIFF = 1e-2f
        const val MIN_MASK_IOU = 0.95f
        const val MAX_KEYPOINT_PX = 1f

        private class Export(val folder: File, val model: YOLOInference, val expected: Map<*, *>)

        private lateinit var exports: List<Export>
        private lateinit var images: List<File>

        private fun property(name: String): String =
            System.getProperty(name) ?: throw IllegalStateException("system property $name is not set; run `make -C runtimes/kotlin test`")

        @BeforeClass @JvmStatic fun load() {
            exports = property("parity.exports").split(":").map { path ->
                val folder = File(path)
                Export(folder, YOLOInference(File(folder, "model.tflite").path, File(folder, "metadata.json").path),
                    Json.parse(File(folder, "python_detections.json").readText()) as Map<*, *>)
            }
            images = (File(property("parity.images")).listFiles() ?: emptyArray()).filter { it.name.endsWith(".jpg") }.sortedBy { it.name }
        }

        @AfterClass @JvmStatic fun close() = exports.forEach { it.model.close() }

        private fun floats(value: Any?): List<Float> = (value as List<*>).map { (it as Double).toFloat() }

        /** A mask from the reference's run lengths (alternating, background first). */
        fun decodeRuns(entry: Map<*, *>): Mask {
            val width = (entry["width"] as Double).toInt()
            val height = (entry["height"] as Double).toInt()
            val pixels = BooleanArray(width * height)
            var at = 0
            for ((i, run) in (entry["runs"] as List<*>).withIndex()) {
                val length = (run as Double).toInt()
                if (i % 2 == 1) for (p in at until at + length) pixels[p] = true
                at += length
            }
            require(at == width * height) { "runs cover $at pixels of ${width * height}" }
            return Mask(width, height, pixels)
        }
    }

    @Test fun threeTasksAndEverySampleImageHaveAReference() {
        assertEquals(listOf("detect", "pose", "segment"), exports.map { it.model.metadata.task }.sorted())
        assertTrue("no sample images found", images.isNotEmpty())
        for (export in exports) for (image in images) {
            assertTrue("no Python reference for ${image.name} in ${export.folder}", export.expected.containsKey(image.name))
        }
    }

    @Test fun resultsMatchThePythonRuntime() {
        val problems = ArrayList<String>()
        var masks = 0
        var keypoints = 0
        val detected = HashMap<String, Int>()  // detections compared per task: 0 would make this test vacuous
        for (export in exports) for (image in images) {
            val where = "${export.model.metadata.task} ${image.name}"
            val found = export.model.predict(image.path, confThreshold = 0.25f, iouThreshold = 0.45f).detections
            val wanted = export.expected[image.name] as List<*>
            if (found.size != wanted.size) {
                problems.add("$where: ${found.size} detections, Python runtime ${wanted.size}: $found vs $wanted")
                continue
            }
            detected[export.model.metadata.task] = (detected[export.model.metadata.task] ?: 0) + found.size
            for ((i, det) in found.withIndex()) {
                val want = wanted[i] as Map<*, *>
                compareBox(det, want, "$where[$i]", problems)
                want["mask"]?.let {
                    masks++
                    val iou = det.mask?.iou(decodeRuns(it as Map<*, *>)) ?: 0f
                    if (!(iou > MIN_MASK_IOU)) problems.add("$where[$i]: mask IoU $iou with the Python mask <= $MIN_MASK_IOU (${det.mask})")
                }
                want["keypoints"]?.let {
                    val points = (it as List<*>).map { p -> floats(p) }
                    keypoints += points.size
                    if (det.keypoints.size != points.size) problems.add("$where[$i]: ${det.keypoints.size} keypoints, Python ${points.size}")
                    for ((k, p) in det.keypoints.zip(points)) {
                        val distance = Math.hypot((k.x - p[0]).toDouble(), (k.y - p[1]).toDouble())
                        if (distance > MAX_KEYPOINT_PX || Math.abs(k.visibility - p[2]) > 1e-2f) {
                            problems.add("$where[$i]: keypoint ${k.name} ($k) vs Python $p")
                        }
                    }
                }
            }
        }
        assertEquals("parity problems:\n" + problems.joinToString("\n"), 0, problems.size)
        assertTrue("no detection was compared for detect: $detected", (detected["detect"] ?: 0) > 0)
        assertTrue("no mask was compared", masks > 0)
        assertTrue("no keypoint was compared", keypoints > 0)
    }

    private fun compareBox(det: Detection, want: Map<*, *>, where: String, problems: MutableList<String>) {
        val box = floats(want["bbox"])
        val iou = det.bbox.iou(BoundingBox(box[0], box[1], box[2], box[3]))
        val classId = (want["class_id"] as Double).toInt()
        val confidence = (want["confidence"] as Double).toFloat()
        if (det.classId != classId) problems.add("$where: class ${det.classId}, Python $classId")
        if (!(iou > MIN_IOU)) problems.add("$where: IoU $iou with the Python box <= $MIN_IOU")
        if (Math.abs(det.confidence - confidence) >= MAX_CONFIDENCE_DIFF) problems.add("$where: confidence ${det.confidence}, Python $confidence")
    }

    @Test fun namesAndSkeletonComeFromMetadata() {
        for (export in exports) {
            val meta = export.model.metadata
            for (image in images) {
                val results = export.model.predict(image.path)
                assertEquals(meta.skeleton, results.skeleton)
                for (d in results.detections) {
                    assertEquals(meta.classNames[d.classId], d.className)
                    assertEquals(meta.keypointNames, d.keypoints.map { it.name })
                    assertEquals(meta.task == "segment", d.mask != null)
                    d.mask?.let { assertEquals(Pair(results.imageWidth, results.imageHeight), Pair(it.width, it.height)) }
                }
            }
        }
    }
}

package com.platform.tflite

import org.junit.AfterClass
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.BeforeClass
import org.junit.Test
import java.io.File

/**
 * The JVM backend on a real .tflite export matches the Python runtime on the same artifact and images.
 *
 * System properties (set by `make test`): parity.export (folder with model.tflite + metadata.json),
 * parity.expected (JSON from scripts/python_detections.py), parity.images (folder of .jpg), litert.library.
 * Criteria: same count, same class, IoU > 0.99, |confidence difference| < 1e-2, in confidence order.
 */
class ParityTest {
    companion object {
        const val MIN_IOU = 0.99f
        const val MAX_CONFIDENCE_DIFF = 1e-2f

        private lateinit var model: YOLOInference
        private lateinit var expected: Map<*, *>
        private lateinit var images: List<File>

        private fun property(name: String): String =
            System.getProperty(name) ?: throw IllegalStateException("system property $name is not set; run `make -C runtimes/kotlin test`")

        @BeforeClass @JvmStatic fun load() {
            val folder = File(property("parity.export"))
            model = YOLOInference(File(folder, "model.tflite").path, File(folder, "metadata.json").path)
            expected = Json.parse(File(property("parity.expected")).readText()) as Map<*, *>
            images = (File(property("parity.images")).listFiles() ?: emptyArray()).filter { it.name.endsWith(".jpg") }.sortedBy { it.name }
        }

        @AfterClass @JvmStatic fun close() = model.close()
    }

    @Test fun everySampleImageHasAReference() {
        assertTrue("no sample images found", images.isNotEmpty())
        for (image in images) assertTrue("no Python reference for ${image.name}", expected.containsKey(image.name))
    }

    @Test fun detectionsMatchThePythonRuntime() {
        val problems = ArrayList<String>()
        for (image in images) {
            val found = model.predict(image.path, confThreshold = 0.25f, iouThreshold = 0.45f).detections
            val wanted = expected[image.name] as List<*>
            if (found.size != wanted.size) {
                problems.add("${image.name}: ${found.size} detections, Python runtime ${wanted.size}: $found vs $wanted")
                continue
            }
            for ((i, pair) in found.zip(wanted).withIndex()) {
                val want = pair.second as Map<*, *>
                val box = (want["bbox"] as List<*>).map { (it as Double).toFloat() }
                val iou = pair.first.bbox.iou(BoundingBox(box[0], box[1], box[2], box[3]))
                val classId = (want["class_id"] as Double).toInt()
                val confidence = (want["confidence"] as Double).toFloat()
                if (pair.first.classId != classId) problems.add("${image.name}[$i]: class ${pair.first.classId}, Python $classId")
                if (!(iou > MIN_IOU)) problems.add("${image.name}[$i]: IoU $iou with the Python box <= $MIN_IOU")
                if (Math.abs(pair.first.confidence - confidence) >= MAX_CONFIDENCE_DIFF) {
                    problems.add("${image.name}[$i]: confidence ${pair.first.confidence}, Python $confidence")
                }
            }
        }
        assertEquals("parity problems:\n" + problems.joinToString("\n"), 0, problems.size)
    }

    @Test fun classNamesComeFromMetadata() {
        val names = model.metadata.classNames
        for (image in images) for (d in model.predict(image.path).detections) assertEquals(names[d.classId], d.className)
    }
}

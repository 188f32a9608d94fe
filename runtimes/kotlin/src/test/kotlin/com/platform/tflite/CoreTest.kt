package com.platform.tflite

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** The pure-Kotlin core: letterbox arithmetic, resize, NMS, decoding, metadata parsing and its errors. */
class CoreTest {
    private val metadataText = """
        {"task": "detect", "export_format": "tflite", "class_names": ["a", "b"], "input_shape": [192, 192, 3],
         "inputs": [{"name": "in", "shape": [1, 3, 192, 192]}], "outputs": [{"name": "out", "shape": [1, 6, 3]}],
         "preprocessing": {"layout": "NCHW", "pad_value": 114, "mean": [0, 0, 0], "std": [255, 255, 255]},
         "postprocessing": {"confidence_threshold": 0.25, "iou_threshold": 0.45, "max_detections": 300},
         "output_layout": {"predictions": {"output": "out", "shape_order": "batch, channels, anchors", "box": [0, 4],
           "box_format": "cxcywh", "box_units": "normalized", "class_scores": [4, 6]}}}
    """

    private fun expectMetadataError(text: String, vararg fragments: String) {
        try {
            ModelMetadata.parse(text)
            fail("expected a MetadataException")
        } catch (e: MetadataException) {
            for (f in fragments) assertTrue("'${e.message}' should mention '$f'", e.message!!.contains(f))
        }
    }

    @Test fun letterboxLandscapeCentresVertically() {
        assertEquals(LetterboxPlan(192, 144, 24, 24, 0, 0, 0.6f, 0.6f), LetterboxPlan.plan(320, 240, 192, 192))
    }

    @Test fun letterboxPortraitCentresHorizontally() {
        assertEquals(LetterboxPlan(128, 192, 0, 0, 32, 32, 0.5f, 0.5f), LetterboxPlan.plan(256, 384, 192, 192))
    }

    @Test fun letterboxSplitsOddPaddingLikeUltralytics() {
        // 192x101: dh = 91 / 2 = 45.5 -> top round(45.4) = 45, bottom round(45.6) = 46.
        val plan = LetterboxPlan.plan(192, 101, 192, 192)
        assertEquals(45, plan.top)
        assertEquals(46, plan.bottom)
        assertEquals(192, plan.top + plan.newHeight + plan.bottom)
    }

    @Test fun letterboxWithoutScaleUpKeepsSmallImages() {
        val plan = LetterboxPlan.plan(100, 50, 192, 192, scaleUp = false)
        assertEquals(100, plan.newWidth)
        assertEquals(50, plan.newHeight)
        assertEquals(46, plan.left)
        assertEquals(71, plan.top)
    }

    @Test fun boxesMapBackToImagePixels() {
        val plan = LetterboxPlan.plan(320, 240, 192, 192)
        assertEquals(100f, plan.toImageX(60f), 1e-4f)
        assertEquals(100f, plan.toImageY(84f), 1e-4f)
    }

    @Test fun letterboxTensorPadsWith114AndNormalises() {
        val meta = ModelMetadata.parse(metadataText)
        val white = ArgbImage(4, 2, IntArray(8) { 0xFFFFFFFF.toInt() })
        val (tensor, plan) = Letterbox.tensor(white, meta.preprocessing)
        assertEquals(3 * 192 * 192, tensor.size)
        assertEquals(114f / 255f, tensor[0], 1e-6f)                       // top-left: padding
        assertEquals(1f, tensor[(plan.top + 1) * 192 + 5], 1e-6f)         // inside the image: white
    }

    @Test fun resizeOfUniformImageStaysUniform() {
        val image = ArgbImage(7, 5, IntArray(35) { 0x00804020 })
        for (p in Letterbox.resizeLinear(image, 12, 9)) assertEquals(0x804020, p)
    }

    @Test fun resizeTwiceInterpolatesBetweenPixels() {
        // Two pixels 0 and 200 -> four: OpenCV gives 0, 50, 150, 200.
        val image = ArgbImage(2, 1, intArrayOf(0, 200))
        val out = Letterbox.resizeLinear(image, 4, 1).map { it and 0xFF }
        assertEquals(listOf(0, 50, 150, 200), out)
    }

    @Test fun nmsDropsOverlapsOfTheSameClassOnly() {
        val boxes = floatArrayOf(0f, 0f, 10f, 10f, 1f, 1f, 10f, 10f, 0f, 0f, 10f, 10f, 50f, 50f, 60f, 60f)
        val scores = floatArrayOf(0.9f, 0.8f, 0.7f, 0.6f)
        val keep = Nms.run(boxes, scores, intArrayOf(0, 0, 1, 0), 0.45f, 300, agnostic = false)
        assertArrayEquals(intArrayOf(0, 2, 3), keep)
        val agnostic = Nms.run(boxes, scores, intArrayOf(0, 0, 1, 0), 0.45f, 300, agnostic = true)
        assertArrayEquals(intArrayOf(0, 3), agnostic)
    }

    @Test fun nmsKeepsAtMostMaxDetectionsHighestFirst() {
        val boxes = FloatArray(40) { (it / 4) * 20f + if (it % 4 >= 2) 10f else 0f }
        val scores = FloatArray(10) { it / 10f }
        assertArrayEquals(intArrayOf(9, 8, 7), Nms.run(boxes, scores, IntArray(10), 0.45f, 3, false))
    }

    @Test fun decodeScalesNormalisedBoxesAndFiltersByConfidence() {
        val meta = ModelMetadata.parse(metadataText)
        // 3 anchors x 6 channels (cx, cy, w, h, score a, score b), channels first.
        val values = floatArrayOf(
            0.5f, 0.2f, 0.5f,
            0.5f, 0.2f, 0.5f,
            0.25f, 0.1f, 0.24f,
            0.25f, 0.1f, 0.24f,
            0.9f, 0.1f, 0.8f,
            0.05f, 0.6f, 0.1f
        )
        val plan = LetterboxPlan.plan(192, 192, 192, 192)
        val results = Decoder.decode(OutputTensor("out", intArrayOf(1, 6, 3), values), meta, plan, 192, 192,
            Thresholds.resolve(meta.postprocessing))
        assertEquals(2, results.detections.size)  // anchor 2 overlaps anchor 0 (same class) and goes
        val first = results.detections[0]
        assertEquals("a", first.className)
        assertEquals(0.9f, first.confidence, 1e-6f)
        assertEquals(BoundingBox(72f, 72f, 120f, 120f), first.bbox)
        assertEquals("b", results.detections[1].className)
    }

    @Test fun metadataParsesTheFieldsTheRuntimeUses() {
        val meta = ModelMetadata.parse(metadataText)
        assertEquals(listOf("a", "b"), meta.classNames)
        assertEquals(192, meta.preprocessing.width)
        assertEquals("NCHW", meta.preprocessing.layout)
        assertTrue(meta.layout.boxNormalized)
        assertEquals(4, meta.layout.classStart)
        assertEquals(0.45f, meta.postprocessing.iouThreshold, 0f)
    }

    @Test fun metadataMissingKeyIsNamed() {
        expectMetadataError(metadataText.replace("\"task\": \"detect\",", ""), "task", "is missing")
    }

    @Test fun metadataUnknownTaskIsNamed() {
        expectMetadataError(metadataText.replace("\"detect\"", "\"classify\""), "task", "classify")
    }

    @Test fun metadataClassCountMustMatchScores() {
        expectMetadataError(metadataText.replace("[\"a\", \"b\"]", "[\"a\"]"), "class_names", "1 classes", "spans 2")
    }

    @Test fun metadataOutputMustExist() {
        expectMetadataError(metadataText.replace("\"output\": \"out\"", "\"output\": \"nope\""), "output_layout", "nope")
    }

    @Test fun metadataWrongTypeIsNamed() {
        expectMetadataError(metadataText.replace("\"pad_value\": 114", "\"pad_value\": \"grey\""), "preprocessing.pad_value")
    }

    @Test fun metadataInvalidJsonSaysWhere() {
        expectMetadataError("{\"task\": ", "invalid JSON at character")
        expectMetadataError("[1, 2]", "JSON object")
    }

    @Test fun jsonReadsEscapesNumbersAndNesting() {
        val value = Json.parse("""{"s": "a\"b\u00e9", "n": -1.5e2, "l": [true, null, {}]}""") as Map<*, *>
        assertEquals("a\"b\u00e9", value["s"])
        assertEquals(-150.0, value["n"])
        assertEquals(listOf(true, null, emptyMap<String, Any>()), value["l"])
    }

    @Test(expected = IllegalArgumentException::class)
    fun thresholdsOutOfRangeAreRejected() {
        Thresholds.resolve(ModelMetadata.parse(metadataText).postprocessing, confidence = 1.5f)
    }

    // ------------------------------------------------------------ pose and segment

    private val poseText = metadataText
        .replace("\"task\": \"detect\"", "\"task\": \"pose\"")
        .replace("\"shape\": [1, 6, 3]", "\"shape\": [1, 12, 3]")
        .replace("\"class_scores\": [4, 6]", "\"class_scores\": [4, 6], \"keypoints\": [6, 12], \"keypoint_format\": \"x, y, visibility\", \"keypoint_units\": \"normalized\"")
        .replace("\"class_names\": [\"a\", \"b\"],", "\"class_names\": [\"a\", \"b\"], \"keypoint_names\": [\"head\", \"tail\"], \"skeleton\": [[1, 2]],")

    @Test fun poseKeypointsComeBackInImagePixelsWithTheirNames() {
        val meta = ModelMetadata.parse(poseText)
        assertEquals(12, meta.layout.channels)
        // one anchor that passes: box (0.5, 0.5, 0.25, 0.25); keypoints (0.25, 0.5, v 0.9) and (1.0, 0.0, v 0.2)
        val anchor = floatArrayOf(0.5f, 0.5f, 0.25f, 0.25f, 0.9f, 0.1f, 0.25f, 0.5f, 0.9f, 1.0f, 0.0f, 0.2f)
        val values = FloatArray(12 * 3)
        for (c in 0 until 12) values[c * 3] = anchor[c]
        // image 384 x 192 (w x h) into 192 x 192: gain 0.5, 48 px bands top and bottom
        val plan = LetterboxPlan.plan(384, 192, 192, 192)
        val results = Decoder.decode(OutputTensor("out", intArrayOf(1, 12, 3), values), meta, plan, 384, 192, Thresholds.resolve(meta.postprocessing))
        val points = results.detections.single().keypoints
        assertEquals(listOf("head", "tail"), points.map { it.name })
        assertEquals(Keypoint("head", 96f, 96f, 0.9f), points[0])  // input (48, 96): x 48 / 0.5, y (96 - 48) / 0.5
        assertEquals(Keypoint("tail", 384f, 0f, 0.2f), points[1])  // input (192, 0): x 384, y -96 clipped to 0
        assertEquals(listOf(Pair(1, 2)), results.skeleton)
    }

    @Test fun metadataKeypointNamesMustMatchTheKeypointCount() {
        expectMetadataError(poseText.replace("[\"head\", \"tail\"]", "[\"head\"]"), "keypoint_names", "1 names for 2 keypoints")
    }

    private val segmentText = metadataText
        .replace("\"task\": \"detect\"", "\"task\": \"segment\"")
        .replace("\"outputs\": [{\"name\": \"out\", \"shape\": [1, 6, 3]}]", "\"outputs\": [{\"name\": \"out\", \"shape\": [1, 7, 3]}, {\"name\": \"protos\", \"shape\": [1, 1, 48, 48]}]")
        .replace("\"class_scores\": [4, 6]}", "\"class_scores\": [4, 6], \"mask_coefficients\": [6, 7]}, \"prototypes\": {\"output\": \"protos\", \"shape_order\": \"batch, coefficients, height, width\"}")

    private fun segmentResults(coefficient: Float): Results {
        val meta = ModelMetadata.parse(segmentText)
        val anchor = floatArrayOf(0.5f, 0.5f, 0.25f, 0.25f, 0.9f, 0.1f, coefficient)
        val values = FloatArray(7 * 3)
        for (c in 0 until 7) values[c * 3] = anchor[c]
        val protos = OutputTensor("protos", intArrayOf(1, 1, 48, 48), FloatArray(48 * 48) { 1f })
        return Decoder.decode(OutputTensor("out", intArrayOf(1, 7, 3), values), meta, LetterboxPlan.plan(192, 192, 192, 192), 192, 192,
            Thresholds.resolve(meta.postprocessing), protos)
    }

    @Test fun segmentMaskIsTheBoxWherePrototypesArePositive() {
        val detection = segmentResults(1f).detections.single()
        val mask = detection.mask!!
        assertEquals(Pair(192, 192), Pair(mask.width, mask.height))
        assertEquals(BoundingBox(72f, 72f, 120f, 120f), detection.bbox)
        assertEquals(48 * 48, mask.area)  // pixels 72..119 in both axes
        assertTrue(mask[72, 72] && mask[119, 119] && !mask[71, 72] && !mask[120, 100])
    }

    @Test fun segmentDetectionWithAnEmptyMaskIsDropped() {
        assertEquals(0, segmentResults(-1f).detections.size)
    }

    @Test fun metadataPrototypesOutputMustExist() {
        expectMetadataError(segmentText.replace("\"output\": \"protos\"", "\"output\": \"nope\""), "output_layout", "nope")
    }

    @Test fun maskUpsampleFactorMatchesThePythonRuntime() {
        // expected values from runtimes.python.masks.upsample_factor on the same shapes
        assertEquals(1, Masks.upsampleFactor(48, 48, 192, 240, 320))
        assertEquals(4, Masks.upsampleFactor(48, 48, 192, 101, 200))
        assertEquals(4, Masks.upsampleFactor(48, 48, 192, 50, 61))
        assertEquals(2, Masks.upsampleFactor(48, 48, 192, 50, 83))
    }

    @Test fun floatResizeIsOpenCvsHalfPixelBilinear() {
        // 1 x 2 -> 1 x 4: centres at -0.25, 0.25, 0.75, 1.25 in source pixels, clamped at the edges
        assertArrayEquals(floatArrayOf(0f, 0.25f, 0.75f, 1f), Masks.resize(floatArrayOf(0f, 1f), 2, 1, 4, 1), 1e-6f)
        val same = floatArrayOf(1f, 2f, 3f, 4f)
        assertArrayEquals(same, Masks.resize(same, 2, 2, 2, 2), 0f)
        assertArrayEquals(FloatArray(12) { 5f }, Masks.resize(FloatArray(4) { 5f }, 2, 2, 4, 3), 1e-6f)
    }
}

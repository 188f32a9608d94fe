package com.platform.tflite

import java.awt.image.BufferedImage
import java.io.File
import javax.imageio.ImageIO

/**
 * JVM YOLOInference: the same core as the Android class, over LiteRT's C API (see [LiteRtRunner]).
 *
 *     YOLOInference("model.tflite", "metadata.json").use { model ->
 *         model.predict(ImageIO.read(File("image.jpg")), confThreshold = 0.25f).detections
 *     }
 */
class YOLOInference(modelPath: String, metadataPath: String = File(File(modelPath).absoluteFile.parentFile, "metadata.json").path,
                    libraryPath: String = LiteRtRunner.defaultLibrary()) : java.io.Closeable {
    val metadata: ModelMetadata = readMetadata(metadataPath)
    private val pipeline = YoloPipeline(metadata, LiteRtRunner(modelPath, libraryPath))

    fun predict(image: BufferedImage, confThreshold: Float? = null, iouThreshold: Float? = null, maxDetections: Int? = null): Results =
        pipeline.predict(argb(image), confThreshold, iouThreshold, maxDetections)

    fun predict(imagePath: String, confThreshold: Float? = null, iouThreshold: Float? = null, maxDetections: Int? = null): Results {
        val image = ImageIO.read(File(imagePath)) ?: throw IllegalArgumentException("$imagePath is not an image ImageIO can read")
        return predict(image, confThreshold, iouThreshold, maxDetections)
    }

    override fun close() = pipeline.close()

    companion object {
        fun readMetadata(path: String): ModelMetadata {
            val file = File(path)
            if (!file.isFile) throw MetadataException("metadata file $path does not exist; pass its path or put metadata.json beside the model")
            return ModelMetadata.parse(file.readText(), path)
        }

        fun argb(image: BufferedImage): ArgbImage =
            ArgbImage(image.width, image.height, image.getRGB(0, 0, image.width, image.height, null, 0, image.width))
    }
}

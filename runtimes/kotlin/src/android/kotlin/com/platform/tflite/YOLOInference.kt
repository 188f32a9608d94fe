package com.platform.tflite

import android.content.Context
import android.graphics.Bitmap
import org.tensorflow.lite.Interpreter
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/**
 * Android YOLOInference over org.tensorflow.lite.Interpreter (or LiteRT's drop-in
 * `com.google.ai.edge.litert:litert`), sharing the core (metadata, letterbox, decoding, NMS) with the JVM build.
 * Compiled only in an Android build (see README); the JVM build excludes src/android.
 *
 *     val model = YOLOInference(context, "model.tflite", "metadata.json")   // both in the app's assets
 *     val results = model.predict(bitmap, confThreshold = 0.25f)
 */
class YOLOInference(context: Context, modelAsset: String, metadataAsset: String, threads: Int = 4) : java.io.Closeable {
    val metadata: ModelMetadata = context.assets.open(metadataAsset).bufferedReader().use { ModelMetadata.parse(it.readText(), metadataAsset) }
    private val pipeline = YoloPipeline(metadata, InterpreterRunner(loadAsset(context, modelAsset), threads))

    fun predict(bitmap: Bitmap, confThreshold: Float? = null, iouThreshold: Float? = null, maxDetections: Int? = null): Results {
        val pixels = IntArray(bitmap.width * bitmap.height)
        bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        return pipeline.predict(ArgbImage(bitmap.width, bitmap.height, pixels), confThreshold, iouThreshold, maxDetections)
    }

    override fun close() = pipeline.close()

    private fun loadAsset(context: Context, name: String): MappedByteBuffer =
        context.assets.openFd(name).use { fd ->
            FileInputStream(fd.fileDescriptor).channel.use { it.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength) }
        }
}

/** float32 in, float32 out, through the TFLite Interpreter. */
class InterpreterRunner(model: ByteBuffer, threads: Int) : TensorRunner {
    private val interpreter = Interpreter(model, Interpreter.Options().setNumThreads(threads))

    override fun run(input: FloatArray): List<OutputTensor> {
        val inputBuffer = ByteBuffer.allocateDirect(input.size * 4).order(ByteOrder.nativeOrder())
        inputBuffer.asFloatBuffer().put(input)
        val outputs = HashMap<Int, Any>()
        val buffers = (0 until interpreter.outputTensorCount).map { i ->
            val count = interpreter.getOutputTensor(i).numElements()
            ByteBuffer.allocateDirect(count * 4).order(ByteOrder.nativeOrder()).also { outputs[i] = it }
        }
        interpreter.runForMultipleInputsOutputs(arrayOf<Any>(inputBuffer), outputs)
        return buffers.mapIndexed { i, buffer ->
            buffer.rewind()
            val values = FloatArray(buffer.capacity() / 4)
            buffer.asFloatBuffer().get(values)
            val tensor = interpreter.getOutputTensor(i)
            OutputTensor(tensor.name(), tensor.shape(), values)
        }
    }

    override fun close() = interpreter.close()
}

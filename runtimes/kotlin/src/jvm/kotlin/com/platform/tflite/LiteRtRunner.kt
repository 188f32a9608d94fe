package com.platform.tflite

import com.sun.jna.Library
import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.LongByReference
import com.sun.jna.ptr.PointerByReference
import java.io.File

/** LiteRT failed to load, compile or run the model. */
class LiteRtException(message: String) : Exception(message)

/**
 * The part of LiteRT's C API (litert/c/*.h, `libLiteRt.so` in the ai-edge-litert wheel) this runtime calls.
 * The wheel exports the LiteRt* "CompiledModel" API, not the older TfLite* interpreter API.
 * Checked against ai-edge-litert 2.3.0; the C API changes between releases, so pin the wheel.
 */
@Suppress("FunctionName")
interface LiteRtLibrary : Library {
    fun LiteRtCreateEnvironment(numOptions: Int, options: Pointer?, environment: PointerByReference): Int
    fun LiteRtDestroyEnvironment(environment: Pointer)
    fun LiteRtCreateOptions(options: PointerByReference): Int
    fun LiteRtSetOptionsHardwareAccelerators(options: Pointer, accelerators: Long): Int
    fun LiteRtCreateModelFromFile(filename: String, model: PointerByReference): Int
    fun LiteRtDestroyModel(model: Pointer)
    fun LiteRtCreateCompiledModel(environment: Pointer, model: Pointer, options: Pointer, compiled: PointerByReference): Int
    fun LiteRtDestroyCompiledModel(compiled: Pointer)
    fun LiteRtGetModelSignature(model: Pointer, index: Long, signature: PointerByReference): Int
    fun LiteRtGetNumSignatureInputs(signature: Pointer, count: LongByReference): Int
    fun LiteRtGetNumSignatureOutputs(signature: Pointer, count: LongByReference): Int
    fun LiteRtGetSignatureInputTensorByIndex(signature: Pointer, index: Long, tensor: PointerByReference): Int
    fun LiteRtGetSignatureOutputTensorByIndex(signature: Pointer, index: Long, tensor: PointerByReference): Int
    fun LiteRtGetTensorName(tensor: Pointer, name: PointerByReference): Int
    fun LiteRtGetRankedTensorType(tensor: Pointer, type: Pointer): Int
    fun LiteRtCreateTensorBufferFromHostMemory(type: Pointer, host: Pointer, size: Long, deallocator: Pointer?, buffer: PointerByReference): Int
    fun LiteRtDestroyTensorBuffer(buffer: Pointer)
    fun LiteRtRunCompiledModel(compiled: Pointer, signature: Long, numInputs: Long, inputs: Pointer, numOutputs: Long, outputs: Pointer): Int
}

/**
 * Runs a .tflite model on the JVM through LiteRT's C API (JNA), on the CPU.
 *
 * Tensors are host-memory buffers this class owns (64-byte aligned, as LiteRT requires); the model's
 * first signature is used. Only float32 inputs and outputs are supported (what exportkit's fp32 and fp16
 * TFLite exports have).
 */
class LiteRtRunner(modelPath: String, libraryPath: String = defaultLibrary()) : TensorRunner {
    private val lib: LiteRtLibrary = Native.load(libraryPath, LiteRtLibrary::class.java)
    private val handles = ArrayList<Pair<String, Pointer>>()
    private val compiled: Pointer
    private val inputs: List<Slot>
    private val outputs: List<Slot>
    private val inputArray: Memory
    private val outputArray: Memory

    private class Slot(val name: String, val shape: IntArray, val memory: Memory, val buffer: Pointer)

    init {
        if (!File(modelPath).isFile) throw LiteRtException("model file $modelPath does not exist")
        try {
            val env = create("environment") { lib.LiteRtCreateEnvironment(0, null, it) }
            val options = create("options") { lib.LiteRtCreateOptions(it) }
            check(lib.LiteRtSetOptionsHardwareAccelerators(options, CPU), "select the CPU accelerator")
            val model = create("model") { lib.LiteRtCreateModelFromFile(modelPath, it) }
            compiled = create("compiled model") { lib.LiteRtCreateCompiledModel(env, model, options, it) }
            val signature = create("signature") { lib.LiteRtGetModelSignature(model, 0, it) }
            inputs = slots(signature, true)
            outputs = slots(signature, false)
            inputArray = pointerArray(inputs)
            outputArray = pointerArray(outputs)
        } catch (e: Exception) {
            close()
            throw e
        }
    }

    override fun run(input: FloatArray): List<OutputTensor> {
        val slot = inputs[0]
        if (input.size.toLong() * 4 != slot.memory.size()) {
            throw LiteRtException("input tensor has ${input.size} values, model input '${slot.name}' ${slot.shape.toList()} takes ${slot.memory.size() / 4}")
        }
        slot.memory.write(0, input, 0, input.size)
        check(lib.LiteRtRunCompiledModel(compiled, 0, inputs.size.toLong(), inputArray, outputs.size.toLong(), outputArray), "run the model")
        return outputs.map { OutputTensor(it.name, it.shape, it.memory.getFloatArray(0, (it.memory.size() / 4).toInt())) }
    }

    override fun close() {
        // Buffers first, then the compiled model, model and environment (reverse order of creation).
        for ((kind, handle) in handles.reversed()) {
            when (kind) {
                "buffer" -> lib.LiteRtDestroyTensorBuffer(handle)
                "compiled model" -> lib.LiteRtDestroyCompiledModel(handle)
                "model" -> lib.LiteRtDestroyModel(handle)
                "environment" -> lib.LiteRtDestroyEnvironment(handle)
            }
        }
        handles.clear()
    }

    private fun slots(signature: Pointer, input: Boolean): List<Slot> {
        val count = LongByReference()
        check(if (input) lib.LiteRtGetNumSignatureInputs(signature, count) else lib.LiteRtGetNumSignatureOutputs(signature, count), "count tensors")
        return (0 until count.value).map { i ->
            val tensor = create("tensor") {
                if (input) lib.LiteRtGetSignatureInputTensorByIndex(signature, i, it) else lib.LiteRtGetSignatureOutputTensorByIndex(signature, i, it)
            }
            val name = create("tensor name") { lib.LiteRtGetTensorName(tensor, it) }.getString(0)
            // LiteRtRankedTensorType: element type (int32) at 0, LiteRtLayout at 4 (rank in the low 7 bits),
            // dimensions int32[8] at 8; 72 bytes in all.
            val type = Memory(RANKED_TYPE_BYTES)
            type.clear()
            check(lib.LiteRtGetRankedTensorType(tensor, type), "read the type of tensor '$name'")
            val elementType = type.getInt(0)
            val rank = type.getInt(4) and 0x7F
            val shape = IntArray(rank) { type.getInt(8 + 4L * it) }
            if (elementType != FLOAT32) throw LiteRtException("tensor '$name' has LiteRT element type $elementType; this runtime supports float32 (1) only")
            if (shape.any { it <= 0 }) throw LiteRtException("tensor '$name' has a dynamic shape ${shape.toList()}; export with a fixed input size")
            val bytes = shape.fold(4L) { acc, d -> acc * d }
            val memory = Memory(bytes + ALIGNMENT).align(ALIGNMENT.toInt()) as Memory
            memory.clear()
            val buffer = create("buffer") { lib.LiteRtCreateTensorBufferFromHostMemory(type, memory, bytes, null, it) }
            Slot(name, shape, memory, buffer)
        }
    }

    private fun pointerArray(slots: List<Slot>): Memory {
        val array = Memory(Native.POINTER_SIZE.toLong() * Math.max(1, slots.size))
        slots.forEachIndexed { i, slot -> array.setPointer(Native.POINTER_SIZE.toLong() * i, slot.buffer) }
        return array
    }

    private fun create(kind: String, call: (PointerByReference) -> Int): Pointer {
        val ref = PointerByReference()
        check(call(ref), "create the $kind")
        val value = ref.value ?: throw LiteRtException("LiteRT returned no $kind")
        if (kind in OWNED) handles.add(Pair(kind, value))
        return value
    }

    private fun check(status: Int, what: String) {
        if (status != 0) throw LiteRtException("LiteRT could not $what (LiteRtStatus $status)")
    }

    companion object {
        private const val CPU = 1L
        private const val FLOAT32 = 1
        private const val RANKED_TYPE_BYTES = 128L
        private const val ALIGNMENT = 64L
        private val OWNED = setOf("buffer", "compiled model", "model", "environment")

        /** -Dlitert.library, else $LITERT_LIBRARY, else "LiteRt" on JNA's search path (jna.library.path). */
        fun defaultLibrary(): String = System.getProperty("litert.library") ?: System.getenv("LITERT_LIBRARY") ?: "LiteRt"
    }
}

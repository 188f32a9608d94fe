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
 * The part of LiteRT's C API (the litert/c headers, `libLiteRt.so` in the ai-edge-litert wheel) this runtime calls.
 * The wheel exports the LiteRt* "CompiledModel" API, not the older TfLite* interpreter API.
 * Checked against ai-edge-litert 2.3.0; the C API changes between releases, so pin the wheel.
 */
@Suppress("FunctionName")
interface LiteRtLibrary : Library {
    fun LiteRtCreateEnvironment(numOptions: Int, options: Pointer?, environment: PointerByReference): Int
    fun LiteRtDestroyEnvironment(environment: Pointer)
    fun LiteRtCreateOptions(options: PointerByReference): Int
    fun LiteRtSetOptionsHardwareAccelerators(options: Pointer, accelerators: Long): Int
    fun LiteRtDestroyOptions(options: Pointer)
    fun LiteRtCreateModelFromFile(environment: Pointer, filename: String, model: PointerByReference): Int
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
    fun LiteRtGetCompiledModelInputBufferRequirements(compiled: Pointer, signature: Long, index: Long, requirements: PointerByReference): Int
    fun LiteRtGetCompiledModelOutputBufferRequirements(compiled: Pointer, signature: Long, index: Long, requirements: PointerByReference): Int
    fun LiteRtCreateManagedTensorBufferFromRequirements(environment: Pointer, type: Pointer, requirements: Pointer, buffer: PointerByReference): Int
    fun LiteRtGetTensorBufferPackedSize(buffer: Pointer, size: LongByReference): Int
    fun LiteRtLockTensorBuffer(buffer: Pointer, address: PointerByReference, mode: Int): Int
    fun LiteRtUnlockTensorBuffer(buffer: Pointer): Int
    fun LiteRtDestroyTensorBuffer(buffer: Pointer)
    fun LiteRtRunCompiledModel(compiled: Pointer, signature: Long, numInputs: Long, inputs: Pointer, numOutputs: Long, outputs: Pointer): Int
}

/**
 * Runs a .tflite model on the JVM through LiteRT's C API (JNA), on the CPU.
 *
 * Tensor buffers are LiteRT-managed (created from the compiled model's buffer requirements) and filled or
 * read under LiteRtLockTensorBuffer; the model's first signature is used. Only float32 inputs and outputs are supported (what exportkit's fp32 and fp16
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

    private class Slot(val name: String, val shape: IntArray, val count: Int, val buffer: Pointer)

    init {
        if (!File(modelPath).isFile) throw LiteRtException("model file $modelPath does not exist")
        try {
            val env = create("environment") { lib.LiteRtCreateEnvironment(0, null, it) }
            val options = create("options") { lib.LiteRtCreateOptions(it) }
            check(lib.LiteRtSetOptionsHardwareAccelerators(options, CPU), "select the CPU accelerator")
            val model = create("model") { lib.LiteRtCreateModelFromFile(env, modelPath, it) }
            compiled = create("compiled model") { lib.LiteRtCreateCompiledModel(env, model, options, it) }
            val signature = create("signature") { lib.LiteRtGetModelSignature(model, 0, it) }
            inputs = slots(env, signature, true)
            outputs = slots(env, signature, false)
            inputArray = pointerArray(inputs)
            outputArray = pointerArray(outputs)
        } catch (e: Exception) {
            close()
            throw e
        }
    }

    override fun run(input: FloatArray): List<OutputTensor> {
        val slot = inputs[0]
        if (input.size != slot.count) {
            throw LiteRtException("input tensor has ${input.size} values, model input '${slot.name}' ${slot.shape.toList()} takes ${slot.count}")
        }
        locked(slot, LOCK_WRITE) { it.write(0, input, 0, input.size) }
        check(lib.LiteRtRunCompiledModel(compiled, 0, inputs.size.toLong(), inputArray, outputs.size.toLong(), outputArray), "run the model")
        return outputs.map { out -> OutputTensor(out.name, out.shape, locked(out, LOCK_READ) { it.getFloatArray(0, out.count) }) }
    }

    private fun <T> locked(slot: Slot, mode: Int, use: (Pointer) -> T): T {
        val address = PointerByReference()
        check(lib.LiteRtLockTensorBuffer(slot.buffer, address, mode), "lock the buffer of tensor '${slot.name}'")
        try {
            return use(address.value ?: throw LiteRtException("LiteRT mapped tensor '${slot.name}' to no memory"))
        } finally {
            lib.LiteRtUnlockTensorBuffer(slot.buffer)
        }
    }

    override fun close() {
        // Buffers first, then the compiled model, model and environment (reverse order of creation).
        for ((kind, handle) in handles.reversed()) {
            when (kind) {
                "buffer" -> lib.LiteRtDestroyTensorBuffer(handle)
                "compiled model" -> lib.LiteRtDestroyCompiledModel(handle)
                "options" -> lib.LiteRtDestroyOptions(handle)
                "model" -> lib.LiteRtDestroyModel(handle)
                "environment" -> lib.LiteRtDestroyEnvironment(handle)
            }
        }
        handles.clear()
    }

    private fun slots(env: Pointer, signature: Pointer, input: Boolean): List<Slot> {
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
            val requirements = create("buffer requirements") {
                if (input) lib.LiteRtGetCompiledModelInputBufferRequirements(compiled, 0, i, it)
                else lib.LiteRtGetCompiledModelOutputBufferRequirements(compiled, 0, i, it)
            }
            val buffer = create("buffer") { lib.LiteRtCreateManagedTensorBufferFromRequirements(env, type, requirements, it) }
            val values = shape.fold(1) { acc, d -> acc * d }
            val packed = LongByReference()
            check(lib.LiteRtGetTensorBufferPackedSize(buffer, packed), "size the buffer of tensor '$name'")
            if (packed.value != 4L * values) throw LiteRtException("tensor '$name' ${shape.toList()} has a ${packed.value}-byte buffer, expected ${4L * values}")
            Slot(name, shape, values, buffer)
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
        private const val LOCK_READ = 0
        private const val LOCK_WRITE = 1
        private val OWNED = setOf("buffer", "compiled model", "options", "model", "environment")

        /** -Dlitert.library, else $LITERT_LIBRARY, else "LiteRt" on JNA's search path (jna.library.path). */
        fun defaultLibrary(): String = System.getProperty("litert.library") ?: System.getenv("LITERT_LIBRARY") ?: "LiteRt"
    }
}

package com.platform.tflite

import java.io.File
import kotlin.system.exitProcess

/** `yolo-infer MODEL METADATA IMAGE... [--conf F] [--iou F]`: one JSON line of detections per image. */
fun main(args: Array<String>) {
    try {
        run(args)
    } catch (e: Throwable) {  // a missing file, a bad number, no libLiteRt.so: one line, not a stack trace
        System.err.println("yolo-infer: error: ${e.message ?: e.javaClass.simpleName}")
        exitProcess(3)
    }
}

private fun run(args: Array<String>) {
    val positional = ArrayList<String>()
    var conf: Float? = null
    var iou: Float? = null
    var i = 0
    while (i < args.size) {
        when (args[i]) {
            "--conf" -> { conf = args.getOrNull(++i)?.toFloatOrNull() ?: throw IllegalArgumentException("--conf needs a number") }
            "--iou" -> { iou = args.getOrNull(++i)?.toFloatOrNull() ?: throw IllegalArgumentException("--iou needs a number") }
            else -> positional.add(args[i])
        }
        i++
    }
    if (positional.size < 3) {
        System.err.println("usage: yolo-infer MODEL.tflite METADATA.json IMAGE... [--conf F] [--iou F]")
        exitProcess(3)
    }
    for (path in positional) require(File(path).exists()) { "$path: no such file" }
    YOLOInference(positional[0], positional[1]).use { model ->
        for (image in positional.drop(2)) println(toJson(File(image).name, model.predict(image, conf, iou)))
    }
}

/** One image's detections as a JSON line; pose adds `keypoints` ([name, x, y, visibility]), segment `mask_area` (pixels). */
fun toJson(image: String, results: Results): String = results.detections.joinToString(",", "{\"image\":\"$image\",\"detections\":[", "]}") { d ->
    val keypoints = if (d.keypoints.isEmpty()) "" else d.keypoints.joinToString(",", ",\"keypoints\":[", "]") { "[\"${it.name}\",${it.x},${it.y},${it.visibility}]" }
    val mask = d.mask?.let { ",\"mask_area\":${it.area}" } ?: ""
    "{\"class_id\":${d.classId},\"class_name\":\"${d.className}\",\"confidence\":${d.confidence}," +
        "\"bbox\":[${d.bbox.x1},${d.bbox.y1},${d.bbox.x2},${d.bbox.y2}]$keypoints$mask}"
}

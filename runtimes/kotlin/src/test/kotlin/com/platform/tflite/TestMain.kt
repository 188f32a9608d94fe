package com.platform.tflite

import org.junit.runner.JUnitCore
import kotlin.system.exitProcess

/** Runs the JUnit classes named on the command line; prints each failure, then `N passed, N failed`. */
fun main(args: Array<String>) {
    val classes = args.map { Class.forName(it) }.toTypedArray()
    val result = JUnitCore().run(*classes)
    for (failure in result.failures) {
        println("FAILED ${failure.testHeader}: ${failure.message}")
        failure.trace.lines().take(8).forEach { println("    $it") }
    }
    val failed = result.failureCount
    println("${result.runCount - failed} passed, $failed failed")
    exitProcess(if (failed == 0 && result.runCount > 0) 0 else 1)
}

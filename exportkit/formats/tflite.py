"""TFLite (LiteRT): Android, embedded systems, Edge TPU."""

from __future__ import annotations

from exportkit.options import Option
from exportkit.registry import ExportFormat, register_format


@register_format
class TfliteFormat(ExportFormat):
    name = "tflite"
    title = "TFLite"
    files = ("model.tflite",)
    options = (
        Option("int8", bool, False, "Enable INT8 quantization (calibrated on local images)"),
        Option("tflite_model", str, "default", "'default', or 'edgetpu' for Coral TPU", choices=("default", "edgetpu")),
    )
    precisions = {"fp32": {"int8": False}, "int8": {"int8": True}}
    packages = {"litert_torch": "litert-torch", "ai_edge_litert": "ai-edge-litert"}
    extra = "tflite"
    implemented = False
    use_case = "Mobile & embedded devices"
    hardware = "CPU, EdgeTPU, GPU"

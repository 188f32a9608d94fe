"""TensorRT: NVIDIA GPU optimized inference; needs a CUDA GPU and the tensorrt package."""

from __future__ import annotations

from exportkit.options import Option
from exportkit.registry import ExportFormat, register_format


@register_format
class TensorRtFormat(ExportFormat):
    name = "tensorrt"
    title = "TensorRT"
    files = ("model.engine",)
    options = (
        Option("fp16", bool, False, "Enable FP16 precision"),
        Option("int8", bool, False, "Enable INT8 quantization (calibrated on local images)"),
        Option("workspace", int, 4, "Workspace size in GB", 1, 1024),
        Option("max_batch_size", int, 1, "Maximum batch size for optimization", 1, 256),
    )
    precisions = {"fp32": {"fp16": False, "int8": False}, "fp16": {"fp16": True}, "int8": {"int8": True}}
    packages = {"tensorrt": "tensorrt"}
    extra = "tensorrt"
    requires_gpu = True
    implemented = False
    use_case = "NVIDIA GPU optimized inference"
    hardware = "NVIDIA GPU only"

"""CoreML: iOS/macOS deployment; writes the model.mlpackage/ folder."""

from __future__ import annotations

from exportkit.options import Option
from exportkit.registry import ExportFormat, register_format


@register_format
class CoremlFormat(ExportFormat):
    name = "coreml"
    title = "CoreML"
    files = ("model.mlpackage/",)
    options = (
        Option(
            "minimum_deployment_target", str, "iOS15", "Minimum iOS version",
            choices=("iOS13", "iOS14", "iOS15", "iOS16", "iOS17"),
        ),
        Option("nms", bool, True, "Include NMS in the CoreML model"),
    )
    packages = {"coremltools": "coremltools"}
    extra = "coreml"
    prediction_needs_macos = True
    implemented = False
    use_case = "iOS/macOS deployment"
    hardware = "Apple Silicon, ANE"

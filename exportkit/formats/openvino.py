"""OpenVINO: Intel CPU, iGPU and VPU; writes model.xml + model.bin directly in the output folder."""

from __future__ import annotations

from pathlib import Path

from exportkit.formats._ultralytics import move, ultralytics_export
from exportkit.options import Option
from exportkit.registry import ArtifactIO, ExportFormat, ExportRequest, TensorInfo, register_format


@register_format
class OpenVinoFormat(ExportFormat):
    name = "openvino"
    title = "OpenVINO"
    files = ("model.xml", "model.bin")
    options = (Option("half", bool, False, "Export as FP16 (compressed weights)"),)
    precisions = {"fp32": {"half": False}, "fp16": {"half": True}}
    packages = {"openvino": "openvino"}
    extra = "openvino"
    reproducible = ("fp32", "fp16")
    use_case = "Intel hardware optimized"
    hardware = "Intel CPU, iGPU, VPU"

    def export(self, request: ExportRequest) -> list[Path]:
        folder = ultralytics_export(
            request, "openvino", dynamic=False, quantize=16 if request.options["half"] else None
        )
        xml = next(Path(folder).glob("*.xml"))
        return [move(xml, request.staging / "model.xml"), move(xml.with_suffix(".bin"), request.staging / "model.bin")]

    def describe(self, folder: Path) -> ArtifactIO:
        model = _core().read_model(str(Path(folder) / "model.xml"))
        return ArtifactIO(
            inputs=[_info(p, f"images{i or ''}") for i, p in enumerate(model.inputs)],
            outputs=[_info(p, f"output{i}") for i, p in enumerate(model.outputs)],
        )

    def runner(self, folder: Path):
        """The Python runtime's OpenVINO backend (CPU, f32 inference precision), as a deployment loads it."""
        from exportkit.formats._backend import backend_runner

        return backend_runner(folder, self.name)

    @classmethod
    def format_checks(cls, folder: Path, metadata: dict) -> list:
        """OpenVINO's own reader on the IR pair: the .xml parses and every constant lies inside the .bin."""
        from exportkit.checkers import run_checker

        xml = Path(folder) / "model.xml"
        return [
            run_checker(
                "openvino.Core().read_model", xml, lambda: _core().read_model(str(xml), str(xml.with_suffix(".bin")))
            )
        ]


def _core():
    import openvino as ov

    return ov.Core()


def _info(port, fallback: str) -> TensorInfo:
    shape = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
    names = port.get_names()
    return TensorInfo(sorted(names)[0] if names else fallback, shape, port.get_element_type().to_dtype().name)

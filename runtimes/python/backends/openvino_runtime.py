"""OpenVINO runtime for ``model.xml`` (+ ``model.bin``), and for ``model.onnx`` (OpenVINO reads ONNX directly).

On CPUs with AMX the CPU plugin infers in bf16 unless told otherwise; ``precision_hint`` defaults to ``f32``
so an fp32 artifact gives fp32 results. Pass ``precision_hint=None`` for the plugin's default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from ..spec import ModelSpec
from .base import Backend, import_package


class OpenVinoBackend(Backend):
    export_format = "openvino"
    suffixes = (".xml", ".onnx")
    package = "openvino"

    def __init__(
        self,
        model_path: Path,
        spec: ModelSpec,
        *,
        device: str = "auto",
        threads: int | None = None,
        precision_hint: str | None = "f32",
        config: dict | None = None,
    ):
        """``device``: auto/cpu or an OpenVINO device name (GPU, NPU, AUTO); ``config``: extra compile properties."""
        super().__init__(model_path, spec)
        ov = import_package("openvino", self.package, self.export_format)
        properties = {"PERFORMANCE_HINT": "LATENCY"}
        if precision_hint:
            properties["INFERENCE_PRECISION_HINT"] = precision_hint
        if threads:
            properties["INFERENCE_NUM_THREADS"] = int(threads)
        properties.update(config or {})
        self.device_name = "CPU" if device in ("auto", "cpu") else device.upper()
        try:
            core = ov.Core()
            weights = [str(Path(model_path).with_suffix(".bin"))] if Path(model_path).suffix == ".xml" else []
            self.model = core.read_model(str(model_path), *weights)
            self.compiled = core.compile_model(self.model, self.device_name, properties)
        except Exception as error:  # OpenVINO raises RuntimeError for unreadable models and unknown devices
            raise ModelLoadError(f"OpenVINO cannot load {model_path}: {' '.join(str(error).split())[:300]}") from error
        self.request = self.compiled.create_infer_request()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return _static(self.model.inputs[0].get_partial_shape())

    @property
    def model_outputs(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(_name(port, i), _static(port.get_partial_shape())) for i, port in enumerate(self.model.outputs)]

    @property
    def device(self) -> str:
        return f"OpenVINO {self.device_name}"

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        return list(self.request.infer({0: batch}).to_tuple())


def _static(shape) -> tuple[int, ...]:
    return tuple(d.get_length() if d.is_static else -1 for d in shape)


def _name(port, index: int) -> str:
    names = port.get_names()
    return sorted(names)[0] if names else f"output{index}"

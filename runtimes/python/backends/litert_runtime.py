"""LiteRT (TFLite) interpreter for ``model.tflite``, from the ``ai-edge-litert`` package.

Inputs are whatever layout metadata.json's ``preprocessing.layout`` says (NHWC for TFLite exports); int8/uint8
models are quantised and dequantised here with the tensors' own scale and zero point, so callers always pass
and receive float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from ..spec import ModelSpec
from .base import Backend, import_package


class LiteRtBackend(Backend):
    export_format = "tflite"
    suffixes = (".tflite",)
    package = "ai-edge-litert"

    def __init__(self, model_path: Path, spec: ModelSpec, *, device: str = "auto", threads: int | None = None):
        super().__init__(model_path, spec)
        if device not in ("auto", "cpu"):
            raise ModelLoadError(f"device {device!r}: the LiteRT backend runs on the CPU only")
        litert = import_package("ai_edge_litert.interpreter", self.package, self.export_format)
        try:
            self.interpreter = litert.Interpreter(model_path=str(model_path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except Exception as error:  # LiteRT raises ValueError/RuntimeError for unreadable models
            raise ModelLoadError(f"LiteRT cannot load {model_path}: {' '.join(str(error).split())[:300]}") from error
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.input.get("shape_signature", self.input["shape"]))

    @property
    def model_outputs(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(o["name"], tuple(int(d) for d in o.get("shape_signature", o["shape"]))) for o in self.outputs]

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        if tuple(self.input["shape"]) != batch.shape:
            self.interpreter.resize_tensor_input(self.input["index"], list(batch.shape))
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.outputs = self.interpreter.get_output_details()
        self.interpreter.set_tensor(self.input["index"], quantize(batch, self.input))
        self.interpreter.invoke()
        return [dequantize(self.interpreter.get_tensor(o["index"]), o) for o in self.outputs]


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]).kind == "f":
        return y.astype(np.float32, copy=False)
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale

"""ONNX Runtime: the CUDA provider when it is available (and ``device`` allows), the CPU provider otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from ..spec import ModelSpec
from .base import Backend, import_package

DEVICES = ("auto", "cpu", "cuda")


class OnnxRuntimeBackend(Backend):
    export_format = "onnx"
    suffixes = (".onnx",)
    package = "onnxruntime"

    def __init__(
        self,
        model_path: Path,
        spec: ModelSpec,
        *,
        device: str = "auto",
        threads: int | None = None,
        providers: list | None = None,
        spin: bool = True,
    ):
        """``device``: auto (CUDA if available), cpu or cuda; ``threads``: intra-op threads (default: ORT's, one per
        physical core); ``providers``: an explicit ONNX Runtime provider list, overriding ``device``; ``spin``:
        let idle intra-op threads busy-wait between operators (ORT's default, kept: on an idle CPU it is the
        lower latency, 10-15% on small models; stopping the spin as each run returns, ORT's
        ``session.force_spinning_stop``, measured 12-40% slower per predict, the next run having to wake the
        threads). ``spin=False`` for hosts whose cores are shared with other work: spinning threads burn CPU
        the rest of the service needs, and on a loaded machine they make inference itself slower."""
        super().__init__(model_path, spec)
        ort = import_package("onnxruntime", self.package, self.export_format)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        if threads:
            options.intra_op_num_threads = int(threads)
        chosen = providers or choose_providers(ort.get_available_providers(), device)
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=chosen)
        except Exception as error:  # ORT raises its own exception types for unreadable or invalid models
            raise ModelLoadError(
                f"ONNX Runtime cannot load {model_path}: {' '.join(str(error).split())[:300]}"
            ) from error
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._dtype = np.dtype(np.float16) if "float16" in self.session.get_inputs()[0].type else np.dtype(np.float32)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return _static(self.session.get_inputs()[0].shape)

    @property
    def model_outputs(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(o.name, _static(o.shape)) for o in self.session.get_outputs()]

    @property
    def input_dtype(self) -> np.dtype:
        return self._dtype

    @property
    def device(self) -> str:
        return self.session.get_providers()[0]

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: batch})


def choose_providers(available: list[str], device: str) -> list[str]:
    if device not in DEVICES:
        raise ModelLoadError(f"device {device!r} is not one of {DEVICES} for ONNX Runtime")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise ModelLoadError(
            f"device 'cuda' asked for, but this onnxruntime offers only {available}; install onnxruntime-gpu"
        )
    return ["CPUExecutionProvider"]


def _static(shape) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else -1 for d in shape)

"""Backends: one per export format, chosen from metadata.json's ``export_format``, imported only when used.

A backend loads one artifact and runs a float batch in the model's layout, returning outputs keyed by the
names metadata.json uses. Add one by subclassing ``Backend`` and calling ``register_backend`` (or, for a
built-in, adding a line to ``BUILTIN``).
"""

from __future__ import annotations

import importlib

from ..errors import ModelLoadError
from .base import Backend, import_package

# export_format -> "module:class"; modules are imported on first use, so their packages are too
BUILTIN = {
    "onnx": ".onnx_runtime:OnnxRuntimeBackend",
    "openvino": ".openvino_runtime:OpenVinoBackend",
    "tflite": ".litert_runtime:LiteRtBackend",
}
_REGISTERED: dict[str, type[Backend]] = {}
# engine names for YOLOInference(backend=...): run an artifact on another engine than its format's own
ENGINES = {"onnxruntime": "onnx", "openvino": "openvino", "litert": "tflite"}

__all__ = [
    "BUILTIN",
    "ENGINES",
    "Backend",
    "backend_for",
    "engine_backend",
    "import_package",
    "register_backend",
    "supported_formats",
]


def register_backend(export_format: str, backend: type[Backend]) -> type[Backend]:
    """Make ``backend`` run artifacts whose metadata.json says ``export_format``."""
    _REGISTERED[export_format] = backend
    return backend


def supported_formats() -> list[str]:
    return sorted({*BUILTIN, *_REGISTERED})


def backend_for(export_format: str) -> type[Backend]:
    """The backend class for an export format; raises ModelLoadError for a format no backend runs."""
    if export_format in _REGISTERED:
        return _REGISTERED[export_format]
    if export_format not in BUILTIN:
        raise ModelLoadError(
            f"metadata.json says export_format {export_format!r}; this runtime runs {', '.join(supported_formats())}"
        )
    module, name = BUILTIN[export_format].split(":")
    return register_backend(export_format, getattr(importlib.import_module(module, __name__), name))


def engine_backend(engine: str) -> type[Backend]:
    """The backend class of an engine name (``onnxruntime``, ``openvino``, ``litert``)."""
    if engine not in ENGINES:
        raise ModelLoadError(f"backend {engine!r} is not one of {', '.join(ENGINES)}")
    return backend_for(ENGINES[engine])

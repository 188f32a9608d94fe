"""Python runtime for exportkit artifacts: ONNX Runtime (and OpenVINO, LiteRT) without torch or ultralytics.

    from runtimes.python.inference import YOLOInference

Names are imported lazily, so ``import runtimes.python`` stays light and ``python -m
runtimes.python.inference`` does not import the module twice.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "YOLOInference": "runtimes.python.inference",
    "Result": "runtimes.python.results",
    "Detection": "runtimes.python.results",
    "Keypoint": "runtimes.python.results",
    "letterbox": "runtimes.python.preprocess",
    "Geometry": "runtimes.python.preprocess",
    "decode": "runtimes.python.postprocess",
    "nms": "runtimes.python.postprocess",
    "ModelSpec": "runtimes.python.spec",
    "load_spec": "runtimes.python.spec",
    "InferenceError": "runtimes.python.errors",
    "RuntimeInputError": "runtimes.python.errors",
    "ModelLoadError": "runtimes.python.errors",
    "MetadataMismatch": "runtimes.python.errors",
    "BackendUnavailable": "runtimes.python.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'runtimes.python' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

"""Python runtime for exportkit artifacts: ONNX Runtime (and OpenVINO, LiteRT) without torch or ultralytics.

    from .inference import YOLOInference

Names are imported lazily, so ``import runtimes.python`` stays light and ``python -m
runtimes.python.inference`` does not import the module twice.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "YOLOInference": ".inference",
    "Result": ".results",
    "Detection": ".results",
    "Keypoint": ".results",
    "letterbox": ".preprocess",
    "Geometry": ".preprocess",
    "decode": ".postprocess",
    "nms": ".postprocess",
    "ModelSpec": ".spec",
    "load_spec": ".spec",
    "InferenceError": ".errors",
    "RuntimeInputError": ".errors",
    "ModelLoadError": ".errors",
    "MetadataMismatch": ".errors",
    "BackendUnavailable": ".errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)

"""exportkit: a declarative build tool that turns Ultralytics YOLO checkpoints into validated artifacts."""

import os

__version__ = "0.1.0"

# Ultralytics must never download or pip-install at run time; set before it is first imported.
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "False"
# Ultralytics' own restricted mode (weights_only loads, no eval of model YAML); read when it is first imported.
os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
os.environ.setdefault("YOLO_VERBOSE", "False")

__all__ = ["ExportResult", "export"]


def __getattr__(name: str):
    """``exportkit.export`` and ``exportkit.ExportResult`` (exportkit/api.py), imported on first use."""
    if name in ("export", "ExportResult"):
        from exportkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'exportkit' has no attribute {name!r}")

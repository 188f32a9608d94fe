"""Running Ultralytics' exporter inside a staging folder (shared by the format modules)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from exportkit.errors import ExportError
from exportkit.registry import ExportRequest

log = logging.getLogger(__name__)

# Keys of Ultralytics' embedded metadata that change on every run; dropped so artifacts are reproducible.
VOLATILE_KEYS = ("date",)


def ultralytics_export(request: ExportRequest, fmt: str, **kwargs) -> Path:
    """Export with Ultralytics on the CPU; return the path it wrote (inside the staging folder)."""
    args = dict(format=fmt, imgsz=request.imgsz, batch=request.options.get("batch", 1), device="cpu", verbose=False)
    args.update(kwargs)
    try:
        result = request.yolo.export(**args)
    except Exception as exc:  # the exporter raises anything from AssertionError to RuntimeError
        raise ExportError(f"{fmt} export failed: {type(exc).__name__}: {exc}") from exc
    if not result or not Path(result).exists():
        raise ExportError(f"{fmt} export failed: Ultralytics reported success but wrote no file")
    return Path(result)


def move(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    return target


def plain_metadata(metadata: dict) -> dict:
    """Ultralytics' export metadata without volatile keys, with JSON-safe values."""
    return {k: v for k, v in json.loads(json.dumps(metadata, default=str)).items() if k not in VOLATILE_KEYS}

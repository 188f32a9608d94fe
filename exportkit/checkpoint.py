"""Load and inspect an Ultralytics checkpoint: task, class names, image size, keypoints."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exportkit.errors import CheckpointError

TASK_TYPES = {"detect": "detection", "segment": "segmentation", "pose": "pose", "classify": "classification", "obb": "obb"}


@dataclass
class CheckpointInfo:
    path: Path
    sha256: str
    task: str
    names: list[str]
    imgsz: int
    strides: list[int]
    architecture: str
    kpt_shape: list[int] | None = None
    kpt_names: list[str] | None = None
    is_world: bool = False

    @property
    def task_type(self) -> str:
        return TASK_TYPES.get(self.task, self.task)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_checkpoint_path(path: Path) -> Path:
    """Cheap checks that need no torch: the file exists, is a readable .pt file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint is not a file: {path}")
    if path.suffix != ".pt":
        raise CheckpointError(f"checkpoint must be an Ultralytics .pt file, got {path.name!r}")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"checkpoint is not readable: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty: {path}")
    return path


def _torch_load(path: Path) -> Any:
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except ModuleNotFoundError as exc:
        raise CheckpointError(f"checkpoint {path.name} needs module {exc.name!r}, which is not installed") from exc
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch file ({type(exc).__name__})") from exc


def load_checkpoint(path: Path):
    """Return ``(YOLO, CheckpointInfo)`` for a checkpoint; raise CheckpointError if it is not one."""
    from ultralytics.nn.tasks import BaseModel

    path = check_checkpoint_path(path)
    raw = _torch_load(path)
    model = (raw.get("ema") or raw.get("model")) if isinstance(raw, dict) else None
    if not isinstance(model, BaseModel):
        kind = type(raw).__name__ if not isinstance(raw, dict) else f"dict with keys {sorted(raw)[:5]}"
        raise CheckpointError(f"checkpoint {path} is a PyTorch file but not an Ultralytics model (found {kind})")
    from ultralytics import YOLO

    try:
        yolo = YOLO(str(path))
    except Exception as exc:
        raise CheckpointError(f"Ultralytics could not load {path}: {type(exc).__name__}: {exc}") from exc
    return yolo, inspect_model(yolo, path, raw)


def inspect_model(yolo, path: Path, raw: dict) -> CheckpointInfo:
    from ultralytics.nn.tasks import WorldModel

    model = yolo.model
    names = model.names if isinstance(model.names, dict) else dict(enumerate(model.names))
    imgsz = (raw.get("train_args") or {}).get("imgsz", 640)
    imgsz = int(imgsz[0] if isinstance(imgsz, (list, tuple)) else imgsz)
    yaml_file = model.yaml.get("yaml_file", "") if hasattr(model, "yaml") else ""
    head = model.model[-1]
    kpt_shape = list(getattr(head, "kpt_shape", None) or []) or None
    kpt_names = None
    if kpt_shape and isinstance(getattr(model, "kpt_names", None), dict) and model.kpt_names:
        first = next(iter(model.kpt_names.values()))
        kpt_names = [str(n) for n in first] if len(first) == kpt_shape[0] else None
    return CheckpointInfo(
        path=path.resolve(),
        sha256=sha256_file(path),
        task=yolo.task,
        names=[str(names[i]) for i in sorted(names)],
        imgsz=imgsz,
        strides=[int(s) for s in model.stride.tolist()],
        architecture=Path(yaml_file).stem or path.stem,
        kpt_shape=kpt_shape,
        kpt_names=kpt_names,
        is_world=isinstance(model, WorldModel),
    )


class _Stub(dict):
    """Stands in for any class while peeking into a checkpoint's pickle without torch."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        if isinstance(state, tuple):  # (state, slotstate)
            state = next((s for s in state if isinstance(s, dict)), {})
        if isinstance(state, dict):
            self.update(state)

    def __call__(self, *args, **kwargs):
        return _Stub()


def peek_checkpoint(path: Path) -> dict:
    """Architecture, task and image size read from the .pt archive's pickle, with no torch import.

    Returns {} when the file is not a zip-format PyTorch checkpoint; never raises for a bad file
    (the full load reports those).
    """
    import io
    import pickle
    import zipfile

    class Peeker(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "builtins" and name in ("set", "frozenset", "slice", "complex"):
                return getattr(__import__("builtins"), name)
            return _Stub

        def persistent_load(self, pid):
            return None

    try:
        with zipfile.ZipFile(path) as archive:
            member = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            raw = Peeker(io.BytesIO(archive.read(member))).load()
    except Exception:
        return {}
    if not isinstance(raw, dict):
        return {}
    model = raw.get("ema") or raw.get("model")
    yaml = model.get("yaml") if isinstance(model, dict) else None
    args = raw.get("train_args") if isinstance(raw.get("train_args"), dict) else {}
    found = {"task": args.get("task"), "imgsz": args.get("imgsz")}
    if isinstance(yaml, dict) and yaml.get("yaml_file"):
        found["architecture"] = Path(str(yaml["yaml_file"])).stem
    return {k: v for k, v in found.items() if v is not None}


def apply_vocabulary(yolo, path: Path) -> list[str]:
    """Set a YOLO-World model's classes from names plus precomputed CLIP text embeddings (no CLIP needed).

    ``path``: a .json file {"names": [...], "embeddings": [[...], ...]} or a .npz with arrays ``names`` and
    ``embeddings`` (one row per name, the text model's width, 512 for CLIP ViT-B/32).
    """
    import json

    import numpy as np
    import torch
    from ultralytics.nn.tasks import WorldModel

    from exportkit.errors import ConfigError

    model = yolo.model
    if not isinstance(model, WorldModel):
        raise ConfigError(f"option 'vocabulary' applies to YOLO-World models only, not {type(model).__name__}")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"vocabulary file not found: {path}")
    try:
        if path.suffix == ".npz":
            data = np.load(path)
            names, embeddings = [str(n) for n in data["names"]], np.asarray(data["embeddings"], np.float32)
        else:
            data = json.loads(path.read_text())
            names, embeddings = [str(n) for n in data["names"]], np.asarray(data["embeddings"], np.float32)
    except (KeyError, ValueError, OSError) as exc:
        raise ConfigError(f"vocabulary {path} must hold 'names' and 'embeddings' ({type(exc).__name__}: {exc})") from None
    width = model.txt_feats.shape[-1]
    if embeddings.shape != (len(names), width):
        raise ConfigError(f"vocabulary {path}: embeddings must have shape ({len(names)}, {width}), got {embeddings.shape}")
    model.txt_feats = torch.from_numpy(embeddings).reshape(1, len(names), width)
    model.model[-1].nc = len(names)
    model.names = dict(enumerate(names))
    return names

"""Load and inspect an Ultralytics checkpoint: task, class names, image size, keypoints."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from exportkit.errors import CheckpointError

TASK_TYPES = {
    "detect": "detection",
    "segment": "segmentation",
    "pose": "pose",
    "classify": "classification",
    "obb": "obb",
}


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


MAX_CLASSES = 10000
MAX_NAME_CHARS = 256
MAX_KEYPOINTS = 1000


def load_checkpoint(path: Path, imgsz: int | None = None):
    """Return ``(YOLO, CheckpointInfo)``; the file is scanned and loaded with ``weights_only=True``, never run.

    Raises CheckpointRefused (exit 1) for anything ``torch.save`` never writes for an Ultralytics model,
    CheckpointError for a file that is not one, ExportError for values in it that cannot be right.
    """
    from ultralytics.nn.tasks import BaseModel

    from exportkit.safe_load import load_untrusted

    path = check_checkpoint_path(path)
    raw = load_untrusted(path)
    model = (raw.get("ema") or raw.get("model")) if isinstance(raw, dict) else None
    if not isinstance(model, BaseModel):
        kind = type(raw).__name__ if not isinstance(raw, dict) else f"dict with keys {sorted(map(str, raw))[:5]}"
        raise CheckpointError(f"checkpoint {path} is a PyTorch file but not an Ultralytics model (found {kind})")
    try:
        yolo = yolo_from_checkpoint(raw, path)
    except Exception as exc:
        raise CheckpointError(f"Ultralytics could not load {path}: {type(exc).__name__}: {exc}") from exc
    return yolo, inspect_model(yolo, path, raw, imgsz)


def yolo_from_checkpoint(raw: dict, path: Path):
    """A ``YOLO`` built from an already loaded checkpoint: Ultralytics' own ``load_checkpoint`` steps, no reload."""
    import torch
    from ultralytics import YOLO
    from ultralytics.cfg import DEFAULT_CFG_DICT
    from ultralytics.engine.model import Model
    from ultralytics.nn.tasks import guess_model_task

    train_args = raw.get("train_args") if isinstance(raw.get("train_args"), dict) else {}
    model = (raw.get("ema") or raw.get("model")).float()
    model.args = {**DEFAULT_CFG_DICT, **train_args}
    model.pt_path = str(path)
    model.task = getattr(model, "task", None) or guess_model_task(model)
    if not hasattr(model, "stride"):
        model.stride = torch.tensor([32.0])
    model.eval()
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = True
        elif isinstance(module, torch.nn.Upsample) and not hasattr(module, "recompute_scale_factor"):
            module.recompute_scale_factor = None

    class _Loaded(Model):  # a Model whose _load takes the checked checkpoint instead of reading the file again
        def _load(self, weights: str, task: str | None = None) -> None:
            self.model, self.ckpt, self.task = model, raw, model.task
            self.overrides = self.model.args = self._reset_ckpt_args(model.args)
            self.ckpt_path = self.model_name = weights
            self.overrides.update(model=weights, task=self.task)

    return YOLO(_Loaded(str(path)))


def inspect_model(yolo, path: Path, raw: dict, imgsz: int | None = None) -> CheckpointInfo:
    """Facts about the model, each read from the checkpoint and checked: values in a file are data, not trust.

    ``imgsz``: the size the caller will use instead of the checkpoint's training size (then not checked).
    """
    from ultralytics.nn.tasks import WorldModel

    model = yolo.model
    strides = _checked_strides(path, model)
    kpt_shape = _checked_kpt_shape(path, model.model[-1])
    names = _checked_names(path, model.names)
    kpt_names = None
    if kpt_shape and isinstance(getattr(model, "kpt_names", None), dict) and model.kpt_names:
        first = next(iter(model.kpt_names.values()))
        if isinstance(first, (list, tuple)) and len(first) == kpt_shape[0]:
            kpt_names = [_short_text(path, "keypoint name", n) for n in first]
    if yolo.task not in TASK_TYPES:
        raise CheckpointError(
            f"checkpoint {path.name}: task {str(yolo.task)[:40]!r} is not one of {', '.join(TASK_TYPES)}"
        )
    yaml_file = model.yaml.get("yaml_file", "") if isinstance(getattr(model, "yaml", None), dict) else ""
    return CheckpointInfo(
        path=path.resolve(),
        sha256=sha256_file(path),
        task=yolo.task,
        names=names,
        imgsz=_checked_imgsz(path, raw) if imgsz is None else imgsz,
        strides=strides,
        architecture=Path(_short_text(path, "yaml_file", yaml_file or path.stem)).stem or path.stem,
        kpt_shape=kpt_shape,
        kpt_names=kpt_names,
        is_world=isinstance(model, WorldModel),
    )


def _short_text(path: Path, what: str, value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS or not value.isprintable():
        raise CheckpointError(f"checkpoint {path.name}: {what} {str(value)[:40]!r} is not a short printable string")
    return value


def _checked_names(path: Path, names) -> list[str]:
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not 0 < len(names) <= MAX_CLASSES:
        raise CheckpointError(f"checkpoint {path.name}: class names must be a dict or list of 1-{MAX_CLASSES} names")
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in names) or set(names) != set(range(len(names))):
        raise CheckpointError(f"checkpoint {path.name}: class ids must be 0..{len(names) - 1}")
    return [_short_text(path, "class name", names[i]) for i in range(len(names))]


def _checked_imgsz(path: Path, raw: dict) -> int:
    from exportkit.registry import COMMON_OPTIONS

    option = next(o for o in COMMON_OPTIONS if o.name == "imgsz")
    value = (raw.get("train_args") or {}).get("imgsz", 640) if isinstance(raw.get("train_args"), dict) else 640
    value = value[0] if isinstance(value, (list, tuple)) and value else value
    if isinstance(value, bool) or not isinstance(value, int) or not option.minimum <= value <= option.maximum:
        raise CheckpointError(
            f"checkpoint {path.name}: train_args.imgsz {str(value)[:20]} is not an image size in "
            f'{option.minimum}-{option.maximum}; pass {{"imgsz": N}} in export_config'
        )
    return value


def _checked_strides(path: Path, model) -> list[int]:
    stride = getattr(model, "stride", None)
    values = stride.tolist() if hasattr(stride, "tolist") else stride
    values = values if isinstance(values, list) else [values]
    if (
        not values
        or len(values) > 8
        or not all(isinstance(s, (int, float)) and 1 <= s <= 256 and float(s).is_integer() for s in values)
    ):
        raise CheckpointError(
            f"checkpoint {path.name}: model strides {str(values)[:40]} are not 1-8 whole numbers in 1-256"
        )
    return [int(s) for s in values]


def _checked_kpt_shape(path: Path, head) -> list[int] | None:
    shape = getattr(head, "kpt_shape", None)
    if shape is None:
        return None
    shape = list(shape) if isinstance(shape, (list, tuple)) else shape
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
        or not 1 <= shape[0] <= MAX_KEYPOINTS
        or shape[1] not in (2, 3)
    ):
        raise CheckpointError(
            f"checkpoint {path.name}: kpt_shape {str(shape)[:40]} must be [keypoints 1-{MAX_KEYPOINTS}, 2 or 3]"
        )
    channels = _keypoint_channels(head)
    if getattr(head, "nk", shape[0] * shape[1]) != shape[0] * shape[1] or channels not in (None, shape[0] * shape[1]):
        raise CheckpointError(
            f"checkpoint {path.name}: kpt_shape {shape} does not fit the pose head ({channels} keypoint channels)"
        )
    return shape


def _keypoint_channels(head) -> int | None:
    """Output channels of the pose head's keypoint branch (cv4), read from its last convolution."""
    import torch

    branches = getattr(head, "cv4", None)
    if not isinstance(branches, torch.nn.ModuleList) or not len(branches):
        return None
    convs = [m for m in branches[0].modules() if isinstance(m, torch.nn.Conv2d)]
    return convs[-1].out_channels if convs else None


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

    The archive is scanned first (exportkit.safe_load): a checkpoint holding anything but what torch.save
    writes for a model raises CheckpointRefused here, before torch is imported. Returns {} for a file that is
    not a zip-format PyTorch checkpoint (the full load reports those); the pickle is then read with every
    class replaced by an inert stub, so nothing from the file runs.
    """
    import io
    import pickle

    from exportkit.safe_load import CheckpointRefused, scan_archive

    class Peeker(pickle.Unpickler):
        def find_class(self, module, name):
            if module in ("builtins", "__builtin__") and name in ("set", "frozenset"):
                return getattr(__import__("builtins"), name)
            return _Stub

        def persistent_load(self, pid):
            return None

    try:
        scan = scan_archive(Path(path))
    except CheckpointRefused:
        raise
    except (CheckpointError, OSError):
        return {}
    try:
        raw = Peeker(io.BytesIO(scan.pickle)).load()
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
    elif isinstance(model, dict) and yaml is None and model and all(isinstance(k, str) for k in model):
        found["state_dict_keys"] = sorted(model)  # a plain state dict (SAM2): exportkit.families recognises it
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
        raise ConfigError(
            f"vocabulary {path} must hold 'names' and 'embeddings' ({type(exc).__name__}: {exc})"
        ) from None
    width = model.txt_feats.shape[-1]
    if embeddings.shape != (len(names), width):
        raise ConfigError(
            f"vocabulary {path}: embeddings must have shape ({len(names)}, {width}), got {embeddings.shape}"
        )
    model.txt_feats = torch.from_numpy(embeddings).reshape(1, len(names), width)
    model.model[-1].nc = len(names)
    model.names = dict(enumerate(names))
    return names

"""Local INT8 calibration and evaluation images (shared by TFLite and TensorRT); never a download.

``calibration_data`` is a folder of images or an Ultralytics data YAML whose splits are local folders
(or ``.txt`` lists of images). Without it, the generated shapes data set for the model's task is used,
written once into ``.cache/shapes/<task>`` under the project (exportkit/project.py). Calibration reads a YAML's ``train``
split (falling back to ``val``) so its ``val`` split stays unseen for the accuracy measurement.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from exportkit.errors import ConfigError
from exportkit.options import Option

# the INT8 formats' shared option (TensorRT, TFLite): one definition, one check
CALIBRATION_DATA = Option(
    "calibration_data",
    str,
    None,
    "INT8 calibration images: a folder, or a data YAML (its train split); default: the generated shapes data set",
    nullable=True,
)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Fewer images than this calibrate poorly: a warning names the count. More than the maximum add time, not accuracy.
MIN_CALIBRATION_IMAGES = 100
MAX_CALIBRATION_IMAGES = 300
MAX_EVALUATION_IMAGES = 200
YAML_SPLIT_KEYS = frozenset({"path", "train", "val", "test", "names", "nc", "download"})


@dataclass(frozen=True)
class CalibrationData:
    """The images INT8 calibration reads, and the labelled split the accuracy measurement may use."""

    source: str  # what the user gave, or the default data set's YAML
    images: tuple[Path, ...]
    names: tuple[str, ...] | None  # class names of a data YAML; None for a plain folder
    eval_images: tuple[Path, ...] = ()  # the YAML's val split (labelled); empty for a plain folder
    yaml_extra: dict = field(default_factory=dict)  # the YAML's other keys a task needs (kpt_shape, flip_idx ...)


def check_calibration_path(value: str | None) -> None:
    """Config-time check (no heavy imports): a given path exists and is a folder or a YAML file."""
    if value is None:
        return
    try:
        path = Path(value).expanduser()
        found = path.exists()
    except (OSError, ValueError, RuntimeError) as exc:  # too long a name, a NUL byte, '~user' with no such user
        raise ConfigError(
            f"calibration_data {value[:80]!r} is not a usable path ({type(exc).__name__}: {exc})"
        ) from None
    if not found:
        raise ConfigError(f"calibration_data {value!r} does not exist; give a folder of images or a data YAML")
    if path.is_file() and path.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(f"calibration_data {value!r} must be a folder of images or a .yaml data file")


def resolve_calibration(value: str | None, task: str) -> CalibrationData:
    """The calibration images for ``value`` (default: the shapes data set for ``task``)."""
    if value is None:
        yaml_path = default_dataset(task)
        return _from_yaml(yaml_path, _shown(yaml_path))
    path = Path(value).expanduser().resolve()
    if path.is_dir():
        images = images_in(path)
        if not images:
            raise ConfigError(f"calibration_data folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return CalibrationData(_shown(path), _evenly(images, MAX_CALIBRATION_IMAGES), None)
    return _from_yaml(path, _shown(path))


def _shown(path: Path) -> str:
    """A path as recorded in metadata: relative to the repository root when inside it (same on every clone)."""
    from exportkit.project import shown

    return shown(path)


def warn_if_few(data: CalibrationData, prefix: str) -> None:
    used = len(data.images)
    if used < MIN_CALIBRATION_IMAGES:
        log.warning(
            "%s INT8 calibration uses only %d images from %s (at least %d recommended); accuracy may drop",
            prefix,
            used,
            data.source,
            MIN_CALIBRATION_IMAGES,
        )
    else:
        log.info("%s INT8 calibration uses %d images from %s", prefix, used, data.source)


def default_dataset(task: str, cache: Path | None = None) -> Path:
    """The shapes data set's YAML for ``task``, generated (deterministically) when missing."""
    from exportkit import shapes

    if task not in shapes.TASKS:
        raise ConfigError(f"no default calibration data for task {task!r}; pass calibration_data")
    from exportkit.project import cache_dir

    cache = Path(cache) if cache is not None else cache_dir() / "shapes"
    root = cache / task
    if (root / "data.yaml").exists():
        return root / "data.yaml"
    log.info("generating the shapes data set for %s calibration into %s", task, root)
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{task}-", dir=cache))
    try:
        shapes.write_dataset(scratch, task)
        try:
            os.replace(scratch, root)  # atomic: a concurrent export sees all of it or none
        except OSError:  # another export finished first
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return shapes.write_data_yaml(root, task)  # its 'path:' named the scratch folder


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _evenly(paths: list[Path], limit: int) -> tuple[Path, ...]:
    """At most ``limit`` paths, spread evenly over the sorted list (deterministic)."""
    if len(paths) <= limit:
        return tuple(paths)
    step = len(paths) / limit
    return tuple(paths[int(i * step)] for i in range(limit))


def _from_yaml(path: Path, source: str) -> CalibrationData:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"calibration_data {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "names" not in data:
        raise ConfigError(f"calibration_data {path} is not an Ultralytics data YAML (needs 'names' and 'train'/'val')")
    base = Path(data.get("path") or path.parent)
    base = base if base.is_absolute() else (path.parent / base)
    names = data["names"]
    names = tuple(str(names[k]) for k in sorted(names)) if isinstance(names, dict) else tuple(str(n) for n in names)
    split = "train" if data.get("train") else "val"
    images = _split_images(base, data.get(split), path, split)
    val = _split_images(base, data.get("val"), path, "val") if data.get("val") else []
    extra = {k: v for k, v in data.items() if k not in YAML_SPLIT_KEYS}
    return CalibrationData(
        source, _evenly(images, MAX_CALIBRATION_IMAGES), names, _evenly(val, MAX_EVALUATION_IMAGES), extra
    )


def _split_images(base: Path, entry, yaml_path: Path, split: str) -> list[Path]:
    """The images of one split: folders and .txt lists, all local; a missing one is a ConfigError, never a download."""
    if entry is None:
        raise ConfigError(f"calibration_data {yaml_path} has no '{split}' split")
    images: list[Path] = []
    for item in entry if isinstance(entry, list) else [entry]:
        p = Path(str(item))
        p = p if p.is_absolute() else base / p
        if p.is_dir():
            images += images_in(p)
        elif p.is_file() and p.suffix == ".txt":
            lines = [line.strip() for line in p.read_text().splitlines() if line.strip()]
            images += [Path(x) if Path(x).is_absolute() else (p.parent / x) for x in lines]
        else:
            raise ConfigError(
                f"calibration_data {yaml_path}: '{split}' split {p} is not a local folder or .txt list "
                "(exportkit never downloads data sets)"
            )
    if not images:
        raise ConfigError(f"calibration_data {yaml_path}: '{split}' split holds no images")
    return sorted(images)


def letterboxed(paths: tuple[Path, ...], imgsz: int, batch: int = 1) -> Iterator:
    """Float32 NCHW batches in [0, 1], letterboxed exactly like Ultralytics' validation (pad 114, RGB)."""
    import cv2
    import numpy as np
    from ultralytics.data.augment import LetterBox

    from exportkit.progress import progress

    letterbox = LetterBox(new_shape=(imgsz, imgsz), auto=False, scaleup=True, center=True)
    chunk: list = []
    for path in progress(paths, len(paths), "INT8 calibration"):
        image = cv2.imread(str(path))
        if image is None:
            log.warning("calibration: cannot read %s, skipped", path)
            continue
        rgb = letterbox(image=image)[:, :, ::-1]
        chunk.append(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0)
        if len(chunk) == batch:
            yield np.stack(chunk)
            chunk = []
    if chunk:  # a short last batch is tiled up to the fixed batch (repeats leave the statistics unchanged)
        yield np.stack([chunk[i % len(chunk)] for i in range(batch)])


def stage_split(
    images: tuple[Path, ...], folder: Path, names: tuple[str, ...], split: str, extra: dict | None = None
) -> Path:
    """An Ultralytics data YAML in ``folder`` over symlinks to ``images`` (and their labels); ``extra``
    adds task keys such as ``kpt_shape``. Ultralytics writes its label cache beside the labels: staging
    keeps that out of the user's data set."""
    import yaml

    folder = Path(folder)
    image_dir, label_dir = folder / "images" / split, folder / "labels" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        stem = f"{index:05d}"
        _link(image, image_dir / f"{stem}{image.suffix.lower()}")
        label = _label_of(image)
        if label.exists():
            _link(label, label_dir / f"{stem}.txt")
    document = {
        **(extra or {}),
        "path": str(folder.resolve()),
        "train": f"images/{split}",
        "val": f"images/{split}",
        "names": dict(enumerate(names)),
    }
    path = folder / "data.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def model_dataset_keys(model) -> tuple[tuple[str, ...], dict]:
    """An Ultralytics model's class names and the data-YAML keys its task needs (pose: kpt_shape)."""
    names = tuple(str(model.names[i]) for i in sorted(model.names))
    kpt_shape = getattr(model.model[-1], "kpt_shape", None)
    return names, ({"kpt_shape": [int(k) for k in kpt_shape]} if kpt_shape else {})


def _label_of(image: Path) -> Path:
    """Ultralytics' convention: the last /images/ in the path becomes /labels/, the suffix .txt."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _link(source: Path, target: Path) -> None:
    try:
        os.symlink(Path(source).resolve(), target)
    except OSError:
        shutil.copy2(source, target)

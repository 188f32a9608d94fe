"""config -> plan -> export -> metadata -> validate: the one pipeline every entry point calls."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from exportkit.errors import ConfigError, ExportError, ValidationFailed
from exportkit.registry import ExportFormat, ExportRequest, get_format

log = logging.getLogger(__name__)


@dataclass
class ExportPlan:
    """Everything decided before any heavy import: a checked format, options and paths."""

    checkpoint: Path
    format: type[ExportFormat]
    output_dir: Path
    options: dict
    validation: dict = field(default_factory=dict)
    family: str = "yolo"  # exportkit.families: recognised from the checkpoint's peek, before torch

    @property
    def include_validation(self) -> bool:
        return bool(self.options.get("include_validation"))


@dataclass
class ExportResult:
    plan: ExportPlan
    files: list[Path]
    metadata: dict
    seconds: float
    validation: object | None = None


def plan_export(checkpoint: str | Path, format_name: str, output_dir: str | Path, config: dict | None) -> ExportPlan:
    """Check everything that can be checked without torch; raise ConfigError (exit 3) or ExportError (exit 1)."""
    from exportkit.checkpoint import check_checkpoint_path

    if not isinstance(config, dict):
        raise ConfigError(f"export_config must be a JSON object, got {type(config).__name__}")
    from exportkit.guide_config import section_for
    from exportkit.userdata import calibration_from_data, split_validation

    fmt = get_format(str(format_name).lower())
    config = section_for(
        dict(config), fmt.name
    )  # the guide's {"onnx": {...}, "coreml": {...}} file: this format's part
    validation = config.pop("validation", {})
    if not isinstance(validation, dict):
        raise ConfigError(f"export_config 'validation' must be a JSON object, got {validation!r}")
    thresholds, own = split_validation(validation)
    validation = {**thresholds, **own}
    options = fmt.resolve(calibration_from_data(config, {o.name for o in fmt.options}, own))
    output_dir = check_output_dir(Path(output_dir))
    checkpoint = check_checkpoint_path(Path(checkpoint))
    family = check_capability(checkpoint, fmt.name)
    family.check_options(fmt, options)
    family.check_thresholds(thresholds)  # a misspelled threshold is exit 3 with or without include_validation
    fmt.check_environment(options)
    return ExportPlan(checkpoint, fmt, output_dir, options, validation, family.name)


def check_capability(checkpoint: Path, format_name: str):
    """Refuse a model x format cell the capability matrix marks unsupported (exit 3), before loading torch;
    return the checkpoint's model family (exportkit.families), recognised from the same peek."""
    from exportkit.capabilities import capability_reason
    from exportkit.checkpoint import peek_checkpoint
    from exportkit.families import family_for_peek

    peeked = peek_checkpoint(checkpoint)
    family = family_for_peek(peeked)
    architecture = family.architecture(peeked) or checkpoint.stem
    reason = capability_reason(architecture, format_name)
    if reason:
        raise ConfigError(f"{checkpoint.name}: {reason}")
    return family


def check_output_dir(path: Path) -> Path:
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output_dir {path} exists and is not a directory")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"output_dir {path} is not a directory path ({parent} is a file)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"output_dir {path} is not writable (no write permission on {parent})")
    probe_mkdir(path)
    return path.resolve()


def probe_mkdir(path: Path) -> None:
    """Create ``path`` and remove what was created: a read-only file system or a refused mkdir is a ConfigError now."""
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"output_dir {path} cannot be created: {exc.strerror} ({exc.filename}); pick a writable folder"
        ) from None
    for folder in created:
        folder.rmdir()


def run_export(plan: ExportPlan) -> ExportResult:
    """Under the folder's lock: export into a staging folder, describe, validate, then publish atomically."""
    from exportkit.families import get_family
    from exportkit.publish import folder_lock, make_staging, remove_stale

    family = get_family(plan.family)
    start = time.perf_counter()
    make_output_dir(plan.output_dir)
    with folder_lock(plan.output_dir, timeout=lock_timeout()):
        remove_stale(plan.output_dir)
        staging = make_staging(plan.output_dir)
        try:
            result = family().export_into(plan, staging)
            _publish(staging, plan.output_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    result.files = family.artifact_paths(plan.format, plan.output_dir)
    result.seconds = time.perf_counter() - start
    _log_line(result)
    if result.validation is not None and result.validation.status == "failed":
        raise ValidationFailed(f"validation failed for {plan.output_dir}: {result.validation.summary()}")
    return result


def export_yolo_into(plan: ExportPlan, staging: Path) -> ExportResult:
    """The YOLO family's export (exportkit.families.yolo): one Ultralytics model, one artifact set."""
    from exportkit.checkpoint import load_checkpoint
    from exportkit.metadata import build_metadata, embedded_metadata, read_metadata, write_metadata

    yolo, info = load_checkpoint(plan.checkpoint, imgsz=plan.options["imgsz"])
    if plan.options.get("vocabulary"):
        from exportkit.checkpoint import apply_vocabulary

        info.names = apply_vocabulary(yolo, Path(plan.options["vocabulary"]))
    imgsz = plan.options["imgsz"] or info.imgsz
    if imgsz % max(info.strides):
        raise ConfigError(f"imgsz {imgsz} must be a multiple of the model stride {max(info.strides)}")
    yolo.model.pt_path = str(staging / "model.pt")  # Ultralytics names its outputs after this path
    fmt = plan.format()
    request = ExportRequest(yolo, staging, plan.options, imgsz, info.task, embedded_metadata(info, imgsz))
    export_start = time.perf_counter()
    files = fmt.export(request)
    export_seconds = round(time.perf_counter() - export_start, 2)
    check_files(plan.format.artifact_paths(staging), plan.format.name)
    clean_staging(plan.format.artifact_paths(staging), staging)
    metadata = build_metadata(info, plan.format, plan.options, fmt.describe(staging), staging, imgsz)
    metadata["export_seconds"] = export_seconds
    write_metadata(metadata, staging)
    result = ExportResult(plan, files, metadata, 0.0)
    if plan.include_validation:
        from exportkit.families import family_for_metadata  # the family validates (exportkit.validation, a layer above)

        written = read_metadata(staging)
        result.validation = family_for_metadata(written)().validate_folder(
            staging, written, None, plan.validation, (yolo, info)
        )
    return result


def _publish(staging: Path, output_dir: Path) -> None:
    """Publish with termination signals held back: an export is published whole or not at all."""
    from exportkit.interrupts import Interrupted, deferred
    from exportkit.publish import publish

    try:
        with deferred():
            publish(staging, output_dir)
    except Interrupted as exc:  # it arrived during the publish, which finished first
        exc.published = True
        raise


def make_output_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output_dir {path} cannot be created ({exc.strerror or type(exc).__name__})") from None


def lock_timeout() -> float | None:
    """EXPORTKIT_LOCK_TIMEOUT seconds to wait for another export into the same folder; unset: wait."""
    value = os.environ.get("EXPORTKIT_LOCK_TIMEOUT", "").strip()
    try:
        return float(value) if value else None
    except ValueError:
        raise ConfigError(f"EXPORTKIT_LOCK_TIMEOUT must be a number of seconds, got {value!r}") from None


def check_files(paths: list[Path], format_name: str) -> None:
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise ExportError(f"{format_name} export wrote no {', '.join(missing)}")


def clean_staging(paths: list[Path], staging: Path) -> None:
    """Leave only the declared artifact files (``paths``) in the staging folder."""
    keep = {p.name for p in paths}
    for entry in staging.iterdir():
        if entry.name not in keep:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _log_line(result: ExportResult) -> None:
    size = sum(e["bytes"] for e in result.metadata["artifacts"]) / 1e6
    log.info(
        "%s export success %.1fs, saved as %s (%.1f MB)",
        result.plan.format.title,
        result.seconds,
        ", ".join(str(p) for p in result.files),
        size,
    )

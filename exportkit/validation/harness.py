"""Parity of an exported artifact against its PyTorch model: gather every check, then decide.

The reference is the PyTorch model fed by Ultralytics' own preprocessing at the artifact's true input
size; the exported side is what a deployment runs: the runtime's preprocessing driven by metadata.json,
the format's runner, the runtime's decoding. So a wrong colour order, input size or class layout in the
metadata fails here, as does a damaged graph. Inputs: the bundled sample images, a seeded random tensor,
and a batch of two when the batch axis is dynamic. Where the reference finds no detection (an untrained
model, noise), the top-k candidates by score are compared instead; a check that compared nothing fails.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from exportkit.checkers import Check, gather_format_checks
from exportkit.errors import ConfigError, EnvironmentUnsupported, ExportError, RuntimeRefused
from exportkit.validation.parity import detection_checks, raw_checks, top_k_checks
from exportkit.validation.reference import reference_metadata, reference_runner, reference_tensor

log = logging.getLogger(__name__)


# Per precision; None records the value without gating on it. Box, confidence and class criteria are the
# export guide's (IoU > 0.95, confidence difference < 0.05, same class); FP16 and INT8 are looser.
DEFAULT_THRESHOLDS: dict[str, dict] = {
    "fp32": {
        "box_iou": 0.95,
        "confidence_diff": 0.05,
        "mask_iou": 0.90,
        "keypoint_px": 2.0,
        "raw_rel_max_diff": 1e-3,
        "raw_cosine": 0.9999,
        "top_k": 10,
    },
    "fp16": {
        "box_iou": 0.95,
        "confidence_diff": 0.05,
        "mask_iou": 0.85,
        "keypoint_px": 3.0,
        "raw_rel_max_diff": None,
        "raw_cosine": 0.999,
        "top_k": 10,
    },
    "int8": {
        "box_iou": 0.80,
        "confidence_diff": 0.15,
        "mask_iou": 0.70,
        "keypoint_px": 12.0,
        "raw_rel_max_diff": None,
        "raw_cosine": 0.98,
        "top_k": 10,
    },
}


@dataclass
class ParityReport:
    format: str
    precision: str
    thresholds: dict = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)
    skipped: str | None = None
    accuracy: dict | None = None  # box mAP of the artifact and the .pt on validation.data's val split

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    @property
    def status(self) -> str:
        if self.failures or (not self.checks and not self.skipped):
            return "failed"
        return "skipped" if self.skipped else "passed"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def worst(self) -> dict:
        def pick(suffix: str, fn):
            values = [c.value for c in self.checks if c.criterion.endswith(suffix) and c.value == c.value]
            return fn(values) if values else None

        return {
            "box_iou": pick("box_iou_min", min),
            "confidence_diff": pick("confidence_diff_max", max),
            "mask_iou": pick("mask_iou_min", min),
            "keypoint_px": pick("keypoint_px_max", max),
            "raw_max_abs_diff": pick("max_abs_diff", max),
            "raw_cosine": pick("cosine", min),
        }

    def summary(self) -> str:
        if self.status == "skipped":
            return f"numeric parity skipped: {self.skipped} ({sum(c.passed is True for c in self.checks)} other checks passed)"
        if not self.checks:
            return "failed: no check compared anything"
        if not self.failures:
            compared = sum(v.get("boxes_compared", 0) for v in self.inputs.values())
            return f"passed {len(self.checks)} checks on {len(self.inputs)} inputs ({compared} boxes compared)"
        first = self.failures[0]
        value = f"{first.value:.4g}" if isinstance(first.value, float) else first.value
        return (
            f"{len(self.failures)} of {len(self.checks)} checks failed, first: {first.input} {first.criterion}={value}"
            f" (limit {first.threshold}){': ' + first.detail if first.detail else ''}"
        )

    def to_json(self) -> dict:
        return {
            "format": self.format,
            "precision": self.precision,
            "status": self.status,
            "passed": self.passed,
            "skipped": self.skipped,
            "summary": self.summary(),
            "thresholds": self.thresholds,
            "worst": self.worst(),
            "inputs": self.inputs,
            "checks": [asdict(c) for c in self.checks],
            **({"accuracy": self.accuracy} if self.accuracy else {}),
        }


def thresholds_for(precision: str, overrides: dict | None) -> dict:
    merged = dict(DEFAULT_THRESHOLDS.get(precision, DEFAULT_THRESHOLDS["fp32"]))
    for key, value in (overrides or {}).items():
        if key not in merged:
            raise ConfigError(f"unknown validation threshold {key!r}; accepted: {', '.join(sorted(merged))}")
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"validation threshold {key!r} must be a non-negative number or null, got {value!r}")
        merged[key] = value
    return merged


# -- inputs and the loop ------------------------------------------------------------------------------
def artifact_input_size(io, metadata: dict) -> tuple[int, int]:
    """The input size the artifact really has (from the artifact, not from metadata.json)."""
    shape = io.inputs[0].shape
    h, w = (shape[2], shape[3]) if len(shape) == 4 and shape[1] in (1, 3) else (shape[1], shape[2])
    if h <= 0 or w <= 0:
        h, w = metadata["input_shape"][:2]
    return int(h), int(w)


def __getattr__(name: str):
    if name == "SAMPLES_DIR":  # the old constant's name: the package's sample images
        from exportkit.project import samples_dir

        return samples_dir()
    raise AttributeError(f"module 'exportkit.validation.harness' has no attribute {name!r}")


def sample_images() -> list[Path]:
    """The sample images shipped in the package (models/samples in a checkout)."""
    from exportkit.project import samples_dir

    return sorted(samples_dir().glob("*.jpg")) + sorted(samples_dir().glob("*.png"))


def sample_input(metadata: dict) -> np.ndarray:
    """The first sample image as a deployment feeds it to the artifact (what the report times)."""
    import cv2

    return exported_input(cv2.imread(str(sample_images()[0])), metadata)[0]


def _image_case(name, image, run_ref, run_exp, metadata, ref_meta, size, limits):
    from exportkit.runtime_import import runtime_module

    decode, plan_letterbox = runtime_module("postprocess").decode, runtime_module("preprocess").plan_letterbox

    conf = ref_meta["postprocessing"]["confidence_threshold"]
    ref_raw = run_ref(reference_tensor(image, size))
    ref_result = decode(ref_raw, ref_meta, [plan_letterbox(image.shape[:2], size).geometry], conf=conf)[0]
    tensor, geometry = exported_input(image, metadata)
    exp_raw = run_exp(tensor)
    exp_px = in_input_pixels(exp_raw, metadata, size)  # raw comparisons in the reference's units
    checks = raw_checks(name, ref_raw, exp_px, limits)
    exp_result = decode(exp_raw, metadata, [geometry], conf=conf)[0]
    if len(ref_result) == 0:
        more, summary = top_k_checks(name, ref_raw[0], exp_px[0], len(ref_meta["class_names"]), limits)
    else:
        more, summary = detection_checks(name, ref_result, exp_result, limits, conf, float(min(geometry.ratio)))
    return checks + more, summary, tensor


def exported_input(image_bgr: np.ndarray, metadata: dict):
    """What a deployment feeds the artifact: the runtime's letterbox and normalisation driven by metadata.json.

    Returns the tensor in NCHW (the layout the format runners take) and the runtime's Geometry for decoding.
    """
    from exportkit.runtime_import import runtime_module

    Normalizer, as_spec = runtime_module("preprocess").Normalizer, runtime_module("spec").as_spec

    spec = as_spec(metadata)
    tensor, (geometry,) = Normalizer(spec.preprocessing, metadata["input_dtype"]).letterbox_batch([image_bgr])
    return (tensor.transpose(0, 3, 1, 2) if spec.preprocessing.layout == "NHWC" else tensor), geometry


def run_cases(
    report: ParityReport, run_ref, run_exp, metadata: dict, ref_meta: dict, size, limits: dict, images=None
) -> None:
    import cv2

    tensors = []
    for path in images or sample_images():
        name = f"image:{path.name}"
        try:
            checks, summary, tensor = _image_case(
                name, cv2.imread(str(path)), run_ref, run_exp, metadata, ref_meta, size, limits
            )
            tensors.append(tensor)
        except Exception as exc:  # a damaged artifact or metadata: record it, keep going
            checks, summary = (
                [Check(name, "run", 0, None, False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")],
                {"mode": "error", "boxes_compared": 0},
            )
        report.checks += checks
        report.inputs[name] = {**summary, "passed": all(c.passed is not False for c in checks)}
    _random_case(report, run_ref, run_exp, metadata, size, limits)
    if metadata["dynamic"]["batch"] and len(tensors) >= 2:
        _batch_case(report, run_ref, run_exp, tensors[:2], limits)


def _random_case(report, run_ref, run_exp, metadata, size, limits) -> None:
    name = "random"
    x = np.random.default_rng(0).random((1, 3, *size), dtype=np.float32)
    try:
        ref_raw, exp_raw = run_ref(x), in_input_pixels(run_exp(x.astype(metadata["input_dtype"])), metadata, size)
        checks = raw_checks(name, ref_raw, exp_raw, limits)
        more, summary = top_k_checks(name, ref_raw[0], exp_raw[0], metadata["num_classes"], limits)
        checks += more
        if report.precision == "int8":  # calibrated on real images: noise lies outside its ranges
            for check in checks:
                check.passed, check.detail = (
                    None,
                    "recorded, not gating: INT8 is calibrated on real images, not on noise",
                )
    except Exception as exc:
        checks, summary = (
            [Check(name, "run", 0, None, False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")],
            {"mode": "error", "boxes_compared": 0},
        )
    report.checks += checks
    report.inputs[name] = {**summary, "passed": all(c.passed is not False for c in checks)}


def in_input_pixels(raw: list[np.ndarray], metadata: dict, size: tuple[int, int]) -> list[np.ndarray]:
    """Exported raw outputs with normalized box and keypoint x, y (``box_units: normalized``, e.g. TFLite)
    scaled to input pixels, the reference's units; other outputs and pixel-unit models are returned as they are."""
    pred = metadata["output_layout"]["predictions"]
    boxes_norm = pred.get("box_units") == "normalized"
    kpts_norm = "keypoints" in pred and pred.get("keypoint_units", pred.get("box_units")) == "normalized"
    if (
        not (boxes_norm or kpts_norm)
        or pred.get("shape_order", "batch, channels, anchors") != "batch, channels, anchors"
    ):
        return raw
    h, w = size
    y = np.array(raw[0], dtype=np.float32, copy=True)
    if boxes_norm:
        start, end = pred["box"]
        y[:, start:end] *= np.array([w, h, w, h], np.float32)[: end - start, None]
    if kpts_norm:
        start, end = pred["keypoints"]
        dims = 3 if "visibility" in pred.get("keypoint_format", "") else 2
        y[:, start:end:dims] *= w
        y[:, start + 1 : end : dims] *= h
    return [y, *raw[1:]]


def _batch_case(report, run_ref, run_exp, tensors, limits) -> None:
    name = f"batch{len(tensors)}"
    batch = np.concatenate(tensors)
    exp_raw = run_exp(batch)
    ref_raw = [np.concatenate(parts) for parts in zip(*[run_ref(t.astype(np.float32)) for t in tensors])]
    checks = raw_checks(name, ref_raw, exp_raw, limits)
    report.checks += checks
    report.inputs[name] = {
        "mode": "raw",
        "boxes_compared": 0,
        "batch": len(tensors),
        "passed": all(c.passed is not False for c in checks),
    }


def validate_folder(
    folder: Path, checkpoint: Path | None = None, thresholds: dict | None = None, loaded=None
) -> ParityReport:
    """Compare the artifact in ``folder`` with its PyTorch model; write validation.json; return the report.
    The model family that wrote the folder (metadata.json's ``model_family``) does the comparing."""
    from exportkit.families import family_for_metadata
    from exportkit.metadata import read_metadata

    folder = Path(folder)
    metadata = read_metadata(folder)
    return family_for_metadata(metadata)().validate_folder(folder, metadata, checkpoint, thresholds, loaded)


def validate_yolo_folder(
    folder: Path, metadata: dict, checkpoint: Path | None, thresholds: dict | None, loaded=None
) -> ParityReport:
    """The YOLO family's validation (exportkit.families.yolo)."""
    from exportkit.checkpoint import load_checkpoint
    from exportkit.registry import get_format

    fmt = get_format(metadata["export_format"])()
    report = ParityReport(fmt.name, metadata.get("precision", "fp32"))
    from exportkit import userdata
    from exportkit.validation import own_data

    thresholds, own = userdata.split_validation(thresholds)
    report.thresholds = limits = thresholds_for(report.precision, thresholds)
    report.checks += metadata_checks(metadata)
    checkpoint = Path(checkpoint or metadata["checkpoint"]["path"])
    if loaded is not None:  # (YOLO, CheckpointInfo) the exporter already holds, vocabulary applied
        yolo, info = loaded
    else:
        yolo, info = load_checkpoint(checkpoint)
        if metadata.get("export_config", {}).get("vocabulary"):
            from exportkit.checkpoint import apply_vocabulary

            info.names = apply_vocabulary(yolo, Path(metadata["export_config"]["vocabulary"]))
    run_exported = None
    if gather_format_checks(report, fmt, folder, metadata):
        try:
            run_exported = fmt.runner(folder)
        except RuntimeRefused as exc:  # the runtime a deployment runs cannot load it: a failure, not a skip
            report.checks.append(Check("artifact", "runtime.load", 0, None, False, exc.one_line()))
        except (EnvironmentUnsupported, ExportError) as exc:
            report.skipped = exc.one_line()
    else:
        report.skipped = "numeric parity not run: the artifact fails its format's checker"
    if run_exported is not None:
        size = artifact_input_size(fmt.describe(folder), metadata)
        images = own_data.parity_images(own, metadata)
        run_cases(
            report,
            reference_runner(yolo),
            run_exported,
            metadata,
            reference_metadata(metadata, info, size),
            size,
            limits,
            images,
        )
        report.accuracy = own_data.data_accuracy(
            own, run_exported, reference_runner(yolo), metadata, reference_metadata(metadata, info, size)
        )
    (folder / "validation.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    log.info("validation %s: %s", fmt.name, report.summary())
    log.info("%s", format_table(report))
    return report


def metadata_checks(metadata: dict) -> list[Check]:
    """metadata.json agrees with itself (num_classes, class_names, output channels): one failed check per problem."""
    from exportkit.metadata import consistency_problems

    return [
        Check("metadata.json", "metadata.consistency", 0, None, False, problem)
        for problem in consistency_problems(metadata)
    ]


def format_table(report: ParityReport) -> str:
    """A short console table: one row per input."""
    rows = [f"{'input':34} {'mode':10} {'boxes':>5}  result"]
    for name, summary in report.inputs.items():
        rows.append(
            f"{name[:34]:34} {summary['mode']:10} {summary['boxes_compared']:>5}  {'ok' if summary['passed'] else 'FAIL'}"
        )
    worst = {k: v for k, v in report.worst().items() if v is not None}
    rows.append("worst: " + ", ".join(f"{k}={v:.4g}" for k, v in worst.items()))
    return "\n".join(rows)

"""Parity of an exported artifact against its PyTorch model: gather every check, then decide."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from exportkit.errors import ConfigError, ExportError

log = logging.getLogger(__name__)

# Raw-output tolerance: max |exported - reference| relative to max |reference|, per precision.
DEFAULT_THRESHOLDS = {
    "fp32": {"raw_rel_max_diff": 1e-3},
    "fp16": {"raw_rel_max_diff": 2e-2},
    "int8": {"raw_rel_max_diff": 2e-1},
}


@dataclass
class Check:
    input: str
    criterion: str
    value: float
    threshold: float | None
    passed: bool | None  # None: recorded, not gating
    detail: str = ""


@dataclass
class ParityReport:
    format: str
    precision: str
    checks: list[Check] = field(default_factory=list)
    skipped: str | None = None

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    @property
    def passed(self) -> bool:
        return self.skipped is None and bool(self.checks) and not self.failures

    def summary(self) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        if not self.failures:
            return f"passed {len(self.checks)} checks"
        worst = self.failures[0]
        return f"{len(self.failures)} of {len(self.checks)} checks failed, first: {worst.input} {worst.criterion}={worst.value:.4g} (limit {worst.threshold})"

    def to_json(self) -> dict:
        return {"format": self.format, "precision": self.precision, "passed": self.passed, "skipped": self.skipped,
                "summary": self.summary(), "checks": [asdict(c) for c in self.checks]}


def thresholds_for(precision: str, overrides: dict | None) -> dict:
    merged = dict(DEFAULT_THRESHOLDS.get(precision, DEFAULT_THRESHOLDS["fp32"]))
    for key, value in (overrides or {}).items():
        if key not in merged:
            raise ConfigError(f"unknown validation threshold {key!r}; accepted: {', '.join(sorted(merged))}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"validation threshold {key!r} must be a non-negative number, got {value!r}")
        merged[key] = float(value)
    return merged


def reference_runner(yolo):
    """The PyTorch model in export mode: the same raw outputs the exporter traced."""
    import copy

    import torch
    from ultralytics.nn.modules import Detect

    model = copy.deepcopy(yolo.model).float().eval().fuse()
    for module in model.modules():
        if isinstance(module, Detect):
            module.export, module.format, module.dynamic = True, "onnx", False
            module.shape = None

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            y = model(torch.from_numpy(x))
        y = y if isinstance(y, (list, tuple)) else [y]
        return [t.float().numpy() for t in y]

    return run


def raw_checks(name: str, reference: list[np.ndarray], exported: list[np.ndarray], limits: dict) -> list[Check]:
    if len(reference) != len(exported):
        return [Check(name, "output_count", len(exported), len(reference), False, "exported model has a different number of outputs")]
    checks = []
    for i, (ref, out) in enumerate(zip(reference, exported)):
        if ref.shape != out.shape:
            checks.append(Check(name, f"output{i}.shape", 0, None, False, f"{list(out.shape)} != {list(ref.shape)}"))
            continue
        diff = np.abs(out.astype(np.float64) - ref)
        scale = float(np.abs(ref).max()) or 1.0
        a, b = ref.reshape(-1).astype(np.float64), out.reshape(-1).astype(np.float64)
        cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        rel = float(diff.max()) / scale
        limit = limits["raw_rel_max_diff"]
        checks += [
            Check(name, f"output{i}.rel_max_abs_diff", rel, limit, rel <= limit),
            Check(name, f"output{i}.max_abs_diff", float(diff.max()), None, None),
            Check(name, f"output{i}.mean_abs_diff", float(diff.mean()), None, None),
            Check(name, f"output{i}.cosine_similarity", cosine, None, None),
        ]
    return checks


def validation_inputs(metadata: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Named NCHW inputs: a seeded random tensor (more kinds are added by the validation issue)."""
    h, w, c = metadata["input_shape"]
    batch = metadata["inputs"][0]["shape"][0]
    batch = batch if batch > 0 else 1
    rng = np.random.default_rng(seed)
    return {"random": rng.random((batch, c, h, w), dtype=np.float32)}


def validate_folder(folder: Path, checkpoint: Path | None = None, thresholds: dict | None = None, yolo=None) -> ParityReport:
    """Compare the artifact in ``folder`` with its PyTorch model; write validation.json; return the report."""
    from exportkit.metadata import read_metadata
    from exportkit.registry import get_format

    folder = Path(folder)
    metadata = read_metadata(folder)
    fmt = get_format(metadata["export_format"])()
    report = ParityReport(fmt.name, metadata.get("precision", "fp32"))
    limits = thresholds_for(report.precision, thresholds)
    if yolo is None:
        from exportkit.checkpoint import load_checkpoint

        yolo, _ = load_checkpoint(Path(checkpoint or metadata["checkpoint"]["path"]))
    try:
        run_exported = fmt.runner(folder)
    except ExportError as exc:
        report.skipped = str(exc)
        run_exported = None
    if run_exported is not None:
        run_reference = reference_runner(yolo)
        for name, x in validation_inputs(metadata).items():
            report.checks += raw_checks(name, run_reference(x), run_exported(x), limits)
    (folder / "validation.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    log.info("validation %s: %s", fmt.name, report.summary())
    return report

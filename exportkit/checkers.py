"""Each format's own checker on its artifact, as gating validation rows (``ExportFormat.format_checks``).

A checker is the format's reference loader (onnx.checker with full shape and type inference, OpenVINO's
``read_model``, LiteRT's tensor allocation, coremltools' spec load, ``torch.jit.load``): an artifact it
refuses would be refused by a deployment too, whatever the numbers say. Rows are gathered, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FORMAT_CHECK = "format_check"  # the ``input`` of every checker row in validation.json
ONNX_CHECKER = "onnx.checker.check_model(full_check=True)"


@dataclass
class Check:
    """One row of validation.json: what was compared on which input, the value, its limit, the verdict."""

    input: str
    criterion: str
    value: float
    threshold: float | None
    passed: bool | None  # None: recorded, not gating
    detail: str = ""


def gather_format_checks(report, fmt, folder: Path, metadata: dict) -> bool:
    """``fmt``'s checks (``ExportFormat.format_checks``) into the ParityReport ``report``; False where its
    checker refused the artifact (then numeric parity is not run: there is nothing sound to run)."""
    checks = fmt.format_checks(folder, metadata)
    report.checks += checks
    checkers = [c for c in checks if c.input == FORMAT_CHECK]  # (CoreML adds its spec-vs-metadata rows)
    passed = all(c.passed is not False for c in checkers)
    if checkers:
        report.inputs[FORMAT_CHECK] = {
            "mode": "checker",
            "boxes_compared": 0,
            "passed": passed,
            "checkers": [c.criterion for c in checkers],
        }
    return passed


def run_checker(checker: str, artifact: Path, call: Callable[[], object]) -> Check:
    """``call()`` passing is a passed row; any exception it raises is a failed row naming the artifact."""
    try:
        call()
    except Exception as exc:  # the checker's own error types vary (ValidationError, RuntimeError, ...)
        detail = f"{Path(artifact).name}: {type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
        return Check(FORMAT_CHECK, checker, 0.0, 1.0, False, detail)
    return Check(FORMAT_CHECK, checker, 1.0, 1.0, True, f"{Path(artifact).name} passed")


def not_checkable(checker: str, reason: str) -> Check:
    """A checker that cannot run on this machine: recorded, not gating, never reported as passed."""
    return Check(FORMAT_CHECK, checker, 0.0, None, None, f"not run: {reason}")


def check_onnx(path: Path) -> Check:
    """onnx.checker on the file path (models over 2 GB need the path form) with strict shape inference."""

    def call():
        import onnx

        onnx.checker.check_model(str(path), full_check=True)

    return run_checker(ONNX_CHECKER, path, call)

"""The guide's "Programmatic Export" as a Python API.

    import exportkit
    result = exportkit.export("best.pt", "onnx", "exports/onnx", {"include_validation": True})
    result.files, result.metadata, result.validation

Raises the typed errors the CLI maps to exit codes: ConfigError (3), ExportError (1), ValidationFailed (2,
raised after the export is published). Checks run before torch is imported; torch loads only to export.
"""

from __future__ import annotations

from pathlib import Path

from exportkit.pipeline import ExportResult


def export(checkpoint: str | Path, format: str, output_dir: str | Path, config: dict | None = None) -> ExportResult:  # noqa: A002 (the guide's name)
    """Export ``checkpoint`` to ``format`` into ``output_dir``; ``config`` is an export_config object (or the
    guide's per-format file, already loaded) and may hold ``include_validation`` and ``validation``."""
    from exportkit.pipeline import plan_export, run_export

    return run_export(plan_export(checkpoint, format, output_dir, dict(config or {})))

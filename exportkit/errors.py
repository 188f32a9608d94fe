"""Typed errors, one exit code each (the export guide's contract)."""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_EXPORT_FAILED = 1
EXIT_VALIDATION_FAILED = 2
EXIT_CONFIG_ERROR = 3


class ExportkitError(Exception):
    """Base class: every error the CLI turns into one line on stderr and an exit code."""

    exit_code = EXIT_EXPORT_FAILED

    def one_line(self) -> str:
        return " ".join(str(self).split())


class ConfigError(ExportkitError):
    """Invalid arguments, unknown format or option, wrong type, out-of-range value."""

    exit_code = EXIT_CONFIG_ERROR


class ExportError(ExportkitError):
    """The checkpoint could not be loaded or the exporter failed."""

    exit_code = EXIT_EXPORT_FAILED


class CheckpointError(ExportError):
    """Missing, unreadable, or not an Ultralytics model."""


class CheckpointRefused(CheckpointError):
    """The checkpoint holds something torch.save never writes for an Ultralytics model (exit 1)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"checkpoint {Path(path).name} refused: {reason}; nothing from it was run")
        self.reason = reason


class MissingDependency(ExportError):
    """A package the format needs is not installed; never installed at run time."""

    def __init__(self, package: str, extra: str):
        outside = outside_project_venv()
        if outside:
            advice = (
                f"this Python ({outside[0]}) is not the project's environment {outside[1]}; run it there: "
                f"`source {outside[1]}/bin/activate`, or {outside[1]}/bin/python ..."
            )
        else:
            advice = f"install it with: pip install -e '.[{extra}]'"
        super().__init__(f"package {package!r} is not installed; {advice}")
        self.package, self.extra = package, extra


def missing_module(exc: ModuleNotFoundError) -> MissingDependency:
    """A core package missing (omegaconf, hydra, numpy): the same advice as a format's missing package."""
    return MissingDependency(exc.name or str(exc), "all")


def outside_project_venv(cwd: str | None = None) -> tuple[str, str] | None:
    """(sys.prefix, ./.venv) when a project .venv exists here but this interpreter does not run from it."""
    import os
    import sys

    venv = os.path.join(cwd or os.getcwd(), ".venv")
    if not os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        return None
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return None
    return sys.prefix, os.path.relpath(venv) if cwd is None else venv


class EnvironmentUnsupported(ExportError):
    """The format cannot run on this machine (no GPU, not macOS, missing tool)."""


class RuntimeRefused(ExportError):
    """The deployment runtime refuses the artifact or its metadata.json (validation records it as a failed check)."""


class ValidationFailed(ExportkitError):
    """The export succeeded but its outputs do not match the PyTorch model."""

    exit_code = EXIT_VALIDATION_FAILED

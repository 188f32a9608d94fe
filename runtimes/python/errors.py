"""Typed errors of the Python runtime, each mapped to one CLI exit code.

``InferenceError`` is the base: catch it to handle every failure the runtime reports on purpose.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BAD_MODEL = 3
EXIT_MISSING_PACKAGE = 4


class InferenceError(Exception):
    """Base class: the CLI prints one line on stderr and exits with ``exit_code``."""

    exit_code = EXIT_FAILED

    def one_line(self) -> str:
        return f"{type(self).__name__}: " + " ".join(str(self).split())


class RuntimeInputError(InferenceError):
    """An image that cannot be read or used: missing file, undecodable bytes, wrong type, shape or dtype."""

    exit_code = EXIT_BAD_INPUT


class ModelLoadError(InferenceError):
    """The model or metadata.json is missing, unreadable, malformed, or the backend refused to load it."""

    exit_code = EXIT_BAD_MODEL


class MetadataMismatch(ModelLoadError):
    """metadata.json disagrees with the model (input size, class count vs output channels, outputs, format)."""


class BackendUnavailable(InferenceError):
    """The package the artifact's backend needs is not installed (never installed at run time)."""

    exit_code = EXIT_MISSING_PACKAGE

    def __init__(self, package: str, export_format: str):
        super().__init__(
            f"running a {export_format} artifact needs the {package!r} package, which is not installed; "
            f"install it with: pip install {package}"
        )
        self.package = package

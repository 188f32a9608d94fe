"""Model families: what the pipeline needs to know about a kind of checkpoint, behind one interface.

A family recognises its checkpoints from the keys ``exportkit.checkpoint.peek_checkpoint`` reads without
torch, names its artifact files per format, exports into a staging folder (load, export split, metadata) and
validates an export folder against its PyTorch model. The pipeline calls these methods and nothing else, so a
new family is one new module registered here, not branches across pipeline, metadata and validation.

    yolo   Ultralytics YOLO checkpoints (a pickled model): today's code paths, unchanged
    sam2   SAM2 state dicts ({"model": state_dict}): a promptable image encoder + prompt decoder pair
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from exportkit.errors import ConfigError

if TYPE_CHECKING:
    from exportkit.pipeline import ExportPlan, ExportResult
    from exportkit.registry import ExportFormat

FAMILY_MODULES = ("sam2", "yolo")  # asked in this order; yolo recognises everything the others do not
DEFAULT_FAMILY = "yolo"


class ModelFamily:
    """Base of every family; subclasses set ``name`` and implement the methods the pipeline calls."""

    name: ClassVar[str]

    @classmethod
    def recognises(cls, peeked: dict) -> bool:
        """Whether ``peeked`` (from ``peek_checkpoint``, no torch) is one of this family's checkpoints."""
        raise NotImplementedError

    @classmethod
    def architecture(cls, peeked: dict) -> str | None:
        """The architecture name the capability matrix knows this checkpoint by (None: from the file name)."""
        return peeked.get("architecture")

    @classmethod
    def check_options(cls, fmt: type[ExportFormat], options: dict) -> None:
        """Refuse options this family cannot honour with a ConfigError (no torch). Accept all by default."""

    @classmethod
    def check_thresholds(cls, thresholds: dict) -> None:
        """Refuse an unknown or ill-typed validation threshold with a ConfigError (no torch)."""

    @classmethod
    def artifact_paths(cls, fmt: type[ExportFormat], folder: Path) -> list[Path]:
        return fmt.artifact_paths(folder)

    def export_into(self, plan: ExportPlan, staging: Path) -> ExportResult:
        """Load the checkpoint, write the artifacts and metadata.json into ``staging``; validate when asked."""
        raise NotImplementedError

    def validate_folder(
        self, folder: Path, metadata: dict, checkpoint: Path | None, thresholds: dict | None, loaded=None
    ):
        """Compare the export in ``folder`` with its PyTorch model; write validation.json; return a ParityReport."""
        raise NotImplementedError


_REGISTRY: dict[str, type[ModelFamily]] = {}


def register_family(cls: type[ModelFamily]) -> type[ModelFamily]:
    if cls.name in _REGISTRY:
        raise ValueError(f"model family {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    for module in FAMILY_MODULES:
        importlib.import_module(f"exportkit.families.{module}")


def get_family(name: str) -> type[ModelFamily]:
    _load_all()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model family {name!r}; expected one of: {'|'.join(FAMILY_MODULES)}")
    return _REGISTRY[name]


def family_for_peek(peeked: dict) -> type[ModelFamily]:
    """The family whose checkpoints look like ``peeked``; YOLO when no other family claims it."""
    _load_all()
    for name in FAMILY_MODULES:
        if _REGISTRY[name].recognises(peeked):
            return _REGISTRY[name]
    return _REGISTRY[DEFAULT_FAMILY]


def family_for_metadata(metadata: dict) -> type[ModelFamily]:
    """The family that wrote an export folder's metadata.json (``model_family``; absent: YOLO, as before)."""
    name = metadata.get("model_family", DEFAULT_FAMILY) if isinstance(metadata, dict) else DEFAULT_FAMILY
    return get_family(str(name))

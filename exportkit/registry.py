"""The format registry: one registered module per format, its facts on the class.

The CLI's checks, the docs table and the capability matrix all read these facts; nothing is
written twice. Importing this module never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from exportkit.errors import ConfigError, EnvironmentUnsupported, MissingDependency
from exportkit.options import Option, resolve_options

FORMAT_MODULES = ("onnx", "tensorrt", "coreml", "tflite", "torchscript", "openvino")  # the guide's order

COMMON_OPTIONS: tuple[Option, ...] = (
    Option("include_validation", bool, False, "Validate the artifact against the PyTorch model after export"),
    Option("imgsz", int, None, "Square input size; default: the checkpoint's training size", 32, 4096, nullable=True),
    Option("batch", int, 1, "Batch size of the exported input (the maximum with dynamic axes)", 1, 256),
    Option(
        "model_name", str, None, "Name written to metadata.json; default: the checkpoint's architecture", nullable=True
    ),
    Option(
        "vocabulary",
        str,
        None,
        "YOLO-World only: a .json or .npz file with class 'names' and their CLIP text 'embeddings'",
        nullable=True,
    ),
)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: list[int]  # -1 marks a dynamic axis
    dtype: str

    def as_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class ArtifactIO:
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]


@dataclass
class ExportRequest:
    """What one format module receives: a loaded Ultralytics model and the effective options."""

    yolo: Any  # ultralytics.YOLO
    staging: Path
    options: dict
    imgsz: int
    task: str
    embedded_metadata: dict = field(default_factory=dict)  # what the artifact carries inside it (exportkit.metadata)


class ExportFormat:
    """Base of every format; subclasses set the facts and implement ``export``/``describe``/``runner``."""

    name: ClassVar[str]
    title: ClassVar[str]
    files: ClassVar[tuple[str, ...]]  # artifact paths relative to output_dir; a trailing "/" marks a folder
    options: ClassVar[tuple[Option, ...]] = ()
    precisions: ClassVar[dict[str, dict]] = {"fp32": {}}
    # precisions whose artifacts are byte-identical for identical inputs and versions (tests/test_build.py
    # exports each twice); `doit verify --rebuild` compares their bytes and re-validates the others
    reproducible: ClassVar[tuple[str, ...]] = ()
    packages: ClassVar[dict[str, str]] = {}  # import name -> pip name
    extra: ClassVar[str] = ""
    requires_gpu: ClassVar[bool] = False
    prediction_needs_macos: ClassVar[bool] = False
    implemented: ClassVar[bool] = True
    use_case: ClassVar[str] = ""
    hardware: ClassVar[str] = ""

    # -- facts -------------------------------------------------------------------------------
    @classmethod
    def all_options(cls) -> tuple[Option, ...]:
        return cls.options + COMMON_OPTIONS

    @classmethod
    def resolve(cls, given: dict) -> dict:
        return resolve_options(cls.all_options(), given, f"export_config for format {cls.name!r}")

    @classmethod
    def precision_of(cls, options: dict) -> str:
        """The precision name whose option overrides ``options`` satisfy (most specific wins)."""
        best = "fp32"
        for name, overrides in cls.precisions.items():
            if overrides and all(options.get(k) == v for k, v in overrides.items()):
                best = name
        return best

    @classmethod
    def artifact_paths(cls, folder: Path) -> list[Path]:
        return [Path(folder) / f.rstrip("/") for f in cls.files]

    # -- environment -------------------------------------------------------------------------
    @classmethod
    def check_environment(cls, options: dict) -> None:
        """Fast checks (no torch import): packages present, hardware present. Raise ExportError."""
        if not cls.implemented:
            raise EnvironmentUnsupported(f"format {cls.name!r} is not implemented yet")
        for module, pip_name in cls.packages.items():
            if importlib.util.find_spec(module) is None:
                raise MissingDependency(pip_name, cls.extra or cls.name)

    # -- work (subclasses) -------------------------------------------------------------------
    def export(self, request: ExportRequest) -> list[Path]:
        raise NotImplementedError

    def describe(self, folder: Path) -> ArtifactIO:
        raise NotImplementedError

    def runner(self, folder: Path) -> Callable:
        """A callable taking an NCHW float array and returning a list of numpy outputs."""
        raise EnvironmentUnsupported(f"format {self.name!r} has no runner on this machine")

    @classmethod
    def metadata_facts(cls, info, io: ArtifactIO, options: dict, folder: Path) -> dict:
        """What the format knows beyond its tensors, for metadata.json: ``output_layout`` (replaces the raw
        layout), ``preprocessing`` / ``postprocessing`` (merged over the defaults), anything else a top-level
        key (TFLite's INT8 ``accuracy``). None by default."""
        return {}

    @classmethod
    def format_checks(cls, folder: Path, metadata: dict) -> list:
        """The format's own checkers on the artifact in ``folder`` (onnx.checker, OpenVINO's read_model ...),
        as gating ``exportkit.checkers.Check`` rows (``exportkit.checkers``); gathered, never raising. None by default."""
        return []


_REGISTRY: dict[str, type[ExportFormat]] = {}


def register_format(cls: type[ExportFormat]) -> type[ExportFormat]:
    if cls.name in _REGISTRY:
        raise ValueError(f"format {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    for module in FORMAT_MODULES:
        importlib.import_module(f"exportkit.formats.{module}")


def list_formats() -> list[str]:
    _load_all()
    return list(FORMAT_MODULES)


def get_format(name: str) -> type[ExportFormat]:
    _load_all()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown export format {name!r}; expected one of: {'|'.join(FORMAT_MODULES)}")
    return _REGISTRY[name]


def which(tool: str) -> str | None:
    return shutil.which(tool)

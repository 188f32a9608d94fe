"""The backend interface, and the checks every backend shares."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import numpy as np

from ..errors import BackendUnavailable, MetadataMismatch
from ..spec import ModelSpec


def import_package(module: str, package: str, export_format: str) -> ModuleType:
    """Import a backend's package, or raise BackendUnavailable naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise BackendUnavailable(package, export_format) from error


class Backend(ABC):
    """Runs one exported artifact.

    Subclasses set ``export_format``, ``suffixes`` (model file endings it reads, its format's own first) and
    ``package`` (what pip installs), load the model in ``__init__`` and implement ``input_shape``,
    ``model_outputs`` and ``_run``.
    """

    export_format: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    package: ClassVar[str]

    def __init__(self, model_path: Path, spec: ModelSpec):
        self.model_path = Path(model_path)
        self.spec = spec
        self._output_order: list[int] | None = None

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """The model's input shape, -1 for dynamic dimensions."""

    @property
    @abstractmethod
    def model_outputs(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of each model output in the model's own order, -1 for dynamic dimensions."""

    @abstractmethod
    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch; outputs in the model's own order."""

    @property
    def input_dtype(self) -> np.dtype:
        """What ``run`` takes; backends that quantise take float32 and convert inside."""
        return np.dtype(np.float32)

    @property
    def device(self) -> str:
        """Where inference runs, in the backend's words."""
        return "CPU"

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model requires, or None when it takes any."""
        first = self.input_shape[0]
        return first if first > 0 else None

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """One batch -> outputs keyed by metadata.json's output names."""
        outputs = self._run(batch)
        order = self.output_order()
        return {name: outputs[i] for name, i in zip(self.spec.output_names, order, strict=True)}

    def run_any(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Any batch size: a fixed-batch model gets it in pieces of its size, the last one zero-padded."""
        size = self.fixed_batch
        if size is None or len(batch) == size:
            return self.run(batch)
        pieces = [self._run_padded(batch[i : i + size], size) for i in range(0, len(batch), size)]
        return {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}

    def _run_padded(self, batch: np.ndarray, size: int) -> dict[str, np.ndarray]:
        short = size - len(batch)
        if short:
            batch = np.concatenate([batch, np.zeros((short, *batch.shape[1:]), batch.dtype)])
        outputs = self.run(batch)
        return {name: value[: size - short] for name, value in outputs.items()}

    def output_order(self) -> list[int]:
        """For each metadata output, the index of the model output it is (by name, else by rank, else by position)."""
        if self._output_order is None:
            self._output_order = match_outputs(self.model_outputs, self.spec)
        return self._output_order

    def check(self) -> None:
        """Raise MetadataMismatch where metadata.json disagrees with the loaded model."""
        check_input(self.input_shape, self.spec)
        predictions = self.output_order()[self.spec.output_names.index(self.spec.layout.predictions)]
        check_channels(self.model_outputs[predictions][1], self.spec)


def match_outputs(model_outputs: Sequence[tuple[str, tuple[int, ...]]], spec: ModelSpec) -> list[int]:
    names = [name for name, _ in model_outputs]
    if len(model_outputs) < len(spec.outputs):
        raise MetadataMismatch(
            f"metadata.json lists {len(spec.outputs)} outputs {list(spec.output_names)} but the model has {len(names)}: {names}"
        )
    if all(n in names for n in spec.output_names):
        return [names.index(n) for n in spec.output_names]
    ranks = [len(shape) for _, shape in model_outputs]
    wanted = [len(o.shape) for o in spec.outputs]
    if len(set(wanted)) == len(wanted) and all(ranks.count(r) == 1 for r in wanted):
        return [ranks.index(r) for r in wanted]
    return list(range(len(spec.outputs)))


def check_input(shape: Sequence[int], spec: ModelSpec) -> None:
    pre = spec.preprocessing
    if len(shape) != 4:
        raise MetadataMismatch(f"model input has shape {list(shape)}, expected 4 dimensions ({pre.layout})")
    spatial, channels = (shape[2:4], shape[1]) if pre.layout == "NCHW" else (shape[1:3], shape[3])
    if channels not in (-1, 3):
        raise MetadataMismatch(
            f"model input {list(shape)} has {channels} channels where metadata.json's layout {pre.layout} puts 3"
        )
    for found, expected, axis in zip(spatial, spec.input_size, ("height", "width"), strict=True):
        if found != -1 and found != expected:
            raise MetadataMismatch(
                f"model input {axis} is {found} but metadata.json's input_shape says {expected} "
                f"({list(shape)} vs {list(spec.input_size)}): the metadata belongs to another model"
            )


def check_channels(shape: Sequence[int], spec: ModelSpec) -> None:
    layout = spec.layout
    if len(shape) != 3:
        raise MetadataMismatch(f"output {layout.predictions!r} has shape {list(shape)}, expected 3 dimensions")
    channels = shape[1] if layout.anchors_last else shape[2]
    if channels != -1 and channels != layout.channels:
        raise MetadataMismatch(
            f"output {layout.predictions!r} has {channels} channels but metadata.json implies {layout.channels} "
            f"({spec.task} with {len(spec.class_names)} classes): the metadata belongs to another model"
        )

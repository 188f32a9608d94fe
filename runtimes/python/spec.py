"""metadata.json -> ModelSpec: every fact the runtime uses, read once, checked, typed.

Nothing here knows a model size, a class count or a task beyond what metadata.json says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtimes.python.errors import ModelLoadError

TASKS = ("detect", "segment", "pose")
LAYOUTS = ("NCHW", "NHWC")
COLOR_SPACES = ("RGB", "BGR")
RESIZE_MODES = ("letterbox",)
BOX_FORMATS = ("cxcywh", "xyxy")
BOX_UNITS = ("input_pixels", "normalized")
PREDICTION_ORDERS = ("batch, channels, anchors", "batch, anchors, channels", "batch, detections, values")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # -1 marks a dynamic dimension
    dtype: str


@dataclass(frozen=True)
class Preprocessing:
    height: int
    width: int
    layout: str
    color_space: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    normalize: bool
    resize_mode: str
    pad_value: int
    center: bool
    scale_up: bool


@dataclass(frozen=True)
class Postprocessing:
    confidence_threshold: float
    iou_threshold: float
    max_detections: int
    agnostic_nms: bool


@dataclass(frozen=True)
class OutputLayout:
    """Where each quantity sits in the raw outputs ([start, end) channel ranges)."""

    predictions: str
    anchors_last: bool  # "batch, channels, anchors" (True) or "batch, anchors, channels"
    box: tuple[int, int]
    box_format: str
    box_normalized: bool
    class_scores: tuple[int, int]
    scores_activated: bool
    mask_coefficients: tuple[int, int] | None = None
    prototypes: str | None = None
    prototypes_channels_first: bool = True
    keypoints: tuple[int, int] | None = None
    keypoint_dims: int = 3
    keypoints_normalized: bool = False
    nms_applied: bool = False  # rows are final detections (in-model NMS): score, then class index, no NMS here
    class_index: int | None = None  # channel holding the class id when nms_applied

    @property
    def channels(self) -> int:
        """How many channels (values per anchor or detection) the predictions output must have."""
        ranges = [self.box, self.class_scores, self.mask_coefficients, self.keypoints]
        ends = [r[1] for r in ranges if r is not None]
        return max(ends + ([self.class_index + 1] if self.class_index is not None else []))


@dataclass(frozen=True)
class ModelSpec:
    task: str
    export_format: str
    precision: str
    class_names: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batch_dynamic: bool
    preprocessing: Preprocessing
    postprocessing: Postprocessing
    layout: OutputLayout
    keypoint_names: tuple[str, ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()  # 1-based pairs, as in metadata.json

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model takes."""
        return self.preprocessing.height, self.preprocessing.width

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @classmethod
    def from_dict(cls, metadata: Mapping[str, Any]) -> ModelSpec:
        return _checked_spec(_Reader(metadata, "metadata.json"))


def load_spec(path: str | Path) -> ModelSpec:
    """Read and check metadata.json; raise ModelLoadError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"metadata file {path} does not exist; pass metadata_path= or put metadata.json beside the model")
    try:
        metadata = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"metadata file {path} is not readable JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"metadata file {path} holds {type(metadata).__name__}, expected a JSON object")
    return _checked_spec(_Reader(metadata, str(path)))


def as_spec(metadata: ModelSpec | Mapping[str, Any] | str | Path) -> ModelSpec:
    """Accept a ModelSpec, a metadata dict, or a path to metadata.json."""
    if isinstance(metadata, ModelSpec):
        return metadata
    if isinstance(metadata, Mapping):
        return ModelSpec.from_dict(metadata)
    return load_spec(metadata)


class _Reader:
    """Typed access to nested metadata keys; every failure names the key and the file."""

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str = ""):
        self.data, self.source, self.prefix = data, source, prefix

    def fail(self, key: str, problem: str) -> ModelLoadError:
        return ModelLoadError(f"{self.source}: {self.prefix}{key} {problem}; re-export the model with exportkit")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is missing")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise self.fail(key, f"is {value!r}, expected {_kind_name(kind)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.fail(key, f"is {value!r}, this runtime supports {', '.join(choices)}")
        return value

    def span(self, key: str, default: Any = ...) -> tuple[int, int] | None:
        value = self.get(key, list, default)
        if value is None:
            return None
        if len(value) != 2 or not all(isinstance(v, int) for v in value) or not 0 <= value[0] < value[1]:
            raise self.fail(key, f"is {value!r}, expected [start, end) channel indices")
        return value[0], value[1]

    def child(self, key: str) -> _Reader:
        return _Reader(self.get(key, dict), self.source, f"{self.prefix}{key}.")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _tensors(reader: _Reader, key: str) -> tuple[TensorSpec, ...]:
    entries = reader.get(key, list)
    if not entries:
        raise reader.fail(key, "is empty")
    tensors = []
    for i, entry in enumerate(entries):
        item = _Reader(entry if isinstance(entry, dict) else {}, reader.source, f"{key}[{i}].")
        shape = item.get("shape", list)
        if not all(isinstance(d, int) for d in shape):
            raise item.fail("shape", f"is {shape!r}, expected integers (-1 = dynamic)")
        tensors.append(TensorSpec(item.get("name", str), tuple(shape), item.get("dtype", str, "float32")))
    return tuple(tensors)


def _preprocessing(reader: _Reader, input_shape: list) -> Preprocessing:
    pre = reader.child("preprocessing")
    if len(input_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in input_shape[:2]):
        raise reader.fail("input_shape", f"is {input_shape!r}, expected [height, width, channels]")
    mean, std = pre.get("mean", list, [0.0, 0.0, 0.0]), pre.get("std", list, [255.0, 255.0, 255.0])
    if len(mean) != 3 or len(std) != 3 or any(s == 0 for s in std):
        raise pre.fail("mean/std", f"are {mean!r}/{std!r}, expected three values each, std non-zero")
    return Preprocessing(
        height=input_shape[0],
        width=input_shape[1],
        layout=pre.choice("layout", LAYOUTS, reader.get("layout", str, "NCHW")),
        color_space=pre.choice("color_space", COLOR_SPACES, "RGB"),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        normalize=pre.get("normalize", bool, True),
        resize_mode=pre.choice("resize_mode", RESIZE_MODES, "letterbox"),
        pad_value=pre.get("pad_value", int, 114),
        center=pre.get("letterbox_center", bool, True),
        scale_up=pre.get("scale_up", bool, True),
    )


def _postprocessing(reader: _Reader) -> Postprocessing:
    post = reader.child("postprocessing")
    return Postprocessing(
        confidence_threshold=float(post.get("confidence_threshold", (int, float), 0.25)),
        iou_threshold=float(post.get("iou_threshold", (int, float), 0.45)),
        max_detections=post.get("max_detections", int, 300),
        agnostic_nms=post.get("agnostic_nms", bool, False),
    )


def _output_layout(reader: _Reader, task: str) -> OutputLayout:
    layout = reader.child("output_layout")
    pred = layout.child("predictions")
    units = pred.choice("box_units", BOX_UNITS, "input_pixels")
    fields: dict[str, Any] = {}
    if task == "segment":
        protos = layout.child("prototypes")
        fields.update(
            mask_coefficients=pred.span("mask_coefficients"),
            prototypes=protos.get("output", str),
            prototypes_channels_first=_order(protos, "batch, coefficients, height, width", "batch, height, width, coefficients"),
        )
    if task == "pose":
        fmt = pred.get("keypoint_format", str, "x, y, visibility")
        fields.update(
            keypoints=pred.span("keypoints"),
            keypoint_dims=len([p for p in fmt.split(",") if p.strip()]),
            keypoints_normalized=pred.choice("keypoint_units", BOX_UNITS, units) == "normalized",
        )
    nms_applied = pred.get("nms_applied", bool, False)
    if nms_applied:
        fields["class_index"] = pred.get("class_index", int)
    return OutputLayout(
        predictions=pred.get("output", str),
        anchors_last=pred.choice("shape_order", PREDICTION_ORDERS, PREDICTION_ORDERS[0]) == PREDICTION_ORDERS[0],
        nms_applied=nms_applied,
        box=pred.span("box", [0, 4]),
        box_format=pred.choice("box_format", BOX_FORMATS, "cxcywh"),
        box_normalized=units == "normalized",
        class_scores=pred.span("class_scores"),
        scores_activated=pred.get("scores_activated", bool, True),
        **fields,
    )


def _order(reader: _Reader, first: str, second: str) -> bool:
    """True for the ``first`` axis order, False for ``second``."""
    return reader.choice("shape_order", (first, second), first) == first


def _checked_spec(reader: _Reader) -> ModelSpec:
    """``_spec``, with any malformed value (a string where numbers go, a pair that is not a pair) a ModelLoadError."""
    try:
        return _spec(reader)
    except (TypeError, ValueError, AttributeError) as error:
        raise ModelLoadError(f"{reader.source} is malformed ({error}); re-export the model with exportkit") from error


def _spec(reader: _Reader) -> ModelSpec:
    task = reader.choice("task", TASKS)
    names = reader.get("class_names", list)
    layout = _output_layout(reader, task)
    inputs, outputs = _tensors(reader, "inputs"), _tensors(reader, "outputs")
    spec = ModelSpec(
        task=task,
        export_format=reader.get("export_format", str),
        precision=reader.get("precision", str, "fp32"),
        class_names=tuple(str(n) for n in names),
        inputs=inputs,
        outputs=outputs,
        batch_dynamic=reader.get("dynamic", dict, {}).get("batch", inputs[0].shape[0] == -1),
        preprocessing=_preprocessing(reader, reader.get("input_shape", list)),
        postprocessing=_postprocessing(reader),
        layout=layout,
        keypoint_names=tuple(str(n) for n in reader.get("keypoint_names", list, [])),
        skeleton=tuple((int(a), int(b)) for a, b in reader.get("skeleton", list, [])),
    )
    _check_consistent(reader, spec)
    return spec


def _check_consistent(reader: _Reader, spec: ModelSpec) -> None:
    """Facts inside metadata.json that must agree with each other."""
    layout = spec.layout
    start, end = layout.class_scores
    if not layout.nms_applied and end - start != len(spec.class_names):
        raise reader.fail(
            "class_names", f"lists {len(spec.class_names)} classes but output_layout.predictions.class_scores spans {end - start}"
        )
    count = reader.get("num_classes", int, len(spec.class_names))
    if count != len(spec.class_names):
        raise reader.fail("num_classes", f"is {count} but class_names lists {len(spec.class_names)}")
    known = set(spec.output_names)
    for name in (layout.predictions, layout.prototypes):
        if name is not None and name not in known:
            raise reader.fail("output_layout", f"names output {name!r}, not one of outputs {sorted(known)}")
    shape = next(o.shape for o in spec.outputs if o.name == layout.predictions)
    width = shape[1 if layout.anchors_last else 2] if len(shape) == 3 else -1
    if width > 0 and width != layout.channels:
        raise reader.fail("outputs", f"give {layout.predictions!r} {width} channels but output_layout needs {layout.channels}")
    if spec.task == "pose" and spec.keypoint_names and layout.keypoints is not None:
        count = (layout.keypoints[1] - layout.keypoints[0]) // layout.keypoint_dims
        if count != len(spec.keypoint_names):
            raise reader.fail("keypoint_names", f"lists {len(spec.keypoint_names)} names for {count} keypoints")

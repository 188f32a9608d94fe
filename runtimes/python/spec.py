"""metadata.json -> ModelSpec: every fact the runtime uses, read once, checked, typed.

Nothing here knows a model size, a class count or a task beyond what metadata.json says.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelLoadError
from .reader import (
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_INPUT_SIZE,
    Reader,
    is_int,
    refuse_constant,
    short,
)

TASKS = ("detect", "segment", "pose")
LAYOUTS = ("NCHW", "NHWC")
COLOR_SPACES = ("RGB", "BGR")
RESIZE_MODES = ("letterbox",)
BOX_FORMATS = ("cxcywh", "xyxy")
BOX_UNITS = ("input_pixels", "normalized")
PREDICTION_ORDERS = (
    "batch, channels, anchors",
    "batch, anchors, channels",
    "batch, detections, values",
    "detections, values",
)
ROW_ORDERS = PREDICTION_ORDERS[2:]  # rows of final detections (in-model NMS; CoreML's NMS pipeline has no batch axis)


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
    # CoreML's NMS pipeline: per-class scores in this separate output (its first class_scores_width channels are
    # appended after the predictions' own channels by split_outputs; class_scores already points past them)
    class_scores_output: str | None = None

    @property
    def channels(self) -> int:
        """How many channels (values per anchor or detection) the predictions output must have (with the
        appended class scores, for a separate class_scores_output)."""
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
        return _checked_spec(Reader(metadata, "metadata.json"))


def load_spec(path: str | Path) -> ModelSpec:
    """Read and check metadata.json; raise ModelLoadError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(
            f"metadata file {path} does not exist; pass metadata_path= or put metadata.json beside the model"
        )
    try:
        metadata = json.loads(path.read_text(), parse_constant=refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:  # ValueError: bad JSON, a 4300-digit int
        raise ModelLoadError(
            f"metadata file {path} is not readable JSON: {type(error).__name__}: {str(error)[:200]}"
        ) from None
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"metadata file {path} holds {type(metadata).__name__}, expected a JSON object")
    return _checked_spec(Reader(metadata, str(path)))


def as_spec(metadata: ModelSpec | Mapping[str, Any] | str | Path) -> ModelSpec:
    """Accept a ModelSpec, a metadata dict, or a path to metadata.json."""
    if isinstance(metadata, ModelSpec):
        return metadata
    if isinstance(metadata, Mapping):
        return ModelSpec.from_dict(metadata)
    return load_spec(metadata)


def _tensors(reader: Reader, key: str) -> tuple[TensorSpec, ...]:
    entries = reader.get(key, list)
    if not entries:
        raise reader.fail(key, "is empty")
    tensors = []
    for i, entry in enumerate(entries):
        item = Reader(entry if isinstance(entry, dict) else {}, reader.source, f"{key}[{i}].")
        shape = item.get("shape", list)
        if not shape or len(shape) > 8 or not all(is_int(d) and (d == -1 or 0 < d <= MAX_DIM) for d in shape):
            raise item.fail("shape", f"is {short(shape)}, expected 1-8 dimensions, each -1 (dynamic) or 1-{MAX_DIM}")
        if math.prod(d for d in shape if d > 0) > MAX_ELEMENTS:
            raise item.fail("shape", f"is {short(shape)}: more than {MAX_ELEMENTS} elements")
        tensors.append(TensorSpec(item.get("name", str), tuple(shape), item.get("dtype", str, "float32")))
    return tuple(tensors)


def _preprocessing(reader: Reader, input_shape: list) -> Preprocessing:
    pre = reader.child("preprocessing")
    if (
        len(input_shape) != 3
        or not all(is_int(d) and 0 < d <= MAX_INPUT_SIZE for d in input_shape[:2])
        or input_shape[2] not in (1, 3)
    ):
        raise reader.fail(
            "input_shape",
            f"is {short(input_shape)}, expected [height, width, channels], sides 1-{MAX_INPUT_SIZE}, 1 or 3 channels",
        )
    mean, std = pre.get("mean", list, [0.0, 0.0, 0.0]), pre.get("std", list, [255.0, 255.0, 255.0])
    finite = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in mean + std)
    if len(mean) != 3 or len(std) != 3 or not finite or any(s == 0 for s in std):
        raise pre.fail("mean/std", f"are {short(mean)}/{short(std)}, expected three finite numbers each, std non-zero")
    return Preprocessing(
        height=input_shape[0],
        width=input_shape[1],
        layout=pre.choice("layout", LAYOUTS, reader.get("layout", str, "NCHW")),
        color_space=pre.choice("color_space", COLOR_SPACES, "RGB"),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        normalize=pre.get("normalize", bool, True),
        resize_mode=pre.choice("resize_mode", RESIZE_MODES, "letterbox"),
        pad_value=pre.integer("pad_value", 0, 255, 114),
        center=pre.get("letterbox_center", bool, True),
        scale_up=pre.get("scale_up", bool, True),
    )


def _postprocessing(reader: Reader) -> Postprocessing:
    post = reader.child("postprocessing")
    return Postprocessing(
        confidence_threshold=float(post.number("confidence_threshold", 0.0, 1.0, 0.25)),
        iou_threshold=float(post.number("iou_threshold", 0.0, 1.0, 0.45)),
        max_detections=post.integer("max_detections", 1, MAX_DIM, 300),
        agnostic_nms=post.get("agnostic_nms", bool, False),
    )


def _output_layout(reader: Reader, task: str) -> OutputLayout:
    layout = reader.child("output_layout")
    pred = layout.child("predictions")
    units = pred.choice("box_units", BOX_UNITS, "input_pixels")
    fields: dict[str, Any] = {}
    if task == "segment":
        protos = layout.child("prototypes")
        fields.update(
            mask_coefficients=pred.span("mask_coefficients"),
            prototypes=protos.get("output", str),
            prototypes_channels_first=_order(
                protos, "batch, coefficients, height, width", "batch, height, width, coefficients"
            ),
        )
    if task == "pose":
        fmt = pred.get("keypoint_format", str, "x, y, visibility")
        dims = len([p for p in fmt.split(",") if p.strip()])
        if dims not in (2, 3):
            raise pred.fail("keypoint_format", f"is {short(fmt)}, expected 'x, y' or 'x, y, visibility'")
        fields.update(
            keypoints=pred.span("keypoints"),
            keypoint_dims=dims,
            keypoints_normalized=pred.choice("keypoint_units", BOX_UNITS, units) == "normalized",
        )
    nms_applied = pred.get("nms_applied", bool, False)
    order = pred.choice("shape_order", PREDICTION_ORDERS, PREDICTION_ORDERS[0])
    if (order in ROW_ORDERS) != nms_applied:
        raise pred.fail(
            "shape_order",
            f"is {order!r} with nms_applied {nms_applied}: rows of detections ({', '.join(ROW_ORDERS)}) "
            "and nms_applied go together",
        )
    box, scores = pred.span("box", [0, 4]), pred.span("class_scores")
    scores_output = pred.get("class_scores_output", str, None)
    if scores_output is not None:  # the scores follow the box channels once split_outputs appends them
        if order != "detections, values":
            raise pred.fail(
                "class_scores_output", "is only read with shape_order 'detections, values' (CoreML's NMS pipeline)"
            )
        fields["class_scores_output"] = scores_output
        scores = (box[1] + scores[0], box[1] + scores[1])
    elif nms_applied:
        fields["class_index"] = pred.integer("class_index", 0, MAX_DIM)
    return OutputLayout(
        predictions=pred.get("output", str),
        anchors_last=order == PREDICTION_ORDERS[0],
        nms_applied=nms_applied,
        box=box,
        box_format=pred.choice("box_format", BOX_FORMATS, "cxcywh"),
        box_normalized=units == "normalized",
        class_scores=scores,
        scores_activated=pred.get("scores_activated", bool, True),
        **fields,
    )


def _order(reader: Reader, first: str, second: str) -> bool:
    """True for the ``first`` axis order, False for ``second``."""
    return reader.choice("shape_order", (first, second), first) == first


def _checked_spec(reader: Reader) -> ModelSpec:
    """``_spec``, with any malformed value (a string where numbers go, a pair that is not a pair) a ModelLoadError."""
    try:
        return _spec(reader)
    except (TypeError, ValueError, AttributeError) as error:
        raise ModelLoadError(f"{reader.source} is malformed ({error}); re-export the model with exportkit") from error


def _spec(reader: Reader) -> ModelSpec:
    task = reader.choice("task", TASKS)
    names = reader.strings("class_names")
    layout = _output_layout(reader, task)
    inputs, outputs = _tensors(reader, "inputs"), _tensors(reader, "outputs")
    spec = ModelSpec(
        task=task,
        export_format=reader.get("export_format", str),
        precision=reader.get("precision", str, "fp32"),
        class_names=names,
        inputs=inputs,
        outputs=outputs,
        batch_dynamic=reader.child("dynamic").get("batch", bool, inputs[0].shape[0] == -1)
        if "dynamic" in reader.data
        else inputs[0].shape[0] == -1,
        preprocessing=_preprocessing(reader, reader.get("input_shape", list)),
        postprocessing=_postprocessing(reader),
        layout=layout,
        keypoint_names=reader.strings("keypoint_names", []),
        skeleton=_skeleton(reader),
    )
    _check_consistent(reader, spec)
    return spec


def _skeleton(reader: Reader) -> tuple[tuple[int, int], ...]:
    pairs = reader.get("skeleton", list, [])
    if not all(isinstance(p, list) and len(p) == 2 and all(is_int(i) and 0 < i <= MAX_DIM for i in p) for p in pairs):
        raise reader.fail("skeleton", f"is {short(pairs)}, expected [a, b] pairs of 1-based keypoint indices")
    return tuple((a, b) for a, b in pairs)


def _check_consistent(reader: Reader, spec: ModelSpec) -> None:
    """Facts inside metadata.json that must agree with each other."""
    layout = spec.layout
    start, end = layout.class_scores
    if (not layout.nms_applied or layout.class_scores_output) and end - start != len(spec.class_names):
        raise reader.fail(
            "class_names",
            f"lists {len(spec.class_names)} classes but output_layout.predictions.class_scores spans {end - start}",
        )
    count = reader.get("num_classes", int, len(spec.class_names))
    if count != len(spec.class_names):
        raise reader.fail("num_classes", f"is {count} but class_names lists {len(spec.class_names)}")
    known = set(spec.output_names)
    for name in (layout.predictions, layout.prototypes, layout.class_scores_output):
        if name is not None and name not in known:
            raise reader.fail("output_layout", f"names output {name!r}, not one of outputs {sorted(known)}")
    shape = next(o.shape for o in spec.outputs if o.name == layout.predictions)
    width = shape[1 if layout.anchors_last else 2] if len(shape) == 3 else -1
    if width > 0 and width != layout.channels and layout.class_scores_output is None:
        raise reader.fail(
            "outputs", f"give {layout.predictions!r} {width} channels but output_layout needs {layout.channels}"
        )
    if spec.task == "pose" and spec.keypoint_names and layout.keypoints is not None:
        count = (layout.keypoints[1] - layout.keypoints[0]) // layout.keypoint_dims
        if count != len(spec.keypoint_names):
            raise reader.fail("keypoint_names", f"lists {len(spec.keypoint_names)} names for {count} keypoints")
    if reader.integer("num_classes", 0, MAX_DIM, len(spec.class_names)) != len(spec.class_names):
        raise reader.fail(
            "num_classes", f"is {reader.data['num_classes']}, but class_names lists {len(spec.class_names)}"
        )

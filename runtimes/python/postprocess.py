"""Raw model outputs -> Results: confidence filter, NMS, boxes/masks/keypoints back to image pixels.

Vectorised numpy: anchors are filtered by confidence first, so NMS only sees the survivors. The arithmetic
follows Ultralytics' ``non_max_suppression``, ``scale_boxes``, ``scale_coords`` and ``process_mask_native``
(float32 throughout, strict ``>`` comparisons, class offsets for class-aware NMS) so results match its
``predict`` on the same artifact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MetadataMismatch, RuntimeInputError
from .masks import native_masks
from .preprocess import Geometry
from .results import Result
from .spec import ModelSpec, OutputLayout, as_spec

MAX_CANDIDATES = 30_000  # boxes NMS considers per image, highest confidence first (Ultralytics' max_nms)
SMALL_NMS = 256  # up to this many boxes, NMS computes the whole IoU matrix at once
CLASS_OFFSET = 7680.0  # per-class coordinate offset for class-aware NMS (Ultralytics' max_wh)


@dataclass(frozen=True)
class Thresholds:
    conf: float
    iou: float
    max_det: int
    agnostic: bool
    classes: tuple[int, ...] | None = None

    @classmethod
    def resolve(cls, spec: ModelSpec, conf=None, iou=None, max_det=None, agnostic=None, classes=None) -> Thresholds:
        """Arguments given win; the rest come from metadata.json's postprocessing."""
        post = spec.postprocessing
        for name, value in (("confidence", conf), ("IoU", iou)):
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise RuntimeInputError(f"{name} threshold is {value}, expected a value between 0 and 1")
        if max_det is not None and int(max_det) < 1:
            raise RuntimeInputError(f"max_detections is {max_det}, expected at least 1")
        return cls(
            conf=post.confidence_threshold if conf is None else float(conf),
            iou=post.iou_threshold if iou is None else float(iou),
            max_det=post.max_detections if max_det is None else int(max_det),
            agnostic=post.agnostic_nms if agnostic is None else bool(agnostic),
            classes=None if classes is None else tuple(int(c) for c in classes),
        )


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(n, 4) centre-size boxes -> corners, in the same float32 steps as Ultralytics' xywh2xyxy."""
    half = boxes[:, 2:] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_det: int | None = None) -> np.ndarray:
    """Greedy NMS, torchvision's semantics: a box is dropped when its IoU with a kept box is > threshold.

    Boxes are (n, 4) xyxy; returns the kept indices, highest score first (ties keep input order). IoU is
    float32, ``inter / (area_a + area_b - inter)``, as torchvision computes it.
    """
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
    boxes = np.asarray(boxes, np.float32)[order]
    limit = len(order) if max_det is None else max_det
    greedy = _nms_small if len(order) <= SMALL_NMS else _nms_large
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN IoU (two empty boxes) never suppresses
        return order[np.asarray(greedy(boxes, iou_threshold, limit), np.int64)]


def _iou_rows(box: np.ndarray, others: np.ndarray, areas: np.ndarray, area: np.float32) -> np.ndarray:
    w = np.maximum(np.float32(0), np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]))
    h = np.maximum(np.float32(0), np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]))
    inter = w * h
    return inter / (area + areas - inter)


def _nms_small(boxes: np.ndarray, iou_threshold: float, limit: int) -> list[int]:
    """Few boxes: every pairwise IoU at once, then the greedy pass over a boolean matrix."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    over = _iou_matrix(boxes, areas) > iou_threshold
    suppressed = np.zeros(len(boxes), bool)
    keep: list[int] = []
    for i in range(len(boxes)):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) == limit:
            break
        suppressed |= over[i]
    return keep


def _iou_matrix(boxes: np.ndarray, areas: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    w = np.maximum(np.float32(0), np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]))
    h = np.maximum(np.float32(0), np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]))
    inter = w * h
    return inter / (areas[:, None] + areas[None] - inter)


def _nms_large(boxes: np.ndarray, iou_threshold: float, limit: int) -> list[int]:
    """Many boxes: one IoU row per kept box against the boxes still standing."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    alive = np.arange(len(boxes))
    keep: list[int] = []
    while alive.size and len(keep) < limit:
        i, rest = alive[0], alive[1:]
        keep.append(int(i))
        alive = rest[~(_iou_rows(boxes[i], boxes[rest], areas[rest], areas[i]) > iou_threshold)]
    return keep


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    max_det: int | None = None,
    agnostic: bool = False,
) -> np.ndarray:
    """Class-aware NMS (boxes of different classes never suppress each other) unless ``agnostic``."""
    if agnostic or len(boxes) == 0:
        return nms(boxes, scores, iou_threshold, max_det)
    offset = max(CLASS_OFFSET, float(np.abs(boxes).max()) * 2 + 1)
    shifted = boxes + (class_ids.astype(np.float32) * np.float32(offset))[:, None]
    return nms(shifted, scores, iou_threshold, max_det)


def scale_boxes(boxes: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Input-pixel xyxy boxes -> original-image pixels, clipped to the image (in place)."""
    (gain_x, gain_y), (left, top), (h, w) = geometry.ratio, geometry.pad, geometry.orig_shape
    boxes -= np.array([left, top, left, top], np.float32)
    boxes /= np.array([gain_x, gain_y, gain_x, gain_y], np.float32)
    np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
    return boxes


def scale_keypoints(points: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(n, k, d) input-pixel keypoints -> original-image pixels, x and y clipped to the image (in place)."""
    (gain_x, gain_y), (left, top), (h, w) = geometry.ratio, geometry.pad, geometry.orig_shape
    points[..., 0] = np.clip((points[..., 0] - np.float32(left)) / np.float32(gain_x), 0, w)
    points[..., 1] = np.clip((points[..., 1] - np.float32(top)) / np.float32(gain_y), 0, h)
    return points


@dataclass
class _Candidates:
    """Anchors that survived the confidence filter: their index, best class and its score."""

    index: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray


def _candidates(pred: np.ndarray, layout: OutputLayout, limits: Thresholds) -> _Candidates:
    """pred is (channels, anchors) for one image."""
    start, end = layout.class_scores
    scores = pred[start:end]
    if not layout.scores_activated:
        scores = 1 / (1 + np.exp(-scores))
    best = scores.max(0)
    index = np.flatnonzero(best > limits.conf)
    class_ids = scores[:, index].argmax(0) if len(index) else np.zeros(0, np.int64)
    found = _Candidates(index, class_ids, best[index])
    if limits.classes is not None:
        found = _select(found, np.isin(found.class_ids, limits.classes))
    if len(found.index) > MAX_CANDIDATES:
        found = _select(found, np.argsort(-found.scores, kind="stable")[:MAX_CANDIDATES])
    return found


def _preselected(pred: np.ndarray, layout: OutputLayout, limits: Thresholds) -> _Candidates:
    """Rows of an in-model-NMS output (values, detections): score filter, class filter, first max_det."""
    scores = pred[layout.class_scores[0]]
    index = np.flatnonzero(scores > limits.conf)
    found = _Candidates(index, pred[layout.class_index, index].astype(np.int64), scores[index])
    if limits.classes is not None:
        found = _select(found, np.isin(found.class_ids, limits.classes))
    return _select(found, slice(0, limits.max_det))


def _select(found: _Candidates, which: np.ndarray) -> _Candidates:
    return _Candidates(found.index[which], found.class_ids[which], found.scores[which])


def _input_boxes(pred: np.ndarray, index: np.ndarray, layout: OutputLayout, input_size: tuple[int, int]) -> np.ndarray:
    """(n, 4) xyxy float32 boxes in model-input pixels for the anchors in ``index``."""
    start, end = layout.box
    boxes = pred[start:end, index].T.astype(np.float32)
    if layout.box_normalized:
        boxes *= np.array([input_size[1], input_size[0]] * 2, np.float32)
    return xywh_to_xyxy(boxes) if layout.box_format == "cxcywh" else boxes


def _keypoints(pred: np.ndarray, index: np.ndarray, spec: ModelSpec, geometry: Geometry) -> np.ndarray:
    """(n, k, 3) keypoints (x, y, visibility) in original-image pixels; visibility 1 when the model has none."""
    layout = spec.layout
    start, end = layout.keypoints
    dims = layout.keypoint_dims
    points = pred[start:end, index].T.astype(np.float32).reshape(len(index), (end - start) // dims, dims)
    if layout.keypoints_normalized:
        points[..., 0] *= spec.preprocessing.width
        points[..., 1] *= spec.preprocessing.height
    points = scale_keypoints(points, geometry)
    if dims == 2:
        points = np.concatenate([points, np.ones_like(points[..., :1])], axis=-1)
    return points


def decode_one(
    pred: np.ndarray, spec: ModelSpec, geometry: Geometry, limits: Thresholds, protos: np.ndarray | None = None
) -> Result:
    """One image: pred is (channels, anchors), protos (coefficients, mh, mw) for segment."""
    layout = spec.layout
    if layout.class_index is not None:  # in-model NMS rows: score, class id
        found = _preselected(pred, layout, limits)
    elif layout.nms_applied:  # CoreML's NMS pipeline: final rows, per-class scores
        found = _select(_candidates(pred, layout, limits), slice(0, limits.max_det))
    else:
        found = _candidates(pred, layout, limits)
    boxes = _input_boxes(pred, found.index, layout, spec.input_size)
    if layout.nms_applied:
        keep = np.arange(len(found.index))
    else:
        keep = batched_nms(boxes, found.scores, found.class_ids, limits.iou, limits.max_det, limits.agnostic)
    index = found.index[keep]
    result = Result(
        task=spec.task,
        orig_shape=geometry.orig_shape,
        boxes=scale_boxes(boxes[keep], geometry),
        scores=found.scores[keep].astype(np.float32),
        class_ids=found.class_ids[keep].astype(np.int64),
        class_names=spec.class_names,
        keypoint_names=spec.keypoint_names,
        skeleton=spec.skeleton,
    )
    if spec.task == "pose":
        result.keypoints = _keypoints(pred, index, spec, geometry)
    if spec.task == "segment":
        _add_masks(result, pred, index, spec, protos)
    return result


def _add_masks(result: Result, pred: np.ndarray, index: np.ndarray, spec: ModelSpec, protos: np.ndarray) -> None:
    """Attach masks; like Ultralytics, drop detections whose mask is empty."""
    start, end = spec.layout.mask_coefficients
    masks = native_masks(protos, pred[start:end, index].T, result.boxes, result.orig_shape, spec.input_size)
    result.masks = masks
    nonempty = masks.any(axis=(1, 2))
    if not nonempty.all():
        for name in ("boxes", "scores", "class_ids", "masks"):
            setattr(result, name, getattr(result, name)[nonempty])


def named_outputs(outputs: Mapping[str, np.ndarray] | Sequence[np.ndarray], spec: ModelSpec) -> dict[str, np.ndarray]:
    """Outputs keyed by metadata name; a sequence is taken in metadata.json's ``outputs`` order."""
    if isinstance(outputs, Mapping):
        found = dict(outputs)
    else:
        found = dict(zip(spec.output_names, outputs, strict=False))
    needed = [
        n for n in (spec.layout.predictions, spec.layout.prototypes, spec.layout.class_scores_output) if n is not None
    ]
    missing = [n for n in needed if n not in found]
    if missing:
        raise MetadataMismatch(
            f"outputs {missing} named in metadata.json are not among the model's outputs {sorted(found)}"
        )
    return found


def split_outputs(outputs: dict[str, np.ndarray], spec: ModelSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions as (batch, channels, anchors) and prototypes as (batch, coefficients, mh, mw)."""
    layout = spec.layout
    pred = outputs[layout.predictions]
    if pred.ndim == 2:
        pred = pred[None]
    if not layout.anchors_last:
        pred = pred.transpose(0, 2, 1)
    if layout.class_scores_output is not None:  # CoreML's pipeline: (n, 4) coordinates beside (n, padded classes)
        pred = _with_class_scores(pred, outputs[layout.class_scores_output], layout)
    if pred.shape[1] != layout.channels:
        raise MetadataMismatch(
            f"output {layout.predictions!r} has {pred.shape[1]} channels but metadata.json implies {layout.channels} "
            f"({spec.task}, {len(spec.class_names)} classes): the metadata belongs to another model"
        )
    protos = None
    if layout.prototypes is not None:
        protos = outputs[layout.prototypes]
        if protos.ndim == 3:
            protos = protos[None]
        if not layout.prototypes_channels_first:
            protos = protos.transpose(0, 3, 1, 2)
    return pred, protos


def _with_class_scores(pred: np.ndarray, scores: np.ndarray, layout: OutputLayout) -> np.ndarray:
    """(1, box channels, n) predictions and the (n, padded) scores output -> (1, box channels + classes, n)."""
    if pred.shape[1] != layout.box[1]:
        raise MetadataMismatch(
            f"output {layout.predictions!r} has {pred.shape[1]} values per detection, its layout says {layout.box[1]}"
        )
    scores = scores.reshape(-1, scores.shape[-1]).T[None]  # (1, padded, n)
    start, end = layout.class_scores[0] - layout.box[1], layout.class_scores[1] - layout.box[1]
    if scores.shape[2] != pred.shape[2] or scores.shape[1] < end:
        raise MetadataMismatch(
            f"output {layout.class_scores_output!r} has shape {list(scores.shape[1:])[::-1]}, expected "
            f"{pred.shape[2]} detections of at least {end} class scores"
        )
    return np.concatenate([pred, scores[:, start:end]], axis=1)


def identity_geometry(spec: ModelSpec) -> Geometry:
    """Geometry that leaves coordinates in model-input pixels (for decoding without a source image)."""
    return Geometry(spec.input_size, (1.0, 1.0), (0, 0))


def decode(
    outputs: Mapping[str, np.ndarray] | Sequence[np.ndarray],
    metadata: ModelSpec | Mapping[str, Any] | str | Path,
    geometries: Sequence[Geometry] | None = None,
    conf: float | None = None,
    iou: float | None = None,
    max_det: int | None = None,
    agnostic: bool | None = None,
    classes: Sequence[int] | None = None,
) -> list[Result]:
    """Raw outputs of one batch -> one Result per image, usable without a session.

    ``outputs`` maps output names to arrays (or lists them in metadata.json's order). ``geometries`` (one per
    image, from ``letterbox``) maps coordinates back to each original image; without it they stay in
    model-input pixels. Thresholds default to metadata.json's postprocessing.
    """
    spec = as_spec(metadata)
    limits = Thresholds.resolve(spec, conf, iou, max_det, agnostic, classes)
    return decode_batch(named_outputs(outputs, spec), spec, geometries, limits)


def decode_batch(
    outputs: dict[str, np.ndarray], spec: ModelSpec, geometries: Sequence[Geometry] | None, limits: Thresholds
) -> list[Result]:
    """``decode`` with the spec and thresholds already resolved (what YOLOInference calls)."""
    pred, protos = split_outputs(outputs, spec)
    if geometries is None:
        geometries = [identity_geometry(spec)] * len(pred)
    if len(geometries) != len(pred):
        raise MetadataMismatch(f"outputs hold {len(pred)} images but {len(geometries)} geometries were given")
    return [
        decode_one(pred[i], spec, geometries[i], limits, None if protos is None else protos[i])
        for i in range(len(pred))
    ]

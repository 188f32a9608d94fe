"""SAM2 pre- and post-processing driven by metadata.json: numpy and OpenCV only, no torch.

letterbox_image   image -> normalised (1,3,1024,1024) tensor and the letterbox gain (top-left, pad 114)
encode_prompts    points / labels / boxes in original pixels -> point_coords (N,P,2), point_labels (N,P)
select_masks      all 4 mask tokens -> the multimask three or the single mask (dynamic via stability)
upscale_masks     256x256 logits -> original-resolution logits
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import RuntimeInputError

IMAGE_SIZE = 1024
BOX_LABELS = (2.0, 3.0)
PAD_LABEL = -1.0


@dataclass(frozen=True)
class Letterbox:
    """Where the original image sits in the 1024x1024 input: scaled by ``gain``, content ``(h, w)`` from the top left."""

    original_hw: tuple[int, int]
    gain: float
    content_hw: tuple[int, int]


def plan_letterbox(original_hw: tuple[int, int], size: int = IMAGE_SIZE) -> Letterbox:
    h, w = original_hw
    gain = min(size / h, size / w)
    return Letterbox((h, w), gain, (max(round(h * gain), 1), max(round(w * gain), 1)))


def letterbox_image(image_bgr: np.ndarray, preprocessing: dict, size: int = IMAGE_SIZE) -> tuple[np.ndarray, Letterbox]:
    import cv2

    box = plan_letterbox(image_bgr.shape[:2], size)
    ch, cw = box.content_hw
    resized = (
        image_bgr
        if (ch, cw) == image_bgr.shape[:2]
        else cv2.resize(image_bgr, (cw, ch), interpolation=cv2.INTER_LINEAR)
    )
    canvas = np.full((size, size, 3), preprocessing["pad_value"], np.uint8)
    canvas[:ch, :cw] = resized
    if preprocessing["color_space"] == "RGB":
        canvas = canvas[..., ::-1]
    mean, std = np.asarray(preprocessing["mean"], np.float32), np.asarray(preprocessing["std"], np.float32)
    tensor = (canvas.astype(np.float32) - mean) / std
    return np.ascontiguousarray(tensor.transpose(2, 0, 1)[None]), box


def _as_array(value, name: str, last: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise RuntimeInputError(f"{name} must be numbers, got {type(value).__name__}") from None
    if array.size == 0 or array.shape[-1:] != (last,) or not np.isfinite(array).all():
        raise RuntimeInputError(
            f"{name} must be finite numbers with a last axis of {last}, got shape {list(array.shape)}"
        )
    return array


def _labels(labels, shape: tuple[int, int]) -> np.ndarray:
    try:
        tags = np.asarray(labels, np.float32)
    except (TypeError, ValueError):
        raise RuntimeInputError(f"labels must be numbers, got {type(labels).__name__}") from None
    if tags.size != shape[0] * shape[1]:
        raise RuntimeInputError(f"labels must give one label per point ({shape[0] * shape[1]}), got {tags.size}")
    return tags.reshape(shape)


def encode_prompts(box: Letterbox, points=None, labels=None, boxes=None) -> tuple[np.ndarray, np.ndarray]:
    """Ultralytics' SAM2 prompt convention: points (N,2) are N objects of one point, (N,P,2) N objects of P points;
    labels default to 1 (foreground); boxes (4,) or (N,4) become two points labelled 2, 3, placed first."""
    coords, tags = None, None
    if points is not None:
        coords = _as_array(points, "points", 2)
        coords = coords[None] if coords.ndim == 1 else coords
        coords = coords[:, None] if coords.ndim == 2 else coords
        if coords.ndim != 3:
            raise RuntimeInputError(f"points must have shape (2,), (N,2) or (N,P,2), got {list(np.shape(points))}")
        tags = np.ones(coords.shape[:2], np.float32) if labels is None else _labels(labels, coords.shape[:2])
        if not np.isin(tags, (-1.0, 0.0, 1.0)).all():
            raise RuntimeInputError("point labels must be 1 (foreground), 0 (background) or -1 (padding)")
    if boxes is not None:
        corners = _as_array(boxes, "boxes", 4).reshape(-1, 2, 2)
        corner_tags = np.tile(np.asarray(BOX_LABELS, np.float32), (len(corners), 1))
        if coords is not None and len(coords) != len(corners):
            raise RuntimeInputError(f"{len(corners)} boxes and {len(coords)} point groups: give one box per object")
        coords = corners if coords is None else np.concatenate([corners, coords], axis=1)
        tags = corner_tags if tags is None else np.concatenate([corner_tags, tags], axis=1)
    if coords is None:
        raise RuntimeInputError("give at least one prompt: points or boxes")
    return np.ascontiguousarray(coords * np.float32(box.gain)), np.ascontiguousarray(tags)


def stability_scores(logits: np.ndarray, delta: float) -> np.ndarray:
    flat = logits.reshape(*logits.shape[:-2], -1)
    inter, union = (flat > delta).sum(-1).astype(np.float32), (flat > -delta).sum(-1).astype(np.float32)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def select_masks(masks: np.ndarray, iou: np.ndarray, multimask: bool, post: dict) -> tuple[np.ndarray, np.ndarray]:
    """(N,4,H,W), (N,4) -> the multimask tokens (N,3,...) or one mask per object (N,1,...), as SAM2's decoder chooses."""
    multi = post["multimask_tokens"]
    if multimask:
        return masks[:, multi], iou[:, multi]
    single = post["single_mask_token"]
    rule = post["dynamic_multimask_via_stability"]
    best = np.asarray(multi)[np.argmax(iou[:, multi], axis=1)]
    stable = stability_scores(masks[:, single], rule["delta"]) >= rule["threshold"]
    chosen = np.where(stable, single, best)
    rows = np.arange(len(masks))
    return masks[rows, chosen][:, None], iou[rows, chosen][:, None]


def upscale_masks(logits: np.ndarray, box: Letterbox, size: int = IMAGE_SIZE) -> np.ndarray:
    """(N,M,256,256) logits -> (N,M,h,w) logits at the original resolution: the letterboxed content's span of the
    low-resolution map (top-left, possibly a fractional number of pixels) sampled bilinearly, as Ultralytics'
    ``scale_masks`` does (pixel centres, border values repeated)."""
    import cv2

    n, m, lh, lw = logits.shape
    h, w = box.original_hw
    span_h, span_w = box.content_hw[0] * lh / size, box.content_hw[1] * lw / size
    ax, ay = span_w / w, span_h / h
    warp = np.array([[ax, 0, 0.5 * ax - 0.5], [0, ay, 0.5 * ay - 0.5]], np.float64)  # output pixel -> source pixel
    out = np.empty((n, m, h, w), np.float32)
    for i in range(n):
        for j in range(m):
            out[i, j] = cv2.warpAffine(
                np.ascontiguousarray(logits[i, j], np.float32),
                warp,
                (w, h),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
    return out

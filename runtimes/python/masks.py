"""Instance masks from prototypes and coefficients, at the original image's resolution.

Follows ``ultralytics.utils.ops.process_mask_native`` (what ``retina_masks=True`` uses): mask logits at prototype
resolution, an optional 1/2/4x bilinear upsample so the letterbox padding crops on whole pixels, crop the
padding, bilinear resize to the image, threshold at 0, zero everything outside each box.
"""

from __future__ import annotations

import math

import numpy as np

PIXEL_BUDGET = 16_000_000  # float mask pixels held at once (as Ultralytics' process_mask_native)


def mask_logits(protos: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """(c, mh, mw) prototypes and (n, c) coefficients -> (n, mh, mw) float32 logits."""
    c, mh, mw = protos.shape
    return (coefficients.astype(np.float32, copy=False) @ protos.reshape(c, -1).astype(np.float32, copy=False)).reshape(
        -1, mh, mw
    )


def resize_stack(stack: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (half-pixel centres, as torch's align_corners=False) resize of (n, h, w) to (n, *size).

    One cv2.resize per mask, written in place: contiguous single-channel resizes are several times faster than
    one many-channel resize with its transposes, and land closer to torch's interpolate.
    """
    import cv2

    height, width = size
    if stack.shape[1:] == (height, width):
        return stack
    out = np.empty((len(stack), height, width), np.float32)
    for source, target in zip(stack, out, strict=True):
        cv2.resize(source, (width, height), dst=target, interpolation=cv2.INTER_LINEAR)
    return out


def upsample_factor(proto_shape: tuple[int, int], input_shape: tuple[int, int], orig_shape: tuple[int, int]) -> int:
    """Smallest upsample (a divisor of the prototype stride) that crops the letterbox padding on whole pixels."""
    mh, mw = proto_shape
    stride = max(1, round(input_shape[0] / mh))
    h, w = orig_shape
    gain = min(stride * mh / h, stride * mw / w)
    pad = (stride * mh - max(round(h * gain), 1)) | (stride * mw - max(round(w * gain), 1))
    return stride // math.gcd(stride, pad | pad // 2)


def crop_padding(stack: np.ndarray, orig_shape: tuple[int, int]) -> np.ndarray:
    """Cut the letterbox padding off (n, h1, w1) masks whose content is an (h, w) image letterboxed in."""
    h1, w1 = stack.shape[1:]
    h, w = orig_shape
    gain = min(h1 / h, w1 / w)
    content_h, content_w = max(round(h * gain), 1), max(round(w * gain), 1)
    top, left = round((h1 - content_h) / 2 - 0.1), round((w1 - content_w) / 2 - 0.1)
    return stack[:, top : top + content_h, left : left + content_w]


def crop_to_boxes(masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Zero (in place) every pixel outside its box; pixel (r, c) is inside when x1 <= c < x2 and y1 <= r < y2."""
    _, h, w = masks.shape
    cols = np.arange(w, dtype=np.float32)[None, :]
    rows = np.arange(h, dtype=np.float32)[None, :]
    inside_cols = (cols >= boxes[:, 0:1]) & (cols < boxes[:, 2:3])  # (n, w)
    inside_rows = (rows >= boxes[:, 1:2]) & (rows < boxes[:, 3:4])  # (n, h)
    masks &= inside_rows[:, :, None] & inside_cols[:, None, :]
    return masks


def native_masks(
    protos: np.ndarray,
    coefficients: np.ndarray,
    boxes: np.ndarray,
    orig_shape: tuple[int, int],
    input_shape: tuple[int, int],
) -> np.ndarray:
    """(n, h, w) bool masks at ``orig_shape`` for boxes (xyxy) already in original-image pixels.

    Masks are built in chunks of about ``PIXEL_BUDGET`` float pixels, each thresholded straight away, so many
    detections on a large image never need an (n, h, w) float array.
    """
    h, w = orig_shape
    masks = np.zeros((len(coefficients), h, w), bool)
    if len(coefficients) == 0:
        return masks
    logits = mask_logits(protos, coefficients)
    factor = upsample_factor(protos.shape[1:], input_shape, orig_shape)
    step = max(1, PIXEL_BUDGET // (h * w + factor * factor * logits.shape[1] * logits.shape[2]))
    for start in range(0, len(logits), step):
        chunk = logits[start : start + step]
        if factor > 1:
            chunk = resize_stack(chunk, (chunk.shape[1] * factor, chunk.shape[2] * factor))
        if chunk.shape[1:] != (h, w):
            chunk = resize_stack(crop_padding(chunk, orig_shape), (h, w))
        np.greater(chunk, 0, out=masks[start : start + step])
    return crop_to_boxes(masks, boxes)

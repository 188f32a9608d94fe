"""Letterbox and normalise images into the model's input tensor, as Ultralytics' LetterBox does.

Arithmetic follows ``ultralytics.data.augment.LetterBox`` exactly (ratio, rounding of the resized size and of
the padding split), and the resize is OpenCV's INTER_LINEAR, so the tensor matches Ultralytics' byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from runtimes.python.spec import ModelSpec, Preprocessing, as_spec


@dataclass(frozen=True)
class Geometry:
    """How one original image maps into the model input.

    ``ratio`` is (gain_x, gain_y) = resized / original per axis, ``pad`` is (left, top) in input pixels, and
    ``orig_shape`` the original (height, width). Input coordinates map back as ``(x - left) / gain_x``.
    """

    orig_shape: tuple[int, int]
    ratio: tuple[float, float]
    pad: tuple[int, int]


class Letterboxed(NamedTuple):
    """``letterbox()``'s answer: unpacks as ``tensor, ratio, pad``."""

    tensor: np.ndarray
    ratio: tuple[float, float]
    pad: tuple[int, int]


@dataclass(frozen=True)
class _Plan:
    new_size: tuple[int, int]  # (width, height) after resize
    borders: tuple[int, int, int, int]  # top, bottom, left, right
    geometry: Geometry


def plan_letterbox(orig_shape: Sequence[int], target: tuple[int, int], scale_up: bool = True, center: bool = True) -> _Plan:
    """Resize size and padding for an image of ``orig_shape`` (h, w) into ``target`` (h, w)."""
    h, w = int(orig_shape[0]), int(orig_shape[1])
    r = min(target[0] / h, target[1] / w)
    if not scale_up:
        r = min(r, 1.0)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = target[1] - new_w, target[0] - new_h
    if center:
        dw, dh = dw / 2, dh / 2
    top, bottom = (round(dh - 0.1) if center else 0), round(dh + 0.1)
    left, right = (round(dw - 0.1) if center else 0), round(dw + 0.1)
    geometry = Geometry((h, w), (new_w / w, new_h / h), (left, top))
    return _Plan((new_w, new_h), (top, bottom, left, right), geometry)


def letterbox_image(image: np.ndarray, pre: Preprocessing) -> tuple[np.ndarray, Geometry]:
    """Resize and pad one HWC uint8 image to the model's input size; keeps the channel order."""
    import cv2

    plan = plan_letterbox(image.shape, (pre.height, pre.width), pre.scale_up, pre.center)
    if image.shape[1::-1] != plan.new_size:
        image = cv2.resize(image, plan.new_size, interpolation=cv2.INTER_LINEAR)
    top, bottom, left, right = plan.borders
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pre.pad_value,) * 3)
    return image, plan.geometry


class Normalizer:
    """uint8 HWC (BGR) images -> float batch in the model's layout, colour order and normalisation.

    Each value is ``(pixel - mean) / std`` per channel (mean and std in the model's channel order), computed
    in float32 as Ultralytics does (``/ 255``), so the tensor is bit-identical to its preprocessing.
    """

    def __init__(self, pre: Preprocessing, dtype: np.dtype | str = np.float32):
        self.pre = pre
        self.dtype = np.dtype(dtype)
        # images arrive BGR (OpenCV's order); model channel i reads image channel order[i]
        self.order = (2, 1, 0) if pre.color_space == "RGB" else (0, 1, 2)
        self.mean = [np.float32(m) for m in pre.mean] if pre.normalize else [np.float32(0)] * 3
        self.std = [np.float32(s) for s in pre.std] if pre.normalize else [np.float32(1)] * 3

    def batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        h, w = self.pre.height, self.pre.width
        shape = (len(images), 3, h, w) if self.pre.layout == "NCHW" else (len(images), h, w, 3)
        out = np.empty(shape, np.float32)
        for i, image in enumerate(images):
            self.fill(image, out[i])
        return out if self.dtype == np.float32 else out.astype(self.dtype)

    def fill(self, image: np.ndarray, out: np.ndarray) -> None:
        """Write one letterboxed image into ``out`` (one item of the batch), in place."""
        import cv2

        planes = cv2.split(image)  # contiguous channel planes: the fastest way to reorder and convert
        for c, source in enumerate(self.order):
            target = out[c] if self.pre.layout == "NCHW" else out[..., c]
            if self.mean[c]:
                np.subtract(planes[source], self.mean[c], out=target, dtype=np.float32)
                np.divide(target, self.std[c], out=target)
            else:
                np.divide(planes[source], self.std[c], out=target, dtype=np.float32)


def letterbox(image: Any, metadata: ModelSpec | Mapping[str, Any] | str | Path) -> Letterboxed:
    """One image (path, BGR numpy array or PIL image) -> (tensor [1, ...] in the model's layout, ratio, pad).

    ``ratio`` is (gain_x, gain_y) and ``pad`` is (left, top), both in model-input pixels.
    """
    from runtimes.python.images import load_image

    spec = as_spec(metadata)
    boxed, geometry = letterbox_image(load_image(image), spec.preprocessing)
    tensor = Normalizer(spec.preprocessing, _input_dtype(spec)).batch([boxed])
    return Letterboxed(tensor, geometry.ratio, geometry.pad)


def _input_dtype(spec: ModelSpec) -> np.dtype:
    dtype = spec.inputs[0].dtype
    return np.dtype(dtype) if dtype in ("float32", "float16", "float64") else np.dtype(np.float32)

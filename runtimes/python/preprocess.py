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

from .spec import ModelSpec, Preprocessing, as_spec


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


def plan_letterbox(
    orig_shape: Sequence[int], target: tuple[int, int], scale_up: bool = True, center: bool = True
) -> _Plan:
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


class Normalizer:
    """uint8 HWC (BGR) images -> float batch in the model's layout, colour order and normalisation.

    Each value is ``(pixel - mean) / std`` per channel (mean and std in the model's channel order), computed
    in float32 as Ultralytics does (``/ 255``), so the tensor is bit-identical to its preprocessing.
    ``letterbox_batch`` resizes each image straight into its place in the tensor and fills the padding
    bands with the padding colour's value, so the padded image is never built and its padding never
    normalised pixel by pixel.
    """

    def __init__(self, pre: Preprocessing, dtype: np.dtype | str = np.float32):
        self.pre = pre
        self.dtype = np.dtype(dtype)
        # images arrive BGR (OpenCV's order); model channel i reads image channel order[i]
        self.order = (2, 1, 0) if pre.color_space == "RGB" else (0, 1, 2)
        self.mean = [np.float32(m) for m in pre.mean] if pre.normalize else [np.float32(0)] * 3
        self.std = [np.float32(s) for s in pre.std] if pre.normalize else [np.float32(1)] * 3
        grey = np.empty((3, 1, 1) if pre.layout == "NCHW" else (1, 1, 3), np.float32)
        self.fill(np.full((1, 1, 3), pre.pad_value, np.uint8), grey)
        self.pad = grey.reshape(3)  # the padding colour, normalised by the same arithmetic as any pixel

    def empty(self, count: int) -> np.ndarray:
        h, w = self.pre.height, self.pre.width
        return np.empty((count, 3, h, w) if self.pre.layout == "NCHW" else (count, h, w, 3), np.float32)

    def letterbox_batch(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Geometry]]:
        """Original images -> (input tensor, one Geometry per image): letterbox and normalise in one pass."""
        out = self.empty(len(images))
        geometries = [self.letterbox_into(image, out[i]) for i, image in enumerate(images)]
        return self._typed(out), geometries

    def letterbox_into(self, image: np.ndarray, out: np.ndarray) -> Geometry:
        """Letterbox one image into ``out`` (one item of the batch): equal to padding it with OpenCV, then ``fill``."""
        import cv2

        plan = plan_letterbox(image.shape, (self.pre.height, self.pre.width), self.pre.scale_up, self.pre.center)
        if image.shape[1::-1] != plan.new_size:
            image = cv2.resize(image, plan.new_size, interpolation=cv2.INTER_LINEAR)
        (w, h), (top, _, left, _) = plan.new_size, plan.borders
        planes = out if self.pre.layout == "NCHW" else np.moveaxis(out, -1, 0)  # (3, H, W) view either way
        for c in range(3):
            plane, value = planes[c], self.pad[c]
            plane[:top], plane[top + h :] = value, value
            plane[top : top + h, :left], plane[top : top + h, left + w :] = value, value
        inner = (
            out[:, top : top + h, left : left + w] if self.pre.layout == "NCHW" else out[top : top + h, left : left + w]
        )
        self.fill(image, inner)
        return plan.geometry

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

    def _typed(self, out: np.ndarray) -> np.ndarray:
        return out if self.dtype == np.float32 else out.astype(self.dtype)


def letterbox(image: Any, metadata: ModelSpec | Mapping[str, Any] | str | Path) -> Letterboxed:
    """One image (path, BGR numpy array or PIL image) -> (tensor [1, ...] in the model's layout, ratio, pad).

    ``ratio`` is (gain_x, gain_y) and ``pad`` is (left, top), both in model-input pixels.
    """
    from .images import load_image

    spec = as_spec(metadata)
    tensor, (geometry,) = Normalizer(spec.preprocessing, _input_dtype(spec)).letterbox_batch([load_image(image)])
    return Letterboxed(tensor, geometry.ratio, geometry.pad)


def _input_dtype(spec: ModelSpec) -> np.dtype:
    dtype = spec.inputs[0].dtype
    return np.dtype(dtype) if dtype in ("float32", "float16", "float64") else np.dtype(np.float32)

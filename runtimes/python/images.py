"""Turn what a caller passes (path, numpy array, PIL image, encoded bytes) into a BGR uint8 HWC array.

BGR is OpenCV's order (``cv2.imread``) and Ultralytics' convention for numpy inputs; pass
``channel_order="RGB"`` for arrays that are RGB (for example ``np.asarray(pil_image)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import RuntimeInputError

CHANNEL_ORDERS = ("BGR", "RGB")


def load_image(source: Any, channel_order: str = "BGR") -> np.ndarray:
    """One image -> contiguous BGR uint8 array of shape (h, w, 3)."""
    if isinstance(source, (str, Path)):
        return read_image(Path(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(np.frombuffer(source, np.uint8), "the given bytes")
    if isinstance(source, np.ndarray):
        return from_array(source, channel_order)
    if _is_pil(source):
        return from_array(np.asarray(source.convert("RGB")), "RGB")
    raise RuntimeInputError(
        f"cannot use {type(source).__name__} as an image; pass a path, a numpy array (h, w, 3) uint8, "
        "a PIL image, encoded bytes, or a list of them"
    )


def read_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise RuntimeInputError(f"image file {path} does not exist")
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as error:
        raise RuntimeInputError(f"image file {path} cannot be read: {error}") from error
    return decode_image(data, f"image file {path}")


def decode_image(data: np.ndarray, what: str) -> np.ndarray:
    import cv2

    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise RuntimeInputError(
            f"{what} is not a decodable image (empty, truncated, or not an image format OpenCV reads)"
        )
    return image


def from_array(array: np.ndarray, channel_order: str = "BGR") -> np.ndarray:
    if channel_order not in CHANNEL_ORDERS:
        raise RuntimeInputError(f"channel_order is {channel_order!r}, expected one of {CHANNEL_ORDERS}")
    if array.dtype != np.uint8:
        raise RuntimeInputError(f"image array has dtype {array.dtype}, expected uint8 pixels 0-255")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or array.shape[0] == 0 or array.shape[1] == 0:
        raise RuntimeInputError(f"image array has shape {array.shape}, expected (h, w, 3), (h, w, 4) or (h, w)")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    array = array[..., :3]
    if channel_order == "RGB":
        array = array[..., ::-1]
    return np.ascontiguousarray(array)


def _is_pil(source: Any) -> bool:
    """A PIL image, recognised without importing PIL."""
    return hasattr(source, "convert") and hasattr(source, "mode") and hasattr(source, "size")

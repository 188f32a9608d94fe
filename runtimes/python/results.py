"""What ``predict`` returns: one ``Result`` per image, each holding its ``detections``.

Coordinates are in the original image's pixels (x right, y down), boxes are ``(x1, y1, x2, y2)`` clipped to
the image. Arrays (``boxes``, ``scores``, ``class_ids``, ``masks``, ``keypoints``) are there for vectorised
use; ``detections`` gives the same data one object per detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Keypoint:
    name: str
    x: float
    y: float
    visibility: float  # already a probability (sigmoid applied by the model); 1.0 when the model has no visibility


@dataclass(frozen=True)
class Detection:
    class_id: int
    class_name: str
    confidence: float
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 in original-image pixels
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # bool (h, w) at image resolution
    keypoints: tuple[Keypoint, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: masks become their pixel area and bounding box, not the pixels."""
        out: dict[str, Any] = {
            "class_id": self.class_id,
            "class_name": self.class_name,
            "confidence": round(self.confidence, 5),
            "bbox": [round(v, 2) for v in self.bbox],
        }
        if self.mask is not None:
            out["mask_area"] = int(self.mask.sum())
        if self.keypoints is not None:
            out["keypoints"] = [
                {"name": k.name, "x": round(k.x, 2), "y": round(k.y, 2), "visibility": round(k.visibility, 4)}
                for k in self.keypoints
            ]
        return out


@dataclass
class Result:
    """Detections for one image, plus the arrays they were built from."""

    task: str
    orig_shape: tuple[int, int]  # (height, width) of the image the coordinates refer to
    boxes: np.ndarray  # (n, 4) float32 xyxy
    scores: np.ndarray  # (n,) float32
    class_ids: np.ndarray  # (n,) int64
    class_names: tuple[str, ...]
    masks: np.ndarray | None = None  # (n, h, w) bool, segment only
    keypoints: np.ndarray | None = None  # (n, k, 3) float32 x, y, visibility, pose only
    keypoint_names: tuple[str, ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()  # 1-based keypoint index pairs, as in metadata.json
    _detections: list[Detection] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self):
        return iter(self.detections)

    @property
    def detections(self) -> list[Detection]:
        if self._detections is None:
            self._detections = [self._detection(i) for i in range(len(self))]
        return self._detections

    def _detection(self, i: int) -> Detection:
        class_id = int(self.class_ids[i])
        return Detection(
            class_id=class_id,
            class_name=self.class_names[class_id],
            confidence=float(self.scores[i]),
            bbox=tuple(float(v) for v in self.boxes[i]),
            mask=None if self.masks is None else self.masks[i],
            keypoints=None if self.keypoints is None else self._keypoints(i),
        )

    def _keypoints(self, i: int) -> tuple[Keypoint, ...]:
        names = self.keypoint_names or tuple(f"keypoint_{k}" for k in range(len(self.keypoints[i])))
        return tuple(
            Keypoint(name, float(p[0]), float(p[1]), float(p[2]))
            for name, p in zip(names, self.keypoints[i], strict=False)
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": self.task,
            "image_shape": list(self.orig_shape),
            "detections": [d.to_dict() for d in self.detections],
        }
        if self.task == "pose":
            out["skeleton"] = [list(p) for p in self.skeleton]
        return out

"""Draw a Result onto its image: masks (blended), boxes with labels, keypoints with their skeleton."""

from __future__ import annotations

import numpy as np

from .results import Result

PALETTE = (
    (56, 56, 255),
    (151, 157, 255),
    (31, 112, 255),
    (29, 178, 255),
    (49, 210, 207),
    (10, 249, 72),
    (23, 204, 146),
    (134, 219, 61),
    (52, 147, 26),
    (187, 212, 0),
    (168, 153, 44),
    (255, 194, 0),
)  # BGR
KEYPOINT_VISIBLE = 0.5


def color(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def draw(image: np.ndarray, result: Result, mask_alpha: float = 0.45) -> np.ndarray:
    """A copy of BGR ``image`` with ``result`` drawn on it."""
    canvas = image.copy()
    thickness = max(1, round(sum(canvas.shape[:2]) / 600))
    if result.masks is not None:
        _draw_masks(canvas, result, mask_alpha)
    for det in result.detections:
        _draw_box(canvas, det.bbox, f"{det.class_name} {det.confidence:.2f}", color(det.class_id), thickness)
    if result.keypoints is not None:
        for points in result.keypoints:
            _draw_pose(canvas, points, result.skeleton, thickness)
    return canvas


def _draw_masks(canvas: np.ndarray, result: Result, alpha: float) -> None:
    for mask, class_id in zip(result.masks, result.class_ids, strict=True):
        tint = np.array(color(int(class_id)), np.float32)
        canvas[mask] = (canvas[mask] * (1 - alpha) + tint * alpha).astype(np.uint8)


def _draw_box(canvas: np.ndarray, bbox, label: str, bgr: tuple[int, int, int], thickness: int) -> None:
    import cv2

    x1, y1, x2, y2 = (int(round(v)) for v in bbox)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), bgr, thickness, cv2.LINE_AA)
    scale = thickness / 3
    (w, h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    top = y1 - h - 4 if y1 - h - 4 >= 0 else y1
    cv2.rectangle(canvas, (x1, top), (x1 + w + 2, top + h + 4), bgr, -1)
    cv2.putText(canvas, label, (x1 + 1, top + h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _draw_pose(canvas: np.ndarray, points: np.ndarray, skeleton, thickness: int) -> None:
    import cv2

    visible = points[:, 2] >= KEYPOINT_VISIBLE
    for a, b in skeleton:  # 1-based pairs
        if visible[a - 1] and visible[b - 1]:
            pa, pb = (tuple(int(round(v)) for v in points[i - 1, :2]) for i in (a, b))
            cv2.line(canvas, pa, pb, color(a), thickness, cv2.LINE_AA)
    for k, (x, y, _) in enumerate(points):
        if visible[k]:
            cv2.circle(canvas, (int(round(x)), int(round(y))), thickness + 2, color(k + 4), -1, cv2.LINE_AA)

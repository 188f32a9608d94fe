"""Deterministic synthetic "shapes" data set: the project's own training and validation data.

Rectangles, ellipses and triangles, randomly rotated, on noisy gradient backgrounds. Every shape
carries a box, a polygon mask and four keypoints (its topmost, rightmost, bottommost and leftmost
points: the corners of rectangles and triangles), so one generator feeds detect, segment and pose.
Nothing is downloaded: the same seed always yields the same pixels and labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES = ("rectangle", "ellipse", "triangle")
KEYPOINT_NAMES = ("top", "right", "bottom", "left")
# 1-based pairs, as in the COCO convention the export guide uses.
SKELETON = ((1, 2), (2, 3), (3, 4), (4, 1))
# Horizontal flip swaps "right" and "left".
FLIP_IDX = (0, 3, 2, 1)
TASKS = ("detect", "segment", "pose")


@dataclass(frozen=True)
class Shape:
    class_id: int
    polygon: np.ndarray  # (N, 2) float pixel coordinates, x then y

    @property
    def box(self) -> tuple[float, float, float, float]:
        x0, y0 = self.polygon.min(axis=0)
        x1, y1 = self.polygon.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def keypoints(self) -> np.ndarray:
        """(4, 2) extreme points: top, right, bottom, left."""
        p = self.polygon
        return np.stack([p[p[:, 1].argmin()], p[p[:, 0].argmax()], p[p[:, 1].argmax()], p[p[:, 0].argmin()]])


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _polygon(rng: np.random.Generator, class_id: int, radius: float) -> np.ndarray:
    angle = rng.uniform(-math.pi, math.pi)
    if class_id == 0:  # rectangle
        w, h = radius * rng.uniform(0.8, 1.3), radius * rng.uniform(0.5, 1.0)
        pts = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) * 0.75
        return _rotate(pts, rng.uniform(-0.6, 0.6))
    if class_id == 1:  # ellipse
        t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        a, b = radius, radius * rng.uniform(0.55, 1.0)
        return _rotate(np.stack([a * np.cos(t), b * np.sin(t)], axis=1), angle)
    steps = np.cumsum([0.0, rng.uniform(1.7, 2.5), rng.uniform(1.7, 2.5)])  # triangle
    theta = angle + steps
    return np.stack([np.cos(theta), np.sin(theta)], axis=1) * radius


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    base = rng.uniform(30, 225, size=3)
    tilt = rng.uniform(-60, 60, size=(2, 3))
    gx = np.linspace(-0.5, 0.5, width)[None, :, None] * tilt[0]
    gy = np.linspace(-0.5, 0.5, height)[:, None, None] * tilt[1]
    noise = rng.normal(0, 12, size=(height, width, 3))
    return base + gx + gy + noise


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    mean = background.reshape(-1, 3).mean(axis=0)
    for _ in range(20):
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - mean).sum() > 180:
            return colour
    return 255 - mean


def _overlaps(box, boxes, limit: float = 0.15) -> bool:
    for other in boxes:
        ix = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
        iy = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
        area = (box[2] - box[0]) * (box[3] - box[1])
        if ix * iy > limit * area:
            return True
    return False


def render(seed: int, width: int = 192, height: int = 192, max_shapes: int = 4) -> tuple[np.ndarray, list[Shape]]:
    """One RGB uint8 image and its shapes, fully determined by ``seed``."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    canvas = _background(rng, width, height)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    shapes: list[Shape] = []
    short = min(width, height)
    for _ in range(int(rng.integers(1, max_shapes + 1)) * 4):
        if len(shapes) >= max_shapes:
            break
        class_id = int(rng.integers(0, len(CLASS_NAMES)))
        radius = short * rng.uniform(0.11, 0.24)
        centre = rng.uniform([radius, radius], [width - radius, height - radius])
        shape = Shape(class_id, _polygon(rng, class_id, radius) + centre)
        if _overlaps(shape.box, [s.box for s in shapes]):
            continue
        colour = tuple(int(c) for c in _contrasting_colour(rng, canvas))
        draw.polygon([tuple(p) for p in shape.polygon], fill=colour)
        shapes.append(shape)
    pixels = np.asarray(image).astype(np.float32) + rng.normal(0, 6, size=(height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8), shapes


def label_lines(shapes: list[Shape], task: str, width: int, height: int) -> list[str]:
    """YOLO label lines (normalised) for one image."""
    scale = np.array([width, height], dtype=np.float64)
    lines = []
    for shape in shapes:
        poly = np.clip(shape.polygon / scale, 0.0, 1.0)
        x0, y0 = poly.min(axis=0)
        x1, y1 = poly.max(axis=0)
        fields = [shape.class_id]
        if task == "segment":
            fields += [f"{v:.6f}" for v in poly.reshape(-1)]
        else:
            fields += [f"{v:.6f}" for v in ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)]
        if task == "pose":
            kpts = np.clip(shape.keypoints / scale, 0.0, 1.0)
            fields += [
                f"{v:.6f}" if i % 3 < 2 else "2" for i, v in enumerate(np.insert(kpts, 2, 2, axis=1).reshape(-1))
            ]
        lines.append(" ".join(str(f) for f in fields))
    return lines


def write_dataset(root: Path, task: str, n_train: int = 256, n_val: int = 64, size: int = 192, seed: int = 0) -> Path:
    """Write an Ultralytics-layout data set for ``task`` under ``root``; return its data YAML path."""
    from PIL import Image

    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    root = Path(root)
    for split, count, offset in (("train", n_train, 0), ("val", n_val, 1_000_000)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, shapes = render(seed * 10_000_000 + offset + index, size, size)
            Image.fromarray(image).save(root / "images" / split / f"{index:05d}.png")
            lines = label_lines(shapes, task, size, size)
            (root / "labels" / split / f"{index:05d}.txt").write_text("\n".join(lines) + "\n")
    return write_data_yaml(root, task)


def write_data_yaml(root: Path, task: str) -> Path:
    lines = [f"path: {Path(root).resolve()}", "train: images/train", "val: images/val", "names:"]
    lines += [f"  {i}: {name}" for i, name in enumerate(CLASS_NAMES)]
    if task == "pose":
        lines += [f"kpt_shape: [{len(KEYPOINT_NAMES)}, 3]", f"flip_idx: {list(FLIP_IDX)}", "kpt_names:"]
        lines += ["  0:"] + [f"    - {name}" for name in KEYPOINT_NAMES]
    path = Path(root) / "data.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sample_images(folder: Path, sizes=((320, 240), (192, 192), (256, 384), (480, 320)), seed: int = 4242) -> list[Path]:
    """Write the bundled sample images (different sizes, exercising the letterbox)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (width, height) in enumerate(sizes):
        image, _ = render(seed + index, width, height, max_shapes=3)
        path = folder / f"shapes_{index}_{width}x{height}.jpg"
        Image.fromarray(image).save(path, quality=92)
        paths.append(path)
    return paths

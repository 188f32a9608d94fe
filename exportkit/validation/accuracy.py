"""Box mAP50 on the generated shapes validation split, for an artifact and for its PyTorch model.

Both go through the same letterbox and the runtime's decoding; only the network differs, so the
difference is what the export (FP16, INT8) cost.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from exportkit.shapes import CLASS_NAMES

EVAL_CONF, EVAL_IOU = 0.001, 0.7  # Ultralytics' validation thresholds


@lru_cache(maxsize=1)
def validation_split() -> tuple[tuple[Path, np.ndarray], ...]:
    """(image path, ground truth rows [class, x1, y1, x2, y2] in pixels) for the generated val split."""
    from exportkit.project import cache_dir
    from exportkit.shapes import write_dataset

    root = cache_dir() / "shapes" / "val-detect"
    images = root / "images" / "val"
    if not images.exists() or not any(images.iterdir()):
        write_dataset(root, "detect", n_train=0)
    return labelled(sorted(images.glob("*.png")))


def labelled(images) -> tuple[tuple[Path, np.ndarray], ...]:
    """(image, ground truth rows [class, x1, y1, x2, y2] in pixels) from YOLO labels (images/ -> labels/, .txt)."""
    from PIL import Image

    from exportkit.formats._calibration import _label_of

    items = []
    for image in images:
        label = _label_of(Path(image))
        rows = np.loadtxt(label, ndmin=2) if label.exists() and label.stat().st_size else np.zeros((0, 5))
        rows = rows[:, :5]  # segment and pose labels carry more columns after the box
        w, h = Image.open(image).size
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        boxes = np.stack([rows[:, 0], cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        items.append((Path(image), boxes))
    return tuple(items)


def applies_to(metadata: dict) -> bool:
    return tuple(metadata.get("class_names", ())) == CLASS_NAMES


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """COCO-style 101-point interpolated AP."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(np.concatenate(([1.0], precision, [0.0])))))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x))


def map50(
    predictions: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    truths: list[np.ndarray],
    num_classes: int,
    iou: float = 0.5,
) -> float:
    """predictions: per image (boxes xyxy, scores, class ids); truths: per image rows [class, x1, y1, x2, y2]."""
    from exportkit.validation.parity import box_iou

    aps = []
    for c in range(num_classes):
        scores, hits, total = [], [], 0
        for (boxes, conf, cls), truth in zip(predictions, truths):
            gt = truth[truth[:, 0] == c, 1:]
            total += len(gt)
            mine = np.where(cls == c)[0]
            mine = mine[np.argsort(-conf[mine])]
            taken = np.zeros(len(gt), bool)
            ious = box_iou(boxes[mine].astype(np.float64), gt)
            for row, i in enumerate(mine):
                scores.append(conf[i])
                best = int(np.argmax(ious[row])) if len(gt) else -1
                ok = best >= 0 and ious[row, best] >= iou and not taken[best]
                if ok:
                    taken[best] = True
                hits.append(ok)
        if total == 0:
            continue
        order = np.argsort(-np.asarray(scores))
        tp = np.cumsum(np.asarray(hits, float)[order]) if hits else np.zeros(0)
        fp = np.cumsum(1 - np.asarray(hits, float)[order]) if hits else np.zeros(0)
        recall = tp / total
        precision = tp / np.maximum(tp + fp, 1e-9)
        aps.append(average_precision(recall, precision))
    return float(np.mean(aps)) if aps else 0.0


def map50_95(predictions, truths, num_classes: int) -> float:
    """COCO's box mAP50-95: the mean of mAP at IoU 0.50, 0.55 ... 0.95."""
    return float(np.mean([map50(predictions, truths, num_classes, t) for t in np.linspace(0.5, 0.95, 10)]))


def evaluate(run, metadata: dict, split=None, both: bool = False, progress: str | None = None):
    """mAP50 of a runner (NCHW float input -> raw outputs) decoded with ``metadata``, on ``split`` (default: the
    shapes val split); with ``both``, (mAP50, mAP50-95). ``progress`` names a progress bar (stderr)."""
    import cv2

    from exportkit.runtime_import import runtime_module
    from exportkit.validation.harness import exported_input

    decode = runtime_module("postprocess").decode
    items = validation_split() if split is None else split
    if progress:
        from exportkit.progress import progress as bar

        items = bar(items, len(items), progress)
    predictions, truths = [], []
    for path, truth in items:
        tensor, geometry = exported_input(cv2.imread(str(path)), metadata)
        result = decode(run(tensor), metadata, [geometry], conf=EVAL_CONF, iou=EVAL_IOU)[0]
        predictions.append((result.boxes, result.scores, result.class_ids))
        truths.append(truth)
    nc = len(metadata["class_names"])
    return (
        (map50(predictions, truths, nc), map50_95(predictions, truths, nc)) if both else map50(predictions, truths, nc)
    )

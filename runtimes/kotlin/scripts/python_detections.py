"""The Python runtime's detections on an export folder's model and the given images, as JSON (the parity reference).

    python runtimes/kotlin/scripts/python_detections.py EXPORT_DIR OUT.json IMAGE...

Pose detections carry ``keypoints`` ([x, y, visibility] per keypoint); segment detections carry ``mask`` as
``{"width", "height", "runs"}``: run lengths over the row-major pixels, alternating, starting with a run of
background (possibly 0 long).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from runtimes.python.inference import YOLOInference


def detections(folder: Path, images: list[str], conf: float = 0.25, iou: float = 0.45) -> dict:
    model = YOLOInference(str(folder / "model.tflite"), str(folder / "metadata.json"))
    found = {}
    for image in images:
        result = model.predict(image, conf_threshold=conf, iou_threshold=iou)
        found[Path(image).name] = [as_json(d) for d in result.detections]
    return found


def as_json(d) -> dict:
    entry = {
        "class_id": int(d.class_id),
        "class_name": d.class_name,
        "confidence": float(d.confidence),
        "bbox": [float(v) for v in d.bbox],
    }
    if d.keypoints:
        entry["keypoints"] = [[float(k.x), float(k.y), float(k.visibility)] for k in d.keypoints]
    if d.mask is not None:
        entry["mask"] = {"width": int(d.mask.shape[1]), "height": int(d.mask.shape[0]), "runs": runs(d.mask)}
    return entry


def runs(mask: np.ndarray) -> list[int]:
    """Alternating run lengths of the row-major pixels, the first one of background."""
    flat = np.concatenate([[False], mask.ravel().astype(bool), [not mask.ravel()[-1]]])
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    return np.diff(np.concatenate([[0], edges])).tolist()


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 3
    folder, out, images = Path(argv[0]), Path(argv[1]), argv[2:]
    out.write_text(json.dumps(detections(folder, images), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The Python runtime's detections on an export folder's model and the given images, as JSON (the parity reference).

    python runtimes/kotlin/scripts/python_detections.py EXPORT_DIR OUT.json IMAGE...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from runtimes.python.inference import YOLOInference


def detections(folder: Path, images: list[str], conf: float = 0.25, iou: float = 0.45) -> dict:
    model = YOLOInference(str(folder / "model.tflite"), str(folder / "metadata.json"))
    found = {}
    for image in images:
        result = model.predict(image, conf_threshold=conf, iou_threshold=iou)
        found[Path(image).name] = [
            {"class_id": int(d.class_id), "class_name": d.class_name, "confidence": float(d.confidence),
             "bbox": [float(v) for v in d.bbox]}
            for d in result.detections
        ]
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 3
    folder, out, images = Path(argv[0]), Path(argv[1]), argv[2:]
    out.write_text(json.dumps(detections(folder, images), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

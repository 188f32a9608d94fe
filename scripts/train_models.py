"""Train the three bundled shapes models (detect, segment, pose) on the CPU: `make models`.

Detect trains from scratch; segment and pose start from the detect weights (backbone and neck
transfer), which is what makes three useful models affordable on two CPU cores. Each finished
checkpoint is evaluated on the generated validation split and the figures go to models/metrics.json.

    python scripts/train_models.py [--epochs-det 60 --epochs-seg 30 --epochs-pose 40] [--only detect]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
ARCH = {"detect": "yolo11n.yaml", "segment": "yolo11n-seg.yaml", "pose": "yolo11n-pose.yaml"}
NAMES = {"detect": "shapes-det", "segment": "shapes-seg", "pose": "shapes-pose"}
IMGSZ = 192


def train(task: str, epochs: int, data: Path, workdir: Path) -> Path:
    from ultralytics import YOLO

    model = YOLO(ARCH[task], task=task)
    det = MODELS / "shapes-det.pt"
    if task != "detect" and det.exists():
        model.load(str(det))
    model.train(
        data=str(data),
        epochs=epochs,
        imgsz=IMGSZ,
        batch=16,
        device="cpu",
        workers=2,
        seed=0,
        deterministic=True,
        plots=False,
        val=False,
        project=str(workdir),
        name=task,
        exist_ok=True,
        close_mosaic=max(1, epochs // 5),
        patience=0,
        verbose=False,
        amp=False,
    )
    out = MODELS / f"{NAMES[task]}.pt"
    shutil.copy2(workdir / task / "weights" / "last.pt", out)
    return out


def evaluate(task: str, weights: Path, data: Path) -> dict:
    from ultralytics import YOLO

    metrics = YOLO(str(weights)).val(data=str(data), imgsz=IMGSZ, batch=16, device="cpu", plots=False, verbose=False)
    result = {"box_map50": round(float(metrics.box.map50), 4), "box_map50_95": round(float(metrics.box.map), 4)}
    if task == "segment":
        result["mask_map50"] = round(float(metrics.seg.map50), 4)
    if task == "pose":
        result["pose_map50"] = round(float(metrics.pose.map50), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs-det", type=int, default=60)
    parser.add_argument("--epochs-seg", type=int, default=30)
    parser.add_argument("--epochs-pose", type=int, default=40)
    parser.add_argument("--only", choices=list(ARCH), action="append")
    parser.add_argument("--eval-only", action="store_true")
    args = parser.parse_args()

    from exportkit.shapes import write_dataset

    cache = ROOT / ".cache"
    epochs = {"detect": args.epochs_det, "segment": args.epochs_seg, "pose": args.epochs_pose}
    metrics_path = MODELS / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    for task in args.only or list(ARCH):
        data = write_dataset(cache / "shapes" / task, task)
        start = time.time()
        weights = MODELS / f"{NAMES[task]}.pt" if args.eval_only else train(task, epochs[task], data, cache / "train")
        minutes = round((time.time() - start) / 60, 1)
        entry = metrics.get(NAMES[task], {}) if args.eval_only else {"epochs": epochs[task], "train_minutes": minutes}
        entry.update(evaluate(task, weights, data), imgsz=IMGSZ, task=task, architecture=ARCH[task])
        metrics[NAMES[task]] = entry
        metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        print(NAMES[task], entry, flush=True)


if __name__ == "__main__":
    main()

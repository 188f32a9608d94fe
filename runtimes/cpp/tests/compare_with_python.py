"""Check that the C++ runtime (`yolo_infer --json`) gives the Python runtime's results on the same artifact and images.

For every image: the same number of detections and, matched one to one (same class, best box IoU), box IoU > 0.99,
confidence within 1e-3, mask IoU > 0.95 (segment) and keypoints within 1 px, visibility within 1e-3 (pose).
Every mismatch on every image is gathered and printed before the exit status is decided.

    python runtimes/cpp/tests/compare_with_python.py --cli runtimes/cpp/build/yolo_infer \\
        --artifact-dir runtimes/cpp/build/artifacts/detect --images models/samples

The reference is the Python runtime (runtimes/python); `--reference ultralytics` compares with Ultralytics'
own predict (retina masks) instead. Exit status: 0 all match, 1 some mismatch, 3 bad arguments or missing files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[3]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass(frozen=True)
class Criteria:
    box_iou: float = 0.99
    confidence: float = 1e-3
    mask_iou: float = 0.95
    keypoint_px: float = 1.0
    visibility: float = 1e-3


@dataclass
class Found:
    """One detection in original-image pixels, from either runtime."""

    class_id: int
    confidence: float
    box: np.ndarray  # (4,) xyxy
    mask: np.ndarray | None = None  # (h, w) bool
    keypoints: np.ndarray | None = None  # (k, 3) x, y, visibility


# ------------------------------------------------------------------------------------------------ runtimes


def decode_rle(mask: dict) -> np.ndarray:
    """yolo_infer's run-length mask (row-major runs, 0 first) -> (h, w) bool."""
    h, w = mask["size"]
    counts = np.asarray(mask["counts"], np.int64)
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValueError(f"mask run lengths sum to {flat.size}, expected {h} x {w}")
    return flat.reshape(h, w)


def run_cpp(cli: Path, model: Path, metadata: Path, image: Path, conf: float, iou: float) -> list[Found]:
    cmd = [
        str(cli),
        str(model),
        str(image),
        "--metadata",
        str(metadata),
        "--conf",
        repr(conf),
        "--iou",
        repr(iou),
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    found = []
    for d in json.loads(proc.stdout)["detections"]:
        found.append(
            Found(
                class_id=d["class_id"],
                confidence=d["confidence"],
                box=np.asarray(d["box"], np.float64),
                mask=decode_rle(d["mask"]) if "mask" in d else None,
                keypoints=np.asarray(d["keypoints"], np.float64) if "keypoints" in d else None,
            )
        )
    return found


class PythonRuntime:
    """runtimes/python's YOLOInference."""

    name = "the Python runtime"
    zeroes_hidden_keypoints = False

    def __init__(self, model: Path, metadata: Path, task: str, imgsz: int):
        from runtimes.python.inference import YOLOInference

        self.model = YOLOInference(model, metadata)

    def predict(self, image: Path, conf: float, iou: float) -> list[Found]:
        result = self.model.predict(str(image), conf_threshold=conf, iou_threshold=iou)
        found = []
        for d in result.detections:
            keypoints = None
            if d.keypoints is not None:
                keypoints = np.asarray([[k.x, k.y, k.visibility] for k in d.keypoints], np.float64)
            found.append(
                Found(
                    d.class_id,
                    d.confidence,
                    np.asarray(d.bbox, np.float64),
                    None if d.mask is None else np.asarray(d.mask, bool),
                    keypoints,
                )
            )
        return found


class UltralyticsPredict:
    """Ultralytics' YOLO(model.onnx).predict, native-resolution masks (retina_masks=True)."""

    name = "Ultralytics predict"
    zeroes_hidden_keypoints = True  # its Keypoints set x, y = 0 where visibility < 0.5

    def __init__(self, model: Path, metadata: Path, task: str, imgsz: int):
        from ultralytics import YOLO

        self.model = YOLO(str(model), task=task)
        self.imgsz = imgsz
        meta = json.loads(metadata.read_text())["postprocessing"]
        self.options = {"max_det": meta.get("max_detections", 300), "agnostic_nms": meta.get("agnostic_nms", False)}

    def predict(self, image: Path, conf: float, iou: float) -> list[Found]:
        r = self.model.predict(
            str(image),
            imgsz=self.imgsz,
            conf=conf,
            iou=iou,
            device="cpu",
            verbose=False,
            retina_masks=True,
            **self.options,
        )[0]
        boxes = r.boxes
        masks = None if r.masks is None else r.masks.data.cpu().numpy() > 0
        keypoints = None if r.keypoints is None else r.keypoints.data.cpu().numpy()
        return [
            Found(
                int(boxes.cls[i]),
                float(boxes.conf[i]),
                boxes.xyxy[i].cpu().numpy().astype(np.float64),
                None if masks is None else masks[i],
                None if keypoints is None else keypoints[i].astype(np.float64),
            )
            for i in range(len(boxes))
        ]


REFERENCES = {"python": PythonRuntime, "ultralytics": UltralyticsPredict}


# ------------------------------------------------------------------------------------------------ comparison


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else float(np.allclose(a, b))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


@dataclass
class ImageReport:
    image: str
    cpp_count: int
    reference_count: int
    min_box_iou: float = 1.0
    max_confidence_diff: float = 0.0
    min_mask_iou: float = 1.0
    max_keypoint_px: float = 0.0
    max_visibility_diff: float = 0.0


def match(cpp: list[Found], reference: list[Found]) -> tuple[list[tuple[Found, Found]], list[Found], list[Found]]:
    """Pair each reference detection (best first) with the unpaired C++ detection of its class with the highest box IoU."""
    pairs, free = [], list(cpp)
    for ref in sorted(reference, key=lambda f: -f.confidence):
        same_class = [c for c in free if c.class_id == ref.class_id]
        if not same_class:
            continue
        best = max(same_class, key=lambda c: box_iou(c.box, ref.box))
        if box_iou(best.box, ref.box) <= 0.5:
            continue
        pairs.append((best, ref))
        free.remove(best)
    paired_refs = {id(r) for _, r in pairs}
    return pairs, free, [r for r in reference if id(r) not in paired_refs]


def compare(
    cpp: list[Found], reference: list[Found], conf: float, criteria: Criteria, zeroes_hidden_keypoints: bool, label: str
) -> tuple[ImageReport, list[str]]:
    """Every difference beyond the criteria on one image, as messages; borderline confidences are allowed to differ."""
    report = ImageReport(label, len(cpp), len(reference))
    problems: list[str] = []
    pairs, cpp_only, reference_only = match(cpp, reference)
    for side, unmatched in (("C++", cpp_only), ("reference", reference_only)):
        for f in unmatched:
            if abs(f.confidence - conf) <= criteria.confidence:
                continue  # at the threshold: either side may keep it
            problems.append(
                f"{label}: {side} alone has class {f.class_id} conf {f.confidence:.4f} box {np.round(f.box, 1).tolist()}"
            )

    for c, r in pairs:
        where = f"{label}: class {r.class_id} at {np.round(r.box, 1).tolist()}"
        iou = box_iou(c.box, r.box)
        diff = abs(c.confidence - r.confidence)
        report.min_box_iou = min(report.min_box_iou, iou)
        report.max_confidence_diff = max(report.max_confidence_diff, diff)
        if iou <= criteria.box_iou:
            problems.append(f"{where}: box IoU {iou:.4f} <= {criteria.box_iou} (C++ {np.round(c.box, 2).tolist()})")
        if diff > criteria.confidence:
            problems.append(f"{where}: confidence {c.confidence:.5f} vs {r.confidence:.5f}")
        if (c.mask is None) != (r.mask is None):
            problems.append(f"{where}: mask present in only one runtime")
        elif c.mask is not None:
            if c.mask.shape != r.mask.shape:
                problems.append(f"{where}: mask shape {c.mask.shape} vs {r.mask.shape}")
            else:
                m = mask_iou(c.mask, r.mask)
                report.min_mask_iou = min(report.min_mask_iou, m)
                if m <= criteria.mask_iou:
                    problems.append(f"{where}: mask IoU {m:.4f} <= {criteria.mask_iou}")
        if (c.keypoints is None) != (r.keypoints is None):
            problems.append(f"{where}: keypoints present in only one runtime")
        elif c.keypoints is not None:
            problems += compare_keypoints(c.keypoints, r.keypoints, criteria, zeroes_hidden_keypoints, where, report)
    return report, problems


def compare_keypoints(
    c: np.ndarray, r: np.ndarray, criteria: Criteria, zeroes_hidden: bool, where: str, report: ImageReport
) -> list[str]:
    if c.shape != r.shape:
        return [f"{where}: keypoints shape {c.shape} vs {r.shape}"]
    problems = []
    visibility = np.abs(c[:, 2] - r[:, 2])
    compared = r[:, 2] >= 0.5 if zeroes_hidden else np.ones(len(r), bool)
    distance = np.abs(c[:, :2] - r[:, :2]).max(1)
    distance = np.where(compared, distance, 0.0)
    report.max_keypoint_px = max(report.max_keypoint_px, float(distance.max(initial=0)))
    report.max_visibility_diff = max(report.max_visibility_diff, float(visibility.max(initial=0)))
    for k in np.flatnonzero(distance > criteria.keypoint_px):
        problems.append(
            f"{where}: keypoint {k} at {np.round(c[k, :2], 2).tolist()} vs {np.round(r[k, :2], 2).tolist()}"
        )
    for k in np.flatnonzero(visibility > criteria.visibility):
        problems.append(f"{where}: keypoint {k} visibility {c[k, 2]:.4f} vs {r[k, 2]:.4f}")
    return problems


# ------------------------------------------------------------------------------------------------ command line


def list_images(paths: list[Path]) -> list[Path]:
    images = []
    for path in paths:
        images += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else [path]
    return images


def print_table(reports: list[ImageReport], task: str) -> None:
    header = f"{'image':<28} {'C++':>4} {'ref':>4} {'min box IoU':>11} {'max dconf':>10}"
    header += f" {'min mask IoU':>12}" if task == "segment" else ""
    header += f" {'max kpt px':>10} {'max dvis':>9}" if task == "pose" else ""
    print(header)
    for r in reports:
        line = f"{r.image:<28} {r.cpp_count:>4} {r.reference_count:>4} {r.min_box_iou:>11.5f} {r.max_confidence_diff:>10.2e}"
        line += f" {r.min_mask_iou:>12.4f}" if task == "segment" else ""
        line += f" {r.max_keypoint_px:>10.3f} {r.max_visibility_diff:>9.2e}" if task == "pose" else ""
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", type=Path, required=True, help="the yolo_infer binary")
    parser.add_argument("--artifact-dir", type=Path, required=True, help="folder with model.onnx and metadata.json")
    parser.add_argument("--images", type=Path, nargs="+", required=True, help="images, or folders of images")
    parser.add_argument("--conf", type=float, help="confidence threshold (default: metadata.json's)")
    parser.add_argument("--iou", type=float, help="NMS IoU threshold (default: metadata.json's)")
    parser.add_argument(
        "--reference", choices=sorted(REFERENCES), default="python", help="what to compare with (default python)"
    )
    args = parser.parse_args(argv)

    model, metadata_path = args.artifact_dir / "model.onnx", args.artifact_dir / "metadata.json"
    images = list_images(args.images)
    missing = [str(p) for p in (args.cli, model, metadata_path, *images) if not p.exists()]
    if missing or not images:
        print(f"compare_with_python: error: missing {', '.join(missing) or 'images'}", file=sys.stderr)
        return 3
    metadata = json.loads(metadata_path.read_text())
    task, imgsz = metadata["task"], metadata["input_shape"][0]
    conf = metadata["postprocessing"]["confidence_threshold"] if args.conf is None else args.conf
    iou = metadata["postprocessing"]["iou_threshold"] if args.iou is None else args.iou
    reference = REFERENCES[args.reference](model, metadata_path, task, imgsz)
    print(f"{task} model {model} vs {reference.name}, conf {conf}, IoU {iou}, {len(images)} images")

    reports, problems = [], []
    for image in images:
        cpp = run_cpp(args.cli, model, metadata_path, image, conf, iou)
        ref = reference.predict(image, conf, iou)
        report, found = compare(cpp, ref, conf, Criteria(), reference.zeroes_hidden_keypoints, image.name)
        reports.append(report)
        problems += found
    print_table(reports, task)
    if not any(r.reference_count for r in reports):
        problems.append(f"no detections on any image at conf {conf}: the comparison checked nothing")
    if problems:
        print(f"\n{len(problems)} mismatches:", *problems, sep="\n  ")
        return 1
    print(f"C++ matches {reference.name} on {len(images)} images")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())

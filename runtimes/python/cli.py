"""``python -m runtimes.python.inference MODEL IMAGE [IMAGE ...] [--save out.jpg] [--conf --iou --json]``.

Exit codes: 0 ok, 2 bad input (missing or unreadable image, bad argument), 3 bad model or metadata (missing,
unreadable, or not matching each other), 4 the backend's package is not installed. Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import EXIT_OK, InferenceError, RuntimeInputError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runtimes.python.inference",
        description="Run an exported YOLO artifact (with its metadata.json) on images.",
        epilog="exit codes: 0 ok, 2 bad input, 3 bad model/metadata, 4 backend package missing",
    )
    p.add_argument("model", type=Path, help="model.onnx / model.xml / model.tflite, or the export folder")
    p.add_argument("images", type=Path, nargs="+", help="image files")
    p.add_argument("--metadata", type=Path, help="metadata.json (default: beside the model)")
    p.add_argument("--conf", type=float, help="confidence threshold (default: metadata.json)")
    p.add_argument("--iou", type=float, help="NMS IoU threshold (default: metadata.json)")
    p.add_argument("--max-det", type=int, help="most detections per image (default: metadata.json)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (ONNX Runtime) or an OpenVINO device")
    p.add_argument(
        "--backend",
        choices=("onnxruntime", "openvino", "litert"),
        help="engine (default: the export format's own); openvino also runs model.onnx",
    )
    p.add_argument("--save", type=Path, help="draw results: an image file for one input, a folder for several")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from .images import load_image
    from .inference import YOLOInference

    model = YOLOInference(args.model, args.metadata, device=args.device, backend=args.backend)
    images = [load_image(path) for path in args.images]
    results = model.predict(images, args.conf, args.iou, args.max_det)
    if args.json:
        payload = [{"image": str(path), **r.to_dict()} for path, r in zip(args.images, results, strict=True)]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
    else:
        for path, result in zip(args.images, results, strict=True):
            print(_summary(path, result))
    if args.save:
        _save(args.save, args.images, images, results)
    return EXIT_OK


def _summary(path: Path, result) -> str:
    lines = [f"{path}: {len(result)} detection{'s' if len(result) != 1 else ''}"]
    for det in result.detections:
        box = ", ".join(f"{v:.1f}" for v in det.bbox)
        extra = f" mask {int(det.mask.sum())} px" if det.mask is not None else ""
        if det.keypoints is not None:
            extra += " keypoints " + " ".join(
                f"{k.name}({k.x:.0f},{k.y:.0f},{k.visibility:.2f})" for k in det.keypoints
            )
        lines.append(f"  {det.class_name} {det.confidence:.3f} [{box}]{extra}")
    return "\n".join(lines)


def _save(target: Path, paths: list[Path], images: list, results: list) -> None:
    import cv2

    from .draw import draw

    if len(paths) > 1:
        target.mkdir(parents=True, exist_ok=True)
    for path, image, result in zip(paths, images, results, strict=True):
        out = target / path.name if len(paths) > 1 else target
        if not cv2.imwrite(str(out), draw(image, result)):
            raise RuntimeInputError(f"cannot write {out}: the folder must exist and the suffix be an image format")
        print(f"saved {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except InferenceError as error:
        print(error.one_line(), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail again
        return 0

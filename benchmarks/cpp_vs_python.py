"""C++ runtime vs Python runtime: end-to-end predict() latency on the same ONNX artifact and image.

Both time predict() on an image already decoded in memory (letterbox, normalisation, ONNX Runtime, decoding, NMS,
masks, keypoints), median over --runs calls after --warmup untimed calls, each with the same ONNX Runtime thread
count. The C++ side is `yolo_infer --bench`; the Python side is runtimes/python's YOLOInference.

    python benchmarks/cpp_vs_python.py                      # the bundled detect/segment/pose models
    python benchmarks/cpp_vs_python.py --artifact-dir exports/onnx --runs 200

Without --artifact-dir the bundled models are exported (once, through export.py) into runtimes/cpp/build/artifacts,
where the C++ parity tests keep them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CPP_DIR = REPO_ROOT / "runtimes" / "cpp"
BUNDLED = {"detect": "shapes-det.pt", "segment": "shapes-seg.pt", "pose": "shapes-pose.pt"}
DEFAULT_IMAGE = REPO_ROOT / "models" / "samples" / "shapes_3_480x320.jpg"


def bundled_artifacts(imgsz: int) -> list[Path]:
    """Export the bundled models that exist (skipped while up to date) and return their folders."""
    folders = []
    for task, name in BUNDLED.items():
        checkpoint = REPO_ROOT / "models" / name
        if not checkpoint.is_file():
            print(f"skipping {task}: {checkpoint} not found", file=sys.stderr)
            continue
        folder = CPP_DIR / "build" / "artifacts" / task
        cmd = [
            sys.executable,
            str(CPP_DIR / "tests" / "export_artifact.py"),
            "--checkpoint",
            str(checkpoint),
            "--output-dir",
            str(folder),
            "--imgsz",
            str(imgsz),
        ]
        subprocess.run(cmd, check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
        folders.append(folder)
    return folders


def time_cpp(cli: Path, folder: Path, image: Path, runs: int, warmup: int, threads: int) -> float:
    cmd = [str(cli), str(folder / "model.onnx"), str(image), "--bench", str(runs), "--warmup", str(warmup), "--json"]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["bench"]["median_ms"]


def time_python(folder: Path, image: Path, runs: int, warmup: int, threads: int) -> float:
    import cv2

    from runtimes.python.inference import YOLOInference

    model = YOLOInference(folder / "model.onnx", threads=threads or None, device="cpu")
    pixels = cv2.imread(str(image))
    for _ in range(warmup):
        model.predict(pixels)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.predict(pixels)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", type=Path, default=CPP_DIR / "build" / "yolo_infer", help="the yolo_infer binary")
    parser.add_argument(
        "--artifact-dir", type=Path, nargs="+", help="ONNX export folders (default: the bundled models)"
    )
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="the image to predict on")
    parser.add_argument("--runs", type=int, default=50, help="timed predict() calls per runtime (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    parser.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime intra-op threads for both (default: ORT's)"
    )
    parser.add_argument("--imgsz", type=int, default=192, help="input size when exporting the bundled models")
    args = parser.parse_args(argv)
    if not args.cli.is_file():
        print(
            f"cpp_vs_python: error: {args.cli} not found; build it with `make -C runtimes/cpp build`", file=sys.stderr
        )
        return 3

    folders = args.artifact_dir or bundled_artifacts(args.imgsz)
    rows = []
    for folder in folders:
        task = json.loads((folder / "metadata.json").read_text())["task"]
        cpp = time_cpp(args.cli, folder, args.image, args.runs, args.warmup, args.threads)
        python = time_python(folder, args.image, args.runs, args.warmup, args.threads)
        rows.append((task, folder.name, cpp, python))

    print(
        f"median predict() latency, {args.image.name}, {args.runs} runs after {args.warmup} warm-up, "
        f"threads {args.threads or 'ORT default'}"
    )
    print(f"{'task':<8} {'artifact':<20} {'C++ ms':>8} {'Python ms':>10} {'Python / C++':>13}")
    for task, name, cpp, python in rows:
        print(f"{task:<8} {name:<20} {cpp:>8.2f} {python:>10.2f} {python / cpp:>12.2f}x")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())

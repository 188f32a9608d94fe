"""What loading an untrusted checkpoint safely costs: scan + restricted load against an unrestricted load.

    python benchmarks/safe_load.py [--rounds 5] [--models shapes-det shapes-seg shapes-pose] [--no-export]

Per bundled model, side by side in one run (median of the rounds, milliseconds):
  unrestricted   what exportkit did before: torch.load(weights_only=False), then YOLO(path) loading the file again
  scan           exportkit.safe_load.scan_archive alone (zip checks + the opcode walk, no torch)
  exportkit      what an export does: the plan's scan (no torch), then exportkit.checkpoint.load_checkpoint
                 (reads the bytes once, torch.load(weights_only=True) with the classes found, YOLO from that model)
and one ONNX export of the model (`python export.py`, the whole process), to show the load's share of a job.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")


def unrestricted(path: Path) -> None:
    import torch
    from ultralytics import YOLO

    torch.load(path, map_location="cpu", weights_only=False)  # only here, on the project's own files
    from ultralytics.nn import tasks

    safe = tasks.SAFE_LOAD
    tasks.SAFE_LOAD = False  # Ultralytics' default: a second, unrestricted load of the same file
    try:
        YOLO(str(path))
    finally:
        tasks.SAFE_LOAD = safe


def median_ms(fn, path: Path, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(path)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def export_seconds(path: Path) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "export.py"),
                "--checkpoint_path",
                str(path),
                "--export_format",
                "onnx",
                "--output_dir",
                out,
                "-q",
            ],
            check=True,
            capture_output=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["shapes-det", "shapes-seg", "shapes-pose"])
    parser.add_argument("--no-export", action="store_true", help="skip the ONNX export column")
    args = parser.parse_args()

    from exportkit.checkpoint import load_checkpoint, peek_checkpoint
    from exportkit.safe_load import forget_scans, scan_archive

    def exportkit_load(path: Path) -> None:
        forget_scans()
        peek_checkpoint(path)
        load_checkpoint(path)

    def scan_only(path: Path) -> None:
        forget_scans()
        scan_archive(path)

    for model in args.models:  # warm imports and caches once, outside the timings
        unrestricted(ROOT / "models" / f"{model}.pt")
        exportkit_load(ROOT / "models" / f"{model}.pt")
    print(
        "| model | unrestricted ms | scan ms | exportkit ms | exportkit / unrestricted | ONNX export s | "
        "exportkit load / export |"
    )
    print("|---|---|---|---|---|---|---|")
    for model in args.models:
        path = ROOT / "models" / f"{model}.pt"
        plain, scan, safe = [], [], []
        for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits all three alike
            plain.append(median_ms(unrestricted, path, 1))
            scan.append(median_ms(scan_only, path, 1))
            safe.append(median_ms(exportkit_load, path, 1))
        plain_ms, scan_ms, safe_ms = (statistics.median(v) for v in (plain, scan, safe))
        export = None if args.no_export else export_seconds(path)
        share = f"{safe_ms / 1000 / export:.1%}" if export else "-"
        print(
            f"| {model} | {plain_ms:.0f} | {scan_ms:.0f} | {safe_ms:.0f} | {safe_ms / plain_ms:.2f}x | "
            f"{f'{export:.1f}' if export else '-'} | {share} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

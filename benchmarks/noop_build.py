"""How long an up-to-date `doit export` takes next to `doit list`, over the release matrix (15 cells).

    python benchmarks/noop_build.py [--runs 5] [--matrix release] [--output DIR]

Builds the matrix once into .cache/bench-noop if needed (minutes), then times `doit list` and the no-op
`doit export` alternately, side by side in one run, and prints a table with their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def doit(args: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    return time.perf_counter() - start, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--matrix", default="release")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / ".cache" / "bench-noop",
        help="where the matrix is built (default .cache/bench-noop; `exports` reuses what doit built there)",
    )
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EXPORTKIT_MATRIX": args.matrix,
        "EXPORTKIT_OUTPUT": str(args.output.resolve()),
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "False",
    }
    print(
        f"matrix {args.matrix}: building what is stale into {env['EXPORTKIT_OUTPUT']} (minutes the first time) ...",
        flush=True,
    )
    seconds, proc = doit(["export"], env)
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return 1
    cells = sum(1 for line in proc.stdout.splitlines() if "export:" in line)
    print(f"matrix {args.matrix}: {cells} cells; first build {seconds:.1f}s", flush=True)
    times = {"doit list": [], "doit export (no-op)": []}
    for run in range(1, args.runs + 1):
        times["doit list"].append(doit(["list"], env)[0])
        elapsed, proc = doit(["export"], env)
        rebuilt = [line for line in proc.stdout.splitlines() if line.startswith(".") and "export:" in line]
        if rebuilt:
            print(f"not a no-op, rebuilt: {rebuilt}", file=sys.stderr)
            return 1
        times["doit export (no-op)"].append(elapsed)
        print(
            f"run {run}/{args.runs}: doit list {times['doit list'][-1]:.2f}s, doit export (no-op) {elapsed:.2f}s",
            flush=True,
        )
    base = statistics.median(times["doit list"])
    print(f"\n{'command':24} {'median (s)':>10} {'min (s)':>8} {'ratio':>6}")
    for name, values in times.items():
        print(f"{name:24} {statistics.median(values):10.2f} {min(values):8.2f} {statistics.median(values) / base:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

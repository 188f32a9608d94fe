"""The matrix built from scratch by each executor, side by side in one run: wall times, ratios, cost per cell.

    python benchmarks/scaleout.py [--matrix default] [--runs 1]

Rows: `doit export` with a subprocess per cell (today's default, the baseline), then executor=ray on a two-node
local cluster (ray.cluster_utils.Cluster, one CPU per node, nodes on 127.0.0.2 / 127.0.0.3) serially and with
`doit -n 2 -P thread`. On one small machine Ray cannot beat a local build: what its rows show is Ray's overhead
per cell (scheduling, the checkpoint and the artifacts through the object store, the driver's sha256 checks).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(env: dict, output: Path, *args: str) -> tuple[float, int]:
    """(seconds, cells exported) of one `doit export` from scratch into ``output``."""
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args, "export"],
                          capture_output=True, text=True, env={**env, "EXPORTKIT_OUTPUT": str(output)}, cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"scaleout: `doit {' '.join(args)} export` failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return seconds, sum(1 for line in proc.stdout.splitlines() if line.startswith(".  export:"))


def base_env(matrix: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "EXPORTKIT_MATRIX": matrix, "YOLO_OFFLINE": "1",
            "YOLO_AUTOINSTALL": "False", "EXPORTKIT_EXECUTOR": "subprocess"}


def subprocess_rows(env: dict, scratch: Path, runs: int) -> list[tuple[str, float, int]]:
    return [("serial, a subprocess per cell", *best(env, scratch / "serial", runs))]


@contextmanager
def local_cluster(scratch: Path):
    """Two nodes of one CPU on this machine; stopped (only its own processes) on exit."""
    os.environ["RAY_TMPDIR"] = str(scratch / "ray")
    (scratch / "ray").mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = str(ROOT)
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                            "node_ip_address": "127.0.0.2"})
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.3")
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        cluster.shutdown()


def ray_rows(env: dict, scratch: Path, runs: int) -> list[tuple[str, float, int]]:
    """executor=ray on a two-node local cluster, serially and with two doit threads."""
    with local_cluster(scratch) as cluster:
        ray_env = {**env, "EXPORTKIT_EXECUTOR": "ray", "EXPORTKIT_RAY_ADDRESS": cluster.address}
        return [("ray, 2-node local cluster, serial", *best(ray_env, scratch / "ray-serial", runs)),
                ("ray, 2-node local cluster, -n 2 -P thread",
                 *best(ray_env, scratch / "ray-n2", runs, "-n", "2", "-P", "thread"))]


def best(env: dict, output: Path, runs: int, *args: str) -> tuple[float, int]:
    results = [build(env, output, *args) for _ in range(runs)]
    return min(r[0] for r in results), results[0][1]


def table(rows: list[tuple[str, float, int]]) -> str:
    base_seconds, base_cells = rows[0][1], rows[0][2]
    lines = ["| build | cells | wall s | ratio | s per cell | vs baseline, per cell |", "|---|---:|---:|---:|---:|---:|"]
    for name, seconds, cells in rows:
        per_cell = seconds / max(cells, 1)
        extra = (seconds - base_seconds) / max(base_cells, 1)
        lines.append(f"| {name} | {cells} | {seconds:.1f} | {seconds / base_seconds:.2f} | {per_cell:.2f} | {extra:+.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", default="default")
    parser.add_argument("--runs", type=int, default=1, help="builds per row; the fastest counts")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    args = parser.parse_args()
    env = base_env(args.matrix)
    with tempfile.TemporaryDirectory(prefix="exportkit-scaleout-") as folder:
        scratch = Path(folder)
        print(f"matrix {args.matrix}: building from scratch with each executor ...", flush=True)
        rows = subprocess_rows(env, scratch, args.runs)
        if not args.no_ray:
            rows += ray_rows(env, scratch, args.runs)
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

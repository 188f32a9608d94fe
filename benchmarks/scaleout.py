"""A matrix built from scratch by each executor, side by side in one run: wall time, per cell, ratio to today's.

    python benchmarks/scaleout.py [--matrix release] [--rows subprocess local subprocess-n2 local-n2 ray ray-n2]
                                  [--cells CELL ...] [--output DIR]

Each row is one `doit export` into an empty output folder (so every cell is stale):
  subprocess        `doit export`: a fresh `python export.py` per cell, one cell at a time (today's serial build)
  local             `doit export executor=local`: the same contract in a fork of a warm worker, one at a time
  subprocess-n2     `doit -n 2 export`: two doit processes, a fresh `python export.py` per cell
  local-n2          `doit -n 2 -P thread export executor=local`: two threads sharing one warm worker
  ray               `doit export executor=ray address=...` on a two-node local Ray cluster (ray.cluster_utils.Cluster,
                    one CPU per node, nodes on 127.0.0.2 / 127.0.0.3), one cell at a time
  ray-n2            the same with `doit -n 2 -P thread`
On one small machine Ray cannot beat a local build: its rows show Ray's overhead per cell (scheduling, the
checkpoint and the artifacts through the object store, the driver's sha256 checks), the "+s per cell" column.
Every row's artifacts must have the same sha256 as the first row's, file for file (the "identical" column).

A row is a function returning ``Row``s (``ROWS``): another executor (a cluster) adds its function there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    label: str
    doit_args: list[str]  # before the task name: -n 2 -P thread
    variables: list[str] = field(default_factory=list)  # after it: executor=local address=...
    env: dict = field(default_factory=dict)
    seconds: float = 0.0
    cells: int = 0
    artifacts: dict = field(default_factory=dict)  # {cell folder/file: sha256}
    failed: str = ""


def subprocess_rows(args) -> list[Row]:
    return [Row("subprocess", [], ["executor=subprocess"]), Row("subprocess-n2", ["-n", "2"], ["executor=subprocess"])]


def local_rows(args) -> list[Row]:
    return [Row("local", [], ["executor=local"]), Row("local-n2", ["-n", "2", "-P", "thread"], ["executor=local"])]


def ray_rows(args) -> list[Row]:
    """executor=ray; the cluster's address is added when the cluster is up (``local_cluster``)."""
    return [Row("ray", [], ["executor=ray"]), Row("ray-n2", ["-n", "2", "-P", "thread"], ["executor=ray"])]


ROWS = [subprocess_rows, local_rows, ray_rows]
ORDER = ["subprocess", "local", "subprocess-n2", "local-n2", "ray", "ray-n2"]  # serial first: ratios to the first row


@contextmanager
def local_cluster(scratch: Path):
    """Two one-CPU Ray nodes on this machine (no dashboard); only its own processes are stopped on exit."""
    os.environ["RAY_TMPDIR"] = str(scratch)
    os.environ["PYTHONPATH"] = str(ROOT)
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.2"}
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.3")
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        cluster.shutdown()


def environment() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "False",
        "YOLO_CONFIG_DIR": os.environ.get("YOLO_CONFIG_DIR", str(ROOT / ".cache" / "ultralytics")),
    }


def build(row: Row, matrix: str, output: Path, cells: list[str]) -> Row:
    """`doit export` of ``matrix`` (or only its ``cells``) into an empty ``output``; fills in the row's time, cells
    and artifacts."""
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    tasks = [f"export:{name}" for name in cells] or ["export"]
    proc = doit([*row.doit_args, *tasks, f"matrix={matrix}", f"output={output}", *row.variables], row.env)
    row.seconds = time.perf_counter() - start
    if proc.returncode != 0:
        row.failed = f"exit {proc.returncode}: {(proc.stdout + proc.stderr).strip().splitlines()[-1:]}"
    row.artifacts = artifact_digests(output)
    row.cells = len({Path(name).parent for name in row.artifacts})
    return row


def doit(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args],
        capture_output=True,
        text=True,
        env={**environment(), **(env or {})},
        cwd=ROOT,
    )


def artifact_digests(output: Path) -> dict[str, str]:
    """sha256 of every artifact every cell's metadata.json lists (hashed from disk, not copied from the metadata)."""
    digests = {}
    for meta in sorted(output.glob("*/*/metadata.json")):
        for entry in json.loads(meta.read_text())["artifacts"]:
            path = meta.parent / entry["path"]
            digests[str(path.relative_to(output))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def table(rows: list[Row]) -> str:
    base = rows[0]
    lines = [
        "| build | command | cells | wall (s) | per cell (s) | +s per cell | ratio | artifacts identical |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        same = "yes" if row.artifacts == base.artifacts and row.artifacts else "NO"
        if row.failed:
            same = f"build failed ({row.failed})"
        per_cell = row.seconds / row.cells if row.cells else float("nan")
        extra = (row.seconds - base.seconds) / base.cells if base.cells else float("nan")
        command = " ".join(
            ["doit", *row.doit_args, "export", *(v for v in row.variables if not v.startswith("address="))]
        )
        lines.append(
            f"| {row.label} | `{command}` | {row.cells} | {row.seconds:.1f} | {per_cell:.2f} | {extra:+.2f} "
            f"| {row.seconds / base.seconds:.2f}x | {same} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", default="release")
    parser.add_argument("--rows", nargs="+", default=ORDER, help=f"rows to run, in order (default: {' '.join(ORDER)})")
    parser.add_argument("--cells", nargs="+", default=[], help="only these cells (model-format-precision)")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / ".cache" / "bench-scaleout",
        help="scratch folder, emptied before each row (default .cache/bench-scaleout)",
    )
    args = parser.parse_args(argv)
    available = {row.label: row for rows in ROWS for row in rows(args)}
    unknown = [label for label in args.rows if label not in available]
    if unknown:
        print(f"scaleout: error: unknown row {unknown[0]!r}; expected one of: {', '.join(available)}", file=sys.stderr)
        return 3
    output = args.output.resolve()
    listed = doit(["list", f"matrix={args.matrix}", f"output={output}"])  # composes the matrix once (cached)
    if listed.returncode != 0:
        print(f"scaleout: {(listed.stdout + listed.stderr).strip().splitlines()[-1:]}", file=sys.stderr)
        return listed.returncode
    rows = []
    with tempfile.TemporaryDirectory(prefix="exportkit-scaleout-ray-") as scratch:
        wants_ray = any(label.startswith("ray") for label in args.rows)
        with local_cluster(Path(scratch)) if wants_ray else nullcontext() as cluster:
            for label in args.rows:
                row = available[label]
                if label.startswith("ray"):
                    row.variables = [*row.variables, f"address={cluster.address}"]
                row = build(row, args.matrix, output, args.cells)
                print(
                    f"{row.label}: {row.cells} cells in {row.seconds:.1f}s{' FAILED ' + row.failed if row.failed else ''}",
                    flush=True,
                )
                rows.append(row)
    print(f"\nmatrix {args.matrix}, built from scratch ({os.cpu_count()} CPUs); ratio: wall time / the first row's\n")
    print(table(rows))
    return 1 if any(r.failed or r.artifacts != rows[0].artifacts for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

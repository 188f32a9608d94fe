"""The benchmark scripts run and print the table they promise (their figures are never asserted: timing belongs
to the benchmark's own run, not to the test suite)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ENV, ROOT


@pytest.mark.slow
def test_runtime_latency_prints_one_row_per_model_with_every_column_and_ratio(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/runtime_latency.py"),
            "--models",
            "shapes-det",
            "shapes-pose",
            "--rounds",
            "1",
            "--block",
            "2",
            "--engines",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    main, engines = proc.stdout.split("other engines on the same model.onnx")  # the --engines table follows
    lines = [line for line in main.splitlines() if line.startswith("|")]
    header, rows = lines[0], lines[2:]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert "ultralytics / runtime (goal >= 1.3)" in columns and "runtime / its session.run (goal <= 1.10)" in columns
    assert [r.split("|")[1].strip() for r in rows] == ["shapes-det", "shapes-pose"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == len(columns)
        times = [re.fullmatch(r"([\d.]+) \(([\d.]+)\)", c) for c in cells[4:11]]  # "wall (cpu)" milliseconds
        assert all(t and float(t[1]) > 0 for t in times), cells
        ratios = [float(re.fullmatch(r"([\d.]+)x \(([\d.]+)x\)", c)[1]) for c in cells[11:]]
        assert all(0.1 < r < 10 for r in ratios), cells
        dets = int(cells[3])
        assert dets > 0  # the trained model finds the sample's shapes
    engine_rows = [line.split("|")[1:-1] for line in engines.splitlines() if line.startswith("| shapes")]
    assert [r[0].strip() for r in engine_rows] == ["shapes-det", "shapes-pose"]
    # ORT, OpenVINO f32, OpenVINO default, the runtime on OpenVINO, Ultralytics (ms)
    assert all(float(r[i]) > 0 for r in engine_rows for i in (2, 3, 4, 7, 8)) and all(len(r) == 10 for r in engine_rows)


@pytest.mark.slow
def test_safe_load_benchmark_prints_one_row_per_model():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/safe_load.py"),
            "--rounds",
            "1",
            "--no-export",
            "--models",
            "shapes-det",
            "shapes-pose",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| shapes")]
    assert [r[0].strip() for r in rows] == ["shapes-det", "shapes-pose"]
    for row in rows:
        plain, scan, safe = (float(c) for c in row[1:4])
        assert 0 < scan < safe and plain > 0  # the scan is part of exportkit's load
        assert re.fullmatch(r"[\d.]+x", row[4].strip())


@pytest.mark.slow
def test_scaleout_prints_one_row_per_executor_with_identical_artifacts(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/scaleout.py"),
            "--matrix",
            "default",
            "--rows",
            "subprocess",
            "local",
            "--cells",
            "shapes-det-torchscript-fp32",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in proc.stdout.splitlines() if line.startswith("| ")]
    header, rows = rows[0], rows[1:]
    assert header[:3] == ["build", "command", "cells"] and [r[0] for r in rows] == ["subprocess", "local"]
    assert rows[1][1] == "`doit export executor=local`"
    for row in rows:
        cells, wall, per_cell = int(row[2]), float(row[3]), float(row[4])
        assert cells == 1 and wall > 0 and per_cell == pytest.approx(wall, abs=0.06)
        assert row[header.index("artifacts identical")] == "yes"  # the same sha256 as the first row's, file for file
    ratio, extra = header.index("ratio"), header.index("+s per cell")
    # the columns are rounded (per cell to 0.01 s, the ratio to 0.01): the printed ratio lies within what the
    # printed per-cell times allow, whatever their unrounded values were
    (base, other), r = (float(row[4]) for row in rows), float(rows[1][ratio].rstrip("x"))
    assert rows[0][ratio] == "1.00x"
    assert (other - 0.005) / (base + 0.005) - 0.005 <= r <= (other + 0.005) / (base - 0.005) + 0.005
    assert float(rows[0][extra]) == 0 and float(rows[1][extra]) == pytest.approx(other - base, abs=0.0151)

"""`python -m exportkit report`: one Markdown and one self-contained HTML view of every artifact."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ENV, ROOT

from exportkit.validation.accuracy import map50


def test_map50_on_hand_made_predictions():
    import numpy as np

    truth = [np.array([[0, 0, 0, 10, 10], [1, 20, 20, 30, 30]], float)]
    perfect = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0.9, 0.8]), np.array([0, 1]))]
    assert map50(perfect, truth, 2) == pytest.approx(
        0.995, abs=1e-3
    )  # 101-point interpolation tops out at 0.995, as in Ultralytics
    wrong_class = [(perfect[0][0], perfect[0][1], np.array([1, 0]))]
    assert map50(wrong_class, truth, 2) == pytest.approx(0.0)


@pytest.mark.slow
def test_report_over_a_folder_of_exports(exports, tmp_path):
    for task, fmt in (("detect", "onnx"), ("detect", "openvino"), ("segment", "torchscript")):
        shutil.copytree(exports.get(task, fmt), tmp_path / f"{task}-{fmt}")
    proc = subprocess.run(
        [sys.executable, "-m", "exportkit", "report", str(tmp_path)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "report.md").read_text()
    header = [
        c.strip() for c in next(line for line in table.splitlines() if line.startswith("| model")).split("|")[1:-1]
    ]
    rows = [
        line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| shapes") or line.startswith("| yolo")
    ]
    assert len(rows) == 3
    for cells in rows:
        cell = dict(zip(header, (c.strip() for c in cells)))
        assert cell["parity"] == "passed"
        assert cell["artifact"] in ("detect-onnx", "detect-openvino", "segment-torchscript")
        assert 0 <= float(cell["max raw diff (rel.)"]) < 1e-3  # relative to the reference's largest value
        assert (
            float(cell["mAP50"]) > 0.6 and abs(float(cell["mAP50"]) - float(cell["mAP50 (.pt)"])) < 0.01
        )  # artifact vs .pt
        assert float(cell["latency (ms)"]) > 0 and float(cell["FPS"]) > 0
    page = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page
    assert "divided by the reference" in page and "<th>artifact</th>" in page  # report.md's explanation and columns
    assert 'src="http' not in page and "href=" not in page  # self-contained


def test_report_on_empty_folder_is_a_config_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "exportkit", "report", str(tmp_path)], capture_output=True, text=True, env=ENV, cwd=ROOT
    )
    assert proc.returncode == 3 and "no exports" in proc.stderr


def test_report_rows_name_the_artifact_and_show_relative_raw_differences(tmp_path):
    """Two exports of one model are told apart by their folder; an FP16 row shows the relative raw difference."""
    from pathlib import Path

    from exportkit.validation.report import HEADER, Row, html_page, markdown, worst_relative_raw

    validation = {
        "status": "passed",
        "checks": [
            {"criterion": "output0.rel_max_abs_diff", "value": 2.5e-3},
            {"criterion": "output0.max_abs_diff", "value": 0.48},
            {"criterion": "output1.rel_max_abs_diff", "value": 4.0e-3},
        ],
    }
    assert worst_relative_raw(validation) == pytest.approx(4.0e-3)
    rows = [
        Row(
            Path(f"/x/shapes-det/{name}"),
            "shapes-det",
            "detect",
            "onnx",
            precision,
            1.0,
            2.0,
            "passed",
            0.99,
            0.01,
            worst_relative_raw(validation),
            None,
            None,
            None,
            path=f"shapes-det/{name}",
        )
        for name, precision in (("onnx-fp32", "fp32"), ("onnx-fp16", "fp16"))
    ]
    table = markdown(rows)
    assert "artifact" in HEADER and "| shapes-det/onnx-fp32 |" in table and "| shapes-det/onnx-fp16 |" in table
    assert "4.00e-03" in table and "0.48" not in table
    page = html_page(rows, b"")
    explanation = table.split("\n\n")[1]
    assert explanation in page.replace("&#x27;", "'") and '<td class="">shapes-det/onnx-fp16</td>' in page

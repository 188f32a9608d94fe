"""`python -m exportkit report`: one Markdown and one self-contained HTML view of every artifact."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import ENV, ROOT

from exportkit.accuracy import map50


def test_map50_on_hand_made_predictions():
    import numpy as np

    truth = [np.array([[0, 0, 0, 10, 10], [1, 20, 20, 30, 30]], float)]
    perfect = [(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0.9, 0.8]), np.array([0, 1]))]
    assert map50(perfect, truth, 2) == pytest.approx(0.995, abs=1e-3)  # 101-point interpolation tops out at 0.995, as in Ultralytics
    wrong_class = [(perfect[0][0], perfect[0][1], np.array([1, 0]))]
    assert map50(wrong_class, truth, 2) == pytest.approx(0.0)


@pytest.mark.slow
def test_report_over_a_folder_of_exports(exports, tmp_path):
    for task, fmt in (("detect", "onnx"), ("detect", "openvino"), ("segment", "torchscript")):
        shutil.copytree(exports.get(task, fmt), tmp_path / f"{task}-{fmt}")
    proc = subprocess.run([sys.executable, "-m", "exportkit", "report", str(tmp_path)], capture_output=True, text=True,
                          env=ENV, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "report.md").read_text()
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| shapes") or line.startswith("| yolo")]
    assert len(rows) == 3
    for cells in rows:
        cells = [c.strip() for c in cells]
        assert cells[6] == "passed"
        assert float(cells[10]) > 0.6 and abs(float(cells[10]) - float(cells[11])) < 0.01  # artifact vs .pt mAP50
        assert float(cells[12]) > 0 and float(cells[13]) > 0  # latency, FPS
    page = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in page and "<table>" in page
    assert "src=\"http" not in page and "href=" not in page  # self-contained


def test_report_on_empty_folder_is_a_config_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "exportkit", "report", str(tmp_path)], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert proc.returncode == 3 and "no exports" in proc.stderr

"""The C++ runtime (runtimes/cpp): its unit tests, and parity with the Python runtime on the bundled models.

Builds with `make -C runtimes/cpp build`, which installs nothing: `make -C runtimes/cpp deps` (apt packages and
the ONNX Runtime cache) must have run first. Parity runs runtimes/cpp/tests/compare_with_python.py on the session's
ONNX exports of the bundled models and every sample image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ENV, ROOT, TASKS

CPP = ROOT / "runtimes" / "cpp"


@pytest.fixture(scope="session")
def cpp_build() -> Path:
    """The build folder, after configuring and compiling (incremental: seconds when up to date)."""
    if shutil.which("cmake") is None:
        pytest.fail("cmake not found: run `make -C runtimes/cpp deps` (apt packages + ONNX Runtime) first")
    proc = subprocess.run(["make", "-C", str(CPP), "build"], capture_output=True, text=True, env=ENV, timeout=1800)
    assert proc.returncode == 0, (
        "C++ build failed (has `make -C runtimes/cpp deps` run?):\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
    )
    return CPP / "build"


@pytest.mark.slow
def test_cpp_unit_tests(cpp_build):
    proc = subprocess.run([str(cpp_build / "unit_tests")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_cpp_matches_python_runtime(cpp_build, exports, samples, task):
    out = exports.get(task, "onnx")
    cmd = [
        sys.executable,
        str(CPP / "tests" / "compare_with_python.py"),
        "--cli",
        str(cpp_build / "yolo_infer"),
        "--artifact-dir",
        str(out),
        "--images",
        *map(str, samples),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.slow
def test_cli_reports_a_bad_metadata_file_as_a_configuration_error(cpp_build, tmp_path, samples):
    (tmp_path / "metadata.json").write_text('{"task": "classify"}')
    (tmp_path / "model.onnx").write_bytes(b"")
    proc = subprocess.run(
        [str(cpp_build / "yolo_infer"), str(tmp_path / "model.onnx"), str(samples[0])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    assert 'task is "classify"; the C++ runtime supports detect, segment and pose' in proc.stderr


@pytest.mark.slow
def test_cli_accepts_an_export_folder(cpp_build, exports, samples):
    """Like the Python runtime: MODEL may be the folder holding model.onnx + metadata.json."""
    folder = exports.get("detect", "onnx")
    by_folder = subprocess.run(
        [str(cpp_build / "yolo_infer"), str(folder), str(samples[0]), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    by_file = subprocess.run(
        [str(cpp_build / "yolo_infer"), str(folder / "model.onnx"), str(samples[0]), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert by_folder.returncode == 0, by_folder.stderr
    detections = [json.loads(p.stdout)["detections"] for p in (by_folder, by_file)]
    assert detections[0] == detections[1] and detections[0]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["openvino-file", "openvino-folder", "empty-folder"])
def test_cli_names_what_it_expects(cpp_build, tmp_path, samples, layout):
    (tmp_path / "model.xml").write_text("<net/>")
    (tmp_path / "model.bin").write_bytes(b"\0")
    (tmp_path / "metadata.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    model = {"openvino-file": tmp_path / "model.xml", "openvino-folder": tmp_path, "empty-folder": tmp_path / "empty"}[
        layout
    ]
    proc = subprocess.run(
        [str(cpp_build / "yolo_infer"), str(model), str(samples[0])], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "the C++ runtime runs ONNX exports: model.onnx, or the folder" in lines[0], proc.stderr
    if layout != "empty-folder":
        assert "an OpenVINO model" in lines[0] and "Protobuf" not in lines[0]

"""A newcomer's natural mistakes (issue 17): each is one line naming the valid choices, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLED, ENV, ROOT


def run(args: list[str], env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env or ENV, cwd=cwd, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess, code: int, *fragments: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("exportkit: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def doit(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    env = {**ENV, "EXPORTKIT_OUTPUT": str(tmp / "exports")}
    return run(["-m", "doit", *args], env=env)


def test_doit_misspelled_matrix(tmp_path):
    one_line_error(doit("matrix=relase", "export", tmp=tmp_path), 3, "'relase'", "default, release")


def test_doit_info_misspelled_task(tmp_path):
    one_line_error(doit("info", "export:shapes-det-onx-fp32", tmp=tmp_path), 3, "export:shapes-det-onnx-fp32")


def test_doit_info_known_task_still_works(tmp_path):
    proc = doit("info", "export:shapes-det-onnx-fp32", tmp=tmp_path)
    assert proc.returncode in (0, 1) and "shapes-det (detect) -> onnx fp32" in proc.stdout, (
        proc.stderr
    )  # 1: not up to date


def test_doit_list_shows_the_cells(tmp_path):
    proc = doit("list", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "export:shapes-det-onnx-fp32" in proc.stdout and "validate:shapes-det-openvino-fp32" in proc.stdout


@pytest.mark.parametrize("where", ["under-a-file", "read-only-fs"])
def test_doit_output_that_cannot_be_created(tmp_path, where):
    (tmp_path / "occupied").write_text("x")
    output = {"under-a-file": tmp_path / "occupied" / "exports", "read-only-fs": Path("/proc/exportkit-test")}[where]
    proc = run(["-m", "doit", f"output={output}", "list"])
    one_line_error(proc, 3, "cannot be created", str(output))


@pytest.mark.parametrize("where", ["read-only-fs", "permission-denied"])
def test_export_output_dir_that_cannot_be_created(tmp_path, where):
    env = dict(ENV)
    if where == "read-only-fs":
        output = "/proc/exportkit-test/out"
    else:  # root ignores mode bits, so deny with a file system that refuses mkdir: /sys
        output = "/sys/exportkit-test"
    proc = run(
        [
            "export.py",
            "--checkpoint_path",
            str(BUNDLED["detect"]),
            "--export_format",
            "onnx",
            "--output_dir",
            output,
            "--export_config",
            "{}",
        ],
        env=env,
    )
    one_line_error(proc, 3, "cannot be created", output)
    assert "torch" not in proc.stderr


def test_zoo_help_and_unknown_name():
    proc = run(["-m", "exportkit.zoo", "--help"])
    assert proc.returncode == 0 and "yolo11n-seg" in proc.stdout and not proc.stderr, proc.stderr
    one_line_error(run(["-m", "exportkit.zoo", "yolov9"]), 3, "'yolov9'", "yolov8n, yolov8s")


@pytest.mark.parametrize("override", ["format=onnx_schema", "model=model_schema", "format=onxx"])
def test_hydra_refuses_non_options(override):
    line = one_line_error(run(["-m", "exportkit", "--cfg", "job", override]), 3, "choose one of")
    assert "_schema," not in line and "schema " not in line.split("choose one of")[1]


def test_hydra_error_and_help_do_not_list_schemas():
    """Hydra's own 'Available options' and our --help list the real choices only."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from exportkit.build.config import CONF_DIR, hydra_message, register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        with pytest.raises(HydraException) as caught:
            compose(config_name="config", overrides=["format=onnx_schema"])
    message = hydra_message(caught.value)
    assert (
        "Available options in 'format': coreml onnx openvino" in message
        and "_schema" not in message.split("options")[1]
    )
    proc = run(["-m", "exportkit", "--help"])
    assert "format=" in proc.stdout and "onnx, openvino" in proc.stdout and "_schema" not in proc.stdout


def test_misspelled_validation_threshold_without_include_validation(tmp_path):
    config = json.dumps({"validation": {"box_iuo": 0.9}})
    proc = run(
        [
            "export.py",
            "--checkpoint_path",
            str(BUNDLED["detect"]),
            "--export_format",
            "onnx",
            "--output_dir",
            str(tmp_path / "out"),
            "--export_config",
            config,
        ]
    )
    one_line_error(proc, 3, "'box_iuo'", "box_iou", "confidence_diff")
    assert not (tmp_path / "out").exists()


def test_main_help_lists_subcommands_and_hydra_mode():
    proc = run(["-m", "exportkit", "--help"])
    assert proc.returncode == 0, proc.stderr
    for word in ("validate", "report", "capabilities", "Hydra", "model=", "--checkpoint_path"):
        assert word in proc.stdout, word


def test_missing_package_outside_the_project_venv(tmp_path):
    """A project .venv exists but another interpreter runs exportkit: say so instead of advising pip install."""
    venv = tmp_path / ".venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "from exportkit.errors import MissingDependency\n"
        "print(MissingDependency('onnx', 'onnx').one_line())"
    )
    inside = run(["-c", code], cwd=ROOT, env={**ENV})
    outside = run(["-c", code], cwd=tmp_path, env={**ENV})
    assert "pip install -e '.[onnx]'" in inside.stdout or ".venv" in inside.stdout
    assert "not the project's environment" in outside.stdout and "source .venv/bin/activate" in outside.stdout
    assert "pip install" not in outside.stdout


def test_core_package_missing_is_one_line(tmp_path):
    """omegaconf missing (another interpreter): one line, not a traceback."""
    (tmp_path / "omegaconf.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'omegaconf'\", name='omegaconf')\n"
    )
    env = {**ENV, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    one_line_error(run(["-m", "exportkit", "--cfg", "job", "format=onnx"], env=env), 1, "'omegaconf' is not installed")


# -- long steps say what they do; the report and `doit validate` agree --------------------------------------
def _cell(out: Path, export_config: dict | None = None):
    from exportkit.build.cell import Cell

    model = {
        "name": "shapes-det",
        "checkpoint": str(BUNDLED["detect"]),
        "task": "detect",
        "imgsz": 192,
        "capability": "yolo11n",
    }
    return Cell(
        "shapes-det-onnx-fp32",
        model,
        {"name": "onnx"},
        "fp32",
        {"enabled": True, "thresholds": {}},
        str(out),
        export_config or {},
    )


@pytest.mark.slow
def test_validate_cell_prints_progress_and_result_and_agrees_with_the_report(exports, tmp_path, capsys):
    import shutil

    from exportkit.build.cell import as_dict, validate_cell
    from exportkit.build.tasks import ValidationAgrees

    out = tmp_path / "shapes-det" / "onnx-fp32"
    shutil.copytree(exports.get("detect", "onnx"), out)
    assert validate_cell(as_dict(_cell(out)))
    printed = capsys.readouterr().out
    assert "shapes-det-onnx-fp32: validating against its PyTorch model ..." in printed
    assert "shapes-det-onnx-fp32: validation passed: passed " in printed
    agrees = ValidationAgrees(out, "fp32", {})
    assert agrees(None, {}) is True
    stricter = run(["-m", "exportkit", "validate", str(out), "--thresholds", json.dumps({"raw_cosine": 1.5})])
    assert stricter.returncode == 2, stricter.stderr
    assert agrees(None, {}) is False and agrees.reason == "last validation failed"  # `doit validate` re-runs the cell
    metadata = json.loads((out / "metadata.json").read_text())
    assert (
        metadata["export_config"]["imgsz"] == 192 and metadata["export_config"]["model_name"] == metadata["model_name"]
    )


@pytest.mark.slow
def test_verify_rebuild_prints_one_line_per_cell(exports, tmp_path, capsys):
    from exportkit.build.lock import lock_entry, verify_lock

    out = exports.get("detect", "onnx")
    lock = tmp_path / "exports.lock"
    lock.write_text(
        json.dumps({"lock_version": 1, "matrix": "test", "cells": {"shapes-det-onnx-fp32": lock_entry(_cell(out))}})
    )
    assert verify_lock(rebuild=True, lock=str(lock))
    printed = capsys.readouterr().out
    assert "[1/1] shapes-det-onnx-fp32: rebuilding in a scratch folder ..." in printed
    assert "ok    shapes-det-onnx-fp32 (rebuilt and matched, " in printed


@pytest.mark.slow
def test_kotlin_cli_error_is_one_line(tmp_path):
    """The README's Kotlin CLI with a wrong path: one line and exit 3, not a Java stack trace."""
    kotlin = ROOT / "runtimes" / "kotlin"
    build = subprocess.run(["make", "-C", str(kotlin), "build"], capture_output=True, text=True, env=ENV, timeout=900)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    classpath = f"{kotlin / 'build' / 'exportkit-tflite.jar'}:/usr/share/java/jna.jar:/usr/share/java/kotlin-stdlib.jar"
    proc = subprocess.run(
        [
            "java",
            "-cp",
            classpath,
            "com.platform.tflite.MainKt",
            str(tmp_path / "model.tflite"),
            str(tmp_path / "metadata.json"),
            str(ROOT / "models/samples/shapes_0_320x240.jpg"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stderr.splitlines() if "OpenJDK" not in line]  # JVM option warnings
    assert proc.returncode == 3 and len(lines) == 1, proc.stderr
    assert lines[0] == f"yolo-infer: error: {tmp_path / 'model.tflite'}: no such file"

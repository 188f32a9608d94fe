"""TensorRT: the option mapping onto Ultralytics' arguments, the engine header, and the clean stop without a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import BUNDLED, ENV, ROOT

from exportkit.errors import ConfigError, EnvironmentUnsupported
from exportkit.formats import tensorrt as trt_format
from exportkit.formats.tensorrt import (
    engine_export_args,
    gpu_present,
    missing_requirements,
    read_header,
    rewrite_header,
)
from exportkit.registry import get_format

TENSORRT = get_format("tensorrt")
CAN_BUILD = not missing_requirements(TENSORRT.packages)


# -- the option mapping (a pure function) -------------------------------------------------------------
@pytest.mark.parametrize(
    "given, expected",
    [
        ({}, {"quantize": None, "workspace": 4.0, "batch": 1, "dynamic": False}),
        ({"fp16": True}, {"quantize": 16}),
        ({"int8": True}, {"quantize": 8, "data": "calib.yaml"}),
        (
            {"fp16": True, "int8": True},
            {"quantize": 8, "data": "calib.yaml"},
        ),  # INT8 wins; TensorRT keeps FP16 fallback
        ({"workspace": 8}, {"workspace": 8.0}),
        ({"max_batch_size": 16}, {"batch": 16, "dynamic": True}),
    ],
    ids=["fp32", "fp16", "int8", "int8-over-fp16", "workspace", "max-batch"],
)
def test_engine_export_args(given, expected):
    options = TENSORRT.resolve(given)
    args = engine_export_args(options, "calib.yaml" if options["int8"] else None)
    assert args["device"] == 0 and args["simplify"] is True
    assert {k: args.get(k) for k in expected} == expected
    assert ("data" in args) == options["int8"]


def test_int8_needs_calibration_data():
    with pytest.raises(ValueError, match="calibration"):
        engine_export_args(TENSORRT.resolve({"int8": True}), None)


def test_precisions():
    assert TENSORRT.precision_of(TENSORRT.resolve({})) == "fp32"
    assert TENSORRT.precision_of(TENSORRT.resolve({"fp16": True})) == "fp16"
    assert TENSORRT.precision_of(TENSORRT.resolve({"int8": True})) == "int8"


def test_batch_above_max_batch_size_is_a_config_error():
    assert TENSORRT.resolve({"batch": 4, "max_batch_size": 8})["batch"] == 4
    with pytest.raises(ConfigError, match="exceeds max_batch_size"):
        TENSORRT.resolve({"batch": 4})


# -- the environment check ------------------------------------------------------------------------------
def test_missing_gpu_and_package_are_named_together(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(trt_format, "GPU_DEVICE_FILE", tmp_path / "nvidia0")
    missing = missing_requirements({"tensorrt_not_here": "tensorrt-cu13"})
    assert missing == [
        f"an NVIDIA GPU (no nvidia-smi on PATH, no {tmp_path / 'nvidia0'})",
        "the package tensorrt-cu13 (pip install -e '.[tensorrt]')",
    ]
    assert not gpu_present()


def test_a_gpu_alone_is_not_enough(monkeypatch, tmp_path):
    (tmp_path / "nvidia0").touch()
    monkeypatch.setattr(trt_format, "GPU_DEVICE_FILE", tmp_path / "nvidia0")
    assert missing_requirements({"tensorrt_not_here": "tensorrt-cu13"}) == [
        "the package tensorrt-cu13 (pip install -e '.[tensorrt]')"
    ]
    monkeypatch.setattr(TENSORRT, "packages", {"tensorrt_not_here": "tensorrt-cu13"})
    with pytest.raises(EnvironmentUnsupported, match="TensorRT export needs the package tensorrt-cu13"):
        TENSORRT.check_environment(TENSORRT.resolve({}))


NO_TORCH = """
import sys, time
start = time.perf_counter()
from exportkit.cli import main
code = main(sys.argv[1:])
print("HEAVY=" + ",".join(m for m in ("torch", "ultralytics", "tensorrt") if m in sys.modules), "CODE=%d" % code)
"""


@pytest.mark.skipif(CAN_BUILD, reason="this machine has a GPU and TensorRT: see test_fp16_engine_export")
def test_without_gpu_exits_1_fast_and_loads_nothing(tmp_path):
    args = [
        "--checkpoint_path",
        str(BUNDLED["detect"]),
        "--export_format",
        "tensorrt",
        "--output_dir",
        str(tmp_path / "out"),
        "--export_config",
        json.dumps({"fp16": True, "include_validation": True}),
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "export.py"), *args], capture_output=True, text=True, env=ENV, cwd=ROOT
    )
    elapsed = time.perf_counter() - start
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("exportkit: error: TensorRT export needs ") and "Traceback" not in proc.stderr
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
    assert not (tmp_path / "out").exists()
    inproc = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert "HEAVY= CODE=1" in inproc.stdout, inproc.stdout + inproc.stderr


# -- the engine's metadata header --------------------------------------------------------------------
def test_header_rewrite_keeps_engine_bytes_and_drops_the_date(tmp_path):
    engine = tmp_path / "model.engine"
    header = json.dumps({"date": "2026-01-01", "task": "detect"}).encode()
    engine.write_bytes(len(header).to_bytes(4, "little") + header + b"\x00ENGINE\x01" * 8)
    rewrite_header(engine, {"class_names": ["a"]})
    offset, meta = read_header(engine)
    assert meta == {"task": "detect", "exportkit": {"class_names": ["a"]}}
    assert engine.read_bytes()[offset:] == b"\x00ENGINE\x01" * 8


def test_engine_without_header(tmp_path):
    engine = tmp_path / "plain.engine"
    engine.write_bytes(b"\xff\xff\xff\x7fNOT-A-HEADER" * 4)  # a length that overruns the file
    assert read_header(engine) == (0, {})
    rewrite_header(engine, {"task": "detect"})
    offset, meta = read_header(engine)
    assert (
        meta == {"exportkit": {"task": "detect"}}
        and engine.read_bytes()[offset:] == b"\xff\xff\xff\x7fNOT-A-HEADER" * 4
    )


# -- a real engine (GPU machines only) ------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not CAN_BUILD, reason="needs an NVIDIA GPU and tensorrt-cu13 (pip install -e '.[tensorrt]')")
def test_fp16_engine_export(exports):
    from exportkit.metadata import read_metadata, validate_schema

    out = exports.get("detect", "tensorrt", fp16=True)
    metadata = read_metadata(out)
    validate_schema(metadata)
    assert metadata["precision"] == "fp16" and (out / "model.engine").exists()
    assert read_header(out / "model.engine")[1]["exportkit"]["class_names"] == metadata["class_names"]
    assert json.loads((out / "validation.json").read_text())["status"] == "passed"
    assert os.path.getsize(out / "model.engine") > 0


def test_int8_calibration_reaches_ultralytics_dataloader(tmp_path):
    """The staged calibration YAML feeds Ultralytics' INT8 calibration loader (what the engine build reads), on CPU."""
    from ultralytics import YOLO
    from ultralytics.engine.exporter import Exporter

    from exportkit.formats import _calibration

    yolo = YOLO(str(BUNDLED["pose"]))
    data = _calibration.resolve_calibration(str(ROOT / "models" / "samples"), "pose")
    names, task_keys = _calibration.model_dataset_keys(yolo.model)
    assert task_keys == {"kpt_shape": [4, 3]}
    staged = _calibration.stage_split(data.images, tmp_path, names, "calibration", {**data.yaml_extra, **task_keys})
    exporter = Exporter(
        overrides={**engine_export_args(TENSORRT.resolve({"int8": True}), staged), "format": "engine", "imgsz": 192}
    )
    exporter.model, exporter.imgsz = yolo.model, [192, 192]
    loader = exporter.get_int8_calibration_dataloader("test:")
    batch = next(iter(loader))
    assert len(loader.dataset) == len(data.images) and tuple(batch["img"].shape) == (1, 3, 192, 192)

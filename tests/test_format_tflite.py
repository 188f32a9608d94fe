"""TFLite through LiteRT: options, local INT8 calibration, embedded metadata, and real exports of the bundled models."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from conftest import BUNDLED, ENV, ROOT, SAMPLES, TASKS, run_export

from exportkit.checkpoint import sha256_file
from exportkit.errors import ConfigError, EnvironmentUnsupported
from exportkit.formats import _calibration
from exportkit.formats.tflite import _interpreter, _ordered_outputs, read_metadata, strip_metadata, write_metadata
from exportkit.metadata import read_metadata as read_metadata_json
from exportkit.metadata import validate_schema
from exportkit.registry import get_format

TFLITE = get_format("tflite")


# -- options (fast) --------------------------------------------------------------------------------
def test_edgetpu_implies_int8_and_rejects_int8_false():
    assert TFLITE.resolve({"tflite_model": "edgetpu"})["int8"] is True
    assert TFLITE.precision_of(TFLITE.resolve({"tflite_model": "edgetpu"})) == "int8"
    with pytest.raises(ConfigError, match="needs a full INT8 model"):
        TFLITE.resolve({"tflite_model": "edgetpu", "int8": False})


def test_calibration_data_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TFLITE.resolve({"int8": True, "calibration_data": str(tmp_path / "missing")})
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="folder of images or a .yaml"):
        TFLITE.resolve({"int8": True, "calibration_data": str(tmp_path / "notes.txt")})


def test_edgetpu_without_compiler_fails_in_check_environment(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EnvironmentUnsupported, match="edgetpu_compiler"):
        TFLITE.check_environment(TFLITE.resolve({"tflite_model": "edgetpu"}))


def test_edgetpu_without_compiler_exits_1_before_loading(tmp_path):
    env = {**ENV, "PATH": os.path.dirname(sys.executable)}  # python only: no edgetpu_compiler
    start = time.perf_counter()
    proc = run_export(BUNDLED["detect"], "tflite", tmp_path / "out", {"tflite_model": "edgetpu"}, env=env)
    elapsed = time.perf_counter() - start
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "'edgetpu_compiler' is not on PATH" in lines[0]
    assert elapsed < 5, f"took {elapsed:.1f}s: the checkpoint must not be loaded"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -- embedded metadata (fast) ------------------------------------------------------------------------
def test_embedded_metadata_is_plain_json_and_replaceable(tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(b"FLATBUFFER" * 10)
    with zipfile.ZipFile(model, "a") as archive:  # what Ultralytics appends, with a run-dependent key
        archive.writestr("metadata.json", json.dumps({"date": "today", "task": "detect"}))
    assert strip_metadata(model) == {"task": "detect"}
    assert model.read_bytes() == b"FLATBUFFER" * 10
    write_metadata(model, {"task": "detect", "exportkit": {"class_names": ["a"]}})
    first = model.read_bytes()
    write_metadata(model, {"task": "detect", "exportkit": {"class_names": ["a"]}})
    assert model.read_bytes() == first, "same metadata must give the same bytes"
    assert read_metadata(model) == {"task": "detect", "exportkit": {"class_names": ["a"]}}
    assert first.startswith(b"FLATBUFFER" * 10)


# -- calibration data (fast) -------------------------------------------------------------------------
def _images(folder, count):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (40, 30), (i * 20 % 255, 100, 50)).save(folder / f"{i:03d}.png")
    return folder


def test_folder_calibration_warns_with_the_count(tmp_path, caplog):
    data = _calibration.resolve_calibration(str(_images(tmp_path / "imgs", 5)), "detect")
    assert len(data.images) == 5 and data.names is None and not data.eval_images
    with caplog.at_level(logging.WARNING):
        _calibration.warn_if_few(data, "TFLite:")
    assert "uses only 5 images" in caplog.text and str(_calibration.MIN_CALIBRATION_IMAGES) in caplog.text


def test_calibration_images_are_capped_evenly(tmp_path, monkeypatch):
    monkeypatch.setattr(_calibration, "MAX_CALIBRATION_IMAGES", 4)
    data = _calibration.resolve_calibration(str(_images(tmp_path / "imgs", 10)), "detect")
    assert [p.name for p in data.images] == ["000.png", "002.png", "005.png", "007.png"]


def test_yaml_calibration_uses_train_and_keeps_val_for_accuracy(tmp_path):
    _images(tmp_path / "ds" / "images" / "train", 3)
    _images(tmp_path / "ds" / "images" / "val", 2)
    yaml_path = tmp_path / "ds" / "data.yaml"
    yaml_path.write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: a\n  1: b\n")
    data = _calibration.resolve_calibration(str(yaml_path), "detect")
    assert len(data.images) == 3 and len(data.eval_images) == 2 and data.names == ("a", "b")


def test_yaml_with_a_remote_split_is_a_config_error_never_a_download(tmp_path):
    yaml_path = tmp_path / "coco8.yaml"
    yaml_path.write_text(
        "path: ../datasets/coco8\ntrain: images/train\nval: images/val\nnames:\n  0: person\n"
        "download: https://github.com/ultralytics/assets/releases/download/v0.0.0/coco8.zip\n"
    )
    with pytest.raises(ConfigError, match="never downloads"):
        _calibration.resolve_calibration(str(yaml_path), "detect")


def test_default_calibration_data_is_generated_when_missing(tmp_path, monkeypatch):
    from exportkit import shapes

    original = shapes.write_dataset
    monkeypatch.setattr(shapes, "write_dataset", lambda root, task: original(root, task, n_train=3, n_val=2))
    yaml_path = _calibration.default_dataset("pose", cache=tmp_path)
    assert yaml_path == tmp_path / "pose" / "data.yaml"
    assert f"path: {(tmp_path / 'pose').resolve()}" in yaml_path.read_text()
    data = _calibration.resolve_calibration(str(yaml_path), "pose")
    assert len(data.images) == 3 and len(data.eval_images) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["pose"], "scratch folder left behind"
    assert _calibration.default_dataset("pose", cache=tmp_path) == yaml_path  # generated once


def test_letterboxed_batches_match_ultralytics_preprocessing():
    batches = list(_calibration.letterboxed(tuple(SAMPLES[:3]), 192, batch=2))
    assert [b.shape for b in batches] == [(2, 3, 192, 192), (2, 3, 192, 192)]  # short last batch tiled
    assert batches[0].dtype == np.float32 and 0.0 <= batches[0].min() and batches[0].max() <= 1.0
    assert np.isclose(batches[0][0, :, 0, 0], 114 / 255).all()  # 320x240 letterboxed: grey padding on top


# -- real exports (slow) -----------------------------------------------------------------------------
def _embedded(out):
    with zipfile.ZipFile(out / "model.tflite") as archive:
        return json.loads(archive.read("metadata.json"))  # plain JSON, or this raises


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_fp32_export(exports, task):
    out = exports.get(task, "tflite")
    assert {p.name for p in out.iterdir()} == {"model.tflite", "metadata.json", "validation.json"}
    metadata = read_metadata_json(out)
    validate_schema(metadata)
    assert metadata["precision"] == "fp32" and metadata["export_format"] == "tflite"
    assert metadata["checkpoint"]["sha256"] == sha256_file(BUNDLED[task])
    assert metadata["artifacts"][0]["sha256"] == sha256_file(out / "model.tflite")
    # the real tensors: NCHW float input, box (and keypoint) coordinates normalized by the input size
    assert metadata["layout"] == metadata["preprocessing"]["layout"] == "NCHW"
    h, w, c = metadata["input_shape"]
    assert metadata["inputs"][0]["shape"] == [1, c, h, w] and metadata["input_dtype"] == "float32"
    predictions = metadata["output_layout"]["predictions"]
    assert predictions["box_units"] == "normalized"
    if task == "pose":
        assert predictions["keypoint_units"] == "normalized"
    if task == "segment":
        assert metadata["output_layout"]["prototypes"]["output"] == metadata["outputs"][1]["name"]
    run = TFLITE().runner(out)
    assert [list(o.shape) for o in run(np.zeros((1, c, h, w), np.float32))] == metadata["output_shape"]
    (image,) = _calibration.letterboxed(SAMPLES[:1], h)
    raw = run(image)[0][0]
    best = raw[4 : 4 + metadata["num_classes"]].max(axis=0).argmax()
    assert 0.0 < raw[0, best] < 1.0 and 0.0 < raw[1, best] < 1.0, "the best box's centre is not in [0, 1]"

    interpreter = _interpreter(out / "model.tflite")  # describe() read the flatbuffer: the same tensors
    details = interpreter.get_input_details() + _ordered_outputs(interpreter)
    assert [d["name"] for d in details] == [t["name"] for t in metadata["inputs"] + metadata["outputs"]]

    embedded = _embedded(out)
    assert "date" not in embedded and embedded["exportkit"]["class_names"] == metadata["class_names"]
    validation = json.loads((out / "validation.json").read_text())
    assert validation["status"] == "passed" and validation["passed"] is True


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_int8_export_records_calibration_and_accuracy(exports, task):
    # Validation runs in test_int8_validation_on_images, outside the export.
    out = exports.get(task, "tflite", int8=True, include_validation=False)
    metadata = read_metadata_json(out)
    validate_schema(metadata)
    assert metadata["precision"] == "int8" and metadata["export_config"]["int8"] is True
    assert metadata["calibration"]["images"] == 256 and f"shapes/{task}" in metadata["calibration"]["source"]
    accuracy = metadata["accuracy"]
    assert accuracy["metric"] == "box mAP50" and accuracy["images"] == 64
    assert accuracy["drop"] == pytest.approx(accuracy["fp32_map50"] - accuracy["int8_map50"], abs=1e-3)
    assert accuracy["fp32_map50"] > 0.6 and accuracy["drop"] < 0.03, accuracy
    kind = {"segment": "mask", "pose": "pose"}.get(task)
    if kind:  # masks and keypoints, measured the same way
        assert accuracy[kind]["metric"] == f"{kind} mAP50" and accuracy[kind]["drop"] < 0.03, accuracy
    fp32 = exports.get(task, "tflite")
    assert (out / "model.tflite").stat().st_size < 0.4 * (fp32 / "model.tflite").stat().st_size
    assert _embedded(out)["exportkit"]["accuracy"] == accuracy
    assert metadata["output_layout"] == read_metadata_json(fp32)["output_layout"]  # float outputs, same layout


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_int8_validation_on_images(exports, task):
    """INT8 passes validation at the INT8 limits: on every sample image the same objects, classes, boxes and
    scores; keypoints within 12 model-input pixels. The seeded random tensor is recorded, not gating (noise
    lies outside the ranges INT8 was calibrated on)."""
    from exportkit.validation import validate_folder

    report = validate_folder(exports.get(task, "tflite", int8=True, include_validation=False))
    assert report.status == "passed", report.summary()
    assert all(c.passed is None for c in report.checks if c.input == "random")
    assert sum(v["boxes_compared"] for k, v in report.inputs.items() if k.startswith("image:")) >= len(SAMPLES)


@pytest.mark.slow
def test_int8_with_few_images_warns_how_many(tmp_path):
    proc = run_export(
        BUNDLED["detect"], "tflite", tmp_path / "out", {"int8": True, "calibration_data": str(SAMPLES[0].parent)}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"INT8 calibration uses only {len(SAMPLES)} images" in proc.stdout  # a warning is log, not a failure
    assert proc.stderr == ""
    metadata = read_metadata_json(tmp_path / "out")
    assert metadata["calibration"]["images"] == len(SAMPLES)
    assert "accuracy" not in metadata  # an unlabelled folder: nothing to measure against


def test_cli_help_lists_no_tflite_heavy_import():
    """Importing the format modules (as every CLI call does) imports neither litert nor torch."""
    code = "import sys, exportkit.registry as r; r.list_formats(); print(sorted(m for m in ('torch', 'litert_torch', 'ai_edge_litert', 'coremltools', 'tensorrt') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr

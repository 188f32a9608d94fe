"""Each bundled model x each foundation format through `python export.py`, checked end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import BUNDLED, TASKS

from exportkit.checkpoint import sha256_file
from exportkit.metadata import read_metadata, validate_schema
from exportkit.registry import get_format

FORMATS = ("onnx", "torchscript", "openvino")
TASK_TYPES = {"detect": "detection", "segment": "segmentation", "pose": "pose"}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("task", TASKS)
def test_export_bundled_model(exports, task, fmt):
    out = exports.get(task, fmt)
    spec = get_format(fmt)
    expected = {p.name for p in spec.artifact_paths(out)} | {"metadata.json", "validation.json"}
    assert {p.name for p in out.iterdir()} == expected

    metadata = read_metadata(out)
    validate_schema(metadata)
    assert metadata["export_format"] == fmt and metadata["task_type"] == TASK_TYPES[task]
    assert metadata["class_names"] == ["rectangle", "ellipse", "triangle"] and metadata["num_classes"] == 3
    assert metadata["checkpoint"]["sha256"] == sha256_file(BUNDLED[task])
    for entry in metadata["artifacts"]:
        assert sha256_file(out / entry["path"]) == entry["sha256"]
    assert set(spec.resolve({})) == set(metadata["export_config"])  # effective options, defaults included

    # output_shape is what the artifact itself reports, and runs: feed one input through the runner
    h, w, c = metadata["input_shape"]
    outputs = spec().runner(out)(np.zeros((1, c, h, w), dtype=np.float32))
    assert [list(o.shape) for o in outputs] == metadata["output_shape"]

    validation = json.loads((out / "validation.json").read_text())
    assert validation["passed"] is True and validation["checks"]


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_onnx_output_shape_matches_onnxruntime(exports, task):
    import onnxruntime as ort

    out = exports.get(task, "onnx")
    metadata = read_metadata(out)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert metadata["output_shape"] == [list(o.shape) for o in session.get_outputs()]
    assert metadata["inputs"][0]["name"] == session.get_inputs()[0].name
    if task == "segment":
        assert metadata["mask_resolution"] == list(session.get_outputs()[1].shape[2:])
    if task == "pose":
        assert metadata["num_keypoints"] == 4 and metadata["keypoint_names"] == ["top", "right", "bottom", "left"]
        assert metadata["skeleton"] == [[1, 2], [2, 3], [3, 4], [4, 1]]


@pytest.mark.slow
def test_dynamic_onnx_runs_a_batch(exports):
    import onnxruntime as ort

    out = exports.get("detect", "onnx", dynamic_axes=True)
    metadata = read_metadata(out)
    assert metadata["dynamic"]["batch"] is True and metadata["output_shape"][0][0] == -1
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    h, w, _ = metadata["input_shape"]
    (y,) = session.run(None, {session.get_inputs()[0].name: np.zeros((3, 3, h, w), np.float32)})
    assert y.shape[0] == 3


@pytest.mark.slow
@pytest.mark.parametrize("fmt,option", [("onnx", "half"), ("openvino", "half")])
def test_fp16_exports_record_precision(exports, fmt, option):
    out = exports.get("detect", fmt, **{option: True})
    metadata = read_metadata(out)
    assert metadata["precision"] == "fp16" and metadata["export_config"][option] is True
    fp32 = (exports.get("detect", fmt) / get_format(fmt).files[-1]).stat().st_size
    assert (out / get_format(fmt).files[-1]).stat().st_size < 0.7 * fp32


@pytest.mark.slow
def test_reexport_replaces_previous_artifacts(exports, tmp_path):
    from conftest import run_export

    first = run_export(BUNDLED["detect"], "onnx", tmp_path, {"include_validation": True})
    assert first.returncode == 0
    (tmp_path / "validation.json").unlink()
    second = run_export(BUNDLED["detect"], "onnx", tmp_path, {"opset_version": 13})
    assert second.returncode == 0, second.stderr
    assert read_metadata(tmp_path)["export_config"]["opset_version"] == 13
    assert not (tmp_path / "validation.json").exists()

"""Validation against PyTorch: never vacuous, strict, and it catches damaged exports (exit 2)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ENV, ROOT, SAMPLES

from exportkit.validation import ParityReport, box_iou, thresholds_for


def validate(folder, *args):
    return subprocess.run(
        [sys.executable, "-m", "exportkit", "validate", str(folder), *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )


# -- unit -----------------------------------------------------------------------------------------
def test_box_iou():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    assert np.allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0]])


def test_thresholds_have_per_precision_defaults_and_overrides():
    assert thresholds_for("fp32", None)["box_iou"] == 0.95 and thresholds_for("fp32", None)["confidence_diff"] == 0.05
    assert (
        thresholds_for("int8", None)["box_iou"]
        < thresholds_for("fp16", None)["box_iou"]
        <= thresholds_for("fp32", None)["box_iou"]
    )
    assert thresholds_for("fp32", {"box_iou": 0.5})["box_iou"] == 0.5
    assert thresholds_for("fp32", {"raw_rel_max_diff": None})["raw_rel_max_diff"] is None


def test_a_report_that_compared_nothing_is_not_a_pass():
    assert ParityReport("onnx", "fp32").status == "failed"
    assert ParityReport("coreml", "fp32", skipped="needs macOS").passed is False


# -- on real exports ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_validation_json_compares_real_images(exports, task):
    out = exports.get(task, "onnx")
    report = json.loads((out / "validation.json").read_text())
    assert report["status"] == "passed"
    images = {k: v for k, v in report["inputs"].items() if k.startswith("image:")}
    assert len(images) == len(SAMPLES)
    assert all(v["mode"] == "detections" and v["boxes_compared"] > 0 for v in images.values()), images
    assert report["inputs"]["random"]["mode"] == "top_k" and report["inputs"]["random"]["boxes_compared"] > 0
    criteria = {c["criterion"] for c in report["checks"]}
    assert {"box_iou_min", "confidence_diff_max", "class_mismatches", "output0.cosine"} <= criteria
    if task == "segment":
        assert "mask_iou_min" in criteria and report["worst"]["mask_iou"] > 0.9
    if task == "pose":
        assert "keypoint_px_max" in criteria and report["worst"]["keypoint_px"] < 2.0


@pytest.mark.slow
def test_dynamic_batch_is_validated_with_a_batch(exports):
    report = json.loads((exports.get("detect", "onnx", dynamic_axes=True) / "validation.json").read_text())
    assert report["inputs"]["batch2"]["passed"] is True


@pytest.mark.slow
def test_validate_subcommand_on_existing_export(exports, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exports.get("detect", "openvino"), folder)
    (folder / "validation.json").unlink()
    proc = validate(folder)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((folder / "validation.json").read_text())["status"] == "passed"


def _damaged(exports, tmp_path, task="detect"):
    folder = tmp_path / "damaged"
    shutil.copytree(exports.get(task, "onnx"), folder)
    return folder


def _perturb_weight(folder):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(folder / "model.onnx"))
    init = max(model.graph.initializer, key=lambda t: np.prod(t.dims))  # the biggest conv weight
    array = numpy_helper.to_array(init).copy()
    array += np.random.default_rng(0).normal(0, array.std() * 0.5, array.shape).astype(array.dtype)
    init.CopyFrom(numpy_helper.from_array(array, init.name))
    onnx.save(model, str(folder / "model.onnx"))


def _swap_class_channels(folder):
    import onnx
    from onnx import helper

    model = onnx.load(str(folder / "model.onnx"))
    graph = model.graph
    out = graph.output[0]
    channels = out.type.tensor_type.shape.dim[1].dim_value
    order = list(range(channels))
    order[4], order[5] = order[5], order[4]  # rectangle <-> ellipse scores
    for node in graph.node:
        node.output[:] = [f"{o}_raw" if o == out.name else o for o in node.output]
    graph.initializer.append(helper.make_tensor("swap_idx", onnx.TensorProto.INT64, [channels], order))
    graph.node.append(helper.make_node("Gather", [f"{out.name}_raw", "swap_idx"], [out.name], axis=1))
    onnx.save(model, str(folder / "model.onnx"))


def _scale_output_channels(folder, add=(), multiply=()):
    """Append ``output0 * scale + offset`` per channel to the graph: ``add``/``multiply`` are (channel, value) pairs."""
    import onnx
    from onnx import helper

    model = onnx.load(str(folder / "model.onnx"))
    graph = model.graph
    out = graph.output[0]
    channels = out.type.tensor_type.shape.dim[1].dim_value
    offset, scale = [0.0] * channels, [1.0] * channels
    for channel, value in add:
        offset[channel] = value
    for channel, value in multiply:
        scale[channel] = value
    for node in graph.node:
        node.output[:] = [f"{o}_raw" if o == out.name else o for o in node.output]
    graph.initializer.append(helper.make_tensor("damage_scale", onnx.TensorProto.FLOAT, [1, channels, 1], scale))
    graph.initializer.append(helper.make_tensor("damage_offset", onnx.TensorProto.FLOAT, [1, channels, 1], offset))
    graph.node.append(helper.make_node("Mul", [f"{out.name}_raw", "damage_scale"], [f"{out.name}_scaled"]))
    graph.node.append(helper.make_node("Add", [f"{out.name}_scaled", "damage_offset"], [out.name]))
    onnx.save(model, str(folder / "model.onnx"))


def _edit_metadata(folder, edit):
    path = folder / "metadata.json"
    metadata = json.loads(path.read_text())
    edit(metadata)
    path.write_text(json.dumps(metadata))


DAMAGE = {
    "perturbed-weight": (_perturb_weight, "output0"),
    "swapped-class-channels": (_swap_class_channels, "class_mismatches"),
    # detection-level gates: boxes 4 px off (a 40 px box keeps IoU ~0.9 < 0.95), confidences 15% low (~0.1 > 0.05)
    "shifted-boxes": (lambda f: _scale_output_channels(f, add=[(0, 4.0), (1, 4.0)]), "box_iou_min"),
    "scaled-confidences": (
        lambda f: _scale_output_channels(f, multiply=[(4, 0.85), (5, 0.85), (6, 0.85)]),
        "confidence_diff_max",
    ),
    "metadata-says-bgr": (
        lambda f: _edit_metadata(f, lambda m: m["preprocessing"].update(color_space="BGR")),
        "output0",
    ),
    "metadata-wrong-input-size": (lambda f: _edit_metadata(f, lambda m: m.update(input_shape=[160, 160, 3])), "run"),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_export_fails_validation_with_exit_2(exports, tmp_path, damage):
    folder = _damaged(exports, tmp_path)
    make, criterion = DAMAGE[damage]
    make(folder)
    proc = validate(folder)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("exportkit: error: validation failed") and "Traceback" not in proc.stderr
    report = json.loads((folder / "validation.json").read_text())
    assert report["status"] == "failed"
    failed = {c["criterion"] for c in report["checks"] if c["passed"] is False}
    assert any(criterion in c for c in failed), failed


@pytest.mark.slow
def test_export_with_failing_validation_keeps_artifacts_and_exits_2(tmp_path):
    from conftest import BUNDLED, run_export

    # ONNX Runtime differs from PyTorch by ~1e-6 relative: a zero tolerance must fail, and say so
    proc = run_export(
        BUNDLED["detect"], "onnx", tmp_path, {"include_validation": True, "validation": {"raw_rel_max_diff": 0.0}}
    )
    assert proc.returncode == 2, proc.stderr
    assert "rel_max_abs_diff" in proc.stderr.strip().splitlines()[-1]
    assert (tmp_path / "model.onnx").exists() and (tmp_path / "metadata.json").exists()
    assert json.loads((tmp_path / "validation.json").read_text())["status"] == "failed"

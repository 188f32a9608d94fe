"""Validation's loop on synthetic models: a fake reference and a fake export (plain functions returning raw
outputs), the real sample images, the real decode. Damaged exports must fail the gate their damage breaks."""

from __future__ import annotations

import numpy as np
import pytest

from exportkit.checkers import Check
from exportkit.registry import ArtifactIO, TensorInfo
from exportkit.validation.harness import (
    ParityReport,
    _batch_case,
    _random_case,
    artifact_input_size,
    in_input_pixels,
    run_cases,
    sample_images,
    thresholds_for,
)

SIZE = (64, 64)
ANCHORS = 84  # 8x8 + 4x4 + 2x2 at strides 8, 16, 32


def metadata(dynamic_batch=False, box_units="input_pixels", task="detect") -> dict:
    pred = {
        "output": "output0",
        "shape_order": "batch, channels, anchors",
        "box": [0, 4],
        "box_format": "cxcywh",
        "box_units": box_units,
        "class_scores": [4, 7],
        "scores_activated": True,
    }
    return {
        "task": task,
        "export_format": "onnx",
        "precision": "fp32",
        "class_names": ["a", "b", "c"],
        "num_classes": 3,
        "input_shape": [64, 64, 3],
        "input_dtype": "float32",
        "layout": "NCHW",
        "preprocessing": {
            "mean": [0, 0, 0],
            "std": [255, 255, 255],
            "color_space": "RGB",
            "resize_mode": "letterbox",
            "normalize": True,
            "layout": "NCHW",
            "pad_value": 114,
            "letterbox_center": True,
            "scale_up": True,
        },
        "postprocessing": {
            "apply_nms": True,
            "confidence_threshold": 0.25,
            "iou_threshold": 0.45,
            "coordinate_format": "xyxy",
            "max_detections": 300,
            "agnostic_nms": False,
        },
        "dynamic": {"batch": dynamic_batch, "spatial": False},
        "inputs": [{"name": "images", "shape": [-1 if dynamic_batch else 1, 3, 64, 64], "dtype": "float32"}],
        "outputs": [{"name": "output0", "shape": [-1 if dynamic_batch else 1, 7, ANCHORS], "dtype": "float32"}],
        "output_layout": {"predictions": pred},
    }


def model(shift=0.0, score_scale=1.0, drop=False, duplicate=False):
    """Raw outputs with two objects (anchors 0 and 1), whatever the input; damage is applied on request."""

    def run(x):
        pred = np.zeros((len(x), 7, ANCHORS), np.float32)
        pred[:, :4, 0] = [20 + shift, 20, 16, 16]
        pred[:, 5, 0] = 0.9 * score_scale
        pred[:, :4, 1] = [44, 44, 12, 12]
        pred[:, 4, 1] = 0.0 if drop else 0.8 * score_scale
        if duplicate:  # a second box on the first object, far enough to survive NMS's IoU 0.45 but not matched
            pred[:, :4, 2] = [20, 28, 16, 16]
            pred[:, 5, 2] = 0.85
        pred[:, :4, 3:] = np.array([32, 32, 8, 8], np.float32)[:, None]
        pred[:, 4:, 3:] = 0.01 + 1e-4 * np.arange(ANCHORS - 3)  # scores for the top-k path, below the threshold
        return [pred]

    return run


def report_for(run_exp, meta=None, precision="fp32") -> ParityReport:
    meta = meta or metadata()
    report = ParityReport("onnx", precision)
    run_cases(report, model(), run_exp, meta, meta, SIZE, thresholds_for(precision, None))
    return report


def failed(report: ParityReport) -> set[str]:
    return {c.criterion for c in report.failures}


def test_an_identical_export_passes_on_every_sample_image():
    report = report_for(model())
    assert report.passed, report.summary()
    images = [n for n in report.inputs if n.startswith("image:")]
    assert len(images) == len(sample_images()) > 0 and "random" in report.inputs and "batch2" not in report.inputs
    assert all(report.inputs[n]["mode"] == "detections" and report.inputs[n]["boxes_compared"] == 2 for n in images)
    assert report.inputs["random"]["mode"] == "top_k"


@pytest.mark.parametrize(
    "damage, gate",
    [
        (dict(shift=3.0), "box_iou_min"),
        (dict(score_scale=0.9), "confidence_diff_max"),
        (dict(drop=True), "unmatched_reference"),
        (dict(duplicate=True), "unmatched_exported"),
    ],
    ids=["shifted-boxes", "scaled-confidences", "dropped-detection", "duplicated-detection"],
)
def test_a_damaged_export_fails_the_detection_gate_its_damage_breaks(damage, gate):
    report = report_for(model(**damage))
    assert report.status == "failed"
    image_failures = {c.criterion for c in report.failures if c.input.startswith("image:")}
    assert gate in image_failures, report.summary()
    assert "boxes_compared" not in image_failures


def test_an_export_that_raises_is_recorded_and_the_loop_goes_on():
    def broken(x):
        raise RuntimeError("bad\n graph")

    report = report_for(broken)
    runs = [c for c in report.checks if c.criterion == "run"]
    assert len(runs) == len(sample_images()) + 1 and all(c.passed is False for c in runs)
    assert runs[0].detail == "RuntimeError: bad graph"
    assert all(v == {"mode": "error", "boxes_compared": 0, "passed": False} for v in report.inputs.values())


def test_a_dynamic_batch_is_compared_as_a_batch_of_two():
    report = report_for(model(), meta=metadata(dynamic_batch=True))
    assert report.inputs["batch2"] == {"mode": "raw", "boxes_compared": 0, "batch": 2, "passed": True}
    report = ParityReport("onnx", "fp32")
    tensors = [np.zeros((1, 3, 64, 64), np.float32), np.ones((1, 3, 64, 64), np.float32)]
    seen = []

    def export_run(x):
        seen.append(x.shape)
        out = model()(x)
        out[0][1] *= 2  # the second image of the batch comes out wrong
        return out

    report.checks = [Check("earlier", "x", 1, None, None)]
    fed = []
    _batch_case(
        report,
        lambda x: (fed.append(x.dtype), model()(x))[1],
        export_run,
        [t.astype(np.float16) for t in tensors],
        thresholds_for("fp32", None),
    )
    assert report.checks[0].input == "earlier" and fed == [np.float32, np.float32]  # the reference always gets float32
    assert seen == [(2, 3, 64, 64)] and report.inputs["batch2"]["passed"] is False
    assert {c.input for c in report.checks[1:]} == {"batch2"}  # every check of the case names it
    assert "output0.rel_max_abs_diff" in failed(report)


def test_random_input_gates_except_at_int8():
    limits = thresholds_for("fp32", None)
    report = ParityReport("onnx", "fp32")
    _random_case(report, model(), model(score_scale=0.5), metadata(), SIZE, limits)
    assert report.inputs["random"]["passed"] is False and report.failures
    int8 = ParityReport("onnx", "int8")
    _random_case(int8, model(), model(score_scale=0.5), metadata(), SIZE, limits)
    assert not int8.failures and all(c.passed is None for c in int8.checks)
    assert int8.checks[0].detail.startswith("recorded, not gating: INT8")
    seen = []
    _random_case(
        ParityReport("onnx", "fp16"),
        lambda x: (seen.append(("ref", x.dtype)), model()(x))[1],
        lambda x: (seen.append(("exp", x.dtype)), model()(x))[1],
        {**metadata(), "input_dtype": "float16"},
        SIZE,
        limits,
    )
    assert seen == [("ref", np.float32), ("exp", np.float16)]
    crashed = ParityReport("onnx", "fp32")
    _random_case(crashed, model(), lambda x: 1 / 0, metadata(), SIZE, limits)
    assert [(c.criterion, c.passed) for c in crashed.checks] == [
        ("run", False)
    ] and "ZeroDivisionError" in crashed.checks[0].detail


def test_normalized_outputs_are_scaled_to_input_pixels():
    raw = np.ones((1, 7, 4), np.float32)
    out = in_input_pixels([raw, "protos"], metadata(box_units="normalized"), (32, 64))
    np.testing.assert_array_equal(out[0][0, :4, 0], [64, 32, 64, 32])  # x, w by width; y, h by height
    np.testing.assert_array_equal(out[0][0, 4:, 0], [1, 1, 1])
    assert out[1] == "protos" and raw[0, 0, 0] == 1  # the input is not changed in place
    assert in_input_pixels([raw], metadata(), (32, 64))[0] is raw
    pose = metadata(box_units="normalized")
    pose["output_layout"]["predictions"].update(keypoints=[7, 13], keypoint_format="x, y, visibility")
    kp = in_input_pixels([np.ones((1, 13, 2), np.float32)], pose, (32, 64))[0]
    np.testing.assert_array_equal(kp[0, 7:13, 0], [64, 32, 1, 64, 32, 1])  # visibility untouched
    pose["output_layout"]["predictions"].update(
        keypoints=[7, 11], keypoint_format="x, y", keypoint_units="normalized", box_units="input_pixels"
    )
    kp = in_input_pixels([np.ones((1, 11, 2), np.float32)], pose, (32, 64))[0]
    np.testing.assert_array_equal(kp[0, :, 0], [1, 1, 1, 1, 1, 1, 1, 64, 32, 64, 32])
    rows = metadata(box_units="normalized")
    rows["output_layout"]["predictions"]["shape_order"] = "batch, detections, values"
    assert in_input_pixels([raw], rows, (32, 64))[0] is raw


@pytest.mark.parametrize(
    "shape, expected",
    [
        ([1, 3, 48, 96], (48, 96)),
        ([1, 48, 96, 3], (48, 96)),
        ([1, 3, -1, 96], (64, 64)),
        ([1, 3, 48, -1], (64, 64)),
        ([1, 1, 48, 96], (48, 96)),
        ([-1, 3, -1, -1], (64, 64)),
        ([1, 48, 96], (48, 96)),
    ],
)
def test_artifact_input_size_comes_from_the_artifact(shape, expected):
    io = ArtifactIO([TensorInfo("images", shape, "float32")], [])
    assert artifact_input_size(io, {"input_shape": [64, 64, 3]}) == expected


def test_a_failed_check_keeps_the_input_summary_failed():
    report = ParityReport("onnx", "fp32", checks=[Check("x", "run", 0, None, False)])
    assert report.status == "failed"


def test_images_without_reference_detections_compare_the_top_candidates():
    def quiet(**damage):
        return lambda x: [
            np.where(np.arange(7)[None, :, None] >= 4, model(**damage)(x)[0] * 0.1, model(**damage)(x)[0])
        ]

    report = ParityReport("onnx", "fp32")
    run_cases(report, quiet(), quiet(), metadata(), metadata(), SIZE, thresholds_for("fp32", None))
    images = [v for k, v in report.inputs.items() if k.startswith("image:")]
    assert report.passed and images and all(v["mode"] == "top_k" and v["boxes_compared"] == 10 for v in images)
    report = ParityReport("onnx", "fp32")
    run_cases(report, quiet(), quiet(shift=3.0), metadata(), metadata(), SIZE, thresholds_for("fp32", None))
    assert "box_iou_min" in {c.criterion for c in report.failures if c.input.startswith("image:")}


def test_the_exported_side_decodes_at_the_reference_threshold():
    # the export's metadata says 0.5; both sides must still decode at the reference's 0.25 (scores 0.3 here)
    exported = metadata()
    exported["postprocessing"] = {**exported["postprocessing"], "confidence_threshold": 0.5}
    report = ParityReport("onnx", "fp32")
    run_cases(
        report,
        model(score_scale=0.35),
        model(score_scale=0.35),
        exported,
        metadata(),
        SIZE,
        thresholds_for("fp32", None),
    )
    assert report.passed, report.summary()


def test_normalized_exports_are_compared_in_input_pixels_on_images():
    def normalized(x):
        out = model()(x)[0].copy()
        out[:, :4] /= 64.0
        return [out]

    report = ParityReport("tflite", "fp32")
    run_cases(
        report, model(), normalized, metadata(box_units="normalized"), metadata(), SIZE, thresholds_for("fp32", None)
    )
    assert report.passed, report.summary()


def test_normalized_scaling_multiplies_and_reads_the_defaults_of_the_layout():
    # no shape_order: the guide's default layout ("batch, channels, anchors"); keypoints without a keypoint_format
    # are (x, y) pairs; fp16 outputs come back as float32
    md = metadata(box_units="normalized")
    pred = md["output_layout"]["predictions"]
    del pred["shape_order"]
    pred.update(keypoints=[7, 11])
    raw = np.full((1, 11, 2), 0.5, np.float16)
    out = in_input_pixels([raw], md, (32, 64))[0]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, :, 1], [32, 16, 32, 16, 0.5, 0.5, 0.5, 32, 16, 32, 16])


def test_random_case_is_one_reproducible_noise_image_with_raw_and_top_k_checks():
    limits = thresholds_for("fp32", None)
    inputs = []

    def ref(x):
        inputs.append(x.copy())
        return model()(x)

    for _ in range(2):
        report = ParityReport("onnx", "fp32")
        _random_case(report, ref, model(), metadata(), SIZE, limits)
    assert inputs[0].shape == (1, 3, *SIZE)  # one RGB image, NCHW (batches are the batch case's)
    np.testing.assert_array_equal(inputs[0], inputs[1])  # the same noise each run: reproducible validation
    criteria = {c.criterion for c in report.checks}
    assert {"output0.cosine", "output0.rel_max_abs_diff", "box_iou_min", "boxes_compared"} <= criteria


def test_random_case_crash_is_one_run_check_with_the_error_on_one_line():
    limits = thresholds_for("fp32", None)

    def crash(x):
        raise ValueError("first line\n   second   line " + "x" * 400)

    report = ParityReport("onnx", "fp32")
    _random_case(report, model(), crash, metadata(), SIZE, limits)
    (check,) = report.checks
    assert (check.input, check.criterion, check.value, check.passed) == ("random", "run", 0, False)  # nothing compared
    assert check.detail.startswith("ValueError: first line second line xxx")  # whitespace collapsed, one line
    assert len(check.detail) == len("ValueError: ") + 300  # the message cut at 300 characters


@pytest.mark.parametrize(
    "shape, expected",
    [
        ([1, 3, 0, 96], (64, 64)),
        ([1, 3, 48, 0], (64, 64)),  # no size: metadata's
        ([1, 3, 1, 96], (1, 96)),
        ([1, 3, 48, 1], (48, 1)),
    ],
)  # 1 px is a size
def test_artifact_input_size_takes_any_positive_size(shape, expected):
    io = ArtifactIO([TensorInfo("images", shape, "float32")], [])
    assert artifact_input_size(io, {"input_shape": [64, 64, 3]}) == expected

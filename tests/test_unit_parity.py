"""The parity criteria on synthetic outputs: each detection-level gate seen failing on a damage it must catch.

Inputs are built here (boxes, scores, masks, keypoints); expected values come from geometry, not from
the implementation: two 10x10 boxes overlapping by 5 px share 50 of 150 px (IoU 1/3), and so on.
"""

from __future__ import annotations

import numpy as np
import pytest

from exportkit.validation import DEFAULT_THRESHOLDS, ParityReport, thresholds_for
from exportkit.validation.parity import (
    MATCH_IOU,
    Check,
    _gate,
    _keypoint_px,
    box_iou,
    detection_checks,
    match_detections,
    raw_checks,
    top_k_checks,
)
from runtimes.python.results import Result

LIMITS = DEFAULT_THRESHOLDS["fp32"]  # the guide's criteria: IoU > 0.95, confidence diff < 0.05, same class
CONF = 0.25
NAMES = ("circle", "square", "triangle")


def result(boxes, scores, classes, masks=None, keypoints=None) -> Result:
    return Result(
        "detect",
        (100, 100),
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        np.array(classes, np.int64),
        NAMES,
        masks=masks,
        keypoints=keypoints,
    )


REF = result([[10, 10, 50, 50], [60, 60, 90, 90], [5, 60, 40, 95]], [0.9, 0.8, 0.7], [0, 1, 2])


def by_criterion(checks: list[Check]) -> dict[str, Check]:
    return {c.criterion: c for c in checks}


def failed(checks: list[Check]) -> set[str]:
    return {c.criterion for c in checks if c.passed is False}


def test_box_iou_from_geometry():
    a = np.array([[0, 0, 10, 10]], np.float64)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 5]], np.float64)
    np.testing.assert_allclose(box_iou(a, b)[0], [50 / 150, 1.0, 0.0, 25 / 100], atol=1e-6)
    assert box_iou(a, b).shape == (1, 4)
    assert box_iou(b, a).shape == (4, 1)
    assert box_iou(a, np.zeros((0, 4))).shape == (1, 0)
    assert box_iou(np.zeros((0, 4)), a).shape == (0, 1)


def test_identical_outputs_pass_every_gate():
    checks, summary = detection_checks("img", REF, REF, LIMITS, CONF)
    assert not failed(checks)
    c = by_criterion(checks)
    assert c["boxes_compared"].value == 3 and c["box_iou_min"].value == pytest.approx(1.0)
    assert c["confidence_diff_max"].value == pytest.approx(0.0)
    assert summary == {"mode": "detections", "boxes_compared": 3, "reference_detections": 3, "exported_detections": 3}


def test_shifted_boxes_fail_box_iou_gate():
    # a 40x40 box shifted 1 px right keeps IoU 39*40 / (41*40) = 0.951 (passes 0.95); 2 px: 38/42 = 0.905 (fails)
    one = result(REF.boxes + [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], REF.scores, REF.class_ids)
    c = by_criterion(detection_checks("img", REF, one, LIMITS, CONF)[0])
    assert c["box_iou_min"].value == pytest.approx(39 / 41, abs=1e-4) and c["box_iou_min"].passed
    two = result(REF.boxes + [[2, 0, 2, 0], [0, 0, 0, 0], [0, 0, 0, 0]], REF.scores, REF.class_ids)
    checks = detection_checks("img", REF, two, LIMITS, CONF)[0]
    assert failed(checks) == {"box_iou_min"}
    assert by_criterion(checks)["box_iou_min"].value == pytest.approx(38 / 42, abs=1e-4)
    assert by_criterion(checks)["box_iou_min"].threshold == 0.95


def test_far_shifted_box_is_unmatched_not_compared():
    boxes = REF.boxes.copy()
    boxes[0] += 30  # IoU with its reference < MATCH_IOU: a lost detection and an extra one
    checks = detection_checks("img", REF, result(boxes, REF.scores, REF.class_ids), LIMITS, CONF)[0]
    assert failed(checks) == {"unmatched_reference", "unmatched_exported"}
    assert by_criterion(checks)["boxes_compared"].value == 2


def test_dropped_detection_fails_unmatched_reference():
    exp = result(REF.boxes[1:], REF.scores[1:], REF.class_ids[1:])
    checks = detection_checks("img", REF, exp, LIMITS, CONF)[0]
    assert failed(checks) == {"unmatched_reference"}
    assert by_criterion(checks)["unmatched_reference"].value == 1


def test_duplicated_detection_fails_unmatched_exported():
    exp = result(
        np.concatenate([REF.boxes, REF.boxes[:1]]),
        np.concatenate([REF.scores, [0.88]]),
        np.concatenate([REF.class_ids, [0]]),
    )
    checks = detection_checks("img", REF, exp, LIMITS, CONF)[0]
    assert failed(checks) == {"unmatched_exported"}
    assert by_criterion(checks)["unmatched_exported"].value == 1


@pytest.mark.parametrize("factor, fails", [(0.9, True), (0.96, False), (1.07, True)])
def test_scaled_confidences_fail_confidence_gate(factor, fails):
    # 0.9 * 0.1 = 0.09 > 0.05; 0.9 * 0.04 = 0.036 < 0.05; 0.9 * 0.07 = 0.063 > 0.05
    exp = result(REF.boxes, REF.scores * factor, REF.class_ids)
    checks = detection_checks("img", REF, exp, LIMITS, CONF)[0]
    assert failed(checks) == ({"confidence_diff_max"} if fails else set())
    assert by_criterion(checks)["confidence_diff_max"].value == pytest.approx(0.9 * abs(1 - factor), abs=1e-5)


def test_swapped_class_is_a_class_mismatch_named_in_the_detail():
    exp = result(REF.boxes, REF.scores, [1, 1, 2])
    checks = detection_checks("img", REF, exp, LIMITS, CONF)[0]
    assert failed(checks) == {"class_mismatches"}
    assert by_criterion(checks)["class_mismatches"].detail == "circle became square"


def test_detections_near_the_threshold_may_fall_either_side():
    # a reference detection within confidence_diff of the threshold that the export drops is recorded, not failed
    ref = result([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, CONF + 0.02], [0, 1])
    exp = result([[10, 10, 50, 50]], [0.9], [0])
    c = by_criterion(detection_checks("img", ref, exp, LIMITS, CONF)[0])
    assert c["unmatched_reference"].passed and c["unmatched_reference"].value == 0
    assert c["unmatched_reference"].detail.startswith("1 more within 0.05")
    # just above the border it counts
    ref = result([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, CONF + 0.06], [0, 1])
    assert not by_criterion(detection_checks("img", ref, exp, LIMITS, CONF)[0])["unmatched_reference"].passed
    # the same for an extra exported detection near the threshold
    c = by_criterion(detection_checks("img", exp, ref, LIMITS, CONF)[0])
    assert not c["unmatched_exported"].passed
    ref2 = result([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, CONF + 0.01], [0, 1])
    assert by_criterion(detection_checks("img", exp, ref2, LIMITS, CONF)[0])["unmatched_exported"].passed


def test_nothing_compared_fails_unless_both_sides_are_empty():
    empty = result(np.zeros((0, 4)), [], [])
    assert by_criterion(detection_checks("img", empty, empty, LIMITS, CONF)[0])["boxes_compared"].passed
    assert not by_criterion(detection_checks("img", REF, empty, LIMITS, CONF)[0])["boxes_compared"].passed
    assert not by_criterion(detection_checks("img", empty, REF, LIMITS, CONF)[0])["boxes_compared"].passed


def test_greedy_matching_prefers_same_class_then_best_iou():
    ref = result([[10, 10, 50, 50]], [0.9], [0])
    # two candidates of the right class: the closer one is matched, the other is an extra
    exp = result([[12, 10, 52, 50], [10, 10, 50, 50], [11, 10, 51, 50]], [0.9, 0.9, 0.9], [0, 0, 1])
    checks = detection_checks("img", ref, exp, LIMITS, CONF)[0]
    c = by_criterion(checks)
    assert c["box_iou_min"].value == pytest.approx(1.0)
    assert c["class_mismatches"].value == 0 and c["unmatched_exported"].value == 2


def test_class_mismatch_picks_the_best_overlapping_other_class():
    ref = result([[10, 10, 50, 50]], [0.9], [0])
    exp = result([[14, 10, 54, 50], [10, 10, 50, 50]], [0.9, 0.9], [1, 2])
    c = by_criterion(detection_checks("img", ref, exp, LIMITS, CONF)[0])
    assert c["class_mismatches"].detail == "circle became triangle"
    assert c["unmatched_exported"].value == 1 and c["unmatched_reference"].value == 0


def test_match_threshold_is_half_overlap():
    assert MATCH_IOU == 0.5
    ref = result([[0, 0, 10, 10]], [0.9], [0])
    # IoU 0.51 (a 10x5.1 box inside the 10x10 one): matched; 0.49: not
    half = result([[0, 0, 10, 5.1]], [0.9], [0])
    assert by_criterion(detection_checks("img", ref, half, LIMITS, CONF)[0])["boxes_compared"].value == 1
    under = result([[0, 0, 10, 4.9]], [0.9], [0])
    assert by_criterion(detection_checks("img", ref, under, LIMITS, CONF)[0])["boxes_compared"].value == 0


def test_masks_gate_on_the_worst_matched_mask():
    masks = np.zeros((3, 20, 20), bool)
    masks[:, 5:15, 5:15] = True  # 100 px each
    ref = result(REF.boxes, REF.scores, REF.class_ids, masks=masks)
    damaged = masks.copy()
    damaged[1, 5:15, 5:10] = False  # 50 of 100 px left: IoU 0.5 < 0.90
    c = by_criterion(
        detection_checks("img", ref, result(REF.boxes, REF.scores, REF.class_ids, masks=damaged), LIMITS, CONF)[0]
    )
    assert c["mask_iou_min"].value == pytest.approx(0.5) and not c["mask_iou_min"].passed
    c = by_criterion(detection_checks("img", ref, ref, LIMITS, CONF)[0])
    assert c["mask_iou_min"].value == 1.0 and c["mask_iou_min"].passed
    other = result(REF.boxes, REF.scores, REF.class_ids, masks=np.zeros((3, 10, 10), bool))
    assert (
        by_criterion(detection_checks("img", ref, other, LIMITS, CONF)[0])["mask_iou_min"].value == 0.0
    )  # shape differs
    both_empty = result(REF.boxes, REF.scores, REF.class_ids, masks=np.zeros((3, 20, 20), bool))
    assert by_criterion(detection_checks("img", both_empty, both_empty, LIMITS, CONF)[0])["mask_iou_min"].value == 1.0


def test_keypoints_gate_in_model_input_pixels_on_visible_points():
    kpts = np.zeros((3, 2, 3), np.float32)
    kpts[:, :, 2] = 1.0
    moved = kpts.copy()
    moved[0, 1, :2] += [3.0, 4.0]  # 5 px away (3-4-5 triangle)
    ref = result(REF.boxes, REF.scores, REF.class_ids, keypoints=kpts)
    exp = result(REF.boxes, REF.scores, REF.class_ids, keypoints=moved)
    c = by_criterion(detection_checks("img", ref, exp, LIMITS, CONF)[0])
    assert c["keypoint_px_max"].value == pytest.approx(5.0) and not c["keypoint_px_max"].passed
    # image pixels -> model-input pixels: a 2x downscaled image halves the distance
    c = by_criterion(detection_checks("img", ref, exp, LIMITS, CONF, input_gain=0.3)[0])
    assert c["keypoint_px_max"].value == pytest.approx(1.5) and c["keypoint_px_max"].passed
    hidden = kpts.copy()
    hidden[0, 1, 2] = 0.2  # the moved point is invisible in the reference: not compared
    ref_hidden = result(REF.boxes, REF.scores, REF.class_ids, keypoints=hidden)
    c = by_criterion(detection_checks("img", ref_hidden, exp, LIMITS, CONF)[0])
    assert c["keypoint_px_max"].value == pytest.approx(0.0)
    xy = result(REF.boxes, REF.scores, REF.class_ids, keypoints=kpts[:, :, :2].copy())
    xy_moved = result(REF.boxes, REF.scores, REF.class_ids, keypoints=moved[:, :, :2].copy())
    assert by_criterion(detection_checks("img", xy, xy_moved, LIMITS, CONF)[0])[
        "keypoint_px_max"
    ].value == pytest.approx(5.0)
    none_visible = kpts.copy()
    none_visible[:, :, 2] = 0.0
    nv = result(REF.boxes, REF.scores, REF.class_ids, keypoints=none_visible)
    assert by_criterion(detection_checks("img", nv, exp, LIMITS, CONF)[0])["keypoint_px_max"].value == 0.0


def test_raw_checks_catch_scaled_and_reshaped_outputs():
    ref = [np.linspace(-2, 2, 60, dtype=np.float32).reshape(1, 6, 10)]
    assert not failed(raw_checks("x", ref, [ref[0].copy()], LIMITS))
    c = by_criterion(raw_checks("x", ref, [ref[0] * 1.01], LIMITS))
    # max |diff| = 0.01 * 2 = 0.02, relative to max |ref| = 2: 0.01 > 1e-3
    assert (
        c["output0.rel_max_abs_diff"].value == pytest.approx(0.01, rel=1e-4)
        and not c["output0.rel_max_abs_diff"].passed
    )
    assert c["output0.max_abs_diff"].value == pytest.approx(0.02, rel=1e-4) and c["output0.max_abs_diff"].passed is None
    assert c["output0.mean_abs_diff"].value == pytest.approx(float(np.abs(ref[0] * 0.01).mean()), rel=1e-4)
    assert c["output0.cosine"].value == pytest.approx(1.0) and c["output0.cosine"].passed  # scaling keeps direction
    flipped = by_criterion(raw_checks("x", ref, [-ref[0]], LIMITS))
    assert flipped["output0.cosine"].value == pytest.approx(-1.0) and not flipped["output0.cosine"].passed
    shape = raw_checks("x", ref, [ref[0].reshape(1, 10, 6)], LIMITS)
    assert [(c.criterion, c.passed) for c in shape] == [("output0.shape", False)]
    assert "[1, 10, 6]" in shape[0].detail and "[1, 6, 10]" in shape[0].detail
    count = raw_checks("x", ref, ref + ref, LIMITS)
    assert [(c.criterion, c.value, c.threshold, c.passed) for c in count] == [("output_count", 2, 1, False)]
    zeros = [np.zeros((1, 2, 2), np.float32)]
    assert by_criterion(raw_checks("x", zeros, [zeros[0] + 1e-4], LIMITS))[
        "output0.rel_max_abs_diff"
    ].value == pytest.approx(1e-4)
    second = by_criterion(raw_checks("x", ref + ref, [ref[0], ref[0] + 1], LIMITS))
    assert second["output0.cosine"].passed and not second["output1.rel_max_abs_diff"].passed


def test_ungated_limits_record_without_deciding():
    limits = {**LIMITS, "raw_rel_max_diff": None, "box_iou": None}
    ref = [np.ones((1, 2, 2), np.float32)]
    c = by_criterion(raw_checks("x", ref, [ref[0] * 2], limits))
    assert c["output0.rel_max_abs_diff"].passed is None and c["output0.rel_max_abs_diff"].threshold is None
    two = result(REF.boxes + [2, 0, 2, 0], REF.scores, REF.class_ids)
    c = by_criterion(detection_checks("img", REF, two, limits, CONF)[0])
    assert c["box_iou_min"].passed is None and c["box_iou_min"].value < 0.95


def _candidates(n_anchor: int = 12, nc: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pred = np.zeros((1, 4 + nc, n_anchor), np.float32)
    pred[0, 0:2] = rng.uniform(20, 80, (2, n_anchor))
    pred[0, 2:4] = rng.uniform(10, 20, (2, n_anchor))
    pred[0, 4:] = rng.uniform(0, 0.2, (nc, n_anchor))
    return pred


def test_top_k_compares_the_highest_candidates():
    ref = _candidates()
    checks, summary = top_k_checks("noise", ref, ref.copy(), 3, LIMITS)
    assert not failed(checks) and summary == {"mode": "top_k", "boxes_compared": 10}
    c = by_criterion(checks)
    assert c["box_iou_min"].value == pytest.approx(1.0) and c["confidence_diff_max"].value == 0.0
    top = int(np.argmax(ref[0, 4:].max(axis=0)))
    shifted = ref.copy()
    shifted[0, 0, top] += 5  # the best candidate's centre moves 5 px: IoU well under 0.95
    assert failed(top_k_checks("noise", ref, shifted, 3, LIMITS)[0]) == {"box_iou_min"}
    scored = ref.copy()
    scored[0, 4:, top] += 0.1
    assert failed(top_k_checks("noise", ref, scored, 3, LIMITS)[0]) == {"confidence_diff_max"}
    low = int(np.argmin(ref[0, 4:].max(axis=0)))  # outside the top 10 of 12: not compared
    outside = ref.copy()
    outside[0, 0, low] += 50
    assert not failed(top_k_checks("noise", ref, outside, 3, LIMITS)[0])
    swapped = ref.copy()
    swapped[0, 4:, top] = swapped[0, 4:, top][::-1] if ref[0, 4:, top].argmax() != 1 else swapped[0, [5, 4, 6], top]
    assert "class_mismatches" in failed(top_k_checks("noise", ref, swapped, 3, {**LIMITS, "confidence_diff": None})[0])
    k3 = top_k_checks("noise", ref, ref, 3, {**LIMITS, "top_k": 3})[1]
    assert k3["boxes_compared"] == 3
    bad = top_k_checks("noise", ref, ref[:, :, :5], 3, LIMITS)
    assert [(c.criterion, c.passed) for c in bad[0]] == [("top_k.shape", False)] and bad[1]["boxes_compared"] == 0


def test_top_k_reads_scores_from_the_class_channels_only():
    ref = _candidates(nc=2)
    # a candidate whose extra (mask) channel is huge must not be picked by score
    with_extra = np.concatenate([ref, np.zeros((1, 1, ref.shape[2]), np.float32)], axis=1)
    with_extra[0, -1, 0] = 100.0
    exp = with_extra.copy()
    exp[0, 0, 0] += 30  # candidate 0 damaged; it only shows if candidate 0 is in the top k
    k = {**LIMITS, "top_k": 1}
    best = int(np.argmax(ref[0, 4:6].max(axis=0)))
    assert (failed(top_k_checks("n", with_extra, exp, 2, k)[0]) == {"box_iou_min"}) == (best == 0)


def test_report_decides_on_gathered_checks():
    report = ParityReport("onnx", "fp32")
    assert report.status == "failed" and report.summary() == "failed: no check compared anything"
    report.checks = [Check("a", "box_iou_min", 0.99, 0.95, True), Check("a", "output0.cosine", 0.9, None, None)]
    report.inputs = {"a": {"boxes_compared": 3}, "b": {"boxes_compared": 2}}
    assert report.status == "passed" and report.passed
    assert report.summary() == "passed 2 checks on 2 inputs (5 boxes compared)"
    report.checks.append(Check("b", "confidence_diff_max", 0.08, 0.05, False, "why"))
    report.checks.append(Check("c", "run", 0, None, False))
    assert report.status == "failed" and not report.passed
    assert report.summary() == "2 of 4 checks failed, first: b confidence_diff_max=0.08 (limit 0.05): why"
    assert [c.input for c in report.failures] == ["b", "c"]
    skipped = ParityReport("coreml", "fp32", skipped="needs macOS")
    assert skipped.status == "skipped" and not skipped.passed
    assert skipped.summary() == "numeric parity skipped: needs macOS (0 other checks passed)"
    skipped.checks = [Check("spec", "x", 1, None, False)]
    assert skipped.status == "failed"


def test_report_worst_values():
    report = ParityReport(
        "onnx",
        "fp32",
        checks=[
            Check("a", "box_iou_min", 0.97, 0.95, True),
            Check("b", "box_iou_min", 0.96, 0.95, True),
            Check("a", "confidence_diff_max", 0.01, 0.05, True),
            Check("b", "confidence_diff_max", 0.03, 0.05, True),
            Check("a", "output0.max_abs_diff", 0.2, None, None),
            Check("a", "output1.max_abs_diff", 0.5, None, None),
            Check("a", "output0.cosine", 0.999, 0.9, True),
            Check("b", "output0.cosine", float("nan"), 0.9, True),
            Check("a", "mask_iou_min", 0.93, 0.9, True),
            Check("a", "keypoint_px_max", 1.5, 2, True),
            Check("b", "keypoint_px_max", 0.5, 2, True),
        ],
    )
    assert report.worst() == {
        "box_iou": 0.96,
        "confidence_diff": 0.03,
        "mask_iou": 0.93,
        "keypoint_px": 1.5,
        "raw_max_abs_diff": 0.5,
        "raw_cosine": 0.999,
    }
    assert ParityReport("onnx", "fp32").worst() == dict.fromkeys(report.worst())
    document = report.to_json()
    assert document["status"] == "passed" and document["passed"] is True and len(document["checks"]) == 11
    assert document["checks"][0] == {
        "input": "a",
        "criterion": "box_iou_min",
        "value": 0.97,
        "threshold": 0.95,
        "passed": True,
        "detail": "",
    }


def test_thresholds_follow_the_guide_and_reject_bad_overrides():
    from exportkit.errors import ConfigError

    fp32 = thresholds_for("fp32", None)
    assert fp32["box_iou"] == 0.95 and fp32["confidence_diff"] == 0.05  # the guide's "IoU > 0.95, diff < 0.05"
    assert thresholds_for("unknown", {}) == fp32
    assert thresholds_for("int8", {"box_iou": 0.5})["box_iou"] == 0.5
    assert thresholds_for("fp32", {"raw_cosine": None})["raw_cosine"] is None
    assert thresholds_for("fp32", {"top_k": 0})["top_k"] == 0
    for bad in ({"box_iuo": 0.9}, {"box_iou": -0.1}, {"box_iou": True}, {"box_iou": "0.9"}):
        with pytest.raises(ConfigError):
            thresholds_for("fp32", bad)
    with pytest.raises(
        ConfigError, match=r"unknown validation threshold 'box_iuo'; accepted: box_iou, confidence_diff"
    ):
        thresholds_for("fp32", {"box_iuo": 0.9})
    with pytest.raises(ConfigError, match=r"'box_iou' must be a non-negative number or null, got -1"):
        thresholds_for("fp32", {"box_iou": -1})
    assert DEFAULT_THRESHOLDS["fp32"]["box_iou"] == 0.95  # the override did not leak into the defaults


def test_report_json_and_summary_formats():
    report = ParityReport(
        "onnx",
        "fp16",
        thresholds={"box_iou": 0.95},
        skipped=None,
        checks=[Check("a", "box_iou_min", 0.912345, 0.95, False, "")],
        inputs={"a": {"mode": "detections", "boxes_compared": 2}, "b": {"mode": "raw"}},
    )
    assert report.summary() == "1 of 1 checks failed, first: a box_iou_min=0.9123 (limit 0.95)"
    document = report.to_json()
    assert set(document) == {
        "format",
        "precision",
        "status",
        "passed",
        "skipped",
        "summary",
        "thresholds",
        "worst",
        "inputs",
        "checks",
    }
    assert (document["format"], document["precision"], document["status"], document["passed"], document["skipped"]) == (
        "onnx",
        "fp16",
        "failed",
        False,
        None,
    )
    assert document["summary"] == report.summary() and document["thresholds"] == {"box_iou": 0.95}
    assert document["worst"]["box_iou"] == 0.912345 and document["inputs"] == report.inputs
    report.checks = [Check("a", "box_iou_min", 0.99, 0.95, True)]
    assert (
        report.summary() == "passed 1 checks on 2 inputs (2 boxes compared)"
    )  # an input without boxes_compared counts 0
    report.checks = [Check("c", "run", 0, None, False)]
    assert report.summary() == "1 of 1 checks failed, first: c run=0 (limit None)"


@pytest.mark.parametrize("visibility, compared", [(0.5, False), (0.51, True)])
def test_keypoints_are_compared_when_visibility_is_above_one_half(visibility, compared):
    a = np.array([[10.0, 10.0, visibility], [0.0, 0.0, 1.0]], np.float32)
    b = np.array([[13.0, 14.0, visibility], [0.0, 0.0, 1.0]], np.float32)
    kp = np.stack([a])
    ref = result(REF.boxes[:1], REF.scores[:1], REF.class_ids[:1], keypoints=kp)
    exp = result(REF.boxes[:1], REF.scores[:1], REF.class_ids[:1], keypoints=np.stack([b]))
    value = by_criterion(detection_checks("img", ref, exp, LIMITS, CONF)[0])["keypoint_px_max"].value
    assert value == pytest.approx(5.0 if compared else 0.0)


def rows(checks):
    return [(c.input, c.criterion, pytest.approx(c.value), c.threshold, c.passed, c.detail) for c in checks]


def test_every_check_names_its_input_and_says_what_it_compared():
    ref = _candidates()
    checks, summary = top_k_checks("noise", ref, ref.copy(), 3, LIMITS)
    assert rows(checks) == [
        ("noise", "boxes_compared", 10, 1, True, "top-k candidates (no reference detection)"),
        ("noise", "box_iou_min", 1.0, 0.95, True, ""),
        ("noise", "confidence_diff_max", 0.0, 0.05, True, ""),
        ("noise", "class_mismatches", 0, 0, True, ""),
    ]
    bad, summary = top_k_checks("noise", ref, ref[:, :, :5], 3, LIMITS)
    assert rows(bad) == [("noise", "top_k.shape", 0, None, False, "[1, 7, 5] != [1, 7, 12]")]
    assert summary == {"mode": "top_k", "boxes_compared": 0}
    raw = [np.ones((1, 2, 3), np.float32)]
    assert rows(raw_checks("x", raw, raw + raw, LIMITS)) == [
        ("x", "output_count", 2, 1, False, "exported model has a different number of outputs")
    ]
    assert rows(raw_checks("x", raw, [np.ones((1, 3, 2), np.float32)], LIMITS)) == [
        ("x", "output0.shape", 0, None, False, "exported [1, 3, 2] != reference [1, 2, 3]")
    ]
    assert [c.input for c in raw_checks("x", raw, raw, LIMITS)] == ["x"] * 4
    checks = detection_checks("img", REF, REF, LIMITS, CONF)[0]
    assert {c.input for c in checks} == {"img"}
    assert rows(checks[:4]) == [
        ("img", "boxes_compared", 3, 1, True, ""),
        ("img", "class_mismatches", 0, 0, True, ""),
        ("img", "unmatched_reference", 0, 0, True, "0 more within 0.05 of the threshold"),
        ("img", "unmatched_exported", 0, 0, True, "0 more within 0.05 of the threshold"),
    ]
    kp = np.ones((3, 1, 3), np.float32)
    with_kp = result(REF.boxes, REF.scores, REF.class_ids, keypoints=kp)
    last = detection_checks("img", with_kp, with_kp, LIMITS, CONF)[0][-1]
    assert (last.criterion, last.threshold, last.detail) == ("keypoint_px_max", 2.0, "in model-input pixels")


def test_top_k_iou_is_the_geometry_of_the_two_xywh_boxes():
    # one candidate, 20x10 box at (50, 50) against the same box moved by (4, 2): in xyxy [40,45,60,55] and
    # [44,47,64,57], overlapping 16 x 8 = 128 of 200 + 200 - 128 = 272 px
    ref = np.zeros((1, 5, 1), np.float32)
    ref[0, :, 0] = [50, 50, 20, 10, 0.9]
    moved = ref.copy()
    moved[0, :2, 0] += [4, 2]
    c = by_criterion(top_k_checks("noise", ref, moved, 1, {**LIMITS, "top_k": 1})[0])
    assert c["box_iou_min"].value == pytest.approx(128 / 272)
    assert c["boxes_compared"].value == 1 and c["boxes_compared"].passed is True  # one candidate is enough


def test_top_k_picks_candidates_by_every_class_channel():
    # k = 1: the best candidate scores only on class 0 (0.9); another only on class 1 (0.5). Damage to the best
    # one's box must be seen, so class 0 counts in the ranking.
    ref = np.zeros((1, 6, 2), np.float32)
    ref[0, :4, 0] = ref[0, :4, 1] = [50, 50, 20, 20]
    ref[0, 4, 0], ref[0, 5, 1] = 0.9, 0.5
    damaged = ref.copy()
    damaged[0, 0, 0] += 10
    assert failed(top_k_checks("noise", ref, damaged, 2, {**LIMITS, "top_k": 1})[0]) == {"box_iou_min"}


def test_top_k_classes_ignore_the_channels_after_the_classes():
    # a seg-like prediction: 4 box + 2 class + 3 mask-coefficient channels; a large coefficient is not a class
    ref = _candidates(nc=2)
    ref = np.concatenate([ref, np.full((1, 3, ref.shape[2]), 5.0, np.float32)], axis=1)
    c = by_criterion(top_k_checks("noise", ref, ref.copy(), 2, LIMITS)[0])
    assert c["class_mismatches"].value == 0 and c["class_mismatches"].passed is True


def test_raw_checks_go_on_past_a_mismatched_output_and_keep_cosine_at_most_one():
    small = np.array([[1e-3, 2e-3]], np.float32)  # tiny values: a cosine's guard term must not push it past 1
    checks = by_criterion(raw_checks("x", [np.zeros((1, 3)), small], [np.zeros((1, 4)), small.copy()], LIMITS))
    assert checks["output0.shape"].passed is False
    assert checks["output1.cosine"].passed is True and checks["output1.cosine"].value <= 1.0
    assert checks["output1.cosine"].value == pytest.approx(1.0, abs=1e-6)


def box_result(boxes, scores, classes):
    return Result(
        "detect",
        (2_000_000, 2_000_000),
        np.array(boxes, np.float64).reshape(-1, 4),
        np.array(scores, np.float32),
        np.array(classes, np.int64),
        NAMES,
    )


def test_match_gives_a_contested_export_box_to_the_most_confident_reference():
    ref = result([[10, 10, 50, 50], [12, 10, 52, 50]], [0.5, 0.9], [0, 0])  # two overlapping references, one class
    exp = result([[11, 10, 51, 50]], [0.9], [0])
    matched, lost, extra, wrong = match_detections(ref, exp)
    assert matched == [(1, 0)] and lost == [0] and extra == [] and wrong == []


@pytest.mark.parametrize("exp_class", [0, 1])  # the same class, or a class mismatch
def test_match_takes_the_best_overlapping_candidate(exp_class):
    ref = result([[10, 10, 50, 50]], [0.9], [0])
    exp = result([[10, 10, 50, 50], [14, 10, 54, 50]], [0.8, 0.8], [exp_class, exp_class])  # IoU 1 and 36/44
    matched, lost, extra, wrong = match_detections(ref, exp)
    assert (matched if exp_class == 0 else wrong) == [(0, 0)] and extra == [1]


def test_match_at_exactly_the_match_iou():
    # 2^20 px boxes: one half the other, IoU exactly 1/2 in float64 (the epsilon is below the union's precision)
    side = 2.0**20
    ref = box_result([[0, 0, side, side]], [0.9], [0])
    for cls in (0, 1):
        exp = box_result([[0, 0, side, side / 2]], [0.9], [cls])
        matched, lost, extra, wrong = match_detections(ref, exp)
        assert MATCH_IOU == 0.5 and (matched if cls == 0 else wrong) == [(0, 0)] and not lost and not extra


def test_a_detection_exactly_at_the_border_counts_and_the_rest_are_counted_in_the_detail():
    limits = {**LIMITS, "confidence_diff": 0.25}  # conf 0.25 + 0.25: the border is exactly 0.5
    ref = result([[10, 10, 50, 50], [60, 60, 90, 90], [5, 60, 40, 95]], [0.9, 0.5, 0.3], [0, 1, 2])
    exp = result([[10, 10, 50, 50]], [0.9], [0])
    c = by_criterion(detection_checks("img", ref, exp, limits, CONF)[0])
    assert c["unmatched_reference"].value == 1 and c["unmatched_reference"].detail.startswith("1 more within 0.25")
    c = by_criterion(detection_checks("img", exp, ref, limits, CONF)[0])
    assert c["unmatched_exported"].value == 1 and c["unmatched_exported"].detail.startswith("1 more within 0.25")


def test_class_mismatch_detail_lists_each_swap():
    ref = result([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, 0.8], [0, 1])
    exp = result([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, 0.8], [1, 2])
    c = by_criterion(detection_checks("img", ref, exp, LIMITS, CONF)[0])
    assert c["class_mismatches"].detail == "circle became square; square became triangle"


def test_mask_and_keypoint_gates_need_both_sides_and_carry_the_input_name():
    masks = np.ones((3, 100, 100), bool)
    kpts = np.ones((3, 17, 3), np.float32)
    both = result(REF.boxes, REF.scores, REF.class_ids, masks=masks, keypoints=kpts)
    c = by_criterion(detection_checks("img", both, both, LIMITS, CONF)[0])
    assert c["mask_iou_min"].input == "img" and c["keypoint_px_max"].input == "img"
    one_sided = detection_checks("img", both, REF, LIMITS, CONF)[0]  # the export has no masks or keypoints
    assert not {"mask_iou_min", "keypoint_px_max"} & {ch.criterion for ch in one_sided}


def test_gate_without_a_limit_keeps_its_name_and_detail():
    check = _gate("img", "mask_iou_min", 0.5, None, True, "why")
    assert (check.input, check.threshold, check.passed, check.detail) == ("img", None, None, "why")


def test_iou_of_a_box_with_itself_is_one_and_never_more():
    box = np.array([[10.0, 10.0, 20.0, 20.0]])
    iou = box_iou(box, box)[0, 0]
    assert iou <= 1.0 and iou == pytest.approx(1.0)


def test_keypoint_distance_is_the_worst_single_point():
    # two visible points each 5 px off (3-4-5): the worst point is 5 px, not the 7.07 px of all errors together
    a = np.array([[10, 10, 1.0], [20, 20, 1.0], [0, 0, 0.0]], np.float32)
    b = a.copy()
    b[:2, :2] += [3, 4]
    b[2, :2] += 100  # invisible: ignored
    assert _keypoint_px(a, b) == pytest.approx(5.0)


def test_a_limit_is_inclusive_so_exact_thresholds_demand_identical_outputs():
    exact = {**LIMITS, "box_iou": 1.0, "confidence_diff": 0.0}
    checks, _ = detection_checks("img", REF, REF, exact, CONF)
    assert not failed(checks) and by_criterion(checks)["box_iou_min"].threshold == 1.0
    moved = result([[10, 10, 50, 51], [60, 60, 90, 90], [5, 60, 40, 95]], [0.9, 0.8, 0.7001], [0, 1, 2])
    assert failed(detection_checks("img", REF, moved, exact, CONF)[0]) == {"box_iou_min", "confidence_diff_max"}
    ref = [np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 4, 16)]
    raw = {c.criterion: c for c in raw_checks("t", ref, [ref[0].copy()], {**LIMITS, "raw_rel_max_diff": 0.0})}
    assert raw["output0.rel_max_abs_diff"].passed is True and raw["output0.rel_max_abs_diff"].value == 0.0

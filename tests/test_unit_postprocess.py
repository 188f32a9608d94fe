"""The Python runtime's NMS, confidence filter and coordinate mapping against first-principles references.

The reference NMS below is the textbook greedy loop (highest score first, drop every box whose IoU with a
kept one exceeds the threshold), in float64 Python; both of the runtime's code paths (the small IoU matrix
and the row-at-a-time loop past SMALL_NMS boxes) must agree with it.
"""

from __future__ import annotations

import numpy as np
import pytest

from runtimes.python import postprocess as pp
from runtimes.python.errors import RuntimeInputError
from runtimes.python.preprocess import Geometry


def reference_nms(boxes, scores, threshold, max_det=None):
    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) <= threshold for k in keep):
            keep.append(i)
            if max_det is not None and len(keep) == max_det:
                break
    return keep


def random_boxes(n, seed, size=200.0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(5, 40, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.permutation(n).astype(np.float32) / n  # distinct scores: no tie order to argue about
    return boxes, scores


@pytest.mark.parametrize("n", [1, 7, 100, pp.SMALL_NMS, pp.SMALL_NMS + 1, 600])
@pytest.mark.parametrize("threshold", [0.1, 0.45, 0.7])
def test_nms_matches_the_greedy_definition(n, threshold):
    boxes, scores = random_boxes(n, seed=n)
    kept = pp.nms(boxes, scores, threshold)
    assert kept.tolist() == reference_nms(boxes.astype(np.float64), scores, threshold)
    assert kept.dtype == np.int64


@pytest.mark.parametrize("n", [50, 600])
def test_nms_stops_at_max_det(n):
    boxes, scores = random_boxes(n, seed=1)
    full = reference_nms(boxes.astype(np.float64), scores, 0.45)
    assert pp.nms(boxes, scores, 0.45, max_det=3).tolist() == full[:3]
    assert pp.nms(boxes, scores, 0.45, max_det=1).tolist() == full[:1]


def test_nms_threshold_is_strict():
    # a 10x10 box and its lower half: IoU 50 / 100 = 0.5 exactly (float32-exact); suppressed only when > threshold
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert pp.nms(boxes, scores, 0.5).tolist() == [0, 1]  # not > 0.5: kept
    assert pp.nms(boxes, scores, 0.49).tolist() == [0]
    many = np.concatenate([boxes, np.tile([[1000, 1000, 1001, 1001]], (pp.SMALL_NMS, 1))]).astype(np.float32)
    many[2:, 0::2] += np.arange(pp.SMALL_NMS, dtype=np.float32)[:, None] * 3  # far apart, never overlapping
    many_scores = np.concatenate([scores, np.full(pp.SMALL_NMS, 0.1, np.float32)])
    kept = pp.nms(many, many_scores, 0.5).tolist()
    assert kept[:2] == [0, 1] and len(kept) == pp.SMALL_NMS + 2
    assert pp.nms(many, many_scores, 0.49).tolist()[:2] == [0, 2]


def test_class_aware_nms_keeps_overlapping_boxes_of_other_classes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    classes = np.array([0, 0, 1])
    assert pp.batched_nms(boxes, scores, classes, 0.45).tolist() == [0, 2]
    assert pp.batched_nms(boxes, scores, classes, 0.45, agnostic=True).tolist() == [0]
    assert pp.batched_nms(boxes, scores, classes, 0.45, max_det=1).tolist() == [0]
    # boxes larger than the default offset still never meet across classes
    huge = np.array([[0, 0, 9000, 9000], [0, 0, 9000, 9000]], np.float32)
    assert pp.batched_nms(huge, scores[:2], np.array([0, 1]), 0.45).tolist() == [0, 1]
    assert (
        pp.batched_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.45).tolist()
        == []
    )


def test_xywh_to_xyxy():
    np.testing.assert_array_equal(pp.xywh_to_xyxy(np.array([[10, 20, 4, 6]], np.float32)), [[8, 17, 12, 23]])


def test_scale_boxes_and_keypoints_undo_the_letterbox():
    # a 100x200 (h, w) image letterboxed into 64x64: gain 0.32, pad top (64 - 32) / 2 = 16
    geometry = Geometry((100, 200), (0.32, 0.32), (0, 16))
    boxes = np.array([[3.2, 16 + 3.2, 32.0, 16 + 16.0], [-5, 0, 70, 70]], np.float32)
    scaled = pp.scale_boxes(boxes.copy(), geometry)
    np.testing.assert_allclose(scaled[0], [10, 10, 100, 50], rtol=1e-5)
    np.testing.assert_allclose(scaled[1], [0, 0, 200, 100])  # clipped to the image
    stretched = Geometry((100, 200), (0.32, 0.64), (4, 0))
    np.testing.assert_allclose(
        pp.scale_boxes(np.array([[4 + 3.2, 6.4, 4 + 6.4, 12.8]], np.float32), stretched)[0], [10, 10, 20, 20], rtol=1e-5
    )
    points = np.array([[[3.2, 16 + 3.2, 0.9], [-1, 200, 0.1]]], np.float32)
    out = pp.scale_keypoints(points.copy(), geometry)
    np.testing.assert_allclose(out[0, 0], [10, 10, 0.9], rtol=1e-5)
    np.testing.assert_allclose(out[0, 1], [0, 100, 0.1])
    np.testing.assert_allclose(
        pp.scale_keypoints(np.array([[[4 + 3.2, 6.4]]], np.float32), stretched)[0, 0], [10, 10], rtol=1e-5
    )


class _Layout:
    def __init__(self, nc=3, activated=True):
        self.class_scores, self.scores_activated, self.box, self.box_format, self.box_normalized = (
            (4, 4 + nc),
            activated,
            (0, 4),
            "cxcywh",
            False,
        )
        self.class_index = None


def _limits(conf=0.25, classes=None, max_det=300):
    return pp.Thresholds(conf, 0.45, max_det, False, classes)


def test_candidates_filter_on_the_best_class_score_strictly():
    pred = np.zeros((7, 5), np.float32)
    pred[4:, 0] = [0.1, 0.9, 0.2]
    pred[4:, 1] = [0.25, 0.0, 0.0]  # exactly the threshold: dropped (Ultralytics' >)
    pred[4:, 2] = [0.0, 0.0, 0.3]
    pred[4:, 4] = [0.26, 0.0, 0.0]
    found = pp._candidates(pred, _Layout(), _limits())
    assert found.index.tolist() == [0, 2, 4] and found.class_ids.tolist() == [1, 2, 0]
    np.testing.assert_allclose(found.scores, [0.9, 0.3, 0.26])
    only = pp._candidates(pred, _Layout(), _limits(classes=(2, 0)))
    assert only.index.tolist() == [2, 4]
    none = pp._candidates(np.zeros((7, 3), np.float32), _Layout(), _limits())
    assert none.index.tolist() == [] and none.class_ids.dtype == np.int64


def test_candidates_apply_the_sigmoid_to_logits():
    pred = np.zeros((5, 3), np.float32)
    pred[4] = [0.0, -1.2, -0.9]  # sigmoid: 0.5, 0.2315, 0.2891
    found = pp._candidates(pred, _Layout(nc=1, activated=False), _limits())
    assert found.index.tolist() == [0, 2]
    np.testing.assert_allclose(found.scores, [0.5, 1 / (1 + np.exp(0.9))], rtol=1e-6)


def test_candidates_keep_the_highest_when_too_many(monkeypatch):
    monkeypatch.setattr(pp, "MAX_CANDIDATES", 2)
    pred = np.zeros((5, 4), np.float32)
    pred[4] = [0.5, 0.9, 0.7, 0.3]
    assert pp._candidates(pred, _Layout(nc=1), _limits()).index.tolist() == [1, 2]


def test_preselected_rows_of_an_in_model_nms_output():
    layout = _Layout()
    layout.class_scores, layout.class_index = (4, 5), 5
    pred = np.array([[0] * 4, [0] * 4, [1] * 4, [1] * 4, [0.9, 0.2, 0.8, 0.7], [2, 1, 0, 2]], np.float32)
    found = pp._preselected(pred, layout, _limits(max_det=2))
    assert found.index.tolist() == [0, 2] and found.class_ids.tolist() == [2, 0] and found.class_ids.dtype == np.int64
    assert pp._preselected(pred, layout, _limits(classes=(2,))).index.tolist() == [0, 3]


def test_input_boxes_in_input_pixels():
    layout = _Layout()
    pred = np.zeros((7, 2), np.float32)
    pred[:4, 1] = [0.5, 0.25, 0.5, 0.5]
    layout.box_normalized = True
    np.testing.assert_allclose(pp._input_boxes(pred, np.array([1]), layout, (32, 64)), [[16, 0, 48, 16]])
    layout.box_normalized, layout.box_format = False, "xyxy"
    pred[:4, 1] = [1, 2, 3, 4]
    np.testing.assert_allclose(pp._input_boxes(pred, np.array([1]), layout, (32, 64)), [[1, 2, 3, 4]])


class _Post:
    confidence_threshold, iou_threshold, max_detections, agnostic_nms = 0.25, 0.45, 300, False


class _Spec:
    postprocessing = _Post()


def test_thresholds_resolve_arguments_over_metadata():
    default = pp.Thresholds.resolve(_Spec())
    assert default == pp.Thresholds(0.25, 0.45, 300, False, None)
    given = pp.Thresholds.resolve(_Spec(), conf=0.5, iou=0.7, max_det=5, agnostic=1, classes=[2.0, 1])
    assert given == pp.Thresholds(0.5, 0.7, 5, True, (2, 1))
    assert pp.Thresholds.resolve(_Spec(), conf=0, iou=1).conf == 0.0
    assert pp.Thresholds.resolve(_Spec(), max_det=1).max_det == 1
    for bad, message in (
        ({"conf": 1.5}, "confidence threshold is 1.5"),
        ({"iou": -0.1}, "IoU threshold is -0.1"),
        ({"max_det": 0}, "max_detections is 0, expected at least 1"),
    ):
        with pytest.raises(RuntimeInputError, match=message):
            pp.Thresholds.resolve(_Spec(), **bad)


def pose_metadata(dims: int, units: str) -> dict:
    channels = 4 + 1 + 2 * dims
    pred = {
        "output": "output0",
        "shape_order": "batch, channels, anchors",
        "box": [0, 4],
        "box_format": "cxcywh",
        "box_units": "input_pixels",
        "class_scores": [4, 5],
        "scores_activated": True,
        "keypoints": [5, channels],
        "keypoint_format": "x, y, visibility" if dims == 3 else "x, y",
        "keypoint_units": units,
    }
    return {
        "task": "pose",
        "export_format": "onnx",
        "precision": "fp32",
        "class_names": ["p"],
        "num_classes": 1,
        "input_shape": [64, 64, 3],
        "input_dtype": "float32",
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
        "dynamic": {"batch": False, "spatial": False},
        "keypoint_names": ["a", "b"],
        "skeleton": [[1, 2]],
        "inputs": [{"name": "images", "shape": [1, 3, 64, 64], "dtype": "float32"}],
        "outputs": [{"name": "output0", "shape": [1, channels, 4], "dtype": "float32"}],
        "output_layout": {"predictions": pred},
    }


@pytest.mark.parametrize("dims, units", [(3, "input_pixels"), (2, "input_pixels"), (3, "normalized")])
def test_pose_keypoints_decode_to_image_pixels(dims, units):
    pred = np.zeros((1, 5 + 2 * dims, 4), np.float32)
    pred[0, :5, 0] = [32, 32, 20, 20, 0.9]
    points = [[16.0, 48.0, 0.8], [40.0, 8.0, 0.3]]
    scale = (64.0, 64.0) if units == "normalized" else (1.0, 1.0)
    for k, (x, y, v) in enumerate(points):
        base = 5 + k * dims
        pred[0, base : base + 2, 0] = [x / scale[0], y / scale[1]]
        if dims == 3:
            pred[0, base + 2, 0] = v
    geometry = Geometry((32, 64), (1.0, 1.0), (0, 16))  # a 32x64 image padded 16 rows at the top
    (found,) = pp.decode(pred, pose_metadata(dims, units), [geometry])
    assert len(found) == 1 and found.keypoints.shape == (1, 2, 3)
    np.testing.assert_allclose(found.keypoints[0, :, :2], [[16, 32], [40, 0]], atol=1e-4)  # y - 16, clipped at 0
    np.testing.assert_allclose(found.keypoints[0, :, 2], [0.8, 0.3] if dims == 3 else [1.0, 1.0], atol=1e-6)
    assert [k.name for k in found.detections[0].keypoints] == ["a", "b"] and found.skeleton == ((1, 2),)


def _seg_layout(anchors_last=True, channels_first=False):
    from runtimes.python.spec import OutputLayout

    # 4 box + 2 class + 32 mask-coefficient channels; prototypes in "output1"
    return OutputLayout(
        "output0",
        anchors_last,
        (0, 4),
        "xywh",
        False,
        (4, 6),
        False,
        mask_coefficients=(6, 38),
        prototypes="output1",
        prototypes_channels_first=channels_first,
    )


def test_split_outputs_moves_channels_last_prototypes_to_batch_coefficients_height_width():
    from types import SimpleNamespace

    spec = SimpleNamespace(layout=_seg_layout(), task="segment", class_names=("a", "b"))
    pred = np.arange(38 * 5, dtype=np.float32).reshape(1, 38, 5)
    protos = np.arange(4 * 6 * 32, dtype=np.float32).reshape(4, 6, 32)  # (mh, mw, coefficients), no batch axis
    got_pred, got_protos = pp.split_outputs({"output0": pred, "output1": protos}, spec)
    assert got_pred is pred or np.array_equal(got_pred, pred)
    assert got_protos.shape == (1, 32, 4, 6)
    for c, y, x in [(0, 0, 0), (31, 3, 5), (7, 2, 1)]:
        assert got_protos[0, c, y, x] == protos[y, x, c]


def test_split_outputs_names_the_output_and_both_channel_counts_on_a_mismatch():
    from types import SimpleNamespace

    from runtimes.python.errors import MetadataMismatch

    spec = SimpleNamespace(layout=_seg_layout(anchors_last=False), task="segment", class_names=("a", "b"))
    pred = np.zeros((1, 5, 7), np.float32)  # 5 anchors of 7 values (anchors first): 7 channels, not 38
    with pytest.raises(
        MetadataMismatch, match=r"'output0' has 7 channels but metadata.json implies 38 \(segment, 2 classes\)"
    ):
        pp.split_outputs({"output0": pred}, spec)


def _grid_boxes(n):
    # n disjoint 10x10 boxes: nothing suppresses anything
    xy = np.array([[20.0 * (i % 20), 20.0 * (i // 20)] for i in range(n)], np.float32)
    return np.concatenate([xy, xy + 10], axis=1)


@pytest.mark.parametrize("n", [40, 300])  # both greedy paths
def test_nms_keeps_tied_scores_in_input_order(n):
    scores = np.random.default_rng(0).integers(0, 3, n).astype(np.float32) / 4  # many ties
    expected = sorted(range(n), key=lambda i: -scores[i])  # Python's sort is stable
    assert pp.nms(_grid_boxes(n), scores, 0.5).tolist() == expected


def test_nms_compares_scores_and_boxes_in_float32():
    # scores that differ only past float32's precision are a tie (input order); a box whose float64 IoU with
    # the first is 0.5 + 1e-9 has float32 IoU 0.5, which does not exceed the threshold 0.5: both kept
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.5 + 1e-9]], np.float64)
    assert pp.nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    apart = np.array([[0, 0, 1, 1], [5, 5, 6, 6]], np.float64)
    assert pp.nms(apart, np.array([0.1, 0.1 + 1e-12]), 0.5).tolist() == [0, 1]


def test_nms_of_empty_boxes_warns_nothing():
    import warnings

    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [1, 1, 3, 3]], np.float32)  # two zero-area boxes: IoU 0/0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(pp.nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist()) == [0, 1, 2]


def test_agnostic_nms_honours_max_det():
    boxes = _grid_boxes(3)
    kept = pp.batched_nms(
        boxes, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 1, 2]), 0.5, max_det=1, agnostic=True
    )
    assert kept.tolist() == [0]


def test_class_offset_separates_classes_of_boxes_larger_than_the_default_offset():
    # two identical 20000 px wide boxes of different classes: shifted apart by more than their extent, they do
    # not touch, so even at IoU threshold 0 (any overlap suppresses) both stay
    boxes = np.array([[-10000, 0, 10000, 10], [-10000, 0, 10000, 10]], np.float32)
    kept = pp.batched_nms(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1]), 0.0)
    assert sorted(kept.tolist()) == [0, 1]
    same = pp.batched_nms(boxes, np.array([0.9, 0.8], np.float32), np.array([1, 1]), 0.0)
    assert same.tolist() == [0]


def test_candidates_at_the_cap_keep_tied_scores_in_anchor_order(monkeypatch):
    monkeypatch.setattr(pp, "MAX_CANDIDATES", 299)
    levels = np.array([0.3, 0.5, 0.7], np.float32)
    pred = np.zeros((5, 300), np.float32)
    pred[4] = levels[np.random.default_rng(0).integers(0, 3, 300)]  # 300 candidates in three tied groups
    expected = sorted(range(300), key=lambda i: -pred[4, i])[:299]  # highest first, ties by anchor (stable)
    assert pp._candidates(pred, _Layout(nc=1), _limits()).index.tolist() == expected
    none = pp._candidates(np.zeros((5, 3), np.float32), _Layout(nc=1), _limits())
    assert len(none.index) == len(none.class_ids) == len(none.scores) == 0


def test_named_outputs_take_a_sequence_in_metadata_order_and_name_what_is_missing():
    from types import SimpleNamespace

    from runtimes.python.errors import MetadataMismatch

    spec = SimpleNamespace(output_names=("output0", "output1"), layout=_seg_layout())
    pred, protos = np.zeros((1, 38, 5)), np.zeros((1, 32, 4, 4))
    found = pp.named_outputs([pred, protos], spec)
    assert found["output0"] is pred and found["output1"] is protos
    with pytest.raises(MetadataMismatch) as err:  # a model with only the predictions: a clear mismatch, no crash
        pp.named_outputs([pred], spec)
    assert str(err.value) == "outputs ['output1'] named in metadata.json are not among the model's outputs ['output0']"


def test_preselected_drops_a_score_exactly_at_the_threshold():
    layout = _Layout()
    layout.class_scores, layout.class_index = (4, 5), 5
    pred = np.array([[0] * 3, [0] * 3, [1] * 3, [1] * 3, [0.25, 0.26, 0.5], [0, 1, 2]], np.float32)
    assert pp._preselected(pred, layout, _limits(conf=0.25)).index.tolist() == [1, 2]  # Ultralytics keeps > conf


def test_detections_with_an_empty_mask_are_dropped(monkeypatch):
    from types import SimpleNamespace

    masks = np.zeros((3, 4, 4), bool)
    masks[0, 1, 1] = masks[2, 0, 0] = True  # the second detection's mask is empty
    monkeypatch.setattr(pp, "native_masks", lambda *args: masks)
    result = SimpleNamespace(
        boxes=np.arange(12, dtype=np.float32).reshape(3, 4),
        scores=np.array([0.9, 0.8, 0.7]),
        class_ids=np.array([0, 1, 2]),
        masks=None,
        orig_shape=(4, 4),
    )
    spec = SimpleNamespace(layout=SimpleNamespace(mask_coefficients=(6, 38)), input_size=(4, 4))
    pp._add_masks(result, np.zeros((38, 3)), np.arange(3), spec, None)
    assert result.class_ids.tolist() == [0, 2] and result.scores.tolist() == [0.9, 0.7] and len(result.masks) == 2


def test_thresholds_take_agnostic_nms_from_metadata_when_not_given():
    class Agnostic:
        postprocessing = type(
            "P", (), {"confidence_threshold": 0.25, "iou_threshold": 0.45, "max_detections": 300, "agnostic_nms": True}
        )()

    assert pp.Thresholds.resolve(Agnostic()).agnostic is True
    assert pp.Thresholds.resolve(Agnostic(), agnostic=False).agnostic is False

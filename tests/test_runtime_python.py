"""Python runtime (runtimes/python).

Unit tests run on hand-made outputs and a tiny hand-built ONNX model (no export, no torch in the runtime);
slow tests export the bundled models and compare with Ultralytics' own ``predict`` on the same artifact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ENV, ROOT, TASKS

from runtimes.python.errors import (
    BackendUnavailable,
    InferenceError,
    MetadataMismatch,
    ModelLoadError,
    RuntimeInputError,
)
from runtimes.python.inference import YOLOInference
from runtimes.python.postprocess import decode, nms
from runtimes.python.preprocess import Geometry, letterbox, plan_letterbox
from runtimes.python.results import Result
from runtimes.python.spec import ModelSpec

TINY = 64  # tiny model input size
TINY_NAMES = ["rectangle", "ellipse", "triangle"]
# every anchor of the tiny model predicts this: box (cx, cy, w, h) in input pixels, then three class scores
TINY_BIAS = [32.0, 32.0, 20.0, 10.0, 0.1, 0.9, 0.2]


# ---------------------------------------------------------------- metadata and a tiny ONNX model, by hand


def make_metadata(
    task: str = "detect",
    names=TINY_NAMES,
    size: int = TINY,
    batch: int = -1,
    keypoints: int = 0,
    export_format: str = "onnx",
    anchors: int = -1,
) -> dict:
    """A metadata.json shaped like exportkit's (the keys the runtime reads)."""
    nc = len(names)
    channels = 4 + nc
    predictions = {
        "output": "output0",
        "shape_order": "batch, channels, anchors",
        "box": [0, 4],
        "box_format": "cxcywh",
        "box_units": "input_pixels",
        "class_scores": [4, channels],
        "scores_activated": True,
    }
    extra: dict = {}
    layout: dict = {"predictions": predictions}
    if task == "segment":
        predictions["mask_coefficients"] = [channels, channels + 32]
        channels += 32
        layout["prototypes"] = {"output": "output1", "shape_order": "batch, coefficients, height, width"}
        extra["mask_resolution"] = [size // 4, size // 4]
    if task == "pose":
        predictions["keypoints"] = [channels, channels + 3 * keypoints]
        predictions["keypoint_format"] = "x, y, visibility"
        channels += 3 * keypoints
        extra.update(
            num_keypoints=keypoints,
            keypoint_names=[f"k{i}" for i in range(keypoints)],
            skeleton=[[i + 1, (i + 1) % keypoints + 1] for i in range(keypoints)],
        )
    outputs = [{"name": "output0", "shape": [batch, channels, anchors], "dtype": "float32"}]
    if task == "segment":
        outputs.append({"name": "output1", "shape": [batch, 32, size // 4, size // 4], "dtype": "float32"})
    return {
        "schema_version": 1,
        "export_format": export_format,
        "precision": "fp32",
        "task": task,
        "input_shape": [size, size, 3],
        "class_names": list(names),
        "num_classes": nc,
        "preprocessing": {
            "mean": [0.0, 0.0, 0.0],
            "std": [255.0, 255.0, 255.0],
            "color_space": "RGB",
            "resize_mode": "letterbox",
            "normalize": True,
            "layout": "NCHW",
            "pad_value": 114,
            "letterbox_center": True,
            "scale_up": True,
            "interpolation": "linear",
        },
        "postprocessing": {
            "confidence_threshold": 0.25,
            "iou_threshold": 0.45,
            "max_detections": 300,
            "agnostic_nms": False,
        },
        "dynamic": {"batch": batch == -1, "spatial": False},
        "inputs": [{"name": "images", "shape": [batch, 3, size, size], "dtype": "float32"}],
        "outputs": outputs,
        "output_layout": layout,
        **extra,
    }


def write_tiny_onnx(path: Path, bias=TINY_BIAS, size: int = TINY, batch: int | str = "N") -> Path:
    """A Conv(zero weights, ``bias``, stride 8) + Reshape: every anchor outputs ``bias``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = len(bias)
    initializers = [
        numpy_helper.from_array(np.zeros((c, 3, 8, 8), np.float32), "w"),
        numpy_helper.from_array(np.asarray(bias, np.float32), "b"),
        numpy_helper.from_array(np.array([0, c, -1], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "w", "b"], ["conv"], strides=[8, 8]),
        helper.make_node("Reshape", ["conv", "shape"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, c, (size // 8) ** 2])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny(tmp_path) -> Path:
    """An export folder: model.onnx (dynamic batch) + metadata.json."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    write_tiny_onnx(folder / "model.onnx")
    (folder / "metadata.json").write_text(json.dumps(make_metadata()))
    return folder


@pytest.fixture
def image() -> np.ndarray:
    """A 64 x 128 (h x w) BGR image: letterboxed into 64 x 64 with ratio 0.5 and 16 px bands top and bottom."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (64, 128, 3), dtype=np.uint8)


# ---------------------------------------------------------------- letterbox


@pytest.mark.parametrize(
    "shape, target, scale_up, center, new_size, borders",
    [
        ((240, 320), (192, 192), True, True, (192, 144), (24, 24, 0, 0)),
        ((101, 200), (192, 192), True, True, (192, 97), (47, 48, 0, 0)),  # odd padding: 47.5 -> 47 top, 48 bottom
        ((384, 256), (192, 192), True, True, (128, 192), (0, 0, 32, 32)),
        ((100, 50), (192, 192), False, True, (50, 100), (46, 46, 71, 71)),  # no upscaling
        ((100, 50), (192, 192), True, False, (96, 192), (0, 0, 0, 96)),  # top-left aligned
        ((1, 3000), (640, 640), True, True, (640, 1), (319, 320, 0, 0)),  # thin image keeps 1 pixel
    ],
)
def test_letterbox_arithmetic(shape, target, scale_up, center, new_size, borders):
    plan = plan_letterbox(shape, target, scale_up, center)
    assert plan.new_size == new_size and plan.borders == borders
    top, _, left, _ = borders
    assert plan.geometry == Geometry(shape, (new_size[0] / shape[1], new_size[1] / shape[0]), (left, top))


def test_letterbox_tensor_layout_colour_and_padding():
    blue = np.zeros((32, 64, 3), np.uint8)
    blue[..., 0] = 255  # BGR blue
    tensor, ratio, pad = letterbox(blue, make_metadata())
    assert tensor.shape == (1, 3, TINY, TINY) and tensor.dtype == np.float32
    assert ratio == (1.0, 1.0) and pad == (0, 16)
    np.testing.assert_array_equal(tensor[0, :, 32, 32], [0.0, 0.0, 1.0])  # RGB order
    np.testing.assert_allclose(tensor[0, :, 0, 0], [114 / 255] * 3)  # padding band

    metadata = make_metadata()
    metadata["preprocessing"].update(layout="NHWC", color_space="BGR", mean=[1.0, 2.0, 3.0], std=[2.0, 2.0, 2.0])
    tensor, _, _ = letterbox(blue, metadata)
    assert tensor.shape == (1, TINY, TINY, 3)
    np.testing.assert_allclose(tensor[0, 32, 32], [(255 - 1) / 2, (0 - 2) / 2, (0 - 3) / 2])


@pytest.mark.parametrize(
    "layout, colour, mean, std, pad_value",
    [
        ("NCHW", "RGB", [0.0] * 3, [255.0] * 3, 114),
        ("NHWC", "BGR", [1.0, 2.0, 3.0], [2.0, 3.0, 4.0], 0),
        ("NHWC", "RGB", [0.0] * 3, [255.0] * 3, 255),
    ],
)
@pytest.mark.parametrize(
    "shape, scale_up, center",
    [
        ((64, 128), True, True),
        ((128, 64), True, True),
        ((101, 200), True, True),
        ((30, 20), False, True),
        ((30, 20), True, False),
        ((64, 64), True, True),
        ((1, 300), True, True),
    ],
)
def test_fused_letterbox_equals_letterbox_then_normalise(layout, colour, mean, std, pad_value, shape, scale_up, center):
    """letterbox_batch resizes into the tensor and fills the bands itself; it must equal padding the image with
    OpenCV and normalising every pixel (the reference path), bit for bit."""
    import cv2

    from runtimes.python.preprocess import Normalizer
    from runtimes.python.spec import as_spec

    metadata = make_metadata()
    metadata["preprocessing"].update(
        layout=layout,
        color_space=colour,
        mean=mean,
        std=std,
        pad_value=pad_value,
        scale_up=scale_up,
        letterbox_center=center,
    )
    pre = as_spec(metadata).preprocessing
    images = [np.random.default_rng(i).integers(0, 256, (*shape, 3), dtype=np.uint8) for i in range(2)]
    tensor, geometries = Normalizer(pre).letterbox_batch(images)

    plans = [plan_letterbox(image.shape, (pre.height, pre.width), scale_up, center) for image in images]
    padded = [
        cv2.copyMakeBorder(
            cv2.resize(image, plan.new_size, interpolation=cv2.INTER_LINEAR),
            *plan.borders,
            cv2.BORDER_CONSTANT,
            value=(pad_value,) * 3,
        )
        for image, plan in zip(images, plans)
    ]
    order = [2, 1, 0] if colour == "RGB" else [0, 1, 2]
    reference = np.stack([(p[..., order].astype(np.float32) - np.float32(mean)) / np.float32(std) for p in padded])
    np.testing.assert_array_equal(tensor, reference.transpose(0, 3, 1, 2) if layout == "NCHW" else reference)
    assert geometries == [plan.geometry for plan in plans]


def test_letterbox_matches_ultralytics_pixels(samples):
    """The input tensor is what Ultralytics' LetterBox + /255 + BGR->RGB produces, to the byte."""
    from ultralytics.data.augment import LetterBox

    from runtimes.python.images import load_image

    for path in samples:
        bgr = load_image(path)
        expected = LetterBox((192, 192), auto=False, stride=32)(image=bgr)[..., ::-1].transpose(2, 0, 1) / np.float32(
            255
        )
        tensor, _, _ = letterbox(path, make_metadata(size=192))
        np.testing.assert_array_equal(tensor[0], expected.astype(np.float32))


# ---------------------------------------------------------------- NMS and decoding on hand-made outputs


def test_nms_keeps_best_and_drops_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.8, 0.9, 0.5, 0.3], np.float32)
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [1, 2])
    np.testing.assert_array_equal(nms(boxes, scores, 0.95), [1, 0, 2])  # IoU 9/11 < 0.95: both stay
    np.testing.assert_array_equal(nms(boxes, scores, 0.5, max_det=1), [1])
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).size == 0


def test_nms_threshold_is_strict_and_ties_keep_input_order():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float32)  # IoU exactly 0.5
    scores = np.array([0.7, 0.7], np.float32)
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [0, 1])  # not > 0.5: kept
    np.testing.assert_array_equal(nms(boxes, scores, 0.49), [0])


def raw_detect(rows: list[list[float]], metadata: dict) -> np.ndarray:
    """(1, channels, anchors) from one list per anchor."""
    return np.asarray(rows, np.float32).T[None]


def test_decode_maps_boxes_back_and_applies_thresholds():
    metadata = make_metadata()
    pred = raw_detect(
        [
            [32, 32, 20, 10, 0.1, 0.9, 0.2],  # kept: class 1
            [33, 32, 20, 10, 0.1, 0.8, 0.2],  # same class, overlaps: suppressed
            [34, 32, 20, 10, 0.7, 0.1, 0.1],  # overlaps but class 0: kept (class-aware NMS)
            [5, 20, 20, 10, 0.0, 0.0, 0.25],  # exactly at conf 0.25: dropped (strict >)
            [60, 60, 10, 10, 0.0, 0.0, 0.3],  # kept, clipped at the image edge
        ],
        metadata,
    )
    geometry = Geometry((64, 128), (0.5, 0.5), (0, 16))
    result = decode([pred], metadata, [geometry])[0]
    assert result.class_ids.tolist() == [1, 0, 2]
    np.testing.assert_allclose(result.scores, [0.9, 0.7, 0.3])
    np.testing.assert_allclose(result.boxes[0], [44, 22, 84, 42])  # ((22, 27, 42, 37) - pad) / 0.5
    np.testing.assert_allclose(result.boxes[2], [110, 64, 128, 64])  # (110, 78, 130, 98) clipped to 128 x 64
    assert [d.class_name for d in result.detections] == ["ellipse", "rectangle", "triangle"]

    assert len(decode([pred], metadata, [geometry], agnostic=True)[0]) == 2
    assert decode([pred], metadata, [geometry], classes=[0])[0].class_ids.tolist() == [0]
    assert len(decode([pred], metadata, [geometry], conf=0.75)[0]) == 1
    assert len(decode([pred], metadata, [geometry], max_det=2)[0]) == 2
    in_input_pixels = decode({"output0": pred}, metadata)[0]  # no geometry: model-input pixels
    np.testing.assert_allclose(in_input_pixels.boxes[0], [22, 27, 42, 37])


def test_decode_batch_and_empty_image():
    metadata = make_metadata()
    pred = np.concatenate([raw_detect([[32, 32, 20, 10, 0.1, 0.9, 0.2]], metadata), np.zeros((1, 7, 1), np.float32)])
    results = decode([pred], metadata)
    assert [len(r) for r in results] == [1, 0] and results[1].boxes.shape == (0, 4)


def test_decode_pose_keypoints():
    metadata = make_metadata("pose", keypoints=2)
    pred = raw_detect([[32, 32, 20, 10, 0.1, 0.9, 0.2, 30, 30, 0.9, 200, 40, 0.1]], metadata)
    result = decode([pred], metadata, [Geometry((64, 128), (0.5, 0.5), (0, 16))])[0]
    np.testing.assert_allclose(result.keypoints[0], [[60, 28, 0.9], [128, 48, 0.1]], rtol=1e-6)  # x clipped to 128
    det = result.detections[0]
    assert [k.name for k in det.keypoints] == ["k0", "k1"] and det.keypoints[0].visibility == pytest.approx(0.9)
    assert result.skeleton == ((1, 2), (2, 1))


def test_decode_segment_masks_are_cropped_to_boxes_at_image_resolution():
    metadata = make_metadata("segment")
    coefficients = [1.0] + [0.0] * 31
    pred = raw_detect([[32, 32, 20, 10, 0.1, 0.9, 0.2, *coefficients]], metadata)
    protos = np.zeros((1, 32, 16, 16), np.float32)
    protos[0, 0] = 1.0  # positive everywhere: the mask is exactly the box
    result = decode([pred, protos], metadata, [Geometry((64, 128), (0.5, 0.5), (0, 16))])[0]
    assert result.masks.shape == (1, 64, 128) and result.masks.dtype == bool
    ys, xs = np.nonzero(result.masks[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (44, 83, 22, 41)  # box [44, 22, 84, 42), pixels inside

    protos[0, 0] = -1.0  # an empty mask drops the detection, as in Ultralytics
    assert len(decode([pred, protos], metadata, [Geometry((64, 128), (0.5, 0.5), (0, 16))])[0]) == 0


def test_decode_reads_anchor_order_and_normalized_units():
    """TFLite-style layout: (batch, anchors, channels) and boxes in 0-1 of the input size."""
    metadata = make_metadata()
    metadata["output_layout"]["predictions"].update(shape_order="batch, anchors, channels", box_units="normalized")
    pred = np.array([[[0.5, 0.5, 20 / 64, 10 / 64, 0.1, 0.9, 0.2]]], np.float32)
    result = decode([pred], metadata)[0]
    np.testing.assert_allclose(result.boxes[0], [22, 27, 42, 37], rtol=1e-6)


def test_decode_in_model_nms_output():
    """Ultralytics' nms=True exports: rows are final detections (x1 y1 x2 y2 score class), no NMS to run."""
    metadata = make_metadata()
    metadata["output_layout"]["predictions"] = {
        "output": "output0",
        "shape_order": "batch, detections, values",
        "box": [0, 4],
        "box_format": "xyxy",
        "box_units": "input_pixels",
        "class_scores": [4, 5],
        "class_index": 5,
        "nms_applied": True,
    }
    rows = [[22, 27, 42, 37, 0.9, 1], [22, 27, 42, 37, 0.8, 1], [0, 0, 5, 5, 0.1, 2]]  # overlaps are kept as given
    result = decode([np.array([rows], np.float32)], metadata)[0]
    assert result.class_ids.tolist() == [1, 1] and result.scores.tolist() == pytest.approx([0.9, 0.8])
    np.testing.assert_allclose(result.boxes[0], [22, 27, 42, 37])
    assert len(decode([np.array([rows], np.float32)], metadata, max_det=1)[0]) == 1


def test_decode_rejects_outputs_of_another_model():
    with pytest.raises(MetadataMismatch, match="channels"):
        decode([np.zeros((1, 84, 10), np.float32)], make_metadata())


# ---------------------------------------------------------------- YOLOInference on the tiny ONNX model


def test_predict_single_and_batch_inputs(tiny, image, tmp_path):
    import cv2
    from PIL import Image

    model = YOLOInference(model_path=tiny / "model.onnx", metadata_path=tiny / "metadata.json")
    result = model.predict(image, conf_threshold=0.25, iou_threshold=0.45)
    assert isinstance(result, Result) and len(result.detections) == 1
    det = result.detections[0]
    assert (det.class_id, det.class_name) == (1, "ellipse") and det.confidence == pytest.approx(0.9)
    np.testing.assert_allclose(det.bbox, (44, 22, 84, 42))

    path = tmp_path / "image.png"
    cv2.imwrite(str(path), image)
    pil = Image.fromarray(image[..., ::-1])
    sources = [image, path, str(path), pil, path.read_bytes()]
    batch = model.predict(sources, channel_order="BGR")
    assert isinstance(batch, list) and len(batch) == len(sources)
    for r in batch:
        np.testing.assert_allclose(r.boxes, result.boxes)
    rgb = model.predict(image[..., ::-1].copy(), channel_order="RGB")
    np.testing.assert_allclose(rgb.boxes, result.boxes)
    assert model.predict([]) == []
    assert json.loads(json.dumps(result.to_dict()))["detections"][0]["class_name"] == "ellipse"


def test_backend_openvino_runs_the_onnx_artifact(tiny, image):
    pytest.importorskip("openvino")
    reference = YOLOInference(tiny / "model.onnx").predict(image)
    model = YOLOInference(tiny / "model.onnx", backend="openvino")
    assert model.backend.device == "OpenVINO CPU"
    result = model.predict(image)
    assert len(result) == len(reference) == 1 and result.class_ids.tolist() == reference.class_ids.tolist()
    np.testing.assert_allclose(result.boxes, reference.boxes, atol=1e-3)
    np.testing.assert_allclose(result.scores, reference.scores, atol=1e-5)
    assert YOLOInference(tiny, backend="openvino").model_path.name == "model.onnx"  # a folder resolves too


def test_unknown_or_unfit_backend_is_a_typed_error(tiny):
    with pytest.raises(ModelLoadError, match="backend 'tensorrt' is not one of onnxruntime, openvino, litert"):
        YOLOInference(tiny / "model.onnx", backend="tensorrt")
    with pytest.raises(ModelLoadError, match="backend 'litert' reads .tflite files, not model.onnx"):
        YOLOInference(tiny / "model.onnx", backend="litert")


def count_backend_calls(model: YOLOInference) -> list:
    calls: list = []
    run = model.backend.run
    model.backend.run = lambda batch: (calls.append(len(batch)), run(batch))[1]
    return calls


@pytest.mark.parametrize("fixed_batch, calls", [(1, [1, 1, 1, 1]), (3, [3, 3])])
def test_dynamic_batch_runs_once_fixed_batch_in_pieces(tiny, image, tmp_path, fixed_batch, calls):
    images = [image, image[:40], image[:, :50], np.ascontiguousarray(image.transpose(1, 0, 2))]
    dynamic = YOLOInference(tiny)
    made = count_backend_calls(dynamic)
    expected = dynamic.predict(images)
    assert made == [4]

    fixed_dir = tmp_path / "fixed"
    fixed_dir.mkdir()
    write_tiny_onnx(fixed_dir / "model.onnx", batch=fixed_batch)
    (fixed_dir / "metadata.json").write_text(json.dumps(make_metadata(batch=fixed_batch)))
    fixed = YOLOInference(fixed_dir / "model.onnx")
    made = count_backend_calls(fixed)
    results = fixed.predict(images)
    assert made == calls  # the last piece zero-padded to the model's batch
    assert len(results) == len(images)
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got.boxes, want.boxes)
        assert got.orig_shape == want.orig_shape


# ---------------------------------------------------------------- errors


def edited(tiny: Path, tmp_path: Path, edit) -> Path:
    """A copy of the tiny export whose metadata ``edit`` changed."""
    folder = tmp_path / "edited"
    shutil.copytree(tiny, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    edit(metadata)
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def test_model_and_metadata_errors(tiny, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        YOLOInference(tiny / "missing.onnx")
    with pytest.raises(ModelLoadError, match="metadata file"):
        YOLOInference(tiny / "model.onnx", metadata_path=tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not readable JSON"):
        YOLOInference(tiny / "model.onnx", metadata_path=tmp_path / "bad.json")
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="cannot load"):
        YOLOInference(tmp_path / "garbage.onnx", metadata_path=tiny / "metadata.json")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(input_shape=[320, 320, 3]), "input height is 64 but metadata.json's input_shape says 320"),
        (
            lambda m: (
                m.update(class_names=[str(i) for i in range(80)], num_classes=80),
                m["output_layout"]["predictions"].update(class_scores=[4, 84]),
                m["outputs"][0].update(shape=[1, 84, -1]),
            ),
            "7 channels but metadata.json implies 84",
        ),
        (lambda m: m.update(export_format="openvino"), "does not fit metadata.json's export_format 'openvino'"),
    ],
)
def test_metadata_that_does_not_match_the_model(tiny, tmp_path, edit, message):
    with pytest.raises(MetadataMismatch, match=message):
        YOLOInference(edited(tiny, tmp_path, edit) / "model.onnx")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("task"), "task is missing"),
        (lambda m: m.update(task="classify"), "task is 'classify', this runtime supports detect, segment, pose"),
        (lambda m: m.update(class_names=["a"]), "lists 1 classes but output_layout.predictions.class_scores spans 3"),
        (lambda m: m["preprocessing"].update(resize_mode="stretch"), "resize_mode is 'stretch'"),
        (lambda m: m.update(export_format="coreml"), "export_format 'coreml'; this runtime runs"),
        (lambda m: m.update(skeleton=[[1, 2, 3]]), "skeleton is \\[\\[1, 2, 3\\]\\], expected \\[a, b\\] pairs"),
    ],
)
def test_malformed_metadata(tiny, tmp_path, edit, message):
    with pytest.raises(ModelLoadError, match=message):
        YOLOInference(edited(tiny, tmp_path, edit))


def test_image_errors(tiny, tmp_path):
    model = YOLOInference(tiny)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    bad = [
        tmp_path / "missing.jpg",
        tmp_path / "broken.jpg",
        np.zeros((8, 8, 3), np.float32),
        np.zeros((8, 8, 2), np.uint8),
        np.zeros((0, 8, 3), np.uint8),
        42,
        b"",
    ]
    for source in bad:
        with pytest.raises(RuntimeInputError):
            model.predict(source)
    with pytest.raises(RuntimeInputError, match="channel_order"):
        model.predict(np.zeros((8, 8, 3), np.uint8), channel_order="HSV")
    for thresholds in ({"conf_threshold": 1.5}, {"iou_threshold": -0.1}, {"max_detections": 0}):
        with pytest.raises(RuntimeInputError, match="threshold|max_detections"):
            model.predict(np.zeros((8, 8, 3), np.uint8), **thresholds)


def test_errors_share_one_base():
    for error in (RuntimeInputError, ModelLoadError, MetadataMismatch, BackendUnavailable):
        assert issubclass(error, InferenceError)
    assert (RuntimeInputError.exit_code, ModelLoadError.exit_code, MetadataMismatch.exit_code) == (2, 3, 3)


def test_missing_backend_package_is_a_typed_error():
    from runtimes.python.backends import import_package

    with pytest.raises(BackendUnavailable, match="pip install no-such-package") as caught:
        import_package("no_such_module_for_exportkit", "no-such-package", "tflite")
    assert caught.value.exit_code == 4


def test_onnx_runtime_uses_cuda_when_available():
    from runtimes.python.backends.onnx_runtime import choose_providers

    both, cpu = ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]
    assert choose_providers(both, "auto") == both and choose_providers(cpu, "auto") == cpu
    assert choose_providers(both, "cpu") == cpu and choose_providers(both, "cuda") == both
    for device in ("cuda", "tpu"):
        with pytest.raises(ModelLoadError, match="device"):
            choose_providers(cpu, device)


def test_litert_quantisation_round_trip():
    from runtimes.python.backends.litert_runtime import dequantize, quantize

    detail = {"dtype": np.int8, "quantization": (0.5, 3)}
    q = quantize(np.array([-100.0, 0.0, 1.0, 100.0], np.float32), detail)
    assert q.dtype == np.int8 and q.tolist() == [-128, 3, 5, 127]
    np.testing.assert_allclose(dequantize(q, detail), [-65.5, 0.0, 1.0, 62.0])
    assert quantize(np.ones(2, np.float32), {"dtype": np.float32, "quantization": (0.0, 0)}).dtype == np.float32


def test_metadata_spec_round_trip():
    spec = ModelSpec.from_dict(make_metadata("pose", keypoints=4))
    assert spec.input_size == (TINY, TINY) and spec.layout.channels == 4 + 3 + 12 and len(spec.keypoint_names) == 4


# ---------------------------------------------------------------- CLI, standalone import, packaging


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runtimes.python.inference", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_prints_saves_and_exits_with_codes(tiny, image, tmp_path):
    import cv2

    path = tmp_path / "image.png"
    cv2.imwrite(str(path), image)
    ok = run_cli(str(tiny / "model.onnx"), str(path), "--save", str(tmp_path / "out.jpg"))
    assert ok.returncode == 0, ok.stderr
    assert "1 detection" in ok.stdout and "ellipse 0.900" in ok.stdout
    assert cv2.imread(str(tmp_path / "out.jpg")).shape == image.shape

    as_json = run_cli(str(tiny), str(path), "--json", "--conf", "0.5")
    assert json.loads(as_json.stdout)["detections"][0]["bbox"] == [44.0, 22.0, 84.0, 42.0]

    mismatched = edited(tiny, tmp_path, lambda m: m.update(input_shape=[320, 320, 3]))
    for args, code, name in [
        ((str(tiny), str(tmp_path / "missing.jpg")), 2, "RuntimeInputError"),
        ((str(tiny), str(path), "--conf", "1.5"), 2, "RuntimeInputError"),
        ((str(tmp_path / "missing.onnx"), str(path)), 3, "ModelLoadError"),
        ((str(mismatched), str(path)), 3, "MetadataMismatch"),
    ]:
        proc = run_cli(*args)
        assert proc.returncode == code, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(name) and "Traceback" not in proc.stderr


def test_cli_output_piped_into_a_closed_reader_is_no_traceback(tiny, image, tmp_path):
    """`yolo-infer ... | head -1`: the reader closes early; the CLI stops quietly."""
    import cv2

    path = tmp_path / "image.png"
    cv2.imwrite(str(path), image)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtimes.python.inference", str(tiny), *[str(path)] * 50],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
    )
    proc.stdout.close()  # before the CLI has written anything
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_runtime_never_imports_torch(tiny):
    """Block torch and ultralytics outright: importing and predicting must not need them."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['ultralytics'] = None\n"
        "import numpy as np\n"
        "from runtimes.python.inference import YOLOInference\n"
        f"r = YOLOInference({str(tiny)!r}).predict(np.zeros((64, 128, 3), np.uint8))\n"
        "assert len(r.detections) == 1\n"
        "heavy = ('torch', 'torchvision', 'ultralytics', 'exportkit')\n"
        "assert all(sys.modules[m] is None for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_package_installs_on_its_own(tiny, tmp_path):
    """`pip install ./runtimes/python` builds a wheel holding exportkit_runtime (no top-level `runtimes`); it imports away from the repo."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT / "runtimes" / "python", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    )
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("*.whl"))
    install = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=300
    )
    assert install.returncode == 0, install.stderr
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    assert not (site / "runtimes").exists()
    code = (
        f"import sys, exportkit_runtime.inference as m; assert m.__file__.startswith({str(site)!r}), m.__file__\n"
        f"print(len(m.YOLOInference({str(tiny)!r}).predict(__import__('numpy').zeros((64, 64, 3), 'uint8'))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr


# ---------------------------------------------------------------- slow: parity with Ultralytics' predict


def ultralytics_predict(artifact: Path, task: str, sources: list, metadata: dict, per_image: bool) -> list:
    """Ultralytics' own predict on the same artifact and thresholds (one call per image for fixed-batch models)."""
    from ultralytics import YOLO

    post = metadata["postprocessing"]
    model = YOLO(str(artifact), task=task)
    kwargs = dict(
        imgsz=metadata["input_shape"][:2],
        device="cpu",
        verbose=False,
        conf=post["confidence_threshold"],
        iou=post["iou_threshold"],
        max_det=post["max_detections"],
        retina_masks=True,
    )
    if per_image:
        return [model.predict(str(s), **kwargs)[0] for s in sources]
    return model.predict([str(s) for s in sources], **kwargs)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-12)


def ultralytics_arrays(ref) -> dict:
    """An Ultralytics Results as the arrays a runtime Result holds."""
    return {
        "boxes": ref.boxes.xyxy.numpy(),
        "scores": ref.boxes.conf.numpy(),
        "class_ids": ref.boxes.cls.numpy().astype(int),
        "masks": None if ref.masks is None else ref.masks.data.numpy() > 0.5,
        "keypoints": None if ref.keypoints is None else ref.keypoints.data.numpy(),
        "orig_shape": tuple(ref.orig_shape),
    }


def result_arrays(result: Result) -> dict:
    return {k: getattr(result, k) for k in ("boxes", "scores", "class_ids", "masks", "keypoints", "orig_shape")}


def assert_same_detections(want: dict, ours: Result, conf_tol: float = 1e-3) -> None:
    """Same count; each wanted detection has one of ours with the same class, IoU > 0.99, confidence within
    ``conf_tol``, mask IoU > 0.95 and keypoints within 1 pixel."""
    boxes, scores, classes = want["boxes"], want["scores"], want["class_ids"]
    assert ours.orig_shape == want["orig_shape"]
    assert len(ours) == len(boxes), f"{len(ours)} detections, the reference has {len(boxes)}"
    if not len(boxes):
        return
    iou = box_iou(boxes, ours.boxes)
    iou[classes[:, None] != ours.class_ids[None]] = 0
    taken: set[int] = set()
    for i in np.argsort(-scores):
        j = next(j for j in np.argsort(-iou[i]) if j not in taken)
        taken.add(j)
        assert iou[i, j] > 0.99, f"detection {i}: best IoU {iou[i, j]:.4f}"
        assert abs(scores[i] - ours.scores[j]) < conf_tol
        if ours.masks is not None:
            a, b = want["masks"][i], ours.masks[j]
            assert a.shape == b.shape and (a & b).sum() / max((a | b).sum(), 1) > 0.95
        if ours.keypoints is not None:
            assert np.abs(want["keypoints"][i][:, :2] - ours.keypoints[j][:, :2]).max() < 1.0
            assert np.abs(want["keypoints"][i][:, 2] - ours.keypoints[j][:, 2]).max() < conf_tol


def assert_same_results(refs: list, ours: list[Result]) -> None:
    """Ultralytics' results (refs) and ours, image by image."""
    assert len(refs) == len(ours)
    for ref, result in zip(refs, ours, strict=True):
        assert_same_detections(ultralytics_arrays(ref), result)
    assert sum(len(r) for r in ours) > 0, "no detections at all: the comparison would prove nothing"


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_onnx_dynamic_batch_matches_ultralytics(exports, samples, task):
    folder = exports.get(task, "onnx", dynamic_axes=True)
    model = YOLOInference(folder / "model.onnx")
    calls = count_backend_calls(model)
    ours = model.predict(list(samples))
    assert calls == [len(samples)]  # the whole batch, in one call
    metadata = json.loads((folder / "metadata.json").read_text())
    assert_same_results(ultralytics_predict(folder / "model.onnx", task, samples, metadata, per_image=False), ours)


@pytest.mark.slow
def test_onnx_fixed_batch_matches_ultralytics(exports, samples):
    folder = exports.get("detect", "onnx")
    model = YOLOInference(folder)
    calls = count_backend_calls(model)
    ours = model.predict([str(s) for s in samples], conf_threshold=0.25, iou_threshold=0.45)
    assert calls == [1] * len(samples)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert_same_results(ultralytics_predict(folder / "model.onnx", "detect", samples, metadata, per_image=True), ours)


def other_backends() -> list[str]:
    """Formats besides ONNX that the runtime runs and exportkit exports (TFLite joins once it is implemented)."""
    from exportkit.registry import get_format
    from runtimes.python.backends import BUILTIN

    return [fmt for fmt in BUILTIN if fmt != "onnx" and get_format(fmt).implemented]


def ultralytics_openvino_folder(folder: Path, metadata: dict, tmp_path: Path) -> Path:
    """The OpenVINO artifact where Ultralytics can load it: a ``*_openvino_model`` folder (how it recognises the
    format) with the ``metadata.yaml`` it reads names and kpt_shape from (JSON is YAML), taken from metadata.json."""
    target = tmp_path / "model_openvino_model"
    target.mkdir()
    for name in ("model.xml", "model.bin"):
        (target / name).symlink_to(folder / name)
    facts = {
        "task": metadata["task"],
        "names": metadata["class_names"],
        "imgsz": metadata["input_shape"][:2],
        "stride": metadata["stride"],
        "batch": metadata["batch_size"],
    }
    if metadata["task"] == "pose":
        facts["kpt_shape"] = [metadata["num_keypoints"], metadata["keypoint_dims"]]
    (target / "metadata.yaml").write_text(json.dumps(facts))
    return target


# Ultralytics runs OpenVINO at the CPU plugin's default precision (bf16 on AMX CPUs), so the runtime is asked for
# the same (precision_hint=None) here; its own default, f32, is checked against ONNX below.
BACKEND_OPTIONS = {"openvino": {"precision_hint": None}}


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("fmt", other_backends())
def test_other_backends_match_ultralytics(exports, samples, task, fmt, tmp_path):
    folder = exports.get(task, fmt)
    model = YOLOInference(folder, **BACKEND_OPTIONS.get(fmt, {}))
    ours = model.predict(list(samples))
    metadata = json.loads((folder / "metadata.json").read_text())
    reference = ultralytics_openvino_folder(folder, metadata, tmp_path) if fmt == "openvino" else model.model_path
    per_image = model.backend.fixed_batch is not None
    assert_same_results(ultralytics_predict(reference, task, samples, metadata, per_image=per_image), ours)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_openvino_fp32_matches_onnx(exports, samples, task):
    """The OpenVINO artifact, and the ONNX artifact run on OpenVINO (backend="openvino"), both at f32."""
    onnx_results = YOLOInference(exports.get(task, "onnx")).predict(list(samples))
    ov_results = YOLOInference(exports.get(task, "openvino")).predict(list(samples))  # f32 by default
    onnx_on_ov = YOLOInference(exports.get(task, "onnx"), backend="openvino").predict(list(samples))
    for a, b, c in zip(onnx_results, ov_results, onnx_on_ov, strict=True):
        assert_same_detections(result_arrays(a), b)
        assert_same_detections(result_arrays(a), c)
    assert sum(len(r) for r in onnx_results) > 0

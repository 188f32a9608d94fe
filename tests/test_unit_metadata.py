"""metadata.json built from a hand-made CheckpointInfo and ArtifactIO; its consistency checked three ways.

Channel counts come from YOLO's head (4 box values + one score per class, + 32 mask coefficients for
segment, + k * dims keypoint values for pose), not from exportkit's code.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest

from exportkit import metadata as md
from exportkit.checkpoint import CheckpointInfo
from exportkit.errors import ExportError
from exportkit.registry import ArtifactIO, TensorInfo, get_format
from runtimes.python.errors import ModelLoadError
from runtimes.python.spec import ModelSpec

NAMES = ["circle", "square", "triangle"]


def info(task="detect", names=NAMES, kpt_shape=None, kpt_names=None, path=Path("/ckpt/m.pt")) -> CheckpointInfo:
    return CheckpointInfo(path, "ab" * 32, task, list(names), 64, [8, 16, 32], "yolo11n", kpt_shape, kpt_names)


def io(channels: int, *, extra_outputs=(), batch=1, nhwc=False) -> ArtifactIO:
    shape = [batch, 64, 64, 3] if nhwc else [batch, 3, 64, 64]
    return ArtifactIO(
        [TensorInfo("images", shape, "float32")],
        [TensorInfo("output0", [batch, channels, 84], "float32"), *extra_outputs],
    )


PROTOS = TensorInfo("output1", [1, 32, 16, 16], "float32")


@pytest.fixture
def onnx_folder(tmp_path) -> Path:
    (tmp_path / "model.onnx").write_bytes(b"graph")
    return tmp_path


def build(folder, ckpt=None, artifact=None, options=None) -> dict:
    ckpt = ckpt or info()
    return md.build_metadata(
        ckpt,
        get_format("onnx"),
        options or {"model_name": "shapes", "opset": 17},
        artifact or io(4 + len(ckpt.names)),
        folder,
        64,
    )


def test_detect_metadata_is_schema_valid_and_consistent(onnx_folder):
    metadata = build(onnx_folder)
    md.validate_schema(metadata)
    assert metadata["num_classes"] == 3 and metadata["class_names"] == NAMES
    pred = metadata["output_layout"]["predictions"]
    assert pred["box"] == [0, 4] and pred["class_scores"] == [4, 7] and pred["output"] == "output0"
    assert pred["box_format"] == "cxcywh" and pred["box_units"] == "input_pixels"
    assert metadata["input_shape"] == [64, 64, 3] and metadata["stride"] == 32 and metadata["strides"] == [8, 16, 32]
    assert metadata["model_name"] == "shapes" and metadata["architecture"] == "yolo11n"
    assert metadata["export_format"] == "onnx" and metadata["precision"] == "fp32"
    assert metadata["batch_size"] == 1 and metadata["dynamic"] == {"batch": False, "spatial": False}
    assert metadata["artifacts"] == [
        {"path": "model.onnx", "sha256": __import__("hashlib").sha256(b"graph").hexdigest(), "bytes": 5}
    ]
    assert metadata["checkpoint"] == {"path": "/ckpt/m.pt", "name": "m.pt", "sha256": "ab" * 32}
    assert metadata["layout"] == "NCHW" and metadata["preprocessing"]["layout"] == "NCHW"
    assert metadata["export_config"] == {"model_name": "shapes", "opset": 17, "imgsz": 64}  # the effective size
    assert metadata["anchor_based"] is False and "num_keypoints" not in metadata
    assert metadata["task"] == "detect" and metadata["task_type"] == "detection"  # the guide's metadata example
    # the guide's preprocessing: RGB, /255, letterbox with grey 114
    pre = metadata["preprocessing"]
    assert pre["color_space"] == "RGB" and pre["std"] == [255.0] * 3 and pre["pad_value"] == 114
    assert pre["resize_mode"] == "letterbox"
    assert (
        metadata["postprocessing"]["confidence_threshold"] == 0.25
        and metadata["postprocessing"]["iou_threshold"] == 0.45
    )
    assert md.consistency_problems(metadata) == []
    ModelSpec.from_dict(metadata)  # the runtime loads it


def test_model_name_defaults_to_the_architecture(onnx_folder):
    assert build(onnx_folder, options={"opset": 17})["model_name"] == "yolo11n"


def test_dynamic_batch_and_nhwc(onnx_folder):
    metadata = build(onnx_folder, artifact=io(7, batch=-1, nhwc=True), options={"batch": 4})
    assert metadata["dynamic"] == {"batch": True, "spatial": False} and metadata["batch_size"] == 4
    assert metadata["layout"] == "NHWC"
    dynamic_default = build(onnx_folder, artifact=io(7, batch=-1))
    assert dynamic_default["batch_size"] == 1
    spatial = ArtifactIO(
        [TensorInfo("images", [1, 3, -1, -1], "float32")], [TensorInfo("output0", [1, 7, -1], "float32")]
    )
    assert build(onnx_folder, artifact=spatial)["dynamic"] == {"batch": False, "spatial": True}


@pytest.mark.parametrize(
    "shape, layout",
    [
        ([1, 3, 64, 64], "NCHW"),
        ([1, 64, 64, 3], "NHWC"),
        ([1, 1, 64, 64], "NCHW"),
        ([1, 64, 64, 1], "NHWC"),
        ([1, 3, 64, 3], "NCHW"),
        ([3, 64, 64], "NCHW"),
    ],
)
def test_input_layout(shape, layout):
    assert md.input_layout(ArtifactIO([TensorInfo("x", shape, "float32")], [])) == layout


def test_segment_layout_adds_32_mask_coefficients_and_prototypes(onnx_folder):
    ckpt = info("segment")
    metadata = build(onnx_folder, ckpt, io(4 + 3 + 32, extra_outputs=[PROTOS]))
    pred = metadata["output_layout"]["predictions"]
    assert pred["mask_coefficients"] == [7, 39]
    assert metadata["output_layout"]["prototypes"] == {
        "output": "output1",
        "shape_order": "batch, coefficients, height, width",
    }
    assert metadata["mask_resolution"] == [16, 16]
    md.validate_schema(metadata)
    with pytest.raises(ExportError, match="has 7 channels, expected 39 for segment"):
        md.output_layout(ckpt, io(7, extra_outputs=[PROTOS]))


def test_pose_layout_and_keypoint_facts(onnx_folder):
    ckpt = info("pose", names=["person"], kpt_shape=[17, 3])
    metadata = build(onnx_folder, ckpt, io(4 + 1 + 17 * 3))
    pred = metadata["output_layout"]["predictions"]
    assert (
        pred["keypoints"] == [5, 56]
        and pred["keypoint_format"] == "x, y, visibility"
        and pred["keypoint_units"] == "input_pixels"
    )
    assert metadata["num_keypoints"] == 17 and metadata["keypoint_dims"] == 3
    assert metadata["keypoint_names"][0] == "nose" and len(metadata["skeleton"]) == 19  # COCO's 19 limbs
    md.validate_schema(metadata)
    xy = md.output_layout(info("pose", names=["p"], kpt_shape=[4, 2]), io(4 + 1 + 8), box_units="normalized")
    assert xy["predictions"]["keypoint_format"] == "x, y" and xy["predictions"]["keypoint_units"] == "normalized"
    assert xy["predictions"]["box_units"] == "normalized"
    with pytest.raises(ExportError, match="expected 56 for pose"):
        md.output_layout(ckpt, io(55))


def test_keypoint_names():
    from exportkit import shapes

    assert md.keypoint_facts(info("pose", kpt_shape=[4, 3])) == ([f"keypoint_{i}" for i in range(4)], [])
    names, skeleton = md.keypoint_facts(info("pose", kpt_shape=[17, 3]))
    assert names == list(md.COCO_KEYPOINTS) and [16, 14] in skeleton
    names, skeleton = md.keypoint_facts(
        info("pose", kpt_shape=[len(shapes.KEYPOINT_NAMES), 3], kpt_names=list(shapes.KEYPOINT_NAMES))
    )
    assert names == list(shapes.KEYPOINT_NAMES) and skeleton == [list(p) for p in shapes.SKELETON]
    assert md.keypoint_facts(info("pose", kpt_shape=[2, 3], kpt_names=["a", "b"])) == (["a", "b"], [])


def test_nms_layout(onnx_folder):
    detect = md.output_layout(info(), ArtifactIO([], [TensorInfo("output0", [1, 300, 6], "float32")]), kind="nms")
    pred = detect["predictions"]
    assert pred["box"] == [0, 4] and pred["box_format"] == "xyxy" and pred["class_index"] == 5 and pred["nms_applied"]
    assert (
        pred["shape_order"] == "batch, detections, values"
        and pred["class_scores"] == [4, 5]
        and "prototypes" not in detect
    )
    seg = md.output_layout(
        info("segment"), ArtifactIO([], [TensorInfo("output0", [1, 300, 38], "float32"), PROTOS]), kind="nms"
    )
    assert seg["predictions"]["mask_coefficients"] == [6, 38] and seg["prototypes"]["output"] == "output1"
    pose = md.output_layout(
        info("pose", kpt_shape=[17, 3]), ArtifactIO([], [TensorInfo("output0", [1, 300, 57], "float32")]), kind="nms"
    )
    assert pose["predictions"]["keypoints"] == [6, 57] and pose["predictions"]["keypoint_format"] == "x, y, visibility"
    pose2 = md.output_layout(
        info("pose", kpt_shape=[4, 2]), ArtifactIO([], [TensorInfo("output0", [1, 300, 14], "float32")]), kind="nms"
    )
    assert pose2["predictions"]["keypoint_format"] == "x, y"
    with pytest.raises(ExportError, match="has 7 values per detection, expected 6"):
        md.output_layout(info(), ArtifactIO([], [TensorInfo("output0", [1, 300, 7], "float32")]), kind="nms")


def test_embedded_metadata_has_no_timestamp():
    embedded = md.embedded_metadata(info(), 64)
    assert embedded == {
        "task": "detect",
        "class_names": NAMES,
        "imgsz": [64, 64],
        "stride": 32,
        "kpt_shape": None,
        "exportkit": md.__version__,
    }


def test_write_and_read_round_trip(onnx_folder):
    metadata = build(onnx_folder)
    path = md.write_metadata(metadata, onnx_folder)
    assert path == onnx_folder / "metadata.json" and path.read_text().endswith("}\n")
    assert md.read_metadata(onnx_folder) == metadata == md.read_metadata(path)


def test_versions_name_the_installed_libraries():
    from importlib.metadata import version

    found = md.versions()
    assert found["ultralytics"] == version("ultralytics") and found["torch"] == version("torch")
    assert "tensorrt" not in found  # not installed here: left out, not null


DAMAGES = [
    (lambda m: m.update(num_classes=4), "num_classes is 4 but class_names lists 3"),
    (lambda m: m.update(class_names=NAMES[:2], num_classes=2), "class_scores span 3 channels for 2 class_names"),
    (lambda m: m["outputs"][0].update(shape=[1, 8, 84]), "has shape [1, 8, 84]; its layout needs 7 channels"),
]


@pytest.mark.parametrize("damage, message", DAMAGES, ids=["num_classes", "class_names", "channels"])
def test_inconsistent_metadata_is_refused_by_schema_checks_and_the_runtime(onnx_folder, damage, message):
    metadata = build(onnx_folder)
    broken = copy.deepcopy(metadata)
    damage(broken)
    assert any(message in p for p in md.consistency_problems(broken))
    with pytest.raises(jsonschema.ValidationError, match="|".join(["num_classes", "class_scores", "channels"])):
        md.validate_schema(broken)
    with pytest.raises(ModelLoadError):
        ModelSpec.from_dict(broken)


def test_nms_metadata_is_not_held_to_the_raw_channel_rule(onnx_folder):
    metadata = build(onnx_folder)
    metadata["output_layout"] = md.output_layout(
        info(), ArtifactIO([], [TensorInfo("output0", [1, 300, 6], "float32")]), kind="nms"
    )
    metadata["outputs"][0]["shape"] = [1, 300, 6]
    assert md.consistency_problems(metadata) == []


def test_validation_fails_inconsistent_metadata_with_one_check_per_problem(onnx_folder):
    from exportkit.validation.harness import metadata_checks

    metadata = build(onnx_folder)
    assert metadata_checks(metadata) == []
    metadata.update(num_classes=5)
    metadata["outputs"][0]["shape"] = [1, 9, 84]
    checks = metadata_checks(metadata)
    assert [(c.criterion, c.passed) for c in checks] == [("metadata.consistency", False)] * 2
    assert "num_classes is 5" in checks[0].detail and "needs 7 channels" in checks[1].detail


def test_a_channel_count_the_graph_leaves_open_is_not_a_mismatch(onnx_folder):
    # an unsimplified dynamic ONNX at opset 13 reports output0 as [-1, -1, -1]; the runtime checks the real
    # count when it runs (split_outputs), validation runs it
    open_io = ArtifactIO(
        [TensorInfo("images", [-1, 3, -1, -1], "float32")], [TensorInfo("output0", [-1, -1, -1], "float32")]
    )
    metadata = build(onnx_folder, artifact=open_io)
    assert metadata["output_layout"]["predictions"]["class_scores"] == [4, 7]
    assert md.consistency_problems(metadata) == []
    ModelSpec.from_dict(metadata)
    nms = md.output_layout(info(), ArtifactIO([], [TensorInfo("output0", [-1, 300, -1], "float32")]), kind="nms")
    assert nms["predictions"]["class_index"] == 5


def test_format_facts_replace_the_layout_and_merge_over_the_defaults(onnx_folder):
    class WithFacts(get_format("onnx")):
        seen = []

        @classmethod
        def metadata_facts(cls, info, io, options, folder):
            cls.seen.append((info.task, options, folder))
            return {
                "preprocessing": {"color_space": "BGR"},
                "postprocessing": {"confidence_threshold": 0.1},
                "output_layout": {"predictions": {"output": "output0", "box": [0, 4], "class_scores": [4, 7]}},
                "accuracy": {"map50": 0.5},
            }

    metadata = md.build_metadata(info(), WithFacts, {"opset": 17}, io(7), onnx_folder, 64)
    assert WithFacts.seen == [("detect", {"opset": 17}, onnx_folder)]
    assert metadata["preprocessing"]["color_space"] == "BGR" and metadata["preprocessing"]["pad_value"] == 114
    assert (
        metadata["postprocessing"]["confidence_threshold"] == 0.1
        and metadata["postprocessing"]["iou_threshold"] == 0.45
    )
    assert metadata["output_layout"] == {"predictions": {"output": "output0", "box": [0, 4], "class_scores": [4, 7]}}
    assert metadata["accuracy"] == {"map50": 0.5}
    assert "preprocessing" not in {k for k, v in metadata.items() if v == {"color_space": "BGR"}}
    assert md.format_facts(get_format("onnx"), info(), io(7), {}, onnx_folder) == {}


def test_artifact_entries_list_every_file_of_a_folder_artifact(tmp_path):
    package = tmp_path / "model.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Manifest.json").write_bytes(b"{}")
    (package / "Data" / "weights.bin").write_bytes(b"1234")
    entries = md.artifact_entries(tmp_path, get_format("coreml"))
    assert [(e["path"], e["bytes"]) for e in entries] == [
        ("model.mlpackage/Data/weights.bin", 4),
        ("model.mlpackage/Manifest.json", 2),
    ]


def test_nms_layouts_in_full():
    # Ultralytics' in-model NMS rows: x1 y1 x2 y2 score class, then 32 mask coefficients or k * dims keypoint values
    detect = md.output_layout(info(), ArtifactIO([], [TensorInfo("out", [1, 300, 6], "float32")]), kind="nms")
    base = {
        "output": "out",
        "shape_order": "batch, detections, values",
        "box": [0, 4],
        "box_format": "xyxy",
        "box_units": "input_pixels",
        "class_scores": [4, 5],
        "scores_kind": "best_class",
        "class_index": 5,
        "nms_applied": True,
    }
    assert detect == {"predictions": base}
    seg = md.output_layout(
        info("segment"), ArtifactIO([], [TensorInfo("out", [1, 300, 38], "float32"), PROTOS]), kind="nms"
    )
    assert seg == {
        "predictions": {**base, "mask_coefficients": [6, 38]},
        "prototypes": {"output": "output1", "shape_order": "batch, coefficients, height, width"},
    }
    pose = md.output_layout(
        info("pose", kpt_shape=[17, 3]), ArtifactIO([], [TensorInfo("out", [1, 300, 57], "float32")]), kind="nms"
    )
    assert pose == {
        "predictions": {
            **base,
            "keypoints": [6, 57],
            "keypoint_format": "x, y, visibility",
            "keypoint_units": "input_pixels",
        }
    }


def test_metadata_file_is_indented_json(onnx_folder):
    md.write_metadata({"a": [1], "b": "é"}, onnx_folder)
    assert (onnx_folder / "metadata.json").read_text() == '{\n  "a": [\n    1\n  ],\n  "b": "\\u00e9"\n}\n'


# the libraries an export's result depends on: Ultralytics and torch, then each format's converter and runtime
CONVERTERS = (
    "ultralytics",
    "torch",
    "onnx",
    "onnxruntime",
    "onnxslim",
    "openvino",
    "coremltools",
    "litert-torch",
    "ai-edge-litert",
    "tensorrt",
)


def test_versions_record_each_installed_converter_and_skip_only_the_missing(monkeypatch):
    import importlib.metadata as im
    import platform

    import exportkit

    real = im.version
    installed = {}
    for name in CONVERTERS:
        try:
            installed[name] = real(name)
        except im.PackageNotFoundError:
            pass
    found = md.versions()
    assert found == {"exportkit": exportkit.__version__, "python": platform.python_version(), **installed}

    def without_onnx(name):  # one converter missing in the middle of the list: the rest are still recorded
        if name == "onnx":
            raise im.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(im, "version", without_onnx)
    found = md.versions()
    assert "onnx" not in found and {k: v for k, v in installed.items() if k != "onnx"}.items() <= found.items()
    assert "openvino" in found and "coremltools" in found


@pytest.mark.parametrize(
    "task, artifact", [("segment", io(4 + 3 + 32, extra_outputs=(PROTOS,))), ("pose", io(4 + 3 + 51))]
)
def test_every_yolo_head_is_anchor_free(task, artifact):
    # the guide's per-task examples: detection, segmentation and pose heads of YOLOv8/YOLO11 are "anchor_based": false
    ckpt = info(task, kpt_shape=[17, 3] if task == "pose" else None)
    assert md.task_fields(ckpt, artifact)["anchor_based"] is False


def test_open_vocabulary_fields_are_the_guides():
    from dataclasses import replace

    world = replace(info(), is_world=True)
    fields = md.task_fields(world, io(4 + 3))
    # the guide's YOLO-World-v2 keys, made honest (issue 15): the vocabulary is baked into the artifact, so there is
    # no text input; the baked class names are listed; CLIP's 77-token context
    assert {k: fields[k] for k in ("model_variant", "text_input_enabled", "max_text_length")} == {
        "model_variant": "open_vocabulary",
        "text_input_enabled": False,
        "max_text_length": 77,
    }
    assert fields["baked_vocabulary"] == world.names


def test_consistency_reads_a_metadata_without_layout_or_outputs():
    # nothing to compare but the class count: no problem, no crash on the missing parts
    assert md.consistency_problems({"num_classes": 0}) == []
    assert md.consistency_problems({"num_classes": 2}) == ["num_classes is 2 but class_names lists 0"]


def test_consistency_counts_the_box_channels_wherever_they_sit():
    # a layout with the class scores first and the box after them needs 3 + 4 = 7 channels
    pred = {"output": "output0", "shape_order": "batch, channels, anchors", "class_scores": [0, 3], "box": [3, 7]}
    base = {"class_names": NAMES, "num_classes": 3, "output_layout": {"predictions": pred}}
    assert md.consistency_problems({**base, "outputs": [{"name": "output0", "shape": [1, 7, 84]}]}) == []
    assert md.consistency_problems({**base, "outputs": [{"name": "output0", "shape": [1, 3, 84]}]}) == [
        "output output0 has shape [1, 3, 84]; its layout needs 7 channels"
    ]


def test_detect_scores_are_recorded_as_activated(onnx_folder):
    # Ultralytics' exported heads apply the sigmoid to the class scores: the runtime must not apply it again
    assert build(onnx_folder)["output_layout"]["predictions"]["scores_activated"] is True


def test_format_facts_hook_sees_the_artifact_io(tmp_path):
    seen = []

    class Fake:
        @classmethod
        def metadata_facts(cls, info, io, options, folder):
            seen.append((io, folder))
            return {"accuracy": {"top1": 1.0}}

    artifact = io(7)
    assert md.format_facts(Fake, info(), artifact, {}, str(tmp_path)) == {"accuracy": {"top1": 1.0}}
    assert seen == [(artifact, tmp_path)]
    from exportkit.registry import ExportFormat

    class Plain(ExportFormat):  # no hook of its own: ExportFormat's declared default
        name = "plain"

    assert md.format_facts(Plain, info(), artifact, {}, tmp_path) == {}


def test_schema_error_lists_every_consistency_problem(onnx_folder):
    import jsonschema

    metadata = build(onnx_folder)
    metadata.update(num_classes=4)
    metadata["output_layout"]["predictions"]["class_scores"] = [4, 6]
    with pytest.raises(jsonschema.ValidationError) as err:
        md.validate_schema(metadata)
    assert err.value.message == (
        "num_classes is 4 but class_names lists 3; "
        "output_layout class_scores span 2 channels for 3 class_names; "
        "output output0 has shape [1, 7, 84]; its layout needs 6 channels"
    )


def test_nms_output_of_the_wrong_width_names_the_expected_count():
    # segment: x1 y1 x2 y2 score class + 32 mask coefficients = 38 values per detection
    bad = ArtifactIO([], [TensorInfo("output0", [1, 300, 6], "float32"), PROTOS])
    with pytest.raises(ExportError, match=r"output0 has 6 values per detection, expected 38$"):
        md.output_layout(info("segment"), bad, kind="nms")


def test_a_two_pixel_tall_nhwc_input_is_nhwc():
    # 2 is no channel count (1 grey or 3 colour), so [1, 2, 64, 3] is a batch of 2x64 colour images
    assert md.input_layout(ArtifactIO([TensorInfo("x", [1, 2, 64, 3], "float32")], [])) == "NHWC"

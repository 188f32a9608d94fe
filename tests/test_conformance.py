"""runtimes/conformance: the committed vectors are what the Python runtime computes now, their output layouts
follow the schema the exporters write, the Python runtime meets every vector within the file's tolerance, and
the C++, Kotlin and Swift suites load every vector."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from exportkit.checkpoint import CheckpointInfo
from exportkit.metadata import SCHEMA_PATH, output_layout
from exportkit.registry import ArtifactIO, TensorInfo
from runtimes.conformance import generate
from runtimes.python.postprocess import batched_nms, decode
from runtimes.python.preprocess import plan_letterbox

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT / "runtimes" / "conformance"
VECTORS = CONFORMANCE / "vectors"
FILES = sorted(p.name for p in VECTORS.glob("*.json"))
DECODE_FILES = [n for n in FILES if n.startswith("decode_")]
CONSUMERS = {  # test source -> the vector files it must load
    "cpp": ROOT / "runtimes/cpp/tests/conformance_tests.cpp",
    "kotlin": ROOT / "runtimes/kotlin/src/test/kotlin/com/platform/tflite/ConformanceTest.kt",
    "swift": ROOT / "runtimes/swift/Tests/YOLOCoreTests/ConformanceTests.swift",
}


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def subschema(name: str) -> dict:
    schema = json.loads(SCHEMA_PATH.read_text())
    return {"$ref": f"#/$defs/{name}", "$defs": schema["$defs"]}


# -- the files --------------------------------------------------------------------------------------------
def test_committed_vectors_are_what_the_python_runtime_computes_now():
    fresh = {name: generate.render(content) for name, content in generate.vectors().items()}
    assert sorted(fresh) == FILES, "vectors/ holds files the generator does not write (or lacks some)"
    stale = [name for name, text in fresh.items() if (VECTORS / name).read_text() != text]
    assert not stale, f"{stale} differ from generate.py's output: run python runtimes/conformance/generate.py"


def test_generation_is_deterministic():
    assert generate.render(generate.vectors()) == generate.render(generate.vectors())


def test_one_decode_vector_per_layout_and_the_files_stay_small():
    assert [f"decode_{k}.json" for k in generate.DECODE_KINDS] == sorted(
        DECODE_FILES, key=lambda n: generate.DECODE_KINDS.index(n[7:-5])
    )
    assert {"detect", "segment", "pose", "nms_applied", "nhwc", "coreml_pipeline"} <= set(generate.DECODE_KINDS)
    assert sum((VECTORS / n).stat().st_size for n in FILES) < 200_000
    for name in DECODE_FILES:
        assert load(name)["expected"], f"{name} expects no detection: it would test nothing"


def test_the_conformance_schema_is_the_package_schema():
    link = CONFORMANCE / "metadata.schema.json"
    assert link.resolve() == SCHEMA_PATH.resolve(), (
        "runtimes/conformance/metadata.schema.json must point at the package's schema"
    )


# -- the schema -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DECODE_FILES)
def test_each_vector_layout_follows_the_schema(name):
    meta = load(name)["metadata"]
    jsonschema.validate(meta["output_layout"], subschema("yolo_output_layout"))
    jsonschema.validate(meta["postprocessing"], subschema("yolo_postprocessing"))
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(meta["preprocessing"], {**schema["properties"]["preprocessing"], "$defs": schema["$defs"]})


def _info(task: str, kpt_shape=None) -> CheckpointInfo:
    return CheckpointInfo(Path("/m.pt"), "ab" * 32, task, ["a", "b", "c"], 64, [8, 16, 32], "yolo11n", kpt_shape, None)


def _io(*shapes) -> ArtifactIO:
    return ArtifactIO(
        [TensorInfo("images", [1, 3, 64, 64], "float32")],
        [TensorInfo(f"output{i}", list(s), "float32") for i, s in enumerate(shapes)],
    )


EXPORTED_LAYOUTS = {
    "detect": lambda: output_layout(_info("detect"), _io([1, 7, 84])),
    "detect_normalized": lambda: output_layout(_info("detect"), _io([1, 7, 84]), box_units="normalized"),
    "segment": lambda: output_layout(_info("segment"), _io([1, 39, 84], [1, 32, 16, 16])),
    "pose": lambda: output_layout(_info("pose", [17, 3]), _io([1, 58, 84])),
    "pose_xy": lambda: output_layout(_info("pose", [4, 2]), _io([1, 15, 84])),
    "nms_detect": lambda: output_layout(_info("detect"), _io([1, 300, 6]), kind="nms"),
    "nms_segment": lambda: output_layout(_info("segment"), _io([1, 300, 38], [1, 32, 16, 16]), kind="nms"),
    "nms_pose": lambda: output_layout(_info("pose", [17, 3]), _io([1, 300, 57]), kind="nms"),
}


def _pipeline_layout(info=None):
    """CoreML's NMS pipeline layout, as coreml.metadata_facts builds it (its outputs named as Apple's stage names them)."""
    from exportkit.formats.coreml import pipeline_io

    return output_layout(info or _info("detect"), pipeline_io(ArtifactIO([], [])), "normalized", kind="pipeline")


@pytest.mark.parametrize(
    "build", [*EXPORTED_LAYOUTS.values(), _pipeline_layout], ids=[*EXPORTED_LAYOUTS, "coreml_pipeline"]
)
def test_every_layout_the_exporters_write_follows_the_schema(build):
    jsonschema.validate(build(), subschema("yolo_output_layout"))


def test_vectors_use_the_layouts_the_exporters_write():
    """Where a vector's sizes allow it, its output_layout is the exporter's, key for key (segment and pose use
    smaller sizes than a real model: 4 mask coefficients, 3 keypoints)."""

    def names(name):
        return load(name)["metadata"]["class_names"]

    info = CheckpointInfo(
        Path("/m.pt"), "ab" * 32, "detect", names("decode_detect.json"), 64, [8], "yolo11n", None, None
    )
    assert load("decode_detect.json")["metadata"]["output_layout"] == output_layout(info, _io([1, 7, 24]))
    assert load("decode_nms_applied.json")["metadata"]["output_layout"] == output_layout(
        info, _io([1, 7, 6]), kind="nms"
    )
    info = CheckpointInfo(
        Path("/m.pt"), "ab" * 32, "detect", names("decode_coreml_pipeline.json"), 64, [8], "yolo11n", None, None
    )
    assert load("decode_coreml_pipeline.json")["metadata"]["output_layout"] == _pipeline_layout(info)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda p: p.update(shape_order="anchors, batch, channels"),
        lambda p: p.update(nms_applied=True),  # rows of raw anchors cannot be final detections
        lambda p: p.update(box_units="centimetres"),
        lambda p: p.update(keypoint_format="x, y, z"),
        lambda p: p.update(scores_kind="best_class"),  # best_class needs nms_applied and class_index
        lambda p: p.update(anchors_first=True),  # a key no reader knows
        lambda p: p.pop("class_scores"),
    ],
    ids=[
        "bad-order",
        "nms-on-raw-anchors",
        "bad-units",
        "bad-keypoint-format",
        "best-class-without-index",
        "unknown-key",
        "no-class-scores",
    ],
)
def test_the_schema_rejects_layouts_no_reader_can_decode(breakage):
    layout = copy.deepcopy(load("decode_pose.json")["metadata"]["output_layout"])
    jsonschema.validate(layout, subschema("yolo_output_layout"))
    breakage(layout["predictions"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(layout, subschema("yolo_output_layout"))


def test_the_schema_rejects_in_model_nms_rows_without_a_class_index():
    layout = copy.deepcopy(load("decode_nms_applied.json")["metadata"]["output_layout"])
    jsonschema.validate(layout, subschema("yolo_output_layout"))
    for key in ("class_index", "scores_kind"):
        layout["predictions"].pop(key)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(layout, subschema("yolo_output_layout"))


# -- the Python runtime on every vector -------------------------------------------------------------------
@pytest.mark.parametrize("case", load("letterbox.json")["cases"], ids=lambda c: c["name"])
def test_python_letterbox(case):
    tol, want = load("letterbox.json")["tolerance"], case["expected"]
    plan = plan_letterbox(
        (case["source_height"], case["source_width"]),
        (case["target_height"], case["target_width"]),
        case["scale_up"],
        case["center"],
    )
    assert plan.new_size == (want["resized_width"], want["resized_height"])
    assert plan.borders == (want["pad_top"], want["pad_bottom"], want["pad_left"], want["pad_right"])
    gain_x, gain_y = plan.geometry.ratio
    assert gain_x == pytest.approx(want["gain_x"], abs=tol["gain_atol"])
    assert gain_y == pytest.approx(want["gain_y"], abs=tol["gain_atol"])
    x, y = want["input_point"]
    back = [(x - want["pad_left"]) / gain_x, (y - want["pad_top"]) / gain_y]
    np.testing.assert_allclose(back, want["source_point"], atol=tol["point_atol"])


@pytest.mark.parametrize("case", load("nms.json")["cases"], ids=lambda c: c["name"])
def test_python_nms(case):
    keep = batched_nms(
        np.asarray(case["boxes"], np.float32),
        np.asarray(case["scores"], np.float32),
        np.asarray(case["class_ids"], np.int64),
        case["iou_threshold"],
        case["max_detections"],
        case["agnostic"],
    )
    assert keep.tolist() == case["expected_keep"]


def rle_decode(counts: list[int], size: list[int]) -> np.ndarray:
    values = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool)
    return values.reshape(size)


@pytest.mark.parametrize("name", DECODE_FILES)
def test_python_decode(name):
    vector = load(name)
    tol, image = vector["tolerance"], vector["image"]
    outputs = {k: np.asarray(v["values"], np.float32).reshape(v["shape"]) for k, v in vector["outputs"].items()}
    plan = plan_letterbox((image["height"], image["width"]), tuple(vector["metadata"]["input_shape"][:2]))
    (result,) = decode(outputs, vector["metadata"], [plan.geometry])
    assert len(result) == len(vector["expected"])
    for i, (got, want) in enumerate(zip(result.detections, vector["expected"], strict=True)):
        assert got.class_id == want["class_id"] and got.class_name == want["class_name"]
        assert got.confidence == pytest.approx(want["score"], abs=tol["score_atol"])
        np.testing.assert_allclose(got.bbox, want["box"], atol=tol["box_atol"])
        if "keypoints" in want:
            points = np.asarray([[k.x, k.y, k.visibility] for k in got.keypoints])
            np.testing.assert_allclose(points[:, :2], np.asarray(want["keypoints"])[:, :2], atol=tol["keypoint_atol"])
            np.testing.assert_allclose(points[:, 2], np.asarray(want["keypoints"])[:, 2], atol=tol["visibility_atol"])
        if "mask" in want:
            expected = rle_decode(want["mask"]["counts"], want["mask"]["size"])
            assert expected.sum() == want["mask"]["area"]
            assert int((result.masks[i] != expected).sum()) <= tol["mask_differing_pixels_max"]


# -- the other runtimes' suites load every vector meant for them -----------------------------------------
def meant_for(runtime: str) -> set[str]:
    """letterbox and NMS for all; a decode vector for the runtimes its ``runtimes`` key lists."""
    return {n for n in FILES if not n.startswith("decode_") or runtime in load(n)["runtimes"]}


def test_every_runtime_decodes_most_layouts_and_every_layout_has_a_second_runtime():
    for runtime in generate.RUNTIMES:
        assert {"letterbox.json", "nms.json", "decode_detect.json", "decode_nms_applied.json"} <= meant_for(runtime)
    for name in DECODE_FILES:
        runtimes = load(name)["runtimes"]
        assert "python" in runtimes and len(runtimes) >= 2 and set(runtimes) <= set(generate.RUNTIMES)


@pytest.mark.parametrize("runtime", sorted(CONSUMERS))
def test_every_runtime_suite_loads_every_vector_meant_for_it(runtime):
    source = CONSUMERS[runtime].read_text()
    named = set(re.findall(r'"((?:decode_[a-z_]+|letterbox|nms)\.json)"', source))
    assert named == meant_for(runtime), (
        f"{CONSUMERS[runtime].name} names {sorted(named)}, its vectors are {sorted(meant_for(runtime))}"
    )


def test_the_swift_readme_says_what_it_skips_and_that_it_never_ran_here():
    readme = (ROOT / "runtimes/swift/README.md").read_text()
    assert "nothing in this folder has been compiled" in readme.lower()
    for name in set(FILES) - meant_for("swift"):
        assert name in readme, f"runtimes/swift/README.md must say why {name} is not decoded"


# -- the Python runtime's reading of the layouts the vectors added ----------------------------------------
def test_python_reads_the_coreml_pipeline_scores_after_the_box_channels():
    from runtimes.python.spec import ModelSpec

    layout = ModelSpec.from_dict(load("decode_coreml_pipeline.json")["metadata"]).layout
    assert (layout.class_scores_output, layout.class_scores, layout.channels) == ("confidence", (4, 7), 7)
    assert layout.nms_applied and layout.class_index is None and not layout.anchors_last


@pytest.mark.parametrize("name", ["decode_detect.json", "decode_nms_applied.json"])
def test_python_refuses_a_shape_order_that_contradicts_nms_applied(name):
    from runtimes.python.errors import ModelLoadError
    from runtimes.python.spec import ModelSpec

    meta = load(name)["metadata"]
    pred = meta["output_layout"]["predictions"]
    pred["nms_applied"] = not pred.get("nms_applied", False)
    pred.setdefault("class_index", 5)
    with pytest.raises(ModelLoadError, match="shape_order"):
        ModelSpec.from_dict(meta)


def test_python_refuses_a_pipeline_confidence_output_of_other_rows():
    from runtimes.python.errors import MetadataMismatch

    vector = load("decode_coreml_pipeline.json")
    outputs = {k: np.asarray(v["values"], np.float32).reshape(v["shape"]) for k, v in vector["outputs"].items()}
    outputs["confidence"] = outputs["confidence"][:-1]
    with pytest.raises(MetadataMismatch, match="confidence"):
        decode(outputs, vector["metadata"])

"""CoreML: converts on Linux; prediction needs macOS, so validation checks the spec and reports parity as skipped."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from conftest import BUNDLED, TASKS

from exportkit.checkpoint import sha256_file
from exportkit.errors import ConfigError, EnvironmentUnsupported
from exportkit.metadata import read_metadata, validate_schema, write_metadata
from exportkit.registry import get_format
from exportkit.validation import Check, ParityReport

COREML = get_format("coreml")
ON_MACOS = sys.platform == "darwin"


# -- facts (fast) ------------------------------------------------------------------------------------
def test_precision_follows_nms():
    """Ultralytics converts NMS models at FP16 (segment/pose cannot be FP32 with NMS), without NMS at FP32."""
    assert COREML.precision_of(COREML.resolve({})) == "fp16"
    assert COREML.precision_of(COREML.resolve({"nms": False})) == "fp32"


def test_batch_must_be_one():
    with pytest.raises(ConfigError, match="'batch' must be 1"):
        COREML.resolve({"batch": 4})


def test_skipped_parity_with_passing_spec_checks_is_not_a_failure():
    report = ParityReport("coreml", "fp16", checks=[Check("spec", "loads", 1.0, 1.0, True)], skipped="needs macOS: ...")
    assert report.status == "skipped" and "numeric parity skipped: needs macOS" in report.summary()
    assert report.to_json()["status"] == "skipped"
    failing = ParityReport(
        "coreml", "fp16", checks=[Check("spec", "inputs", 0.0, 1.0, False)], skipped="needs macOS: ..."
    )
    assert failing.status == "failed"


# -- real exports (slow) -----------------------------------------------------------------------------
def _check_folder_export(out, task):
    assert {p.name for p in out.iterdir()} == {"model.mlpackage", "metadata.json", "validation.json"}
    assert (out / "model.mlpackage").is_dir()
    metadata = read_metadata(out)
    validate_schema(metadata)
    assert metadata["checkpoint"]["sha256"] == sha256_file(BUNDLED[task])
    files = sorted(p for p in (out / "model.mlpackage").rglob("*") if p.is_file())
    assert sorted(e["path"] for e in metadata["artifacts"]) == sorted(p.relative_to(out).as_posix() for p in files)
    for entry in metadata["artifacts"]:
        assert sha256_file(out / entry["path"]) == entry["sha256"]
    assert metadata["input_dtype"] == "uint8" and metadata["preprocessing"]["input_type"] == "image"
    assert metadata["preprocessing"]["normalize"] is False  # the model scales pixels by 1/255 itself
    return metadata


def _check_validation(out):
    validation = json.loads((out / "validation.json").read_text())
    spec = [c for c in validation["checks"] if c["input"] == "spec"]
    assert spec and all(c["passed"] for c in spec), spec
    if ON_MACOS:
        return validation
    assert validation["status"] == "skipped" and validation["passed"] is False  # never reads as passed
    assert validation["summary"].startswith("numeric parity skipped: needs macOS")
    return validation


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_default_export_has_nms(exports, task):
    out = exports.get(task, "coreml")
    metadata = _check_folder_export(out, task)
    _check_validation(out)
    assert metadata["precision"] == "fp16" and metadata["coreml"]["minimum_deployment_target"] == "iOS15"
    assert metadata["coreml"]["specification_version"] == 6
    assert metadata["postprocessing"]["apply_nms"] is False and metadata["postprocessing"]["nms_in_model"] is True
    predictions = metadata["output_layout"]["predictions"]
    assert predictions["nms_applied"] is True
    if task == "detect":  # Apple's NMS pipeline
        assert metadata["coreml"]["model_type"] == "pipeline"
        assert [o["name"] for o in metadata["outputs"]] == ["confidence", "coordinates"]
        assert predictions["box_units"] == "normalized" and predictions["class_scores"] == [0, 3]
    else:  # Ultralytics' NMS in the graph: (1, 300, 6 + extra)
        assert metadata["coreml"]["model_type"] == "mlProgram"
        extra = 32 if task == "segment" else 4 * 3
        assert metadata["outputs"][0]["shape"] == [1, 300, 6 + extra] and metadata["outputs"][0]["name"] == "output0"


@pytest.mark.slow
def test_export_without_nms_targets_ios17(exports):
    out = exports.get("detect", "coreml", nms=False, minimum_deployment_target="iOS17")
    metadata = _check_folder_export(out, "detect")
    _check_validation(out)
    assert metadata["precision"] == "fp32" and metadata["coreml"]["specification_version"] == 8
    assert metadata["output_layout"]["predictions"]["box_units"] == "input_pixels"
    assert metadata["outputs"][0]["shape"] == [1, 7, 756] and metadata["outputs"][0]["name"] == "output0"


@pytest.mark.slow
def test_ios14_is_a_neural_network_with_output_shapes(exports):
    out = exports.get("pose", "coreml", minimum_deployment_target="iOS14")
    metadata = _check_folder_export(out, "pose")
    _check_validation(out)
    assert metadata["coreml"]["model_type"] == "neuralNetwork" and metadata["coreml"]["specification_version"] == 5
    assert metadata["outputs"][0]["shape"] == [1, 300, 18]


@pytest.mark.slow
def test_cli_says_parity_was_skipped(exports):
    proc = exports.process("detect", "coreml")
    assert proc.returncode == 0
    expected = "validation: numeric parity skipped: needs macOS" if not ON_MACOS else "validation:"
    assert expected in proc.stdout


@pytest.mark.slow
def test_spec_checks_catch_metadata_that_does_not_match(exports, tmp_path):
    from exportkit.validation import validate_folder

    out = tmp_path / "copy"
    shutil.copytree(exports.get("detect", "coreml"), out)
    metadata = read_metadata(out)
    metadata["inputs"][0]["shape"] = [1, 3, 640, 640]
    metadata["class_names"] = ["a", "b", "c"]
    write_metadata(metadata, out)
    report = validate_folder(out)
    failed = {c.criterion for c in report.failures}
    assert report.status == "failed" and {"inputs", "embedded_metadata"} <= failed, report.summary()


@pytest.mark.slow
@pytest.mark.skipif(ON_MACOS, reason="on macOS the runner predicts")
def test_runner_needs_macos(exports):
    with pytest.raises(EnvironmentUnsupported, match="needs macOS"):
        COREML().runner(exports.get("detect", "coreml"))

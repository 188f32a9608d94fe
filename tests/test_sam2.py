"""SAM2-t end to end: the seeded zoo checkpoint exported once per format (ONNX, TorchScript, OpenVINO) into a
shared session fixture, each validated against SAM2Predictor; damaged copies fail validation; the Python
runtime matches Ultralytics' full predictor at the original resolution."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ENV, ROOT, run_export

FORMATS = ("onnx", "torchscript", "openvino")
SAMPLE = ROOT / "models" / "samples" / "shapes_3_480x320.jpg"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def sam2_checkpoint() -> Path:
    from exportkit.zoo import build_architecture

    return build_architecture("sam2-t")


@pytest.fixture(scope="session")
def sam2_exports(sam2_checkpoint, tmp_path_factory) -> dict:
    """{format: (folder, CompletedProcess)}, each exported (and validated) once per session."""
    root = tmp_path_factory.mktemp("sam2")
    return {
        fmt: (root / fmt, run_export(sam2_checkpoint, fmt, root / fmt, {"include_validation": True}, timeout=900))
        for fmt in FORMATS
    }


@pytest.fixture(scope="session")
def sam2_reference(sam2_checkpoint):
    from exportkit.families.sam2_load import load_sam2
    from exportkit.families.sam2_validate import reference_predictor

    return reference_predictor(load_sam2(sam2_checkpoint)[0])


def _validate(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "exportkit", "validate", str(folder), "-q"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )


def test_zoo_checkpoint_is_a_plain_state_dict_that_the_safe_loader_takes(sam2_checkpoint):
    import torch

    from exportkit.safe_load import load_untrusted, scan_archive

    assert sam2_checkpoint.name == "sam2_t.pt" and sam2_checkpoint.parent.name == "sam2-t"
    assert set(scan_archive(sam2_checkpoint).module_classes) <= {"collections.OrderedDict"}
    raw = load_untrusted(sam2_checkpoint)
    assert list(raw) == ["model"] and all(isinstance(v, torch.Tensor) for v in raw["model"].values())


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_writes_both_parts_validated(sam2_exports, fmt):
    from exportkit.checkpoint import sha256_file
    from exportkit.families.sam2_export import artifact_files
    from exportkit.metadata import validate_schema

    folder, proc = sam2_exports[fmt]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*artifact_files(fmt), "metadata.json", "validation.json"]
    )
    metadata = json.loads((folder / "metadata.json").read_text())
    validate_schema(metadata)
    assert (
        metadata["model_family"] == "sam2" and metadata["architecture"] == "sam2-t" and metadata["export_format"] == fmt
    )
    for entry in metadata["artifacts"]:
        assert sha256_file(folder / entry["path"]) == entry["sha256"]
    report = json.loads((folder / "validation.json").read_text())
    assert report["status"] == "passed", report["summary"]
    cases = {name.rsplit(":", 1)[-1] for name in report["inputs"]}
    assert {"encoder", "point", "box", "three_objects", "mask_input"} <= cases
    assert {c["criterion"] for c in report["checks"]} >= {
        "mask_iou_min",
        "sign_agreement",
        "iou_prediction_diff_max",
        "output2.cosine",
    }


def test_each_torchscript_part_holds_only_its_own_weights(sam2_exports):
    import torch

    folder, _ = sam2_exports["torchscript"]
    encoder = set(torch.jit.load(str(folder / "encoder.torchscript")).state_dict())
    decoder = set(torch.jit.load(str(folder / "decoder.torchscript")).state_dict())
    assert not encoder & decoder
    assert (
        any(k.startswith("image_encoder.trunk.") for k in encoder) and {"conv_s0.weight", "conv_s1.weight"} <= encoder
    )
    assert not any("trunk" in k or "conv_s" in k for k in decoder) and any(
        k.startswith("mask_decoder.transformer.") for k in decoder
    )
    sizes = [(folder / f"{part}.torchscript").stat().st_size for part in ("encoder", "decoder")]
    assert sizes[1] < 30e6 < sizes[0] < 120e6  # SAM2-t's weights are 156 MB in all (memory attention not exported)


def test_openvino_keeps_fp32_and_takes_dynamic_prompts(sam2_exports):
    import openvino as ov

    folder, _ = sam2_exports["openvino"]
    model = ov.Core().read_model(str(folder / "decoder.xml"))
    types = {op.get_element_type().get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant"}
    assert "f16" not in types
    coords = next(p for p in model.inputs if "point_coords" in p.get_names())
    assert coords.get_partial_shape()[0].is_dynamic and coords.get_partial_shape()[1].is_dynamic


def test_damaged_decoder_weights_fail_validation_with_exit_2(sam2_exports, tmp_path):
    import onnx
    from onnx import numpy_helper

    copy = tmp_path / "damaged"
    shutil.copytree(sam2_exports["onnx"][0], copy)
    model = onnx.load(str(copy / "decoder.onnx"))
    biggest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    biggest.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(biggest) * 1.5, biggest.name))
    onnx.save(model, str(copy / "decoder.onnx"))
    proc = _validate(copy)
    assert proc.returncode == 2, proc.stderr[-2000:]
    report = json.loads((copy / "validation.json").read_text())
    assert any(
        c["passed"] is False and c["criterion"] in ("mask_iou_min", "sign_agreement", "iou_prediction_diff_max")
        for c in report["checks"]
    )


def test_truncated_encoder_fails_its_checker_with_exit_2(sam2_exports, tmp_path):
    copy = tmp_path / "truncated"
    shutil.copytree(sam2_exports["openvino"][0], copy)
    data = (copy / "encoder.bin").read_bytes()
    (copy / "encoder.bin").write_bytes(data[: len(data) // 2])
    proc = _validate(copy)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    report = json.loads((copy / "validation.json").read_text())
    assert any(c["input"] == "format_check" and c["passed"] is False for c in report["checks"])


@pytest.mark.parametrize("prompt", ["point", "box"])
def test_runtime_matches_the_pytorch_predictor_at_full_resolution(sam2_exports, sam2_reference, prompt):
    import cv2

    from runtimes.python.sam2 import SAM2Inference

    image = cv2.imread(str(SAMPLE))
    h, w = image.shape[:2]
    sam = SAM2Inference(sam2_exports["onnx"][0])
    sam.set_image(image)
    if prompt == "point":
        result, ref = (
            sam.predict(points=[[w / 2, h / 2]]),
            sam2_reference(source=image, points=[[w / 2, h / 2]], labels=[1])[0],
        )
    else:
        box = [w * 0.2, h * 0.2, w * 0.7, h * 0.8]
        result, ref = sam.predict(boxes=[box]), sam2_reference(source=image, bboxes=[box])[0]
    expected = ref.masks.data.numpy().astype(bool)
    got = result.masks[:, 0]
    assert got.shape == expected.shape == (1, h, w)
    assert 0.02 < expected.mean() < 0.98  # a mask with something in it, so the IoU means something
    assert (got & expected).sum() / (got | expected).sum() > 0.99
    np.testing.assert_allclose(result.scores[:, 0], ref.boxes.conf.numpy(), atol=1e-3)


def test_runtime_cli_prints_and_draws(sam2_exports, tmp_path):
    out = tmp_path / "out.jpg"
    cmd = [
        sys.executable,
        "-m",
        "runtimes.python.sam2",
        str(sam2_exports["onnx"][0]),
        str(SAMPLE),
        "--point",
        "240,160",
        "--box",
        "100,60,380,260",
        "--save",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("mask 0: score ") and out.is_file()
    bad = subprocess.run([*cmd[:5], "--point", "240"], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("RuntimeInputError:")
    missing = subprocess.run(
        [*cmd[:3], str(tmp_path / "nope"), str(SAMPLE), "--point", "1,1"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=300,
    )
    assert missing.returncode == 3 and missing.stderr.strip().startswith("ModelLoadError:")


def test_runtime_typed_errors(sam2_exports, tmp_path):
    from runtimes.python.errors import ModelLoadError, RuntimeInputError
    from runtimes.python.sam2 import SAM2Inference

    sam = SAM2Inference(sam2_exports["torchscript"][0])
    with pytest.raises(RuntimeInputError):
        sam.predict(points=[[1, 1]])  # no set_image yet
    copy = tmp_path / "no-decoder"
    shutil.copytree(sam2_exports["torchscript"][0], copy)
    (copy / "decoder.torchscript").unlink()
    with pytest.raises(ModelLoadError):
        SAM2Inference(copy)
    (copy / "metadata.json").write_text('{"model_family": "yolo"}')
    with pytest.raises(ModelLoadError):
        SAM2Inference(copy)


def test_latency_benchmark_prints_its_table(sam2_exports):
    folder = sam2_exports["onnx"][0]
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "sam2_latency.py"),
        "--model-dir",
        str(folder),
        "--rounds",
        "1",
        "--encoder-rounds",
        "1",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    assert rows[0] == "| export | encoder | decoder | predict | predict x3 | predict box |"
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert cells[0] == folder.name and all(float(c) > 0 for c in cells[1:])


def test_report_lists_each_sam2_export(sam2_exports):
    from exportkit.validation.report import write_report

    root = sam2_exports["onnx"][0].parent
    write_report(root, accuracy=False)
    rows = [line for line in (root / "report.md").read_text().splitlines() if line.startswith("| sam2-t")]
    assert sorted(r.split("|")[3].strip() for r in rows) == sorted(FORMATS)
    assert all(r.split("|")[8].strip() == "passed" for r in rows)

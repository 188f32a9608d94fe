"""The export guide's capability matrix, as data: every supported YOLO cell exports and runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, run_export

from exportkit.capabilities import (
    FAMILIES,
    FORMAT_ORDER,
    FULL,
    PARTIAL,
    UNSUPPORTED,
    capability_reason,
    markdown_table,
)
from exportkit.metadata import validate_schema
from exportkit.registry import get_format

# TensorRT needs an NVIDIA GPU (tests/test_format_tensorrt.py covers it up to that check).
PRODUCIBLE_HERE = ("onnx", "coreml", "tflite", "torchscript", "openvino")
ZOO = {
    "yolov8n": "yolov8n",
    "yolov8s": "yolov8s",
    "yolov8m": "yolov8m",
    "yolo11n": "yolo11n",
    "yolo11n-seg": "yolo11n-seg",
    "yolo11n-pose": "yolo11n-pose",
    "yolo-world-v2-s": "yolov8s-worldv2",
}
SHARED_ELSEWHERE = {"sam2-t"}  # tests/test_sam2.py exports each SAM2-t cell once into a shared fixture
CELLS = [
    (f.key, fmt)
    for f in FAMILIES
    if f.key not in SHARED_ELSEWHERE
    for fmt in PRODUCIBLE_HERE
    if f.cells[fmt].status in (FULL, PARTIAL)
]


def test_matrix_matches_the_guide():
    rows = {
        f.title: "".join({FULL: "Y", PARTIAL: "P", UNSUPPORTED: "N"}[f.cells[x].status] for x in FORMAT_ORDER)
        for f in FAMILIES
    }
    assert rows == {
        "YOLOv8n": "YYYYYY",
        "YOLOv8s": "YYYYYY",
        "YOLOv8m": "YYYYYY",
        "YOLO11n": "YYYYYY",
        "YOLO11n-seg": "YYYYYY",
        "YOLO11n-pose": "YYYYYY",
        "YOLO-World-v2-s": "YYNNYY",
        "SAM2-t": "YPNNYP",
    }
    assert all(c.reason for f in FAMILIES for c in f.cells.values() if c.status != FULL)
    assert capability_reason("yolov8s-worldv2", "coreml") and capability_reason("yolov8s-worldv2", "onnx") is None
    assert capability_reason("sam2-t", "onnx") is None and capability_reason("sam2-t", "openvino") is None
    assert "CoreML" in capability_reason("sam2-t", "coreml") and "TFLite" in capability_reason("sam2-t", "tflite")


def test_readme_table_is_generated_from_the_data():
    assert markdown_table() in (ROOT / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("family,fmt", CELLS, ids=[f"{a}-{b}" for a, b in CELLS])
def test_supported_cell_exports_and_runs(tmp_path, family, fmt):
    from exportkit.zoo import build_architecture

    checkpoint = build_architecture(ZOO[family])
    proc = run_export(checkpoint, fmt, tmp_path, {"imgsz": 32}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    validate_schema(metadata)
    assert metadata["export_format"] == fmt and metadata["input_shape"] == [32, 32, 3]
    if family == "yolo-world-v2-s":
        assert metadata["model_variant"] == "open_vocabulary" and metadata["text_input_enabled"] is False
        assert metadata["max_text_length"] == 77
    spec = get_format(fmt)
    if spec.prediction_needs_macos:
        return  # CoreML: the spec is checked by its own tests; prediction needs macOS
    outputs = spec().runner(tmp_path)(np.zeros((1, 3, 32, 32), np.float32))
    assert [list(o.shape)[1:] for o in outputs] == [s[1:] for s in metadata["output_shape"]]


@pytest.mark.slow
def test_world_vocabulary_from_names_and_embeddings(tmp_path):
    from exportkit.zoo import build_architecture

    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(3, 512))
    vocabulary = tmp_path / "vocab.json"
    vocabulary.write_text(json.dumps({"names": ["cat", "dog", "kite"], "embeddings": embeddings.tolist()}))
    proc = run_export(
        build_architecture("yolov8s-worldv2"),
        "onnx",
        tmp_path / "out",
        {"imgsz": 64, "vocabulary": str(vocabulary), "include_validation": True},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metadata = json.loads((tmp_path / "out/metadata.json").read_text())
    assert metadata["class_names"] == ["cat", "dog", "kite"] and metadata["output_shape"][0][1] == 4 + 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"names": ["a"], "embeddings": [[0.0, 1.0]]}))
    proc = run_export(
        build_architecture("yolov8s-worldv2"), "onnx", tmp_path / "bad", {"imgsz": 64, "vocabulary": str(bad)}
    )
    assert proc.returncode == 3 and "embeddings must have shape (1, 512)" in proc.stderr

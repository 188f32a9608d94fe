"""Every artifact passes its format's own checker; a damaged one fails validation (exit 2) naming it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ENV, ROOT

from exportkit.checkers import FORMAT_CHECK, ONNX_CHECKER, check_onnx
from exportkit.errors import ExportError
from exportkit.metadata import read_metadata
from exportkit.registry import ExportFormat, get_format, list_formats

CHECKERS = {
    "onnx": ONNX_CHECKER,
    "tensorrt": "tensorrt.Runtime.deserialize_cuda_engine",
    "coreml": "coremltools.models.MLModel(skip_model_load=True)",
    "tflite": "ai_edge_litert Interpreter.allocate_tensors",
    "torchscript": "torch.jit.load",
    "openvino": "openvino.Core().read_model",
}


@pytest.mark.parametrize("fmt", list_formats())
def test_every_format_declares_its_checker(fmt):
    assert fmt in CHECKERS, f"format {fmt!r} has no checker test"
    assert get_format(fmt).format_checks.__func__ is not ExportFormat.format_checks.__func__


# -- ONNX: graphs ONNX Runtime accepts but onnx.checker refuses (small graphs built here) --------------
def _tiny_model(path: Path, *, out_of_order: bool = False, wrong_output_shape: bool = False) -> Path:
    import onnx
    from onnx import TensorProto, helper

    relu = helper.make_node("Relu", ["x"], ["h"], name="relu")
    neg = helper.make_node("Neg", ["h"], ["y"], name="neg")
    nodes = [neg, relu] if out_of_order else [relu, neg]
    out_shape = [1, 5] if wrong_output_shape else [1, 4]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _ort_runs(path: Path) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.array([[-1, 2, -3, 4]], np.float32)})[0]


def test_onnx_checker_passes_a_valid_graph(tmp_path):
    check = check_onnx(_tiny_model(tmp_path / "ok.onnx"))
    assert check.passed is True and check.input == FORMAT_CHECK and check.criterion == ONNX_CHECKER


@pytest.mark.parametrize("damage", ["out_of_order", "wrong_output_shape"])
def test_onnx_checker_refuses_what_onnx_runtime_accepts(tmp_path, damage):
    path = _tiny_model(tmp_path / "bad.onnx", **{damage: True})
    assert _ort_runs(path).tolist() == [[-0.0, -2.0, -0.0, -4.0]]  # ONNX Runtime loads and runs it
    check = check_onnx(path)
    assert check.passed is False and "bad.onnx" in check.detail
    assert (
        "topologically sorted" if damage == "out_of_order" else "Inferred shape and existing shape differ"
    ) in check.detail


def test_topological_sort_repairs_the_fp16_cast_order(tmp_path):
    """Ultralytics' FP16 conversion appends its input Cast after the nodes that read it: the exporter re-sorts."""
    import onnx

    from exportkit.formats.onnx import topologically_sort

    path = _tiny_model(tmp_path / "m.onnx", out_of_order=True)
    model = onnx.load(str(path))
    topologically_sort(model.graph)
    assert [n.name for n in model.graph.node] == ["relu", "neg"]
    onnx.save(model, str(path))
    assert check_onnx(path).passed is True
    again = onnx.load(str(path))
    topologically_sort(again.graph)  # an ordered graph is left exactly as it is
    assert again.SerializeToString() == model.SerializeToString()


def test_tensorrt_refuses_an_engine_source_onnx_that_fails_the_checker(tmp_path):
    from exportkit.formats.tensorrt import check_source_onnx

    check_source_onnx(_tiny_model(tmp_path / "model.onnx"))  # passes: no error
    with pytest.raises(ExportError, match=r"the ONNX the engine was built from fails onnx\.checker"):
        check_source_onnx(_tiny_model(tmp_path / "model.onnx", wrong_output_shape=True))


@pytest.mark.skipif(Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None, reason="a GPU is present")
def test_tensorrt_check_says_it_did_not_run_without_a_gpu(tmp_path):
    (tmp_path / "model.engine").write_bytes(b"not an engine")
    (check,) = get_format("tensorrt").format_checks(tmp_path, {})
    assert check.passed is None and check.threshold is None and check.detail.startswith("not run: needs an NVIDIA GPU")


# -- real exports of the bundled models (slow; every cell here is one other tests already export) ------
CELLS = [
    *[
        (task, fmt, {})
        for task in ("detect", "segment", "pose")
        for fmt in ("onnx", "torchscript", "openvino", "tflite", "coreml")
    ],
    ("detect", "onnx", {"half": True}),
    ("detect", "openvino", {"half": True}),
    ("detect", "onnx", {"dynamic_axes": True}),
    ("detect", "coreml", {"nms": False, "minimum_deployment_target": "iOS17"}),
    ("pose", "coreml", {"minimum_deployment_target": "iOS14"}),
    *[(task, "tflite", {"int8": True, "include_validation": False}) for task in ("detect", "segment", "pose")],
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "task,fmt,config", CELLS, ids=[f"{t}-{f}-{'-'.join(map(str, c.values())) or 'default'}" for t, f, c in CELLS]
)
def test_real_exports_pass_their_checker(exports, task, fmt, config):
    out = exports.get(task, fmt, **config)
    if config.get("include_validation") is False:
        checks = [vars(c) for c in get_format(fmt).format_checks(out, read_metadata(out))]
    else:
        checks = json.loads((out / "validation.json").read_text())["checks"]
    rows = [c for c in checks if c["input"] == FORMAT_CHECK]
    assert [c["criterion"] for c in rows] == [CHECKERS[fmt]]
    assert all(c["passed"] is True for c in checks if c["input"] in (FORMAT_CHECK, "spec")), rows


def _truncate_bin(folder: Path) -> str:
    path = folder / "model.bin"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return CHECKERS["openvino"]


def _onnx_wrong_output_shape(folder: Path) -> str:
    """Still loads and runs in ONNX Runtime (it warns and falls back to its own shapes): only full_check sees it."""
    import onnx

    model = onnx.load(str(folder / "model.onnx"))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value += 92
    onnx.save(model, str(folder / "model.onnx"))
    _ort_session_loads(folder / "model.onnx")
    return CHECKERS["onnx"]


def _ort_session_loads(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _corrupt_tflite(folder: Path) -> str:
    path = folder / "model.tflite"
    data = bytearray(path.read_bytes())
    data[:64] = bytes(64)  # the flatbuffer's root table offset and file identifier
    path.write_bytes(bytes(data))
    return CHECKERS["tflite"]


def _break_mlpackage_spec(folder: Path) -> str:
    (spec,) = (folder / "model.mlpackage").rglob("model.mlmodel")
    spec.write_bytes(spec.read_bytes()[:100])  # a protobuf cut short
    return CHECKERS["coreml"]


def _truncate_torchscript(folder: Path) -> str:
    path = folder / "model.torchscript"
    assert zipfile.is_zipfile(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    return CHECKERS["torchscript"]


DAMAGE = {
    "onnx": _onnx_wrong_output_shape,
    "openvino": _truncate_bin,
    "tflite": _corrupt_tflite,
    "coreml": _break_mlpackage_spec,
    "torchscript": _truncate_torchscript,
}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", sorted(DAMAGE))
def test_damaged_artifact_fails_validation_naming_its_checker(exports, tmp_path, fmt):
    folder = tmp_path / fmt
    shutil.copytree(exports.get("detect", fmt), folder)
    (folder / "validation.json").unlink()
    checker = DAMAGE[fmt](folder)
    env = {**ENV, "YOLO_CONFIG_DIR": os.environ.get("YOLO_CONFIG_DIR", str(ROOT / ".cache" / "ultralytics"))}
    proc = subprocess.run(
        [sys.executable, "-m", "exportkit", "validate", str(folder), "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    errors = proc.stderr.splitlines()  # the converters' own chatter goes to stdout: stderr is this one line
    assert len(errors) == 1 and errors[0].startswith("exportkit: error: validation failed") and checker in errors[0]
    assert "Traceback" not in proc.stderr
    validation = json.loads((folder / "validation.json").read_text())
    failed = [c for c in validation["checks"] if c["passed"] is False]
    assert validation["status"] == "failed" and [(c["input"], c["criterion"]) for c in failed] == [
        (FORMAT_CHECK, checker)
    ]
    assert validation["skipped"] == "numeric parity not run: the artifact fails its format's checker"

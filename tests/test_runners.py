"""Validation runs the code a deployment runs: the ONNX, OpenVINO and LiteRT runners are the Python runtime's
backends (exportkit/formats/_backend.py), so their output matching, fixed-batch pieces and input dtype are
what parity checks.

Fast tests use a tiny hand-built ONNX model (and its OpenVINO IR); the slow one validates real exports of the
bundled detector in this process with a call counter on the runtime's backend.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_runtime_python import TINY, TINY_BIAS, make_metadata, write_tiny_onnx

from exportkit.errors import EnvironmentUnsupported, RuntimeRefused
from exportkit.registry import get_format
from exportkit.runtime_import import runtime_module


@pytest.fixture
def counted(monkeypatch):
    """Every Backend.run call, as (backend class name, batch shape)."""
    base = runtime_module("backends").Backend
    calls: list[tuple[str, tuple]] = []
    original = base.run

    def run(self, batch):
        calls.append((type(self).__name__, batch.shape))
        return original(self, batch)

    monkeypatch.setattr(base, "run", run)
    return calls


def _folder(tmp_path, batch: int | str = "N", metadata: dict | None = None, name: str = "tiny"):
    folder = tmp_path / name
    folder.mkdir()
    write_tiny_onnx(folder / "model.onnx", batch=batch)
    fixed = batch if isinstance(batch, int) else -1
    meta = metadata or make_metadata(batch=fixed, anchors=(TINY // 8) ** 2)
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def _expected(n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(TINY_BIAS, np.float32)[None, :, None], (n, len(TINY_BIAS), (TINY // 8) ** 2))


def test_onnx_runner_is_the_runtime_backend_and_runs_a_fixed_batch_model_in_pieces(tmp_path, counted):
    run = get_format("onnx")().runner(_folder(tmp_path, batch=1))
    assert type(run.backend).__name__ == "OnnxRuntimeBackend"
    (out,) = run(np.zeros((3, 3, TINY, TINY), np.float32))  # a batch of 3 on a batch-1 model: 3 pieces
    np.testing.assert_allclose(out, _expected(3), rtol=1e-6)
    assert counted == [("OnnxRuntimeBackend", (1, 3, TINY, TINY))] * 3


def test_onnx_runner_pads_the_last_piece_of_a_fixed_batch(tmp_path, counted):
    run = get_format("onnx")().runner(_folder(tmp_path, batch=2))
    (out,) = run(np.zeros((3, 3, TINY, TINY), np.float32))  # 2 + 1 padded to 2, padding dropped
    assert out.shape == (3, len(TINY_BIAS), (TINY // 8) ** 2)
    assert [shape for _, shape in counted] == [(2, 3, TINY, TINY)] * 2


def test_openvino_runner_is_the_runtime_backend(tmp_path, counted):
    import openvino as ov

    folder = _folder(tmp_path)
    meta = json.loads((folder / "metadata.json").read_text())
    ov.save_model(ov.convert_model(str(folder / "model.onnx")), str(folder / "model.xml"), compress_to_fp16=False)
    (folder / "model.onnx").unlink()
    (folder / "metadata.json").write_text(json.dumps({**meta, "export_format": "openvino"}))
    run = get_format("openvino")().runner(folder)
    (out,) = run(np.zeros((2, 3, TINY, TINY), np.float32))
    np.testing.assert_allclose(out, _expected(2), rtol=1e-5)
    assert counted == [("OpenVinoBackend", (2, 3, TINY, TINY))]


def test_runner_outputs_follow_metadata_names_not_model_order(tmp_path):
    """metadata.json lists outputs by name; the backend's matching (not position) decides which is which."""
    folder = _folder(tmp_path)
    meta = json.loads((folder / "metadata.json").read_text())
    meta["outputs"][0]["name"] = "renamed"  # a name the model does not have: matched by rank instead
    meta["output_layout"]["predictions"]["output"] = "renamed"
    (folder / "metadata.json").write_text(json.dumps(meta))
    (out,) = get_format("onnx")().runner(folder)(np.zeros((1, 3, TINY, TINY), np.float32))
    np.testing.assert_allclose(out, _expected(1), rtol=1e-6)


def test_metadata_the_runtime_refuses_is_a_validation_failure_not_a_skip(tmp_path):
    meta = make_metadata(anchors=(TINY // 8) ** 2)
    meta["num_classes"] = 7  # class_names lists 3
    folder = _folder(tmp_path, metadata=meta)
    with pytest.raises(RuntimeRefused, match="num_classes"):
        get_format("onnx")().runner(folder)
    assert not issubclass(RuntimeRefused, EnvironmentUnsupported)  # the harness records it as a failed check


def test_a_missing_backend_package_is_environment_unsupported(tmp_path, monkeypatch):
    backends = runtime_module("backends")
    errors = runtime_module("errors")

    def missing(export_format):
        raise errors.BackendUnavailable("onnxruntime", export_format)

    monkeypatch.setattr(backends, "backend_for", missing)
    with pytest.raises(EnvironmentUnsupported, match="pip install onnxruntime"):
        get_format("onnx")().runner(_folder(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize(
    "fmt, backend", [("onnx", "OnnxRuntimeBackend"), ("openvino", "OpenVinoBackend"), ("tflite", "LiteRtBackend")]
)
def test_validating_an_export_goes_through_the_runtime_backend(exports, tmp_path, counted, fmt, backend):
    from exportkit.validation import validate_folder

    folder = tmp_path / fmt
    shutil.copytree(exports.get("detect", fmt), folder)
    report = validate_folder(folder)
    assert report.status == "passed", report.summary()
    assert counted and {name for name, _ in counted} == {backend}
    # every parity input went through it: the sample images, the random tensor (and a batch where dynamic)
    parity_inputs = [name for name in report.inputs if name.startswith(("image:", "random", "batch"))]
    assert len(parity_inputs) >= 5 and len(counted) >= len(parity_inputs)

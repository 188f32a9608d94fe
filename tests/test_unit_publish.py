"""Publish and staging on hand-made folders: CoreML's folder artifact, OpenVINO's two files."""

from __future__ import annotations

import json
import os

import pytest

from exportkit import pipeline
from exportkit.errors import ConfigError, ExportError
from exportkit.publish import STAGING_PREFIX, publish, remove_stale
from exportkit.registry import get_format

OPENVINO = get_format("openvino")
COREML = get_format("coreml")
ONNX = get_format("onnx")


def _metadata(folder, fmt, **extra) -> str:
    files = [p for p in fmt.artifact_paths(folder)]
    paths = [f"{p.name}/weights.bin" if fmt.files[0].endswith("/") else p.name for p in files]
    return json.dumps({"artifacts": [{"path": path} for path in paths], **extra})


def staged(tmp_path, fmt=OPENVINO, validation=True):
    staging = tmp_path / "out" / f"{STAGING_PREFIX}x"
    for path in fmt.artifact_paths(staging):
        if fmt.files[0].endswith("/"):
            path.mkdir(parents=True)
            (path / "weights.bin").write_bytes(b"new bin")
            (path / "Manifest.json").write_text("new manifest")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"new")
    (staging / "metadata.json").write_text(_metadata(staging, fmt, new=True))
    if validation:
        (staging / "validation.json").write_text('{"status": "passed"}')
    return staging


def test_publish_moves_artifacts_and_metadata_replacing_the_old_export(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, COREML)
    old = out / "model.mlpackage"
    old.mkdir(parents=True)
    (old / "weights.bin").write_bytes(b"old bin")
    (old / "stale.txt").write_text("from the old export")
    (out / "metadata.json").write_text(_metadata(out, COREML, old=True))
    publish(staging, out)
    assert (old / "weights.bin").read_bytes() == b"new bin" and (old / "Manifest.json").read_text() == "new manifest"
    assert not (old / "stale.txt").exists()  # the old folder is replaced, not merged
    assert json.loads((out / "metadata.json").read_text())["new"] is True
    assert (out / "validation.json").read_text() == '{"status": "passed"}'
    assert not staging.exists() and not old.is_symlink()
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "model.mlpackage", "validation.json"]


def test_publish_replaces_both_files_of_a_two_file_artifact(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, OPENVINO, validation=False)
    (out / "model.bin").write_bytes(b"old")
    (out / "model.xml").write_bytes(b"old")
    (out / "metadata.json").write_text(_metadata(out, OPENVINO))
    publish(staging, out)
    assert (out / "model.bin").read_bytes() == b"new" and (out / "model.xml").read_bytes() == b"new"
    assert not any(p.is_symlink() for p in out.iterdir())


def test_publish_without_validation_drops_the_old_report(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, ONNX, validation=False)
    (out / "validation.json").write_text('{"status": "passed", "for": "the old model"}')
    publish(staging, out)
    assert not (out / "validation.json").exists()
    assert (out / ONNX.artifact_paths(out)[0].name).read_bytes() == b"new"


def test_the_export_changes_in_one_rename(tmp_path, monkeypatch):
    """Of every rename a publish makes, only one changes which export the folder's entries resolve to: the
    switch of .exportkit-current (the kill test in test_concurrency.py proves the states around it)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"old")
    (out / "metadata.json").write_text(_metadata(out, ONNX, old=True))
    staging = staged(tmp_path, ONNX, validation=False)
    states = []
    real = os.replace

    def replace(a, b):
        real(a, b)
        states.append(json.loads((out / "metadata.json").read_text()).get("new", False))

    monkeypatch.setattr("exportkit.publish.os.replace", replace)
    publish(staging, out)
    assert states and states == sorted(states)  # old (False) ... until one step, new (True) after it
    assert states.count(False) >= 1 and states.count(True) >= 1


def test_clean_staging_keeps_only_declared_artifacts(tmp_path):
    staging = staged(tmp_path, ONNX, validation=False)
    (staging / "model.pt").write_bytes(b"copy")
    (staging / "junk").mkdir()
    (staging / "junk" / "x").write_text("x")
    pipeline._clean_staging(ONNX, staging)
    assert sorted(p.name for p in staging.iterdir()) == sorted(p.name for p in ONNX.artifact_paths(staging))
    pipeline._check_files(ONNX, staging)
    for path in ONNX.artifact_paths(staging):
        path.unlink()
    with pytest.raises(ExportError, match=f"onnx export wrote no {ONNX.artifact_paths(staging)[0].name}"):
        pipeline._check_files(ONNX, staging)


def test_stale_staging_folders_are_removed(tmp_path):
    (tmp_path / f"{STAGING_PREFIX}old" / "sub").mkdir(parents=True)  # no owner in its name: an older exportkit's
    (tmp_path / "keep").mkdir()
    remove_stale(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_output_dir_checks(tmp_path):
    assert pipeline.check_output_dir(tmp_path / "new" / "deeper") == (tmp_path / "new" / "deeper").resolve()
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        pipeline.check_output_dir(file)
    with pytest.raises(ConfigError, match=r"is not a directory path \(.*file is a file\)"):
        pipeline.check_output_dir(file / "sub")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="is not writable"):
            pipeline.check_output_dir(locked / "out")

"""The pipeline's publish and staging on hand-made folders: CoreML's folder artifact, OpenVINO's two files."""

from __future__ import annotations

import os

import pytest

from exportkit import pipeline
from exportkit.errors import ConfigError, ExportError
from exportkit.registry import get_format

OPENVINO = get_format("openvino")
COREML = get_format("coreml")
ONNX = get_format("onnx")


def staged(tmp_path, fmt=OPENVINO, validation=True):
    staging = tmp_path / "out" / f"{pipeline.STAGING_PREFIX}x"
    for path in fmt.artifact_paths(staging):
        if fmt.files[0].endswith("/"):
            path.mkdir(parents=True)
            (path / "weights.bin").write_bytes(b"new bin")
            (path / "Manifest.json").write_text("new manifest")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"new")
    (staging / "metadata.json").write_text('{"new": true}')
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
    (out / "metadata.json").write_text('{"old": true}')
    pipeline.publish(staging, out, COREML)
    assert (old / "weights.bin").read_bytes() == b"new bin" and (old / "Manifest.json").read_text() == "new manifest"
    assert not (old / "stale.txt").exists()  # the old folder is replaced, not merged
    assert (out / "metadata.json").read_text() == '{"new": true}'
    assert (out / "validation.json").read_text() == '{"status": "passed"}'
    assert not (staging / "metadata.json").exists()


def test_publish_replaces_both_files_of_a_two_file_artifact(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, OPENVINO, validation=False)
    (out / "model.bin").write_bytes(b"old")
    pipeline.publish(staging, out, OPENVINO)
    assert (out / "model.bin").read_bytes() == b"new" and (out / "model.xml").read_bytes() == b"new"


def test_publish_without_validation_drops_the_old_report(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, ONNX, validation=False)
    (out / "validation.json").write_text('{"status": "passed", "for": "the old model"}')
    pipeline.publish(staging, out, ONNX)
    assert not (out / "validation.json").exists()
    assert (out / ONNX.artifact_paths(out)[0].name).read_bytes() == b"new"


def test_metadata_is_moved_last(tmp_path, monkeypatch):
    out = tmp_path / "out"
    staging = staged(tmp_path)
    moves = []
    real = os.replace
    monkeypatch.setattr(pipeline.os, "replace", lambda a, b: (moves.append(os.path.basename(b)), real(a, b)))
    pipeline.publish(staging, out, OPENVINO)
    assert moves == ["model.xml", "model.bin", "validation.json", "metadata.json"]


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
    (tmp_path / f"{pipeline.STAGING_PREFIX}old" / "sub").mkdir(parents=True)
    (tmp_path / "keep").mkdir()
    pipeline.remove_stale_staging(tmp_path)
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

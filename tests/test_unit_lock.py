"""`doit verify` and the cell key on hand-made folders: no export runs here.

A lock entry and an artifact folder are written by the test; ROOT is pointed at a temporary project so
relative paths resolve there. The rebuild path is driven through a fake ``subprocess.call``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from exportkit import project as ek_project
from exportkit.build import cell as build
from exportkit.build import lock
from exportkit.build.cell import (
    Cell,
    artifact_drift,
    calibration_identity,
    canonical,
    cell_key,
    checkpoint_identity,
    is_current,
)
from exportkit.build.hashing import HashCache


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root with a checkpoint, an OpenVINO-like two-file artifact and a lock pinning both."""
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.pt").write_bytes(b"weights")
    out = tmp_path / "exports" / "m" / "openvino-fp32"
    out.mkdir(parents=True)
    files = {"model.xml": b"<xml/>", "model.bin": b"\x00\x01\x02"}
    for name, data in files.items():
        (out / name).write_bytes(data)
    entry = {
        "model": "m",
        "format": "openvino",
        "precision": "fp32",
        "output_dir": "exports/m/openvino-fp32",
        "config": {"imgsz": 32},
        "model_config": {"name": "m", "checkpoint": "models/m.pt"},
        "checkpoint": {"path": "models/m.pt", "sha256": sha(b"weights")},
        "artifacts": {name: sha(data) for name, data in files.items()},
        "versions": {},
    }
    path = tmp_path / "exports.lock"
    path.write_text(json.dumps({"lock_version": 1, "matrix": "default", "cells": {"m-openvino-fp32": entry}}))
    return tmp_path, out, path


def test_verify_passes_on_an_untouched_folder(project, std):
    root, out, path = project
    assert std.run(lock.verify_lock, lock=str(path))
    assert std.readouterr().out == "ok    m-openvino-fp32\nverify: 1 of 1 cells match exports.lock\n"


def test_verify_catches_a_deleted_artifact(project, std):
    root, out, path = project
    (out / "model.xml").unlink()
    assert not std.run(lock.verify_lock, lock=str(path))
    captured = std.readouterr()
    assert captured.err == "DRIFT m-openvino-fp32: model.xml: missing\n"
    assert captured.out == "verify: 0 of 1 cells match exports.lock\n"


def test_verify_catches_a_change_to_the_second_file_of_a_two_file_artifact(project, std):
    root, out, path = project
    (out / "model.bin").write_bytes(b"\x00\x01\x03")  # same size, one byte differs
    assert not std.run(lock.verify_lock, lock=str(path))
    assert std.readouterr().err == "DRIFT m-openvino-fp32: model.bin: sha256 differs from the lock\n"


def test_verify_catches_a_drifted_or_missing_checkpoint(project, std):
    root, out, path = project
    (root / "models" / "m.pt").write_bytes(b"weights, retrained")
    assert not std.run(lock.verify_lock, lock=str(path))
    assert std.readouterr().err == "DRIFT m-openvino-fp32: checkpoint models/m.pt: sha256 differs from the lock\n"
    (root / "models" / "m.pt").unlink()
    assert not std.run(lock.verify_lock, lock=str(path))
    assert std.readouterr().err == "DRIFT m-openvino-fp32: checkpoint models/m.pt: missing\n"


def test_zoo_checkpoints_are_not_pinned_by_bytes(project):
    root, out, path = project
    entry = {
        "model_config": {"checkpoint": "zoo:yolo11n"},
        "checkpoint": {"path": ".cache/zoo/yolo11n-640.pt", "sha256": "x"},
    }
    assert lock.verify_checkpoint(entry) == []


def test_verify_without_a_lock_says_how_to_make_one(tmp_path, monkeypatch, std):
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    assert not std.run(lock.verify_lock, lock=str(tmp_path / "none.lock"))
    err = std.readouterr().err
    assert "no lock file at" in err and "run `doit lock` first" in err
    assert not std.run(lock.verify_lock, default_lock=str(tmp_path / "none.lock"))


def test_verify_counts_every_failing_cell(project, std):
    root, out, path = project
    document = json.loads(path.read_text())
    second = dict(document["cells"]["m-openvino-fp32"], output_dir="exports/m/elsewhere")
    document["cells"]["m-other"] = second
    path.write_text(json.dumps(document))
    assert not std.run(lock.verify_lock, lock=str(path))
    assert "verify: 1 of 2 cells match" in std.readouterr().out


class FakeCalls:
    """Stands in for subprocess.call: the export writes ``files`` into --output_dir, validation returns ``check``."""

    def __init__(self, files: dict[str, bytes], export_code: int = 0, check: int = 0):
        self.files, self.export_code, self.check, self.commands = files, export_code, check, []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        self.kwargs = getattr(self, "kwargs", []) + [kwargs]
        if "--output_dir" in command:
            out = Path(command[command.index("--output_dir") + 1])
            for name, data in self.files.items():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(data)
            return self.export_code
        return self.check


def _without_env(kwargs: list[dict]) -> list[dict]:
    """The keyword arguments of subprocess calls, less the environment (checked once: offline, same project)."""
    for kw in kwargs:
        assert kw["env"]["YOLO_OFFLINE"] == "1" and kw["env"]["EXPORTKIT_PROJECT"] == str(ek_project.root())
    return [{k: v for k, v in kw.items() if k != "env"} for kw in kwargs]


def _rebuild(project, monkeypatch, fake, precision="fp32", fmt="openvino"):
    root, out, path = project
    document = json.loads(path.read_text())
    document["cells"]["m-openvino-fp32"].update(precision=precision, format=fmt)
    path.write_text(json.dumps(document))
    monkeypatch.setattr(lock.subprocess, "call", fake)
    return lock.verify_lock(rebuild=True, lock=str(path))


def test_rebuild_compares_bytes_where_the_format_is_reproducible(project, monkeypatch, std):
    same = {"model.xml": b"<xml/>", "model.bin": b"\x00\x01\x02"}
    fake = FakeCalls(same)
    assert std.run(_rebuild, project, monkeypatch, fake)
    assert len(fake.commands) == 1  # bytes compared: no validation run
    export = fake.commands[0]
    scratch = export[export.index("--output_dir") + 1]
    assert export[:3] == [lock.sys.executable, "-m", "exportkit.cli"]  # this project has no export.py: the module
    assert export[export.index("--checkpoint_path") + 1] == str(project[0] / "models" / "m.pt")
    assert (
        Path(scratch).name.startswith("exportkit-verify-") and not Path(scratch).exists()
    )  # a scratch folder, removed
    assert _without_env(fake.kwargs) == [
        {"stdout": lock.subprocess.DEVNULL, "stderr": lock.subprocess.DEVNULL, "cwd": project[0]}
    ]
    assert fake.commands[0][fake.commands[0].index("--export_format") + 1] == "openvino"
    assert json.loads(fake.commands[0][fake.commands[0].index("--export_config") + 1]) == {"imgsz": 32}
    different = FakeCalls({**same, "model.bin": b"\x09"})
    assert not std.run(_rebuild, project, monkeypatch, different)
    assert std.readouterr().err == "DRIFT m-openvino-fp32: model.bin: sha256 differs from the lock (rebuild)\n"


def test_rebuild_validates_cells_that_are_not_byte_reproducible(project, monkeypatch, std):
    from exportkit.registry import get_format

    assert "int8" not in get_format("tflite").reproducible  # the guide: INT8 calibration is not bit-stable
    other_bytes = {"model.xml": b"<other/>", "model.bin": b"\x07"}
    passes = FakeCalls(other_bytes, check=0)
    assert std.run(_rebuild, project, monkeypatch, passes, precision="int8", fmt="tflite")
    scratch = passes.commands[0][passes.commands[0].index("--output_dir") + 1]
    assert passes.commands[1] == [lock.sys.executable, "-m", "exportkit", "validate", scratch]
    assert _without_env(passes.kwargs)[1] == {"stdout": lock.subprocess.DEVNULL, "cwd": project[0]}
    fails = FakeCalls(other_bytes, check=2)
    assert not std.run(_rebuild, project, monkeypatch, fails, precision="int8", fmt="tflite")
    assert std.readouterr().err == "DRIFT m-openvino-fp32: rebuild does not pass validation\n"


def test_rebuild_reports_a_failed_export(project, monkeypatch, std):
    assert not std.run(_rebuild, project, monkeypatch, FakeCalls({}, export_code=1))
    assert std.readouterr().err == "DRIFT m-openvino-fp32: rebuild failed (exit 1)\n"


def test_no_rebuild_when_the_folder_already_drifted(project, monkeypatch, std):
    root, out, path = project
    (out / "model.bin").unlink()
    fake = FakeCalls({})
    assert not std.run(_rebuild, project, monkeypatch, fake)
    assert fake.commands == []


# -- the cell key: each part that decides the bytes makes the cell stale ------------------------------
@pytest.fixture
def cell(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    (tmp_path / "m.pt").write_bytes(b"weights")
    return Cell(
        name="m-onnx-fp32",
        model={"name": "m", "checkpoint": "m.pt", "imgsz": 32},
        format={"name": "onnx"},
        precision="fp32",
        validation={},
        output_dir=str(tmp_path / "exports" / "m" / "onnx-fp32"),
        export_config={"opset": 17, "imgsz": 32},
    )


def key(cell, tmp_path) -> str:
    return canonical(cell_key(cell, HashCache(tmp_path / "h.json")))


def test_key_changes_with_each_part(cell, tmp_path):
    base = key(cell, tmp_path)
    assert json.loads(base)["cell"] == "m-onnx-fp32" and json.loads(base)["format"] == "onnx"
    assert key(cell, tmp_path) == base  # deterministic
    for change in (
        {"export_config": {"opset": 18, "imgsz": 32}},
        {"name": "m-onnx-fp16"},
        {"format": {"name": "openvino"}},
    ):
        other = Cell(**{**build.as_dict(cell), **change})
        assert key(other, tmp_path) != base, change
    (tmp_path / "m.pt").write_bytes(b"weights, retrained")
    assert key(cell, tmp_path) != base


def test_checkpoint_identity(cell, tmp_path):
    hashes = HashCache(tmp_path / "h.json")
    assert checkpoint_identity(cell.model, hashes) == sha(b"weights")
    assert checkpoint_identity({"checkpoint": "gone.pt"}, hashes) == f"missing:{tmp_path / 'gone.pt'}"
    absolute = tmp_path / "abs.pt"
    absolute.write_bytes(b"a")
    assert checkpoint_identity({"checkpoint": str(absolute)}, hashes) == sha(b"a")


def test_zoo_identity_names_what_builds_it(monkeypatch):
    from importlib.metadata import version

    hashes = HashCache(Path("/nonexistent/h.json"))
    n640 = checkpoint_identity({"checkpoint": "zoo:yolo11n", "imgsz": 640}, hashes)
    assert n640 == f"zoo:yolo11n@640/ultralytics-{version('ultralytics')}"
    assert checkpoint_identity({"checkpoint": "zoo:yolo11n", "imgsz": 320}, hashes) != n640
    assert checkpoint_identity({"checkpoint": "zoo:yolo11s", "imgsz": 640}, hashes) != n640
    monkeypatch.setattr(build, "version", lambda package: "99.0")
    assert (
        checkpoint_identity({"checkpoint": "zoo:yolo11n", "imgsz": 640}, hashes) == "zoo:yolo11n@640/ultralytics-99.0"
    )


def test_zoo_checkpoint_path(monkeypatch):
    from exportkit.zoo import DEFAULT_CACHE

    assert build.checkpoint_path({"checkpoint": "zoo:yolo11n", "imgsz": 320}) == DEFAULT_CACHE / "yolo11n-320.pt"
    assert build.checkpoint_path({"checkpoint": "zoo:yolo11n"}) == DEFAULT_CACHE / "yolo11n-640.pt"


def test_int8_rebuilds_when_its_calibration_images_change(cell, tmp_path):
    images = tmp_path / "calib"
    (images / "sub").mkdir(parents=True)
    (images / "a.jpg").write_bytes(b"a")
    (images / "sub" / "b.jpg").write_bytes(b"b")
    int8 = Cell(**{**build.as_dict(cell), "precision": "int8", "export_config": {"calibration_data": str(images)}})
    hashes = HashCache(tmp_path / "h.json")
    first = calibration_identity(int8, hashes)
    assert first == f"{sha(b'a')[:16]},{sha(b'b')[:16]}"
    (images / "sub" / "b.jpg").write_bytes(b"b, edited")
    assert calibration_identity(int8, HashCache(tmp_path / "h.json")) != first
    (images / "c.jpg").write_bytes(b"c")
    assert len(calibration_identity(int8, HashCache(tmp_path / "h.json")).split(",")) == 3
    single = Cell(**{**build.as_dict(int8), "export_config": {"calibration_data": str(images / "a.jpg")}})
    assert calibration_identity(single, hashes) == sha(b"a")[:16]
    generated = Cell(**{**build.as_dict(int8), "export_config": {}})
    assert calibration_identity(generated, hashes) == "generated-shapes"
    assert calibration_identity(cell, hashes) is None  # fp32 does not calibrate: a folder change is no rebuild
    key_before = canonical(cell_key(int8, HashCache(tmp_path / "h2.json")))
    (images / "a.jpg").write_bytes(b"a, edited")
    assert canonical(cell_key(int8, HashCache(tmp_path / "h3.json"))) != key_before


def test_key_changes_with_a_library_version(cell, tmp_path, monkeypatch):
    base = key(cell, tmp_path)
    found = build.library_versions("onnx")
    assert {"exportkit", "ultralytics", "torch", "onnx", "onnxruntime"} <= set(found)
    monkeypatch.setattr("importlib.metadata.version", lambda package: "0.0.0")
    assert key(cell, tmp_path) != base


def _built(cell, tmp_path, files: dict[str, bytes]):
    out = cell.out
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    metadata = {"artifacts": [{"path": name, "sha256": sha(data)} for name, data in files.items()]}
    (out / "metadata.json").write_text(json.dumps(metadata))
    hashes = HashCache(build.hash_cache_path(out))
    (out / build.STATE_FILE).write_text(canonical(cell_key(cell, hashes)) + "\n")
    return out


def test_is_current_until_something_drifts(cell, tmp_path):
    assert build.hash_cache_path(cell.out) == tmp_path / "exports" / ".hashes.json"
    out = _built(cell, tmp_path, {"model.onnx": b"graph", "extra.bin": b"weights"})
    hashes = lambda: HashCache(build.hash_cache_path(out))  # noqa: E731
    assert is_current(cell, hashes()) and artifact_drift(out, hashes()) is None
    (out / "extra.bin").write_bytes(b"weightz")
    assert artifact_drift(out, hashes()) == "extra.bin changed on disk (sha256 differs from metadata.json)"
    assert not is_current(cell, hashes())
    (out / "extra.bin").unlink()
    assert artifact_drift(out, hashes()) == "extra.bin missing"
    (out / "metadata.json").write_text("{not json")
    assert artifact_drift(out, hashes()) == "metadata.json unreadable"
    (out / "metadata.json").unlink()
    assert artifact_drift(out, hashes()) == "metadata.json missing"


def test_is_current_needs_the_same_key(cell, tmp_path):
    out = _built(cell, tmp_path, {"model.onnx": b"graph"})
    changed = Cell(**{**build.as_dict(cell), "export_config": {"opset": 18, "imgsz": 32}})
    assert not is_current(changed, HashCache(build.hash_cache_path(out)))
    (out / build.STATE_FILE).unlink()
    assert not is_current(cell, HashCache(build.hash_cache_path(out)))


def test_hash_cache_reuses_digests_until_size_or_mtime_change(tmp_path):
    file = tmp_path / "f.bin"
    file.write_bytes(b"one")
    cache = HashCache(tmp_path / "cache" / "h.json")
    assert cache.sha256(file) == sha(b"one") and cache.dirty
    cache.save()
    assert not cache.dirty and json.loads((tmp_path / "cache" / "h.json").read_text())[str(file.resolve())][2] == sha(
        b"one"
    )
    stat = file.stat()
    file.write_bytes(b"two")  # same size; the stamp is restored: the cache answers without reading
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = HashCache(tmp_path / "cache" / "h.json")
    assert again.sha256(file) == sha(b"one") and not again.dirty
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert again.sha256(file) == sha(b"two") and again.dirty
    file.write_bytes(b"three")
    assert again.sha256(file) == sha(b"three")
    (tmp_path / "cache" / "h.json").write_text("{broken")
    assert HashCache(tmp_path / "cache" / "h.json").entries == {}
    untouched = HashCache(tmp_path / "never" / "h.json")
    untouched.save()
    assert not (tmp_path / "never").exists()  # nothing to write: no file, no folder
    assert not list((tmp_path / "cache").glob(".hashes-*"))  # the atomic write left no temporary behind


# -- writing the lock ---------------------------------------------------------------------------------
def test_write_lock_pins_current_cells_and_refuses_stale_ones(cell, tmp_path, monkeypatch, std):
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    out = _built(cell, tmp_path, {"model.onnx": b"graph"})
    metadata = json.loads((out / "metadata.json").read_text())
    metadata["checkpoint"] = {"sha256": sha(b"weights")}
    (out / "metadata.json").write_text(json.dumps(metadata))
    path = tmp_path / "exports.lock"
    assert std.run(lock.write_lock, [build.as_dict(cell)], "default", path)
    document = json.loads(path.read_text())
    assert document["lock_version"] == lock.LOCK_VERSION == 1 and document["matrix"] == "default"
    entry = document["cells"]["m-onnx-fp32"]
    assert entry["model"] == "m" and entry["format"] == "onnx" and entry["precision"] == "fp32"
    assert entry["output_dir"] == "exports/m/onnx-fp32"  # relative to the project: the lock travels with it
    assert entry["checkpoint"] == {"path": "m.pt", "sha256": sha(b"weights")}
    assert entry["artifacts"] == {"model.onnx": sha(b"graph")}
    assert entry["config"] == cell.export_config and entry["model_config"] == cell.model
    assert entry["versions"] == build.library_versions("onnx")
    assert std.readouterr().out == f"wrote {path} (1 cells)\n"
    assert (
        path.read_text().endswith("}\n") and '\n  "cells": {\n' in path.read_text()
    )  # reviewable: 2-space indent, one key a line
    assert std.run(lock.verify_lock, lock=str(path))  # what was written verifies
    (out / "model.onnx").write_bytes(b"edited")
    path.unlink()
    assert not std.run(lock.write_lock, [build.as_dict(cell)], "default", path)
    assert not path.exists()
    assert (
        std.readouterr().err
        == "lock: not locking, these cells are not built with their current config: m-onnx-fp32; run `doit export`\n"
    )


def test_paths_outside_the_project_stay_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path / "project"))
    assert ek_project.shown(tmp_path / "elsewhere" / "x") == str(
        tmp_path / "elsewhere" / "x"
    )  # what lock entries record
    assert ek_project.shown(tmp_path / "project" / "a" / "b") == "a/b"


def test_report_runs_the_report_command(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(lock.subprocess, "call", lambda command, **kw: (calls.append((command, kw)), 0)[1])
    assert lock.run_report("exports")
    assert [(c, _without_env([kw])[0]) for c, kw in calls] == [
        ([lock.sys.executable, "-m", "exportkit", "report", "exports"], {"cwd": ek_project.root()})
    ]
    monkeypatch.setattr(lock.subprocess, "call", lambda command, **kw: 1)
    assert not lock.run_report("exports")


def test_hash_cache_writes_its_temporary_beside_the_file(tmp_path, monkeypatch):
    from exportkit.build import hashing

    made = []
    real = hashing.tempfile.mkstemp
    monkeypatch.setattr(hashing.tempfile, "mkstemp", lambda **kw: (made.append(kw), real(**kw))[1])
    file = tmp_path / "f"
    file.write_bytes(b"x")
    cache = HashCache(tmp_path / "a" / "b" / "h.json")  # parents created
    cache.sha256(file)
    cache.save()
    assert made == [{"dir": tmp_path / "a" / "b", "prefix": ".hashes-"}]
    assert (tmp_path / "a" / "b" / "h.json").exists() and not cache.dirty


def test_hash_cache_saves_into_an_existing_folder(tmp_path):
    from exportkit.build.cell import canonical

    (tmp_path / "f").write_bytes(b"abc")
    cache = HashCache(tmp_path / "h.json")  # its folder exists already
    digest = cache.sha256(tmp_path / "f")
    cache.save()
    assert HashCache(tmp_path / "h.json").entries[str((tmp_path / "f").resolve())][2] == digest
    # the key's text form: sorted keys, no spaces, so equal keys compare equal as text whatever their order
    assert canonical({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == '{"a":[1,{"c":3,"d":2}],"b":1}'


def test_metadata_without_an_artifact_list_has_no_drift(tmp_path):
    (tmp_path / "metadata.json").write_text("{}")
    assert artifact_drift(tmp_path, HashCache(tmp_path / "h.json")) is None

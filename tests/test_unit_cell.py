"""The cell owns its state: one hash cache per output root (wherever its folders are), drift found by one
comparison for the build and for `doit verify`, the guide's command line for local runs and for rebuilds."""

from __future__ import annotations

import hashlib
import json

from exportkit.build import runner
from exportkit.build.cell import Cell, file_drift
from exportkit.build.hashing import HashCache, hash_cache_file


def _cell(tmp_path, out, root) -> Cell:
    return Cell(
        "m-onnx-fp32",
        {"name": "m", "checkpoint": "m.pt"},
        {"name": "onnx"},
        "fp32",
        {},
        str(out),
        {"opset": 17},
        output_root=str(root),
    )


def test_the_hash_cache_follows_the_output_root_not_the_folder_names(tmp_path, monkeypatch):
    from exportkit.build import tasks

    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    monkeypatch.setenv("EXPORTKIT_OUTPUT", str(tmp_path / "exports"))
    tasks.hashes.cache_clear()
    cell = _cell(tmp_path, tmp_path / "exports" / "nested" / "deeper" / "m", tmp_path / "exports")
    assert cell.hashes().path == tmp_path / "exports" / ".hashes.json" == tasks.hashes().path
    tasks.hashes.cache_clear()


def test_a_bare_folder_uses_the_matrix_layout(tmp_path):
    cell = _cell(tmp_path, tmp_path / "exports" / "m" / "onnx-fp32", "")
    assert cell.hashes().path == hash_cache_file(tmp_path / "exports")


def test_file_drift_names_missing_and_changed_files(tmp_path):
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b, edited")
    expected = {n: hashlib.sha256(n.encode()).hexdigest() for n in ("a", "b", "c")}
    assert list(file_drift(tmp_path, expected, HashCache(tmp_path / "h.json").sha256)) == [
        ("b", "changed"),
        ("c", "missing"),
    ]


def test_a_lock_entry_rebuilds_with_the_guides_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    entry = {
        "model": "m",
        "format": "openvino",
        "precision": "fp16",
        "config": {"half": True, "imgsz": 32},
        "model_config": {"name": "m", "checkpoint": "models/m.pt"},
    }
    cell = Cell.from_lock(entry, tmp_path / "scratch")
    command = cell.export_command(tmp_path / "models" / "m.pt")
    entry_point = runner.export_entry()  # no export.py in this project: the installed module
    assert command[: len(entry_point)] == entry_point == [runner.sys.executable, "-m", "exportkit.cli"]
    rest = command[len(entry_point) :]
    flags = dict(zip(rest[::2], rest[1::2]))
    assert flags == {
        "--checkpoint_path": str(tmp_path / "models" / "m.pt"),
        "--export_format": "openvino",
        "--output_dir": str(tmp_path / "scratch"),
        "--export_config": '{"half":true,"imgsz":32}',
    }
    assert json.loads(flags["--export_config"]) == entry["config"]


def test_every_process_of_a_build_runs_offline_in_the_project(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    calls = []
    monkeypatch.setattr(runner.subprocess, "call", lambda command, **kw: calls.append((command, kw)) or 0)
    assert runner.run_logged(["true"], tmp_path / "x.log") == 0
    ((command, kw),) = calls
    assert kw["cwd"] == tmp_path and kw["stderr"] is runner.subprocess.STDOUT
    assert (kw["env"]["YOLO_OFFLINE"], kw["env"]["YOLO_AUTOINSTALL"], kw["env"]["EXPORTKIT_PROJECT"]) == (
        "1",
        "False",
        str(tmp_path),
    )


def test_the_executor_is_the_users_choice_and_an_unknown_one_is_a_config_error():
    import pytest

    from exportkit.build.executors import ExecutorSpec, get_executor, spec_from
    from exportkit.errors import ConfigError

    given = {"executor": "subprocess"}
    assert spec_from(lambda var, env, default: given.get(var, default)) == ExecutorSpec("subprocess", {})
    assert spec_from(lambda var, env, default: default).name == "subprocess"  # nothing given: a subprocess per cell
    assert get_executor({"name": "subprocess", "settings": {}}) is get_executor(ExecutorSpec())  # one per process
    with pytest.raises(ConfigError, match="unknown executor 'nope'; expected one of: subprocess\\|"):
        spec_from(lambda var, env, default: "nope" if var == "executor" else default)


def test_a_worker_with_other_library_versions_is_named(monkeypatch):
    from exportkit.build import cell as cell_module

    here = cell_module.library_versions("onnx")
    assert cell_module.version_mismatch(None, "onnx") == ""  # exported in this process's environment
    assert cell_module.version_mismatch(dict(here), "onnx") == ""
    assert cell_module.version_mismatch({**here, "onnx": "0.0.1"}, "onnx") == f"onnx 0.0.1 (here {here['onnx']})"

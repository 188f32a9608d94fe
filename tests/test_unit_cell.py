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


def test_a_model_without_a_family_is_a_yolo_model_and_its_targets_are_the_guides_files(tmp_path):
    cell = Cell("m-openvino-fp32", {"name": "m", "checkpoint": "m.pt"}, {"name": "openvino"}, "fp32", {}, str(tmp_path))
    # the guide: OpenVINO writes model.xml (IR definition) + model.bin (weights), metadata.json beside every artifact
    assert sorted(cell.targets()) == sorted(tmp_path / n for n in ("model.xml", "model.bin", "metadata.json"))


def test_a_lock_entry_gives_back_the_cell_it_pinned(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    entry = {
        "model": "m",
        "format": "tflite",
        "precision": "int8",
        "config": {"int8": True},
        "model_config": {"name": "m", "checkpoint": "models/m.pt", "imgsz": 64},
    }
    cell = Cell.from_lock(entry, tmp_path / "scratch")
    assert (cell.name, cell.model, cell.format, cell.precision, cell.export_config) == (
        "m",
        entry["model_config"],
        {"name": "tflite"},
        "int8",
        {"int8": True},
    )
    assert cell.out == tmp_path / "scratch" and cell.checkpoint == tmp_path / "models" / "m.pt"
    assert cell.validate_command()[-2:] == ["--thresholds", "{}"]  # a rebuild validates with the defaults


def test_the_export_command_takes_the_checkpoint_it_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    cell = _cell(tmp_path, tmp_path / "out", tmp_path)

    def flag(command):
        return command[command.index("--checkpoint_path") + 1]

    assert flag(cell.export_command()) == str(tmp_path / "m.pt")  # the model config's, against the project
    assert flag(cell.export_command(tmp_path / "pinned" / "m.pt")) == str(tmp_path / "pinned" / "m.pt")


def test_the_validate_command_carries_thresholds_and_the_validation_data(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    cell = _cell(tmp_path, tmp_path / "out", tmp_path)
    cell.validation = {"thresholds": {"box_iou_min": 0.9, "atol": 0.01}, "images": "data/val", "data": "/abs/d.yaml"}
    command = cell.validate_command()
    assert command[:3] == [runner.sys.executable, "-m", "exportkit"]
    assert command[3:] == [
        "validate",
        str(tmp_path / "out"),
        "--thresholds",
        '{"atol":0.01,"box_iou_min":0.9}',
        "--images",
        str(tmp_path / "data" / "val"),  # relative: the project's
        "--data",
        "/abs/d.yaml",
    ]
    cell.validation = {"images": "", "data": None}
    assert cell.validate_command()[3:] == ["validate", str(tmp_path / "out"), "--thresholds", "{}"]


def test_a_changed_checkpoint_calibration_or_config_names_what_changed(tmp_path, monkeypatch):
    from exportkit.build.cell import STATE_FILE, canonical
    from exportkit.build.tasks import CellKeyUnchanged

    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    (tmp_path / "m.pt").write_bytes(b"weights v1")
    (tmp_path / "calib").mkdir()
    (tmp_path / "calib" / "a.jpg").write_bytes(b"image 1")
    out = tmp_path / "out"
    out.mkdir()
    cell = Cell(
        "m-tflite-int8",
        {"name": "m", "checkpoint": "m.pt"},
        {"name": "tflite"},
        "int8",
        {},
        str(out),
        {"int8": True, "calibration_data": str(tmp_path / "calib")},
    )

    def build():
        (out / STATE_FILE).write_text(canonical(cell.key(HashCache(tmp_path / "h.json"))) + "\n")

    def why():
        """What `doit info` says of the cell, checked with a fresh hash cache (files hashed again)."""
        check = CellKeyUnchanged(cell.key(HashCache(tmp_path / "h.json")), out)
        check(None, {})
        return check.reason

    build()
    assert why() == "unchanged"
    (tmp_path / "m.pt").write_bytes(b"weights v2")
    assert why() == "changed checkpoint"
    build()
    (tmp_path / "calib" / "b.jpg").write_bytes(b"image 2")
    assert why() == "changed calibration"
    build()
    cell.export_config = {**cell.export_config, "imgsz": 96}
    assert why() == "changed export_config.imgsz"
    cell.name = "renamed"
    assert why() == "changed cell, export_config.imgsz"


def test_cell_key_of_the_method_is_the_modules(tmp_path, monkeypatch):
    from exportkit.build.cell import cell_key

    monkeypatch.setenv("EXPORTKIT_PROJECT", str(tmp_path))
    (tmp_path / "m.pt").write_bytes(b"w")
    cell, hashes = _cell(tmp_path, tmp_path / "out", tmp_path), HashCache(tmp_path / "h.json")
    key = cell.key(hashes)
    assert key == cell_key(cell, hashes) and key["checkpoint"] == hashlib.sha256(b"w").hexdigest()
    assert key["format"] == "onnx" and key["export_config"] == {"opset": 17} and key["calibration"] is None


def test_every_library_that_differs_on_the_worker_is_named(monkeypatch):
    from exportkit.build import cell as cell_module

    here = cell_module.library_versions("onnx")
    names = sorted(here)[:2]
    worker = {**here, names[0]: "0.0.1", names[1]: "0.0.2"}
    assert cell_module.version_mismatch(worker, "onnx") == ", ".join(
        f"{name} {worker[name]} (here {here[name]})" for name in here if name in names
    )

"""exportkit.errors in-process: the advice a missing package gets, which depends on whether this interpreter runs
from the project's .venv, and the facts the errors carry. Folders and sys.prefix are made by the test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from exportkit import errors
from exportkit.errors import CheckpointRefused, MissingDependency, missing_module, outside_project_venv


def _venv(folder: Path) -> Path:
    venv = folder / ".venv"
    venv.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return venv


def test_no_project_venv_here_is_not_outside(tmp_path):
    assert outside_project_venv(str(tmp_path)) is None
    (tmp_path / ".venv").mkdir()  # a folder without pyvenv.cfg is not a virtual environment
    assert outside_project_venv(str(tmp_path)) is None


def test_a_project_venv_not_running_is_named_with_this_prefix(tmp_path, monkeypatch):
    venv = _venv(tmp_path / "project")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "elsewhere"))
    assert outside_project_venv(str(tmp_path / "project")) == (str(tmp_path / "elsewhere"), str(venv))


def test_running_from_the_project_venv_is_not_outside(tmp_path, monkeypatch):
    venv = _venv(tmp_path / "project")
    (tmp_path / "link").symlink_to(venv)  # compared by real path: a link to the venv is the venv
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "link"))
    assert outside_project_venv(str(tmp_path / "project")) is None


def test_without_cwd_the_working_directory_is_used_and_the_venv_is_relative(tmp_path, monkeypatch):
    _venv(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "prefix", "/opt/other-python")
    assert outside_project_venv() == ("/opt/other-python", ".venv")
    assert outside_project_venv(str(tmp_path / "nowhere")) is None  # an explicit cwd wins over the working directory


def test_missing_dependency_outside_the_venv_says_which_python_and_how_to_run_it(tmp_path, monkeypatch):
    _venv(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "prefix", "/opt/other-python")
    error = MissingDependency("onnx", "onnx")
    assert str(error) == (
        "package 'onnx' is not installed; this Python (/opt/other-python) is not the project's environment .venv; "
        "run it there: `source .venv/bin/activate`, or .venv/bin/python ..."
    )
    assert (error.package, error.extra, error.exit_code) == ("onnx", "onnx", errors.EXIT_EXPORT_FAILED)


def test_missing_dependency_inside_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .venv here
    assert str(MissingDependency("openvino", "openvino")) == (
        "package 'openvino' is not installed; install it with: pip install -e '.[openvino]'"
    )


@pytest.mark.parametrize(
    "exc, package",
    [
        (ModuleNotFoundError("No module named 'omegaconf'", name="omegaconf"), "omegaconf"),
        (ModuleNotFoundError("No module named 'x.y'"), "No module named 'x.y'"),
    ],
)
def test_a_missing_core_module_points_at_the_all_extra(exc, package, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    error = missing_module(exc)
    assert isinstance(error, MissingDependency) and (error.package, error.extra) == (package, "all")
    assert str(error).endswith("pip install -e '.[all]'")


def test_checkpoint_refused_keeps_the_reason_and_says_nothing_ran():
    error = CheckpointRefused(Path("/uploads/user/evil.pt"), "global os.system is not allowed")
    assert error.reason == "global os.system is not allowed" and error.exit_code == errors.EXIT_EXPORT_FAILED
    assert str(error) == "checkpoint evil.pt refused: global os.system is not allowed; nothing from it was run"
    assert os.sep not in str(error).split(" refused")[0]  # the upload's folder is not echoed into the pod log

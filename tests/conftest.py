"""Shared fixtures: exports are made once per session through export.py and reused by every test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SAMPLES = sorted((MODELS / "samples").glob("*.jpg"))
TASKS = ("detect", "segment", "pose")  # the bundled models' tasks, one model each
BUNDLED = {"detect": MODELS / "shapes-det.pt", "segment": MODELS / "shapes-seg.pt", "pose": MODELS / "shapes-pose.pt"}

# mutmut's stats phase (MUTANT_UNDER_TEST=stats) records which tests reach which function; a subprocess started
# elsewhere than the project (a user's folder) finds no mutmut config there and dies recording: it runs unmutated
_OWN = {k: v for k, v in os.environ.items() if not (k == "MUTANT_UNDER_TEST" and v == "stats")}
ENV = {**_OWN, "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "PYTHONPATH": str(ROOT)}


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped (nothing runs under it now)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def run_export(
    checkpoint: Path,
    fmt: str,
    output_dir: Path,
    config: dict | None = None,
    env: dict | None = None,
    timeout: int = 600,
):
    """Run ``python export.py`` as a subprocess; return the CompletedProcess."""
    cmd = [
        sys.executable,
        str(ROOT / "export.py"),
        "--checkpoint_path",
        str(checkpoint),
        "--export_format",
        fmt,
        "--output_dir",
        str(output_dir),
        "--export_config",
        json.dumps(config or {}),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, cwd=ROOT, timeout=timeout)


class ExportCache:
    """Exports keyed by (task, format, config); each made once per test session."""

    def __init__(self, root: Path):
        self.root = root
        self.results: dict = {}

    def get(self, task: str, fmt: str, **config) -> Path:
        key = (task, fmt, json.dumps(config, sort_keys=True))
        if key not in self.results:
            out = self.root / f"{task}-{fmt}-{len(self.results)}"
            proc = run_export(BUNDLED[task], fmt, out, {"include_validation": True, **config})
            self.results[key] = (out, proc)
        out, proc = self.results[key]
        assert proc.returncode == 0, f"export {key} failed ({proc.returncode}): {proc.stderr[-2000:]}"
        return out

    def attempt(self, task: str, fmt: str, **config):
        """(output folder, CompletedProcess) of the export, whatever its exit code."""
        key = (task, fmt, json.dumps(config, sort_keys=True))
        if key not in self.results:
            out = self.root / f"{task}-{fmt}-{len(self.results)}"
            self.results[key] = (out, run_export(BUNDLED[task], fmt, out, {"include_validation": True, **config}))
        return self.results[key]

    def process(self, task: str, fmt: str, **config):
        self.get(task, fmt, **config)
        return self.results[(task, fmt, json.dumps(config, sort_keys=True))][1]


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> ExportCache:
    return ExportCache(tmp_path_factory.mktemp("exports"))


@pytest.fixture(scope="session")
def samples() -> list[Path]:
    assert SAMPLES, "models/samples/*.jpg missing"
    return SAMPLES


class _Streams:
    """Like capsys, for code run through ``run``: its stdout and stderr are redirected while it runs (pytest's
    own capture re-installs sys.stderr between test phases, and capsys sees nothing under mutmut's runner)."""

    def __init__(self):
        import io

        self.out, self.err = io.StringIO(), io.StringIO()

    def run(self, function, *args, **kwargs):
        from contextlib import redirect_stderr, redirect_stdout

        with redirect_stdout(self.out), redirect_stderr(self.err):
            return function(*args, **kwargs)

    def readouterr(self):
        from types import SimpleNamespace

        out, err = self.out.getvalue(), self.err.getvalue()
        for stream in (self.out, self.err):
            stream.seek(0)
            stream.truncate()
        return SimpleNamespace(out=out, err=err)


@pytest.fixture
def std() -> _Streams:
    return _Streams()

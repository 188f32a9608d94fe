"""The one place the build layer starts a process: a cell's export (the guide's `export.py` contract), its
validation, a rebuild for `doit verify --rebuild`, the report. Every process runs offline, in the project,
with the same environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from exportkit import project


def cell_env() -> dict:
    """The environment of a cell's subprocess: offline Ultralytics, the same project; the checkout on PYTHONPATH."""
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "EXPORTKIT_PROJECT": str(project.root())}
    if (project.root() / "exportkit" / "__init__.py").is_file():
        env["PYTHONPATH"] = str(project.root())
    return env


def export_entry() -> list[str]:
    """The checkout's `export.py` when there is one (what reproduce.sh shows); an installed exportkit runs its module."""
    script = project.root() / "export.py"
    return [sys.executable, str(script)] if script.is_file() else [sys.executable, "-m", "exportkit.cli"]


def exportkit_command(*args: str) -> list[str]:
    """`python -m exportkit ARGS` (validate, report)."""
    return [sys.executable, "-m", "exportkit", *args]


def run(command: list[str], **streams) -> int:
    """Run ``command`` in the project with the cells' environment; ``streams``: stdout/stderr as subprocess takes them."""
    return subprocess.call(command, **streams, cwd=project.root(), env=cell_env())


def run_logged(command: list[str], log: Path) -> int:
    """Run ``command`` with its stdout and stderr in the file ``log`` (export.log, validate.log)."""
    with open(log, "w") as handle:
        return run(command, stdout=handle, stderr=subprocess.STDOUT)

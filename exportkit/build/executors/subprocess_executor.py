"""A fresh `python export.py ...` per cell: the guide's contract exactly as reproduce.sh shows it."""

from __future__ import annotations

from pathlib import Path

from exportkit.build import runner
from exportkit.build.executors import Executor, ExportOutcome, register_executor


@register_executor
class SubprocessExecutor(Executor):
    name = "subprocess"

    def export(self, cell, command: list[str], log: Path) -> ExportOutcome:
        return ExportOutcome(runner.run_logged(command, log))

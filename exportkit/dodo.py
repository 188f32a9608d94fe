"""doit tasks for an exportkit project: a project's dodo.py is ``from exportkit.dodo import *``.

The same tasks as the checkout's dodo.py (export, validate, report, lock, verify), over the project found
from the working directory (exportkit/project.py); doit runs in the dodo.py's folder.
"""

from exportkit.build import tasks

DOIT_CONFIG = tasks.doit_config()
__all__ = ["DOIT_CONFIG", "task_export", "task_validate", "task_report", "task_lock", "task_verify"]


def task_export():
    """Export every cell of the active matrix (skips up-to-date and impossible cells)."""
    yield from tasks.export_tasks()


def task_validate():
    """Validate every exported cell against its PyTorch model (validation.json per cell)."""
    yield from tasks.validate_tasks()


def task_report():
    """Gather every cell into exports/report.md and exports/report.html."""
    return tasks.report_task()


def task_lock():
    """Write exports.lock: resolved config, checkpoint and artifact sha256, versions, per cell."""
    return tasks.lock_task()


def task_verify():
    """Check the artifacts on disk against exports.lock (--rebuild: rebuild in a scratch folder and compare)."""
    return tasks.verify_task()


def run(argv: list[str]) -> int:
    """`exportkit lock|verify|build ...`: these tasks through doit's own command line, without a dodo.py."""
    import sys

    from doit.cmd_base import ModuleTaskLoader
    from doit.doit_cmd import DoitMain

    return DoitMain(ModuleTaskLoader(sys.modules[__name__])).run(argv)

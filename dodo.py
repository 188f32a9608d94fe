"""doit tasks for exportkit: `doit export` rebuilds the stale cells of the active matrix.

Choose the matrix with `doit matrix=release export` or EXPORTKIT_MATRIX=release (default: default),
the output folder with `doit output=DIR ...` or EXPORTKIT_OUTPUT (default: exports). This file only
enumerates; the logic lives in exportkit/build.py and exportkit/tasks.py.
"""

from exportkit import tasks

DOIT_CONFIG = tasks.doit_config()


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

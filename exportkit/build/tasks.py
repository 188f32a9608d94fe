"""doit task dictionaries (what dodo.py yields): export, validate, report, lock, verify."""

from __future__ import annotations

import json
import os
import sys
from functools import lru_cache
from pathlib import Path

from exportkit import project
from exportkit.build.cell import (
    STATE_FILE,
    Cell,
    artifact_drift,
    as_dict,
    canonical,
    cell_key,
    clean_cell,
    export_cell,
    validate_cell,
)
from exportkit.build.hashing import HashCache, hash_cache_file
from exportkit.build.matrix import matrix_cells
from exportkit.errors import ConfigError, ExportkitError


def _var(name: str, env: str, default: str) -> str:
    from doit import get_var

    return get_var(name, None) or os.environ.get(env) or default


def output_root() -> Path:
    return project.resolve(_var("output", "EXPORTKIT_OUTPUT", "exports"))


def lock_path() -> Path:
    return project.resolve(_var("lock", "EXPORTKIT_LOCK", "exports.lock"))


def matrix_name() -> str:
    return _var("matrix", "EXPORTKIT_MATRIX", "default")


@lru_cache(maxsize=1)
def executor_spec() -> dict:
    """`executor=NAME` (or EXPORTKIT_EXECUTOR) and its settings, as plain data for the export actions."""
    from dataclasses import asdict

    from exportkit.build.executors import spec_from

    try:
        return asdict(spec_from(_var))
    except ExportkitError as exc:
        fail(exc)


def doit_config() -> dict:
    root = output_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(
            ConfigError(
                f"output {root} cannot be created: {exc.strerror} ({exc.filename}); pass output=DIR with a writable folder"
            )
        )
    # sqlite3, not dbm: safe with `doit -n 2` and with two doit processes (doit issues 121, 380, 182)
    # subtasks: `doit list` shows the per-cell tasks (export:<model>-<format>-<precision>) without --all
    return {
        "backend": "sqlite3",
        "dep_file": str(root / ".doit.sqlite3"),
        "default_tasks": ["export"],
        "verbosity": 2,
        "subtasks": True,
    }


def fail(exc: ExportkitError):
    """A configuration error while doit loads the tasks: one line and its exit code, not doit's traceback."""
    print(f"exportkit: error: {exc.one_line()}", file=sys.stderr)
    sys.exit(exc.exit_code)


@lru_cache(maxsize=1)
def active_cells() -> tuple[Cell, ...]:
    try:
        return tuple(matrix_cells(matrix_name(), output_root()))
    except ExportkitError as exc:
        fail(exc)


@lru_cache(maxsize=1)
def hashes() -> HashCache:
    return HashCache(hash_cache_file(output_root()))


class CellKeyUnchanged:
    """doit uptodate: the cell's key (config, checkpoint, versions) equals the one its last successful build wrote.

    The key lives in the cell's build-state.json, written atomically when an export succeeds, not in
    doit's database (which doit only writes when it exits cleanly): a killed build loses nothing that
    finished, and Hydra sweeps read the same file.
    """

    def __init__(self, key: dict, out: Path | None = None):
        self.key = key
        self.out = out
        self.reason = "not checked"

    def __repr__(self) -> str:
        return f"<cell key: {self.reason}>"

    def __call__(self, task, values) -> bool:
        current = canonical(self.key)
        if self.out is None:  # keyed in doit's database (validate tasks)
            task.value_savers.append(lambda: {"_cell_key": current})
            previous = values.get("_cell_key")
        else:
            state = Path(self.out) / STATE_FILE
            previous = state.read_text().strip() if state.exists() else None
        if previous is None:
            self.reason = "never built (or the last build did not finish)"
            return False
        if previous == current:
            self.reason = "unchanged"
            return True
        self.reason = "changed " + ", ".join(diff_keys(json.loads(previous), self.key))
        return False


class ArtifactsIntact:
    """doit uptodate: every artifact file still has the sha256 its metadata.json records."""

    def __init__(self, out: Path):
        self.out = out
        self.reason = "not checked"

    def __repr__(self) -> str:
        return f"<artifacts: {self.reason}>"

    def __call__(self, task, values) -> bool:
        drift = artifact_drift(self.out, hashes())
        hashes().save()
        self.reason = drift or "intact"
        return drift is None


class ValidationAgrees:
    """doit uptodate: validation.json passed under this cell's thresholds.

    A stricter `python -m exportkit validate` that failed, or one run with other thresholds, rewrote
    validation.json: `doit validate` then re-validates instead of calling the cell up to date while the
    report (which reads validation.json) says it failed.
    """

    def __init__(self, out: Path, precision: str, thresholds: dict):
        self.out, self.precision, self.thresholds = Path(out), precision, thresholds
        self.reason = "not checked"

    def __repr__(self) -> str:
        return f"<validation.json: {self.reason}>"

    def __call__(self, task, values) -> bool:
        from exportkit.validation import thresholds_for

        try:
            report = json.loads((self.out / "validation.json").read_text())
        except (OSError, ValueError):
            self.reason = "missing or unreadable"
            return False
        if report.get("status") == "failed":
            self.reason = "last validation failed"
        elif report.get("thresholds") != thresholds_for(self.precision, self.thresholds):
            self.reason = "written with other thresholds"
        else:
            self.reason = report.get("status", "?")
            return True
        return False


def diff_keys(old, new, prefix: str = "") -> list[str]:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [prefix or "value"] if old != new else []
    changed = []
    for key in sorted(set(old) | set(new)):
        changed += diff_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
    return changed


def _doc(cell: Cell) -> str:
    if cell.skip_reason:
        return f"SKIPPED: {cell.skip_reason}"
    return f"{cell.model['name']} ({cell.model['task']}) -> {cell.format['name']} {cell.precision}, into {project.shown(cell.out)}"


def _report_skip(name: str, reason: str) -> None:
    print(f"{name}: skipped: {reason}")


def export_tasks():
    cells = active_cells()
    for position, cell in enumerate(cells, 1):
        if cell.skip_reason:
            yield {
                "name": cell.name,
                "doc": _doc(cell),
                "actions": [(_report_skip, [cell.name, cell.skip_reason])],
                "uptodate": [False],
                "verbosity": 2,
            }
            continue
        key = cell_key(cell, hashes())
        yield {
            "name": cell.name,
            "doc": _doc(cell),
            "actions": [(export_cell, [as_dict(cell), key, f"{position}/{len(cells)}", executor_spec()])],
            "targets": [str(p) for p in cell.targets()],
            "uptodate": [CellKeyUnchanged(key, cell.out), ArtifactsIntact(cell.out)],
            "clean": [(clean_cell, [str(cell.out)])],
        }
    hashes().save()


def validate_tasks():
    for cell in active_cells():
        if cell.skip_reason or not cell.validation.get("enabled", True):
            continue
        yield {
            "name": cell.name,
            "doc": f"validate {cell.name} against its PyTorch model",
            "actions": [(validate_cell, [as_dict(cell)])],
            "file_dep": [str(cell.out / "metadata.json")],
            "targets": [str(cell.out / "validation.json")],
            "uptodate": [
                CellKeyUnchanged(
                    {
                        "thresholds": cell.validation.get("thresholds", {}),
                        **{k: cell.validation[k] for k in ("images", "data") if cell.validation.get(k)},
                    }
                ),
                ValidationAgrees(cell.out, cell.precision, cell.validation.get("thresholds", {})),
            ],
        }


def report_task() -> dict:
    from exportkit.build.lock import run_report

    built = [c for c in active_cells() if not c.skip_reason]
    deps = [str(c.out / ("validation.json" if c.validation.get("enabled", True) else "metadata.json")) for c in built]
    root = output_root()
    return {
        "actions": [(run_report, [str(root)])],
        "file_dep": deps,
        "targets": [str(root / "report.md"), str(root / "report.html")],
        "clean": True,
    }


def lock_task() -> dict:
    from exportkit.build.lock import write_lock

    built = [c for c in active_cells() if not c.skip_reason]
    return {
        "actions": [(write_lock, [[as_dict(c) for c in built], matrix_name(), str(lock_path())])],
        "file_dep": [str(c.out / "metadata.json") for c in built],
        "targets": [str(lock_path())],
        "uptodate": [False],
    }


def verify_task() -> dict:
    from exportkit.build.lock import verify_lock

    return {
        "actions": [(verify_lock, [], {"default_lock": str(lock_path())})],
        "params": [
            {
                "name": "rebuild",
                "long": "rebuild",
                "type": bool,
                "default": False,
                "help": "rebuild every locked cell in a scratch folder and compare with the lock",
            },
            {"name": "lock", "long": "lock", "type": str, "default": "", "help": "lock file (default exports.lock)"},
        ],
        "uptodate": [False],
        "verbosity": 2,
    }

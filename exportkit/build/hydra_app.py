"""`python -m exportkit model=... format=... precision=...`: Hydra front end over the same cells as doit.

A job that is already built with the same key is skipped, so a repeated sweep rebuilds nothing
(Hydra alone cannot skip finished jobs: hydra issues 1407 and 3328).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from exportkit import project
from exportkit.build.cell import as_dict, export_cell, validate_cell
from exportkit.build.config import check_choices, check_composed, register_schemas
from exportkit.build.matrix import cell_from_config
from exportkit.errors import ConfigError, ExportkitError
from exportkit.progress import say

OUTCOMES: list[str] = []  # filled by jobs that run in this process (the basic launcher)
OUTCOME_FILE = "exportkit-outcome.json"  # written by every job into its own output folder, whatever the launcher
EXIT_CODES = {"config-error": 3, "failed": 1, "validation-failed": 2}  # the worst outcome decides; this order


def run_job(cfg) -> str:
    """One Hydra job = one cell: skip if impossible or current, else export (and validate)."""
    try:
        check_composed(cfg)
        root = Path(cfg.output_root)
        cell = cell_from_config(cfg, project.resolve(root))
        if cell.skip_reason:
            return _outcome(cell.name, "skipped", cell.skip_reason)
        hashes = cell.hashes()
        if cell.is_current(hashes):
            hashes.save()
            return _outcome(cell.name, "up-to-date", str(cell.out))
        if not export_cell(as_dict(cell)):
            return _outcome(cell.name, "failed", f"export failed, see {cell.out / 'export.log'}")
        if cfg.validation.enabled and not validate_cell(as_dict(cell)):
            return _outcome(cell.name, "validation-failed", f"see {cell.out / 'validation.json'}")
        return _outcome(cell.name, "built", str(cell.out))
    except ConfigError as exc:
        return _outcome(getattr(cfg.model, "name", "?"), "config-error", exc.one_line())
    except ExportkitError as exc:
        return _outcome(getattr(cfg.model, "name", "?"), "failed", exc.one_line())


def _outcome(name: str, status: str, detail: str) -> str:
    say(f"{name}: {status}: {detail}")
    OUTCOMES.append(status)
    _record(name, status, detail)
    return status


def _record(name: str, status: str, detail: str) -> None:
    """The job's outcome in its Hydra output folder: a launcher that runs jobs in other processes (joblib, Ray)
    drops their return values, so the driver reads these files back to decide its exit code."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    folder = Path(HydraConfig.get().runtime.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OUTCOME_FILE).write_text(json.dumps({"cell": name, "status": status, "detail": detail}) + "\n")


def exit_code(statuses: list[str]) -> int:
    return next((code for status, code in EXIT_CODES.items() if status in statuses), 0)


def read_outcomes(folder: Path) -> list[str]:
    statuses = []
    for path in sorted(Path(folder).rglob(OUTCOME_FILE)):
        try:
            statuses.append(str(json.loads(path.read_text())["status"]))
        except (OSError, ValueError, KeyError, TypeError):
            statuses.append("failed")  # a job that could not even record its outcome did not succeed
    return statuses


def with_overrides(argv: list[str], ours: list[str]) -> list[str]:
    """``ours`` right after the user's last override (Hydra's argparse takes the overrides as one run of
    positionals), less any key the user gives."""
    is_override = [("=" in a and not a.startswith("-")) for a in argv]
    given = {a.split("=", 1)[0] for a, o in zip(argv, is_override) if o}
    ours = [o for o in ours if o.split("=", 1)[0] not in given]
    at = max((i + 1 for i, o in enumerate(is_override) if o), default=len(argv))
    return [*argv[:at], *ours, *argv[at:]]


def main(argv: list[str]) -> int:
    import hydra

    register_schemas()
    primary, search = project.hydra_setup()

    @hydra.main(config_path=str(primary), config_name="config", version_base="1.3")
    def app(cfg) -> str:
        return run_job(cfg)

    runs = project.cache_dir() / "hydra"  # Hydra's own output goes under the project, wherever the command runs
    stamp = f"{time.strftime('%Y-%m-%d_%H-%M-%S')}-{os.getpid()}"  # this run's own folders: its outcomes alone
    run_dir, sweep_dir = runs / stamp, runs / "multirun" / stamp
    where = [f"hydra.run.dir={run_dir}", f"hydra.sweep.dir={sweep_dir}"]
    sys.argv = ["python -m exportkit", *with_overrides(argv, [*search, *where])]
    try:
        check_choices(argv)
        app()
    except ConfigError as exc:
        say(f"exportkit: error: {exc.one_line()}", sys.stderr)
        return exc.exit_code
    return exit_code(OUTCOMES + read_outcomes(run_dir) + read_outcomes(sweep_dir))

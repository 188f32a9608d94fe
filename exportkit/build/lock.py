"""exports.lock: what a release pinned, per cell; and `doit verify` against it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exportkit import project
from exportkit.build import runner
from exportkit.build.cell import Cell, file_drift
from exportkit.checkpoint import sha256_file
from exportkit.progress import say
from exportkit.registry import get_format

LOCK_VERSION = 1


def lock_entry(cell: Cell) -> dict:
    return cell.lock_entry()


def write_lock(cells: list[dict], matrix: str, path: str | Path = "exports.lock") -> bool:
    stale = [c["name"] for c in cells if not (cell := Cell(**c)).is_current(cell.hashes())]
    if stale:
        say(
            f"lock: not locking, these cells are not built with their current config: {', '.join(stale)}; run `doit export`",
            sys.stderr,
        )
        return False
    entries = {c["name"]: Cell(**c).lock_entry() for c in cells}
    document = {"lock_version": LOCK_VERSION, "matrix": matrix, "cells": entries}
    Path(path).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path} ({len(entries)} cells)")
    return True


def drifted_files(entry: dict, folder: Path) -> list[str]:
    """The lock entry's artifacts that are missing from ``folder`` or differ from their pinned sha256 (hashed afresh)."""
    words = {"missing": "missing", "changed": "sha256 differs from the lock"}
    return [
        f"{name}: {words[problem]}"
        for name, problem in file_drift(folder, dict(sorted(entry["artifacts"].items())), sha256_file)
    ]


def verify_lock(rebuild: bool = False, lock: str = "", default_lock: str = "") -> bool:
    path = project.resolve(lock or default_lock or "exports.lock")
    if not path.exists():
        say(f"verify: no lock file at {path}; run `doit lock` first", sys.stderr)
        return False
    cells = json.loads(path.read_text())["cells"]
    failures = 0
    for index, (name, entry) in enumerate(sorted(cells.items()), 1):
        folder = project.resolve(entry["output_dir"])
        start = time.perf_counter()
        problems = verify_checkpoint(entry) + drifted_files(entry, folder)
        if rebuild and not problems:
            say(f"[{index}/{len(cells)}] {name}: rebuilding in a scratch folder ...")
            problems += rebuild_and_compare(entry)
        for problem in problems:
            say(f"DRIFT {name}: {problem}", sys.stderr)
        failures += bool(problems)
        if not problems:
            say(f"ok    {name}" + (f" (rebuilt and matched, {time.perf_counter() - start:.1f}s)" if rebuild else ""))
    print(f"verify: {len(cells) - failures} of {len(cells)} cells match {path.name}")
    return failures == 0


def verify_checkpoint(entry: dict) -> list[str]:
    file = project.resolve(entry["checkpoint"]["path"])
    if entry["model_config"]["checkpoint"].startswith("zoo:"):
        return []
    if not file.exists():
        return [f"checkpoint {entry['checkpoint']['path']}: missing"]
    if sha256_file(file) != entry["checkpoint"]["sha256"]:
        return [f"checkpoint {entry['checkpoint']['path']}: sha256 differs from the lock"]
    return []


def rebuild_and_compare(entry: dict) -> list[str]:
    """Re-export from the lock's config into a scratch folder; compare bytes, or parity where bytes can't match."""
    with tempfile.TemporaryDirectory(prefix="exportkit-verify-") as scratch:
        cell = Cell.from_lock(entry, scratch)
        command = cell.export_command(project.resolve(entry["checkpoint"]["path"]))
        code = runner.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if code != 0:
            return [f"rebuild failed (exit {code})"]
        if entry["precision"] in get_format(entry["format"]).reproducible:
            return [f"{p} (rebuild)" for p in drifted_files(entry, Path(scratch))]
        check = runner.run(runner.exportkit_command("validate", scratch), stdout=subprocess.DEVNULL)
        return [] if check == 0 else ["rebuild does not pass validation"]


def run_report(root: str) -> bool:
    return runner.run(runner.exportkit_command("report", root)) == 0

"""exports.lock: what a release pinned, per cell; and `doit verify` against it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exportkit import project
from exportkit.build import (
    Cell,
    cell_env,
    checkpoint_path,
    export_command,
    hash_cache_path,
    is_current,
    library_versions,
)
from exportkit.checkpoint import sha256_file
from exportkit.hashing import HashCache
from exportkit.progress import say
from exportkit.registry import get_format

LOCK_VERSION = 1


def _relative(path: Path) -> str:
    return project.shown(path)


def lock_entry(cell: Cell) -> dict:
    metadata = json.loads((cell.out / "metadata.json").read_text())
    return {
        "model": cell.model["name"],
        "format": cell.format["name"],
        "precision": cell.precision,
        "output_dir": _relative(cell.out),
        "config": cell.export_config,
        "model_config": cell.model,
        "checkpoint": {"path": _relative(checkpoint_path(cell.model)), "sha256": metadata["checkpoint"]["sha256"]},
        "artifacts": {a["path"]: a["sha256"] for a in metadata["artifacts"]},
        "versions": library_versions(cell.format["name"]),
    }


def write_lock(cells: list[dict], matrix: str, path: str | Path = "exports.lock") -> bool:
    stale = [c["name"] for c in cells if not is_current(Cell(**c), HashCache(hash_cache_path(Path(c["output_dir"]))))]
    if stale:
        say(f"lock: not locking, these cells are not built with their current config: {', '.join(stale)}; run `doit export`", sys.stderr)
        return False
    entries = {c["name"]: lock_entry(Cell(**c)) for c in cells}
    document = {"lock_version": LOCK_VERSION, "matrix": matrix, "cells": entries}
    Path(path).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path} ({len(entries)} cells)")
    return True


def drifted_files(entry: dict, folder: Path) -> list[str]:
    problems = []
    for name, digest in sorted(entry["artifacts"].items()):
        file = folder / name
        if not file.exists():
            problems.append(f"{name}: missing")
        elif sha256_file(file) != digest:
            problems.append(f"{name}: sha256 differs from the lock")
    return problems


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
    cell = Cell(name=entry["model"], model=entry["model_config"], format={"name": entry["format"]},
                precision=entry["precision"], validation={}, output_dir="", export_config=entry["config"])
    with tempfile.TemporaryDirectory(prefix="exportkit-verify-") as scratch:
        cell.output_dir = scratch
        code = subprocess.call(export_command(cell, project.resolve(entry["checkpoint"]["path"])), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=project.root(), env=cell_env())
        if code != 0:
            return [f"rebuild failed (exit {code})"]
        if entry["precision"] in get_format(entry["format"]).reproducible:
            return [f"{p} (rebuild)" for p in drifted_files(entry, Path(scratch))]
        check = subprocess.call([sys.executable, "-m", "exportkit", "validate", scratch], stdout=subprocess.DEVNULL,
                                cwd=project.root(), env=cell_env())
        return [] if check == 0 else ["rebuild does not pass validation"]


def run_report(root: str) -> bool:
    return subprocess.call([sys.executable, "-m", "exportkit", "report", root], cwd=project.root(), env=cell_env()) == 0


"""A cell: one model x format x precision of the matrix. It owns its state (DVC's `Stage`): the key that decides
its bytes, whether its artifacts drifted, its lock entry, and how it runs.

Everything here runs without torch: an up-to-date build only composes configs, hashes (cached) and compares.
The work itself runs the guide's `export.py` contract through the executor the user picks (exportkit/build/executors).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

from exportkit import project
from exportkit.build import runner
from exportkit.build.hashing import HashCache, hash_cache_file
from exportkit.progress import say
from exportkit.registry import get_format
from exportkit.versions import installed

STATE_FILE = "build-state.json"
CORE_PACKAGES = ("ultralytics", "torch", "torchvision", "numpy")


@dataclass
class Cell:
    name: str
    model: dict
    format: dict
    precision: str
    validation: dict
    output_dir: str
    export_config: dict = field(default_factory=dict)
    skip_reason: str | None = None
    output_root: str = ""  # the matrix's output folder: where the hash cache of its cells lives

    @property
    def out(self) -> Path:
        return Path(self.output_dir)

    @property
    def checkpoint(self) -> Path:
        return checkpoint_path(self.model)

    def targets(self) -> list[Path]:
        from exportkit.families import get_family

        family = get_family(self.model.get("family") or "yolo")
        return family.artifact_paths(get_format(self.format["name"]), self.out) + [self.out / "metadata.json"]

    def hashes(self) -> HashCache:
        """The hash cache of the matrix this cell belongs to (its output root's; a bare folder's own layout else)."""
        return HashCache(hash_cache_file(self.output_root) if self.output_root else hash_cache_path(self.out))

    # -- state ---------------------------------------------------------------------------------------------------
    def key(self, hashes: HashCache) -> dict:
        return cell_key(self, hashes)

    def is_current(self, hashes: HashCache) -> bool:
        return is_current(self, hashes)

    def lock_entry(self) -> dict:
        """What `doit lock` pins for this cell: config, checkpoint and artifact sha256, library versions."""
        metadata = json.loads((self.out / "metadata.json").read_text())
        return {
            "model": self.model["name"],
            "format": self.format["name"],
            "precision": self.precision,
            "output_dir": project.shown(self.out),
            "config": self.export_config,
            "model_config": self.model,
            "checkpoint": {"path": project.shown(self.checkpoint), "sha256": metadata["checkpoint"]["sha256"]},
            "artifacts": {a["path"]: a["sha256"] for a in metadata["artifacts"]},
            "versions": library_versions(self.format["name"]),
        }

    @classmethod
    def from_lock(cls, entry: dict, output_dir: str | Path) -> Cell:
        """The cell a lock entry pinned, built into ``output_dir`` (`doit verify --rebuild`'s scratch folder)."""
        return cls(
            name=entry["model"],
            model=entry["model_config"],
            format={"name": entry["format"]},
            precision=entry["precision"],
            validation={},
            output_dir=str(output_dir),
            export_config=entry["config"],
        )

    # -- running -------------------------------------------------------------------------------------------------
    def export_command(self, checkpoint: Path | None = None) -> list[str]:
        """The guide's contract: `export.py --checkpoint_path --export_format --output_dir --export_config`."""
        return export_command(self, checkpoint or self.checkpoint)

    def validate_command(self) -> list[str]:
        command = runner.exportkit_command(
            "validate", str(self.out), "--thresholds", canonical(self.validation.get("thresholds", {}))
        )
        for key in ("images", "data"):  # the validation group's own data (relative paths: the project's)
            if self.validation.get(key):
                command += [f"--{key}", str(project.resolve(self.validation[key]))]
        return command


def library_versions(format_name: str) -> dict:
    return installed((*CORE_PACKAGES, *get_format(format_name).packages.values()))


def checkpoint_path(model: dict) -> Path:
    spec = model["checkpoint"]
    if spec.startswith("zoo:"):
        from exportkit.zoo import zoo_cache, zoo_path

        return zoo_path(spec[4:], zoo_cache(), model.get("imgsz") or 640)
    return project.resolve(spec)


def checkpoint_identity(model: dict, hashes: HashCache) -> str:
    """sha256 of the checkpoint; zoo checkpoints are named by what builds them (deterministic)."""
    if model["checkpoint"].startswith("zoo:"):
        return f"{model['checkpoint']}@{model.get('imgsz')}/ultralytics-{version('ultralytics')}"
    path = checkpoint_path(model)
    return hashes.sha256(path) if path.exists() else f"missing:{path}"


def calibration_identity(cell: Cell, hashes: HashCache) -> str | None:
    folder = cell.export_config.get("calibration_data")
    if cell.precision != "int8":
        return None
    if not folder:
        return "generated-shapes"
    path = Path(folder)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return ",".join(hashes.sha256(p)[:16] for p in files if p.exists())


def cell_key(cell: Cell, hashes: HashCache) -> dict:
    """Everything that decides the artifact's bytes; a change to any value makes the cell stale."""
    return {
        "cell": cell.name,
        "format": cell.format["name"],
        "export_config": cell.export_config,
        "checkpoint": checkpoint_identity(cell.model, hashes),
        "calibration": calibration_identity(cell, hashes),
        "versions": library_versions(cell.format["name"]),
    }


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def file_drift(folder: Path, expected: dict[str, str], sha256) -> Iterator[tuple[str, str]]:
    """``(file, "missing" | "changed")`` for each file of ``expected`` ({name: sha256}) that is not in ``folder``
    with that digest; ``sha256`` hashes a path (the build's cached hash, or a fresh one for `doit verify`)."""
    for name, digest in expected.items():
        path = Path(folder) / name
        if not path.exists():
            yield name, "missing"
        elif sha256(path) != digest:
            yield name, "changed"


def artifact_drift(out: Path, hashes: HashCache) -> str | None:
    """None when every artifact listed in metadata.json is on disk with its recorded sha256."""
    meta_path = Path(out) / "metadata.json"
    if not meta_path.exists():
        return "metadata.json missing"
    try:
        metadata = json.loads(meta_path.read_text())
    except ValueError:
        return "metadata.json unreadable"
    expected = {entry["path"]: entry["sha256"] for entry in metadata.get("artifacts", [])}
    first = next(file_drift(out, expected, hashes.sha256), None)  # the first problem: hash no further
    if first is None:
        return None
    name, problem = first
    return f"{name} missing" if problem == "missing" else f"{name} changed on disk (sha256 differs from metadata.json)"


def is_current(cell: Cell, hashes: HashCache) -> bool:
    """Built with the same key and untouched since: what a Hydra sweep uses to skip finished jobs."""
    state = cell.out / STATE_FILE
    if not state.exists() or state.read_text().strip() != canonical(cell_key(cell, hashes)):
        return False
    return artifact_drift(cell.out, hashes) is None


def hash_cache_path(out: Path) -> Path:
    """The hash cache of the matrix a cell folder (OUTPUT_ROOT/<model>/<format>-<precision>) belongs to."""
    return hash_cache_file(Path(out).parent.parent)


# -- running one cell (doit actions: plain functions over a cell's dict, picklable for `doit -n N`) ---------------
def export_command(cell: Cell, checkpoint: Path) -> list[str]:
    return [
        *runner.export_entry(),
        "--checkpoint_path",
        str(checkpoint),
        "--export_format",
        cell.format["name"],
        "--output_dir",
        str(cell.out),
        "--export_config",
        canonical(cell.export_config),
    ]


def export_cell(cell_dict: dict, key: dict | None = None, position: str = "", executor: dict | None = None) -> bool:
    """Run one cell through the chosen executor (exportkit/build/executors); keep its log, status and a reproduce
    script beside the artifacts.

    ``position`` ("3/15": the cell's place in the matrix) prefixes the progress lines of a matrix build;
    ``executor``: an ``ExecutorSpec`` as a dict (default: a subprocess per cell)."""
    from exportkit.build.executors import get_executor

    cell = Cell(**cell_dict)
    prefix = f"[{position}] " if position else ""
    say(f"{prefix}{cell.name}: exporting ...")
    out = cell.out
    out.mkdir(parents=True, exist_ok=True)
    (out / STATE_FILE).unlink(missing_ok=True)
    checkpoint = cell.checkpoint
    if cell.model["checkpoint"].startswith("zoo:") and not checkpoint.exists():
        from exportkit.zoo import build_architecture, zoo_cache

        build_architecture(cell.model["checkpoint"][4:], zoo_cache(), cell.model.get("imgsz") or 640)
    command = cell.export_command(checkpoint)
    (out / "reproduce.sh").write_text(
        "#!/usr/bin/env bash\n# Re-run this cell exactly.\ncd "
        + shlex.quote(str(project.root()))
        + "\n"
        + shlex.join(command)
        + "\n"
    )
    start = time.perf_counter()
    outcome = get_executor(executor).export(cell, command, out / "export.log")
    return record_outcome(cell, outcome.exit_code, time.perf_counter() - start, command, key, outcome.versions, prefix)


def record_outcome(
    cell: Cell,
    code: int,
    seconds: float,
    command: list[str],
    key: dict | None = None,
    versions: dict | None = None,
    prefix: str = "",
    extra: dict | None = None,
) -> bool:
    """The one writer of a cell's status.json and build state, whoever ran its export (an executor here, a
    Kubernetes pod that `exportkit collect` reads back). ``versions``: the exporting process's libraries when that
    was not this process (a mismatch fails the cell: its key would record versions that did not build it)."""
    out = cell.out
    mismatch = version_mismatch(versions, cell.format["name"])
    if code == 0 and mismatch:
        with open(out / "export.log", "a") as log:
            log.write(f"exportkit: the worker's libraries differ from this machine's: {mismatch}\n")
        code = 1  # the key would record versions that did not build the artifact
    status = {
        "cell": cell.name,
        "exit_code": code,
        "ok": code == 0,
        "seconds": round(seconds, 2),
        "command": command,
        **(extra or {}),
    }
    (out / "status.json").write_text(json.dumps(status, indent=2) + "\n")
    if code != 0:
        log_file = out / "export.log"
        lines = log_file.read_text().strip().splitlines() if log_file.exists() else []
        tail = lines[-1:] or ["(no output)"]
        say(f"{prefix}{cell.name}: export failed (exit {code}): {tail[0]}  [log: {log_file}]", sys.stderr)
        return False
    hashes = cell.hashes()
    (out / STATE_FILE).write_text(canonical(key or cell.key(hashes)) + "\n")
    hashes.save()
    say(f"{prefix}{cell.name}: exported in {status['seconds']:.1f}s into {project.shown(out)}")
    return True


def version_mismatch(worker: dict | None, format_name: str) -> str:
    """The libraries whose version on the worker that exported differs from this process's ('' when equal or local)."""
    if worker is None:
        return ""
    here = library_versions(format_name)
    return ", ".join(
        f"{name} {worker.get(name)} (here {here[name]})" for name in here if worker.get(name) != here[name]
    )


def validate_cell(cell_dict: dict) -> bool:
    cell = Cell(**cell_dict)
    say(f"{cell.name}: validating against its PyTorch model ...")
    start = time.perf_counter()
    code = runner.run_logged(cell.validate_command(), cell.out / "validate.log")
    say(f"{cell.name}: validation {validation_summary(cell.out, code)} ({time.perf_counter() - start:.1f}s)")
    if code != 0:
        say(f"{cell.name}: validation failed (exit {code}), see {cell.out / 'validate.log'}", sys.stderr)
    return code == 0


def validation_summary(out: Path, code: int) -> str:
    """validation.json's status and summary, the same words the report shows for the cell."""
    try:
        report = json.loads((Path(out) / "validation.json").read_text())
        return f"{report['status']}: {report['summary']}"
    except (OSError, ValueError, KeyError):
        return f"failed (exit {code}, no validation.json)"


def clean_cell(out: str) -> None:
    shutil.rmtree(out, ignore_errors=True)


def as_dict(cell: Cell) -> dict:
    return asdict(cell)


__all__ = [
    "STATE_FILE",
    "Cell",
    "artifact_drift",
    "as_dict",
    "calibration_identity",
    "canonical",
    "cell_key",
    "checkpoint_identity",
    "checkpoint_path",
    "clean_cell",
    "export_cell",
    "export_command",
    "file_drift",
    "hash_cache_path",
    "is_current",
    "library_versions",
    "record_outcome",
    "validate_cell",
]

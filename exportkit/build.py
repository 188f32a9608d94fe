"""The declarative layer: matrix -> cells -> doit tasks, with up-to-date keys, build state and logs.

Everything here runs without torch: an up-to-date build only composes configs, hashes (cached)
and compares. The work itself runs `export.py` in a subprocess per cell.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from exportkit import __version__, project
from exportkit.config import compose, compose_many
from exportkit.hashing import HashCache
from exportkit.progress import say
from exportkit.registry import get_format

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

    @property
    def out(self) -> Path:
        return Path(self.output_dir)

    def targets(self) -> list[Path]:
        from exportkit.families import get_family

        family = get_family(self.model.get("family") or "yolo")
        return family.artifact_paths(get_format(self.format["name"]), self.out) + [self.out / "metadata.json"]


def cell_from_config(cfg, output_root: Path) -> Cell:
    from omegaconf import OmegaConf

    from exportkit.capabilities import capability_reason

    model = OmegaConf.to_container(cfg.model, resolve=True)
    fmt_cfg = OmegaConf.to_container(cfg.format, resolve=True)
    precision = cfg.precision.name
    fmt = get_format(fmt_cfg["name"])
    name = f"{model['name']}-{fmt.name}-{precision}"
    cell = Cell(name, model, fmt_cfg, precision, OmegaConf.to_container(cfg.validation, resolve=True),
                str(Path(output_root) / model["name"] / f"{fmt.name}-{precision}"))
    if precision not in fmt.precisions:
        cell.skip_reason = f"format {fmt.name} has no {precision} precision (it has: {', '.join(fmt.precisions)})"
    else:
        cell.skip_reason = capability_reason(model.get("capability"), fmt.name)
    options = {k: v for k, v in fmt_cfg.items() if k != "name"}
    options.update(fmt.precisions.get(precision, {}))
    options.update(imgsz=model.get("imgsz"), model_name=model["name"], include_validation=False)
    if precision == "int8":  # the validation group's data set calibrates too, unless calibration_data is set
        from exportkit.userdata import calibration_from_data

        options = calibration_from_data(options, {o.name for o in fmt.options}, cell.validation)
    cell.export_config = dict(sorted(options.items()))
    return cell


def matrix_cells(matrix: str = "default", output_root: Path | None = None, extra: list[str] | None = None) -> list[Cell]:
    """Expand a named matrix into cells; cached on the content of conf/ and of the code that composes it."""
    key = _cells_cache_key(matrix, output_root, extra)
    cache = project.cache_dir() / "exportkit" / f"cells-{key[:24]}.json"
    if cache.exists():
        try:
            return [Cell(**c) for c in json.loads(cache.read_text())]
        except (ValueError, TypeError):
            pass
    cells = _compose_cells(matrix, output_root, extra)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps([as_dict(c) for c in cells]))
    os.replace(tmp, cache)
    return cells


def _cells_cache_key(matrix: str, output_root: Path | None, extra: list[str] | None) -> str:
    """Hydra composes in about 0.4 s a cell; an unchanged conf/ tree must not pay that on every `doit list`."""
    import hashlib

    folders = project.search_path()
    digest = hashlib.sha256(canonical([matrix, str(output_root), extra or [], [str(f) for f in folders], __version__]).encode())
    package = project.package_path()
    sources = [p for f in folders for p in sorted(f.rglob("*.yaml"))] + sorted(package.glob("*.py")) + sorted((package / "formats").glob("*.py"))
    for path in sources:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _compose_cells(matrix: str, output_root: Path | None, extra: list[str] | None) -> list[Cell]:
    base = compose([f"matrix={matrix}", *(extra or [])])
    root = project.resolve(output_root or base.output_root)
    combos = []
    for block in base.matrix.blocks:
        for model in block.models:
            for fmt in block.formats:
                for precision in block.precisions:
                    if (model, fmt, precision) not in combos:
                        combos.append((model, fmt, precision))
    overrides = [[f"model={m}", f"format={f}", f"precision={p}", *(extra or [])] for m, f, p in combos]
    return [cell_from_config(cfg, root) for cfg in compose_many(overrides)]


# -- up-to-date keys ------------------------------------------------------------------------------
def library_versions(format_name: str) -> dict:
    fmt = get_format(format_name)
    found = {"exportkit": __version__}
    for package in (*CORE_PACKAGES, *fmt.packages.values()):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


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


def artifact_drift(out: Path, hashes: HashCache) -> str | None:
    """None when every artifact listed in metadata.json is on disk with its recorded sha256."""
    meta_path = Path(out) / "metadata.json"
    if not meta_path.exists():
        return "metadata.json missing"
    try:
        metadata = json.loads(meta_path.read_text())
    except ValueError:
        return "metadata.json unreadable"
    for entry in metadata.get("artifacts", []):
        path = Path(out) / entry["path"]
        if not path.exists():
            return f"{entry['path']} missing"
        if hashes.sha256(path) != entry["sha256"]:
            return f"{entry['path']} changed on disk (sha256 differs from metadata.json)"
    return None


# -- running one cell -----------------------------------------------------------------------------
def export_command(cell: Cell, checkpoint: Path) -> list[str]:
    script = project.root() / "export.py"  # the checkout's entry point; an installed exportkit runs its module
    entry = [str(script)] if script.is_file() else ["-m", "exportkit.cli"]
    return [sys.executable, *entry, "--checkpoint_path", str(checkpoint), "--export_format",
            cell.format["name"], "--output_dir", str(cell.out), "--export_config", canonical(cell.export_config)]


def cell_env() -> dict:
    """The environment of a cell's subprocess: offline Ultralytics, the same project; the checkout on PYTHONPATH."""
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "EXPORTKIT_PROJECT": str(project.root())}
    if (project.root() / "exportkit" / "__init__.py").is_file():
        env["PYTHONPATH"] = str(project.root())
    return env


def export_cell(cell_dict: dict, key: dict | None = None, position: str = "") -> bool:
    """Run one cell in a subprocess; keep its log, status and a reproduce script beside the artifacts.

    ``position`` ("3/15": the cell's place in the matrix) prefixes the progress lines of a matrix build."""
    cell = Cell(**cell_dict)
    prefix = f"[{position}] " if position else ""
    say(f"{prefix}{cell.name}: exporting ...")
    out = cell.out
    out.mkdir(parents=True, exist_ok=True)
    (out / STATE_FILE).unlink(missing_ok=True)
    checkpoint = checkpoint_path(cell.model)
    if cell.model["checkpoint"].startswith("zoo:") and not checkpoint.exists():
        from exportkit.zoo import build_architecture, zoo_cache

        build_architecture(cell.model["checkpoint"][4:], zoo_cache(), cell.model.get("imgsz") or 640)
    command = export_command(cell, checkpoint)
    (out / "reproduce.sh").write_text("#!/usr/bin/env bash\n# Re-run this cell exactly.\ncd " + shlex.quote(str(project.root())) + "\n" + shlex.join(command) + "\n")
    start = time.perf_counter()
    with open(out / "export.log", "w") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=project.root(), env=cell_env())
    status = {"cell": cell.name, "exit_code": code, "ok": code == 0, "seconds": round(time.perf_counter() - start, 2),
              "command": command}
    (out / "status.json").write_text(json.dumps(status, indent=2) + "\n")
    if code != 0:
        tail = (out / "export.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
        say(f"{prefix}{cell.name}: export failed (exit {code}): {tail[0]}  [log: {out / 'export.log'}]", sys.stderr)
        return False
    hashes = HashCache(hash_cache_path(out))
    (out / STATE_FILE).write_text(canonical(key or cell_key(cell, hashes)) + "\n")
    hashes.save()
    say(f"{prefix}{cell.name}: exported in {status['seconds']:.1f}s into {project.shown(out)}")
    return True


def hash_cache_path(out: Path) -> Path:
    return Path(out).parent.parent / ".hashes.json"


def is_current(cell: Cell, hashes: HashCache) -> bool:
    """Built with the same key and untouched since: what a Hydra sweep uses to skip finished jobs."""
    state = cell.out / STATE_FILE
    if not state.exists() or state.read_text().strip() != canonical(cell_key(cell, hashes)):
        return False
    return artifact_drift(cell.out, hashes) is None


def validate_cell(cell_dict: dict) -> bool:
    cell = Cell(**cell_dict)
    command = [sys.executable, "-m", "exportkit", "validate", str(cell.out), "--thresholds", canonical(cell.validation.get("thresholds", {}))]
    for key in ("images", "data"):  # the validation group's own data (relative paths: the project's)
        if cell.validation.get(key):
            command += [f"--{key}", str(project.resolve(cell.validation[key]))]
    say(f"{cell.name}: validating against its PyTorch model ...")
    start = time.perf_counter()
    with open(cell.out / "validate.log", "w") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=project.root(), env=cell_env())
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

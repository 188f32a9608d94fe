"""`exportkit init --checkpoint PATH [--name NAME]`: a starter project in the current folder (or --project DIR).

Writes the marker ``exportkit.yaml``, ``conf/model/NAME.yaml`` (task and image size read from the checkpoint
by a scan that runs nothing from it and imports no torch), ``conf/matrix/default.yaml`` with the CPU formats,
a three-line ``dodo.py`` and a ``.gitignore``; refuses to overwrite any of them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from exportkit.errors import ConfigError

CPU_FORMATS = ("onnx", "torchscript", "openvino")
TASKS = ("detect", "segment", "pose", "classify", "obb")

MARKER_TEXT = """\
# exportkit project: exportkit and doit find this folder by this file (the nearest one upward from where they run).
# Configs: conf/ (yours) on top of the groups exportkit ships; `exportkit where` lists which file each comes from.
"""
DODO_TEXT = '''"""doit tasks of this exportkit project: doit export | validate | report | lock | verify."""
from exportkit.dodo import *  # noqa: F401,F403

'''
GITIGNORE_TEXT = "/exports/\n/.cache/\n.doit.db*\n"


def model_yaml(name: str, checkpoint: str, task: str, imgsz: int) -> str:
    return (
        f"# {name}: written by `exportkit init`; edit freely.\ndefaults:\n  - /exportkit_model_schema@_here_\n  - _self_\n"
        f"name: {name}\ncheckpoint: {checkpoint}\ntask: {task}\nimgsz: {imgsz}\n"
    )


def matrix_yaml(name: str) -> str:
    return (
        f"# `doit export` builds these cells: {name} to the CPU formats.\ndefaults:\n  - /exportkit_matrix_schema@_here_\n  - _self_\n"
        f"name: default\nblocks:\n  - models: [{name}]\n    formats: [{', '.join(CPU_FORMATS)}]\n    precisions: [fp32]\n"
    )


def read_facts(checkpoint: Path) -> tuple[str, int]:
    """(task, imgsz) from the checkpoint's own training arguments; a checkpoint without them gets detect / 640."""
    from exportkit.checkpoint import peek_checkpoint

    facts = peek_checkpoint(checkpoint)
    task = facts.get("task") if facts.get("task") in TASKS else "detect"
    imgsz = facts.get("imgsz")
    if isinstance(imgsz, (list, tuple)) and imgsz:
        imgsz = max(imgsz)
    return task, (int(imgsz) if isinstance(imgsz, int) and not isinstance(imgsz, bool) and imgsz > 0 else 640)


def plan_files(folder: Path, checkpoint: Path, name: str) -> dict[Path, str]:
    try:
        shown = checkpoint.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        shown = str(checkpoint.resolve())
    task, imgsz = read_facts(checkpoint)
    return {
        folder / "exportkit.yaml": MARKER_TEXT,
        folder / "conf" / "model" / f"{name}.yaml": model_yaml(name, shown, task, imgsz),
        folder / "conf" / "matrix" / "default.yaml": matrix_yaml(name),
        folder / "dodo.py": DODO_TEXT,
        folder / ".gitignore": GITIGNORE_TEXT,
    }


def init_project(folder: Path, checkpoint: str, name: str | None = None) -> list[Path]:
    from exportkit.checkpoint import check_checkpoint_path

    folder = Path(folder)
    path = Path(checkpoint).expanduser()
    path = path if path.is_absolute() else folder / path
    check_checkpoint_path(path)
    name = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"--name {name!r}: use letters, digits, '-', '_' or '.'")
    files = plan_files(folder, path, name)
    existing = [str(p.relative_to(folder)) for p in files if p.exists()]
    if existing:
        raise ConfigError(
            f"init: {', '.join(existing)} already exist in {folder}; nothing was written (init never overwrites)"
        )
    written = []
    for target, text in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x") as handle:  # exclusive: never replaces a file that appeared meanwhile
            handle.write(text)
        written.append(target)
    return written


def main(argv: list[str]) -> int:
    from exportkit.cli import _Parser, run_guarded

    parser = _Parser(
        prog="exportkit init", description="Write a starter exportkit project for a checkpoint into this folder."
    )
    parser.add_argument(
        "--checkpoint", required=True, help="the trained .pt (a path relative to this folder is kept relative)"
    )
    parser.add_argument("--name", help="model name (default: the checkpoint's file name)")

    def body() -> int:
        args = parser.parse_args(argv)
        folder = Path(os.environ.get("EXPORTKIT_PROJECT") or Path.cwd())
        for path in init_project(folder, args.checkpoint, args.name):
            print(f"wrote {path.relative_to(folder)}")
        print("next: doit export   (then: doit validate report lock)")
        return 0

    return run_guarded(body)

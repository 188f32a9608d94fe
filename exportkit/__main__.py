"""`exportkit` (or `python -m exportkit`): one entry point, four front ends.

    python -m exportkit --checkpoint_path M.pt --export_format onnx --output_dir out   (the seed CLI, as export.py)
    python -m exportkit model=shapes-det format=onnx precision=fp16                    (Hydra; -m sweeps; --cfg job)
    python -m exportkit validate OUTPUT_DIR [--checkpoint_path PT]
    python -m exportkit report FOLDER
    python -m exportkit capabilities [--markdown]
    exportkit export --checkpoint_path M.pt --export_format onnx --output_dir out   (the guide's contract, as export.py)
    exportkit init --checkpoint M.pt [--name NAME]      exportkit where [GROUP]
    exportkit lock | verify [--rebuild] | build          (the project's doit tasks, without a dodo.py)

`--project DIR` (before the subcommand) or EXPORTKIT_PROJECT names the project folder; otherwise it is the
nearest folder upward holding exportkit.yaml or conf/config.yaml (exportkit/project.py).
"""

from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS = {
    "validate": "exportkit.commands:validate_main",
    "report": "exportkit.commands:report_main",
    "capabilities": "exportkit.capabilities:main",
    "export": "exportkit.cli:main",
    "init": "exportkit.init:main",
    "where": "exportkit.project:where_main",
    "lock": "exportkit.__main__:lock_main",
    "verify": "exportkit.__main__:verify_main",
    "build": "exportkit.__main__:build_main",
}
HYDRA_VALUES = ("job", "hydra", "all", "config", "defaults", "defaults-tree", "plugins", "searchpath")  # --cfg, --info
HYDRA_FLAGS = ("-m", "--multirun", "--cfg", "-c", "--info", "--resolve", "--package", "-p", "--config-name", "-cn", "--config-dir", "-cd")


def _is_hydra(argv: list[str]) -> bool:
    if not argv:
        return "CHECKPOINT_PATH" not in os.environ
    return all(("=" in a and not a.startswith("--")) or a in HYDRA_FLAGS or a in HYDRA_VALUES for a in argv)


def _doit(tasks: list[str], argv: list[str]) -> int:
    from exportkit.dodo import run

    return 0 if run([*tasks, *argv]) == 0 else 1


def lock_main(argv: list[str]) -> int:
    """`exportkit lock`: write exports.lock for the project's matrix (doit lock)."""
    return _doit(["lock"], argv)


def verify_main(argv: list[str]) -> int:
    """`exportkit verify [--rebuild]`: check the artifacts against exports.lock (doit verify)."""
    return _doit(["verify"], argv)


def build_main(argv: list[str]) -> int:
    """`exportkit build [matrix=NAME]`: export and validate the project's matrix (doit export validate)."""
    return _doit(["export", "validate"], argv)


def _take_project(argv: list[str]) -> list[str]:
    """Strip a leading `--project DIR` (or `--project=DIR`) and make it the project of this process and its children."""
    if argv and (argv[0] == "--project" or argv[0].startswith("--project=")):
        from exportkit.errors import ConfigError
        from exportkit.project import set_project

        value = argv[0].split("=", 1)[1] if "=" in argv[0] else (argv[1] if len(argv) > 1 else None)
        try:
            if not value:
                raise ConfigError("--project needs a folder")
            set_project(value)
        except ConfigError as exc:
            print(f"exportkit: error: {exc.one_line()}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        return argv[1:] if "=" in argv[0] else argv[2:]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = _take_project(list(sys.argv[1:] if argv is None else argv))
    if argv and argv[0] in SUBCOMMANDS:
        module, func = SUBCOMMANDS[argv[0]].split(":")
        return getattr(importlib.import_module(module), func)(argv[1:])
    if _is_hydra(argv):
        from exportkit.hydra_app import main as hydra_main

        return hydra_main(argv)
    from exportkit.cli import main as seed_main

    return seed_main(argv)


if __name__ == "__main__":
    sys.exit(main())

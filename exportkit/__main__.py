"""`exportkit` (or `python -m exportkit`): one entry point, four front ends.

    python -m exportkit --checkpoint_path M.pt --export_format onnx --output_dir out   (the seed CLI, as export.py)
    python -m exportkit model=shapes-det format=onnx precision=fp16                    (Hydra; -m sweeps; --cfg job)
    python -m exportkit validate OUTPUT_DIR [--checkpoint_path PT]
    python -m exportkit report FOLDER
    python -m exportkit capabilities [--markdown]
    exportkit export --checkpoint_path M.pt --export_format onnx --output_dir out   (the guide's contract, as export.py)
    exportkit init --checkpoint M.pt [--name NAME]      exportkit where [GROUP]
    exportkit lock | verify [--rebuild] | build          (the project's doit tasks, without a dodo.py)
    exportkit k8s-job matrix=release --image IMAGE [--pvc NAME]    exportkit collect OUTPUT   (Kubernetes)

`--project DIR` (before the subcommand) or EXPORTKIT_PROJECT names the project folder; otherwise it is the
nearest folder upward holding exportkit.yaml or conf/config.yaml (exportkit/project.py).
"""

from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS = {
    "validate": "exportkit.validation.commands:validate_main",
    "report": "exportkit.validation.commands:report_main",
    "capabilities": "exportkit.capabilities:main",
    "export": "exportkit.cli:main",
    "init": "exportkit.init:main",
    "where": "exportkit.project:where_main",
    "lock": "exportkit.__main__:lock_main",
    "verify": "exportkit.__main__:verify_main",
    "build": "exportkit.__main__:build_main",
    "k8s-job": "exportkit.build.k8s:main",
    "collect": "exportkit.build.collect:main",
}
HYDRA_VALUES = ("job", "hydra", "all", "config", "defaults", "defaults-tree", "plugins", "searchpath")  # --cfg, --info
HYDRA_FLAGS = (
    "--hydra-help",
    "-m",
    "--multirun",
    "--cfg",
    "-c",
    "--info",
    "--resolve",
    "--package",
    "-p",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
)


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


def print_help() -> None:
    """Every front end and config group; `export.py --help` stays the export contract's own usage."""
    from exportkit.build.config import group_choices
    from exportkit.cli import build_parser
    from exportkit.project import GROUPS

    groups = {group: group_choices(group) for group in GROUPS}  # the project's conf/ and the package's
    print(__doc__.strip().splitlines()[0])
    print("\nusage:")
    print("\n".join("  " + line.strip() for line in __doc__.strip().splitlines()[2:] if line.strip()))
    print("\nsubcommands (each takes --help):")
    for name, summary in SUMMARIES.items():
        print(f"  {name:14} {summary}")
    print("\nHydra mode (every argument KEY=VALUE, -m to sweep, --cfg job to print the resolved config); groups:")
    for group, choices in groups.items():
        print(f"  {group + '=':14} {', '.join(choices)}")
    print("\nexport contract (the same as python export.py):")
    print(build_parser().format_help().replace("usage: export.py", "usage: python -m exportkit", 1))


SUMMARIES = {
    "validate": "validate an existing export against its PyTorch model (validation.json)",
    "report": "gather every export under a folder into report.md and report.html",
    "capabilities": "print the model x format capability matrix (--markdown for the README table)",
    "export": "the guide's export contract (the same flags, variables and exit codes as export.py)",
    "init": "write a starter project next to a checkpoint (exportkit.yaml, conf/, dodo.py, .gitignore)",
    "where": "show which file each config group option comes from (project conf/ over the package's)",
    "lock": "write exports.lock for the project's matrix (doit lock)",
    "verify": "check the artifacts against exports.lock; --rebuild rebuilds and compares (doit verify)",
    "build": "export and validate the project's matrix (doit export validate)",
    "k8s-job": "print the matrix as Kubernetes Indexed Jobs (YAML): --image IMAGE [--pvc NAME] [--parallelism N]",
    "collect": "record the cells a Kubernetes Job exported (OUTPUT copied back) as build state, for lock and verify",
}


def main(argv: list[str] | None = None) -> int:
    argv = _take_project(list(sys.argv[1:] if argv is None else argv))
    if argv in (["-h"], ["--help"]):
        try:
            print_help()
            sys.stdout.flush()
        except BrokenPipeError:  # `exportkit --help | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    try:
        if argv and argv[0] in SUBCOMMANDS:
            module, func = SUBCOMMANDS[argv[0]].split(":")
            return getattr(importlib.import_module(module), func)(argv[1:])
        if _is_hydra(argv):
            from exportkit.build.hydra_app import main as hydra_main

            return hydra_main(argv)
    except ModuleNotFoundError as exc:  # e.g. run outside the project's .venv
        from exportkit.errors import missing_module

        print(f"exportkit: error: {missing_module(exc).one_line()}", file=sys.stderr)
        return 1
    from exportkit.cli import main as seed_main

    return seed_main(argv)


if __name__ == "__main__":
    sys.exit(main())

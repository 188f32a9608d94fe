"""`python -m exportkit`: one entry point, four front ends.

    python -m exportkit --checkpoint_path M.pt --export_format onnx --output_dir out   (the seed CLI, as export.py)
    python -m exportkit model=shapes-det format=onnx precision=fp16                    (Hydra; -m sweeps; --cfg job)
    python -m exportkit validate OUTPUT_DIR [--checkpoint_path PT]
    python -m exportkit report FOLDER
    python -m exportkit capabilities [--markdown]
"""

from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS = {
    "validate": "exportkit.commands:validate_main",
    "report": "exportkit.commands:report_main",
    "capabilities": "exportkit.capabilities:main",
}
HYDRA_FLAGS = ("-m", "--multirun", "--cfg", "-c", "--info", "--resolve", "--package", "-p", "--config-name", "-cn", "--config-dir", "-cd")


def _is_hydra(argv: list[str]) -> bool:
    if not argv:
        return "CHECKPOINT_PATH" not in os.environ
    return all(("=" in a and not a.startswith("--")) or a in HYDRA_FLAGS or a in ("job", "hydra", "all") for a in argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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

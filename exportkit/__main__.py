"""`python -m exportkit`: the seed CLI's flags, or a subcommand.

    python -m exportkit --checkpoint_path M.pt --export_format onnx --output_dir out   (same as export.py)
    python -m exportkit validate OUTPUT_DIR [--checkpoint_path PT]
"""

from __future__ import annotations

import sys

SUBCOMMANDS = {"validate": "exportkit.commands:validate_main"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        module, func = SUBCOMMANDS[argv[0]].split(":")
        import importlib

        return getattr(importlib.import_module(module), func)(argv[1:])
    from exportkit.cli import main as seed_main

    return seed_main(argv)


if __name__ == "__main__":
    sys.exit(main())

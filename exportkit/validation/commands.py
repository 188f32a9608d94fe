"""Subcommands of `python -m exportkit`: validate and report."""

from __future__ import annotations

import json

from exportkit.cli import _Parser, parse_config, run_guarded, setup_logging
from exportkit.errors import EXIT_OK, ConfigError, ValidationFailed


def validate_main(argv: list[str]) -> int:
    parser = _Parser(
        prog="python -m exportkit validate", description="Validate an existing export against its PyTorch model."
    )
    parser.add_argument("output_dir", help="folder with the artifact and its metadata.json")
    parser.add_argument("--checkpoint_path", help="PyTorch checkpoint (default: the one metadata.json names)")
    parser.add_argument("--thresholds", help="JSON object of validation thresholds")
    parser.add_argument("--images", help="folder of images to compare on instead of the bundled samples")
    parser.add_argument("--data", help="Ultralytics data YAML: parity on its val images, box mAP of artifact and .pt")
    parser.add_argument("-q", "--quiet", action="store_true")

    def body() -> int:
        args = parser.parse_args(argv)
        setup_logging(args.quiet)
        from pathlib import Path

        folder = Path(args.output_dir)
        if not (folder / "metadata.json").exists():
            raise ConfigError(f"{folder} has no metadata.json; expected the output_dir of an export")
        thresholds = parse_config(args.thresholds)
        thresholds.update({k: getattr(args, k) for k in ("images", "data") if getattr(args, k)})
        from exportkit.validation import validate_folder

        report = validate_folder(folder, checkpoint=args.checkpoint_path, thresholds=thresholds)
        print(json.dumps({"status": report.status, "summary": report.summary()}))
        if report.status == "failed":
            raise ValidationFailed(f"validation failed for {folder}: {report.summary()}")
        return EXIT_OK

    return run_guarded(body)


def report_main(argv: list[str]) -> int:
    parser = _Parser(
        prog="python -m exportkit report", description="Gather every export under a folder into one report."
    )
    parser.add_argument("folder")

    def body() -> int:
        args = parser.parse_args(argv)
        setup_logging()
        from exportkit.validation.report import write_report

        paths = write_report(args.folder)
        print("\n".join(str(p) for p in paths))
        return EXIT_OK

    return run_guarded(body)

"""The seed CLI: flags, or the CHECKPOINT_PATH / EXPORT_FORMAT / OUTPUT_DIR / EXPORT_CONFIG variables.

Exit codes: 0 ok, 1 export failed, 2 validation failed, 3 configuration error. Every error is one
line on stderr; ``EXPORTKIT_DEBUG=1`` adds the traceback. ``--help`` and configuration errors never
import torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from exportkit.errors import EXIT_OK, ConfigError, ExportkitError, missing_module
from exportkit.registry import FORMAT_MODULES

ENV_VARS = {
    "checkpoint_path": "CHECKPOINT_PATH",
    "export_format": "EXPORT_FORMAT",
    "output_dir": "OUTPUT_DIR",
    "export_config": "EXPORT_CONFIG",
}
FORMATS = FORMAT_MODULES  # the guide's order, from the registry


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code 2 would read as "validation failed"
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="export.py",
        allow_abbrev=False,
        description="Export an Ultralytics checkpoint to a production format, with metadata.json and optional validation.",
        epilog="Each flag falls back to its environment variable (CHECKPOINT_PATH, EXPORT_FORMAT, OUTPUT_DIR, "
        "EXPORT_CONFIG). Exit codes: 0 ok, 1 export failed, 2 validation failed, 3 configuration error.",
    )
    parser.add_argument("--checkpoint_path", help="trained checkpoint (.pt file)  [env CHECKPOINT_PATH]")
    parser.add_argument("--export_format", help=f"{'|'.join(FORMATS)}  [env EXPORT_FORMAT]")
    parser.add_argument("--output_dir", help="output directory for the exported files  [env OUTPUT_DIR]")
    parser.add_argument(
        "--export_config", help="JSON object, or a path to a JSON file, with format options  [env EXPORT_CONFIG]"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only print errors")
    return parser


def parse_config(text: str | None) -> dict:
    """A JSON object from a string or a file path; '' and None mean {}. Strict JSON: a key given twice,
    NaN/Infinity (or a number too large for a float) and absurd nesting are configuration errors."""
    if text is None or not text.strip():
        return {}
    source = "export_config"
    stripped = text.strip()
    if not stripped.startswith("{") and _is_file(stripped):
        source, stripped = stripped, Path(stripped).read_text()

    def unique(pairs: list) -> dict:
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ConfigError(f"{source} gives key {key[:60]!r} twice; each key may appear once")
            seen.add(key)
        return dict(pairs)

    def finite(token: str) -> float:
        number = float(token)
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(f"{source}: number {token[:40]!r} is not a finite JSON number")
        return number

    def constant(token: str):
        raise ConfigError(f"{source}: {token} is not JSON (give a finite number)")

    try:
        value = json.loads(stripped, object_pairs_hook=unique, parse_float=finite, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): {text.strip()[:60]!r}"
        ) from None
    except (ValueError, RecursionError) as exc:  # an integer past Python's 4300-digit limit; nesting past the stack
        raise ConfigError(
            f"{source} is not usable JSON ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f'{source} must be a JSON object like {{"opset_version": 17}}, got {type(value).__name__}')
    return value


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def resolve_arguments(args: argparse.Namespace, environ=os.environ) -> dict:
    values = {}
    for key, env in ENV_VARS.items():
        flag = getattr(args, key)
        values[key] = flag if flag is not None else environ.get(env)
    missing = [f"--{k} (or {ENV_VARS[k]})" for k in ("checkpoint_path", "export_format", "output_dir") if not values[k]]
    if missing:
        raise ConfigError("missing required argument: " + ", ".join(missing))
    values["export_config"] = parse_config(values["export_config"])
    return values


def setup_logging(quiet: bool = False) -> None:
    """exportkit's own log goes to stdout, beside Ultralytics'; stderr is kept for the one error line."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.captureWarnings(True)  # converters' warnings join the log instead of stderr


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def plain(text: str) -> str:
    """One line without colour codes or emoji prefixes: what a pod log shows."""
    text = ANSI.sub("", text).replace("❌", "").replace("⚠️", "")
    return " ".join(text.split())


def run_guarded(body: Callable[[], int]) -> int:
    """Run ``body``; turn every error into one stderr line and its exit code.

    While it runs, file descriptor 2 points at stdout, so whatever a converter or C library writes there lands
    in the log; the real stderr carries only exportkit's one line per failure.
    """
    from exportkit import interrupts

    interrupts.install()
    with _stderr_for_errors_only() as errors:
        try:
            return body()
        except ExportkitError as exc:
            return _report(errors, exc, exc.one_line(), exc.exit_code)
        except interrupts.Interrupted as exc:
            return _report(errors, exc, exc.one_line(), exc.exit_code)
        except ModuleNotFoundError as exc:
            return _report(errors, exc, missing_module(exc).one_line(), 1)
        except KeyboardInterrupt as exc:
            return _report(errors, exc, "interrupted; nothing was published", 130)
        except Exception as exc:  # an unexpected failure is still an export failure, on one line
            return _report(errors, exc, f"{type(exc).__name__}: {exc}", 1)


@contextmanager
def _stderr_for_errors_only():
    if os.environ.get("EXPORTKIT_DEBUG") or sys.stderr is not sys.__stderr__:  # debugging, or a caller's own streams
        yield sys.stderr
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(1, 2)
    errors = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        yield errors
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        errors.close()


def _report(errors, exc: BaseException, line: str, code: int) -> int:
    if os.environ.get("EXPORTKIT_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    sys.stdout.flush()  # the log first: in a merged log (a cell's export.log) the error line comes last
    print(f"exportkit: error: {plain(line)}", file=errors, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        setup_logging(args.quiet)
        values = resolve_arguments(args)
        from exportkit.pipeline import plan_export, run_export

        plan = plan_export(
            values["checkpoint_path"], values["export_format"], values["output_dir"], values["export_config"]
        )
        result = run_export(plan)
        print(
            f"exported {plan.format.name} to {plan.output_dir}: {', '.join(p.name for p in result.files)} + metadata.json ({result.seconds:.1f}s)"
        )
        if result.validation is not None:
            print(f"validation: {result.validation.summary()}")
        return EXIT_OK

    return run_guarded(body)


if __name__ == "__main__":
    sys.exit(main())

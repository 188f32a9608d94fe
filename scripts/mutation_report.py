"""Kill rate per core module from mutmut 3's results (mutants/**/*.py.meta); `make mutation` prints it.

A mutant counts as killed when the fast tier failed on it (or timed out); survived when every test that
reaches the mutated function passed; "no tests" when no fast test reaches it at all (counted as not killed).
Mutants listed in tests/mutation-equivalents.md (one `name` in backticks at the start of a list item) are
equivalent to the original code and leave the denominator. ``--survivors`` lists the survivors by name.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "tests" / "mutation-equivalents.md"
GOAL = 0.85

# Module -> the functions under test ("*" = all). validation/harness.py's criteria: the report and its decision,
# the thresholds and the cases that gather checks; pipeline.py: its staging checks and the
# guarded call of publish.py, whose atomic publish (and folder lock, staging and recovery) counts whole.
CORE = {
    "exportkit.validation.parity": "*",
    "exportkit.validation.harness": (
        "ParityReport",
        "thresholds_for",
        "_image_case",
        "run_cases",
        "_random_case",
        "_batch_case",
        "in_input_pixels",
        "artifact_input_size",
    ),
    "exportkit.metadata": "*",
    "exportkit.pipeline": ("_publish", "_check_files", "_clean_staging", "check_output_dir"),
    "exportkit.publish": "*",
    "exportkit.build.cell": (
        "Cell",
        "checkpoint_identity",
        "calibration_identity",
        "cell_key",
        "canonical",
        "file_drift",
        "artifact_drift",
        "is_current",
        "checkpoint_path",
        "library_versions",
        "hash_cache_path",
        "version_mismatch",
    ),
    "exportkit.build.hashing": "*",
    "exportkit.build.lock": "*",
    "exportkit.errors": "*",
    "exportkit.cli": "*",
    "exportkit.options": "*",
    "runtimes.python.preprocess": "*",
    "runtimes.python.postprocess": "*",
}
KILLED = {1, 3, 36, -24, 24, 152, 255, -11, -9}  # failed, pytest internal error, timeouts, crashes
SURVIVED = {0}
NO_TESTS = {5, 33}


def function_of(mutant: str, module: str) -> str:
    """'exportkit.build.x_cell_key__mutmut_3' -> 'cell_key'; 'xǁParityReportǁsummary__mutmut_1' -> 'ParityReport'."""
    name = mutant[len(module) + 1 :].rsplit("__mutmut_", 1)[0]
    if name.startswith("xǁ"):
        return name.split("ǁ")[1]
    return name[2:] if name.startswith("x_") else name


def load_results(mutants_dir: Path) -> dict[str, int | None]:
    codes: dict[str, int | None] = {}
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def equivalents(path: Path = EQUIVALENTS) -> set[str]:
    if not path.exists():
        return set()
    return set(re.findall(r"^\s*[-*]\s+`([^`]+__mutmut_\d+)`", path.read_text(), re.M))


def tally(codes: dict[str, int | None], equivalent: set[str]) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for module, functions in CORE.items():
        row = {"killed": 0, "survived": [], "no_tests": [], "unchecked": 0, "equivalent": 0}
        for mutant, code in codes.items():
            if not mutant.startswith(module + ".") or (
                functions != "*" and function_of(mutant, module) not in functions
            ):
                continue
            if mutant in equivalent:
                row["equivalent"] += 1
            elif code is None:
                row["unchecked"] += 1
            elif code in KILLED:
                row["killed"] += 1
            elif code in NO_TESTS:
                row["no_tests"].append(mutant)
            else:
                row["survived"].append(mutant)
        rows[module] = row
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant by name")
    args = parser.parse_args(argv)
    codes = load_results(args.mutants)
    if not codes:
        print(f"no mutmut results under {args.mutants}; run `make mutation` first")
        return 1
    rows = tally(codes, equivalents())
    print(f"{'module':30} {'killed':>7} {'survived':>8} {'no test':>7} {'equiv':>5} {'unrun':>5} {'kill rate':>9}")
    below = []
    for module, row in rows.items():
        counted = row["killed"] + len(row["survived"]) + len(row["no_tests"])
        rate = row["killed"] / counted if counted else float("nan")
        mark = "" if rate >= GOAL else "  < 85%"
        below += [module] if mark else []
        print(
            f"{module:30} {row['killed']:7} {len(row['survived']):8} {len(row['no_tests']):7} {row['equivalent']:5} "
            f"{row['unchecked']:5} {rate:9.1%}{mark}"
        )
        if args.survivors:
            for mutant in row["survived"] + row["no_tests"]:
                print(f"    {mutant}")
    print(f"goal: {GOAL:.0%} killed per module; below: {', '.join(below) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

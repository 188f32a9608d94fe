"""`exportkit collect OUTPUT`: cells a Kubernetes Job exported (OUTPUT/<model>/<format>-<precision>/, copied back from
the exports volume) become build state here, so `doit export` calls them up to date and `doit lock` / `doit verify`
work on them.

Each pod's status.json (exportkit/build/k8s_entry.py) holds its exit code, the frozen cell and the pod's library
versions. A cell counts as built when its exit code is 0, its artifacts have the sha256 its metadata.json records,
it was exported from the checkpoint this project has (same sha256) and with this machine's library versions; then
the same writer as a local build (``record_outcome``) writes status.json and build-state.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from exportkit.build.cell import Cell, artifact_drift, record_outcome
from exportkit.errors import EXIT_EXPORT_FAILED, EXIT_OK, ConfigError, ExportkitError
from exportkit.progress import say

FROM_POD = ("executor", "index", "env", "cell_config", "versions")  # what status.json keeps from the pod's record


def pod_statuses(output: Path) -> list[tuple[Path, dict]]:
    """(cell folder, the pod's status.json) for each cell a pod exported under ``output``, in path order."""
    found = []
    for path in sorted(Path(output).glob("*/*/status.json")):
        try:
            status = json.loads(path.read_text())
        except ValueError:
            say(f"collect: {path} is not JSON; skipped", sys.stderr)
            continue
        if status.get("executor") == "k8s" and isinstance(status.get("cell_config"), dict):
            found.append((path.parent, status))
    return found


def problem(cell: Cell) -> str | None:
    """Why a cell whose pod exited 0 is not a build of this project's cell, or None."""
    drift = artifact_drift(cell.out, cell.hashes())
    if drift:
        return drift
    metadata = json.loads((cell.out / "metadata.json").read_text())
    if cell.model["checkpoint"].startswith("zoo:"):
        return None
    here = cell.checkpoint
    if not here.exists():
        return f"checkpoint {here} is not in this project"
    if metadata.get("checkpoint", {}).get("sha256") != cell.hashes().sha256(here):
        return f"exported from another checkpoint than {here} (sha256 differs)"
    return None


def collect_cell(folder: Path, status: dict, output: Path) -> bool:
    cell = Cell(**status["cell_config"], output_dir=str(folder), output_root=str(output))
    code = int(status.get("exit_code", EXIT_EXPORT_FAILED))
    if code == 0:
        reason = problem(cell)
        if reason:
            with open(folder / "export.log", "a") as log:
                log.write(f"exportkit collect: {reason}\n")
            code = EXIT_EXPORT_FAILED
    extra = {key: status[key] for key in FROM_POD if key in status}
    return record_outcome(
        cell,
        code,
        float(status.get("seconds", 0)),
        status.get("command", []),
        versions=status.get("versions"),
        prefix="collect: ",
        extra=extra,
    )


def main(argv: list[str]) -> int:
    """`exportkit collect OUTPUT`."""
    from exportkit.cli import _Parser

    parser = _Parser(prog="exportkit collect", description="Record the cells a Kubernetes Job exported as build state.")
    parser.add_argument("output", help="the matrix's output root, copied back from the Job's exports volume")

    def body() -> int:
        args = parser.parse_args(argv)
        from exportkit import project

        output = project.resolve(args.output)
        if not output.is_dir():
            raise ConfigError(f"collect: {output} is not a folder; give the output root the Job's pods wrote")
        found = pod_statuses(output)
        if not found:
            raise ConfigError(
                f"collect: no cell under {output} was exported by a pod (no <model>/<cell>/status.json "
                "from exportkit's Kubernetes entry point)"
            )
        ok = sum(collect_cell(folder, status, output) for folder, status in found)
        print(f"collect: {ok} of {len(found)} cells recorded as built under {project.shown(output)}")
        return EXIT_OK if ok == len(found) else EXIT_EXPORT_FAILED

    try:
        return body()
    except ExportkitError as exc:  # stdout stays what the command prints (YAML, one line per cell); errors on stderr
        print(f"exportkit: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code

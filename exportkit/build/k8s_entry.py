"""A pod of exportkit's Indexed Job: ``JOB_COMPLETION_INDEX`` -> its cell -> the guide's `export.py` contract.

    python -m exportkit.build.k8s_entry          (the Job's container command; exportkit/build/k8s.py writes it)

Reads the frozen cells (``EXPORTKIT_CELLS``, the mounted ConfigMap), sets ``CHECKPOINT_PATH``, ``EXPORT_FORMAT``,
``OUTPUT_DIR`` and ``EXPORT_CONFIG`` from the cell at that index (paths under ``EXPORTKIT_CHECKPOINTS`` and
``EXPORTKIT_EXPORTS``) and runs the export CLI with no flags, as the guide's env-var contract says. Its output goes
to the pod log and to the cell's export.log; status.json records the exit code and this pod's library versions for
`exportkit collect`. The pod exits with the CLI's exit code (1/2/3 fail the index without a retry).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from exportkit.errors import ConfigError, ExportkitError

CONTRACT = ("CHECKPOINT_PATH", "EXPORT_FORMAT", "OUTPUT_DIR", "EXPORT_CONFIG")


def cell_for_index(environ=os.environ) -> dict:
    """The frozen cell of this pod's index, with its paths inside this pod."""
    index_text = environ.get("JOB_COMPLETION_INDEX", "")
    cells_file = environ.get("EXPORTKIT_CELLS", "")
    if not index_text.isdigit():
        raise ConfigError(
            f"JOB_COMPLETION_INDEX is {index_text!r}; expected the pod's index (0, 1, ...) from an Indexed Job"
        )
    try:
        cells = json.loads(Path(cells_file).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"EXPORTKIT_CELLS={cells_file!r} is not a readable cells file ({exc}); mount the ConfigMap"
        ) from None
    index = int(index_text)
    if index >= len(cells):
        raise ConfigError(f"JOB_COMPLETION_INDEX {index} is past the {len(cells)} cells of {cells_file}")
    return {**cells[index], "index": index}


def contract_env(cell: dict, environ=os.environ) -> dict:
    """CHECKPOINT_PATH, EXPORT_FORMAT, OUTPUT_DIR, EXPORT_CONFIG of ``cell`` inside this pod."""
    checkpoints = Path(environ.get("EXPORTKIT_CHECKPOINTS", "/exportkit/checkpoints"))
    exports = Path(environ.get("EXPORTKIT_EXPORTS", "/exportkit/exports"))
    return {
        "CHECKPOINT_PATH": str(checkpoints / cell["checkpoint"]),
        "EXPORT_FORMAT": cell["export_format"],
        "OUTPUT_DIR": str(exports / cell["output_dir"]),
        "EXPORT_CONFIG": cell["export_config"],
    }


def run_contract(env: dict, log: Path) -> int:
    """`python -m exportkit.cli` with the contract's variables and no flags; its output to stdout and ``log``."""
    child = subprocess.Popen(
        [sys.executable, "-m", "exportkit.cli"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    forward = lambda signum, frame: child.send_signal(signum)  # noqa: E731 (the kubelet's SIGTERM reaches the export)
    signal.signal(signal.SIGTERM, forward)
    with open(log, "wb") as handle:
        for line in iter(child.stdout.readline, b""):
            handle.write(line)
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
    code = child.wait()
    return 128 - code if code < 0 else code  # killed by a signal: the shell's 128+N, as a container reports it


def main() -> int:
    try:
        cell = cell_for_index()
        contract = contract_env(cell)
    except ExportkitError as exc:
        print(f"exportkit: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    from exportkit.build.cell import STATE_FILE, library_versions

    out = Path(contract["OUTPUT_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "status.json").unlink(missing_ok=True)
    (out / STATE_FILE).unlink(missing_ok=True)  # only `exportkit collect` writes the build state
    start = time.perf_counter()
    code = run_contract({**os.environ, **contract}, out / "export.log")
    status = {
        "cell": cell["name"],
        "exit_code": code,
        "ok": code == 0,
        "seconds": round(time.perf_counter() - start, 2),
        "command": [sys.executable, "-m", "exportkit.cli"],
        "env": contract,
        "executor": "k8s",
        "index": cell["index"],
        "cell_config": cell["cell"],
        "versions": library_versions(cell["export_format"]),
    }
    (out / "status.json").write_text(json.dumps(status, indent=2) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())

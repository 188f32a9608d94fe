"""``local``: the guide's `export.py` contract in a fresh fork of a warm worker (exportkit/build/executors/zygote.py).

`python export.py` spends about 2 s of each cell importing torch, Ultralytics and the converters; the warm worker
imports them once per build, then forks one child per cell, which runs the same script with the same arguments,
environment, working directory and log file as the `subprocess` executor (artifacts are byte-identical). A child
killed by a signal fails its own cell, with one line in its log; the worker and the next cells go on. A worker
that died is started again for the next cell.

    doit export executor=local          (or EXPORTKIT_EXECUTOR=local; POSIX only: it forks)

One worker per process that runs cells: with `doit -n N -P thread` the N threads share it (forks are serialised
in the worker, the children run concurrently); with doit's default `-P process` each doit process has its own.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from exportkit import project
from exportkit.build import runner
from exportkit.build.executors import Executor, ExportOutcome, register_executor
from exportkit.errors import ConfigError, ExportError


class WarmWorker:
    """The client side of one zygote process; thread-safe."""

    def __init__(self, env: dict, cwd: Path):
        self.env, self.cwd = env, cwd
        self.folder = tempfile.mkdtemp(prefix="exportkit-warm-")  # short: a Unix socket path has ~100 characters
        self.socket = os.path.join(self.folder, "zygote.sock")
        self.log = Path(self.folder) / "zygote.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "exportkit.build.executors.zygote", self.socket],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=cwd,
                env=env,
            )
        line = self.process.stdout.readline().decode(errors="replace").strip()
        self.process.stdout.close()
        if not line.startswith("ready"):
            self.close()
            raise ExportError(f"the local executor's warm worker did not start ({line or self._log_tail()})")

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, entry: list[str], args: list[str], log: Path) -> int:
        """Run `python ENTRY ARGS` in a fork of the worker, output in ``log``; its exit code (-N: killed by signal N)."""
        request = {"entry": entry, "args": args, "env": self.env, "cwd": str(self.cwd), "log": os.path.abspath(log)}
        pid = status = None
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(self.socket)
                conn.sendall(json.dumps(request).encode() + b"\n")
                for line in conn.makefile("rb"):
                    message = json.loads(line)
                    pid, status = message.get("pid", pid), message.get("status")
        except (OSError, ValueError) as exc:
            return note(log, f"the local executor's warm worker could not run the cell ({type(exc).__name__}: {exc})")
        if status is None:
            return note(
                log,
                f"the local executor's warm worker (pid {self.process.pid}) died during the export "
                f"(child pid {pid}); the worker is started again for the next cell",
            )
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
            note(
                log, f"the export process (pid {pid}) was killed by {name}; this cell failed, the next cells still run"
            )
        return code

    def _log_tail(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
        return lines[-1] if lines else f"exit {self.process.poll()}"

    def close(self) -> None:
        """Close the worker's stdin: it ends its children and exits."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def note(log: Path, line: str) -> int:
    """Append exportkit's one error line to a cell's log (export_cell shows the log's last line); exit code 1."""
    with open(log, "a") as handle:
        handle.write(f"exportkit: error: {line}\n")
    return 1


@register_executor
class LocalExecutor(Executor):
    name = "local"

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        if not hasattr(os, "fork"):
            raise ConfigError(
                "executor local forks a warm worker per cell and this system has no fork; use executor=subprocess"
            )
        self._lock = threading.Lock()
        self._worker: WarmWorker | None = None
        atexit.register(self.close)

    def export(self, cell, command: list[str], log: Path) -> ExportOutcome:
        entry = runner.export_entry()
        if command[: len(entry)] != entry:  # not the export contract this worker runs: run it as it is
            return ExportOutcome(runner.run_logged(command, log))
        try:
            worker = self.worker()
        except ExportError as exc:
            return ExportOutcome(note(log, exc.one_line()))
        code = worker.run(entry[1:], command[len(entry) :], log)
        return ExportOutcome(code)

    def worker(self) -> WarmWorker:
        """The warm worker, started on first use and again when it died or the cells' environment changed."""
        env, cwd = runner.cell_env(), project.root()
        with self._lock:
            worker = self._worker
            if worker is None or not worker.alive() or worker.env != env or worker.cwd != cwd:
                if worker is not None:
                    worker.close()
                self._worker = WarmWorker(env, cwd)
            return self._worker

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.close()
                self._worker = None

"""SIGTERM and SIGINT end an export cleanly: staging removed, nothing published, one line, a distinct code.

Kubernetes sends SIGTERM on eviction and at a Job's deadline. The handler raises :class:`Interrupted`
(a BaseException, so no ``except Exception`` inside a converter swallows it); the pipeline's ``finally``
removes the staging folder and releases the folder lock, and the CLI prints one line and exits 128 + the
signal number (143 for SIGTERM, 130 for SIGINT): an interruption is not a property of the checkpoint, so
it must not read as exit 1, which a Job's podFailurePolicy treats as final. A publish is never cut in half:
the signals wait until it is done.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """A termination signal arrived during an export."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.published = False

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def one_line(self) -> str:
        outcome = "the export had already been published" if self.published else "nothing was published"
        return f"interrupted by {signal.Signals(self.signum).name}; {outcome}"


def _raise(signum, frame):
    raise Interrupted(signum)


def install() -> None:
    """Turn SIGTERM and SIGINT into Interrupted in this (main) thread."""
    for signum in SIGNALS:
        signal.signal(signum, _raise)


@contextmanager
def deferred():
    """Hold SIGTERM/SIGINT back while the block runs; a pending one is acted on right after it.

    The handlers are swapped for ones that only note the signal, rather than the main thread's signal mask
    changed: a signal sent to the process reaches whichever thread does not block it (ONNX Runtime's and
    OpenVINO's thread pools among them), and Python then runs the handler in the main thread all the same.
    Off the main thread, where handlers cannot be set, the block runs as it is (the handler raises in the main
    thread, not in this one)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: pending.append(signum)) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(pending):  # each signal once, in the order they came; a raise ends it
            _deliver(signum, previous[signum])


def _deliver(signum: int, handler) -> None:
    """What ``signum`` would have done under ``handler``: call it, or the default action, or nothing if ignored."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)

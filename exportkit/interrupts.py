"""SIGTERM and SIGINT end an export cleanly: staging removed, nothing published, one line, a distinct code.

Kubernetes sends SIGTERM on eviction and at a Job's deadline. The handler raises :class:`Interrupted`
(a BaseException, so no ``except Exception`` inside a converter swallows it); the pipeline's ``finally``
removes the staging folder and releases the folder lock, and the CLI prints one line and exits 128 + the
signal number (143 for SIGTERM, 130 for SIGINT): an interruption is not a property of the checkpoint, so
it must not read as exit 1, which a Job's podFailurePolicy treats as final. A publish is never cut in half:
the signals wait until it is done.
"""

from __future__ import annotations

import signal
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
    """Hold SIGTERM/SIGINT back while the block runs; a pending one is raised right after it."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)

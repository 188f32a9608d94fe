"""exportkit.interrupts in-process: SIGTERM/SIGINT become Interrupted, and a publish is never cut in half, even
when the signal reaches another thread of the process (a runtime's thread pool)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from exportkit import interrupts


@pytest.fixture
def handlers():
    previous = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.fixture
def other_thread():
    """A thread that blocks no signal, as ONNX Runtime's pool threads do: the kernel may hand it the signal."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    yield thread
    stop.set()
    thread.join()


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_in_the_block_is_raised_after_it(signum, code, handlers, other_thread):
    interrupts.install()
    done = []
    with pytest.raises(interrupts.Interrupted) as err:
        with interrupts.deferred():
            os.kill(os.getpid(), signum)
            time.sleep(0.1)  # time for the handler to run, if it were going to run now
            done.append("finished")
    assert done == ["finished"] and err.value.signum == signum and err.value.exit_code == code
    assert err.value.one_line() == f"interrupted by {signal.Signals(signum).name}; nothing was published"
    assert signal.getsignal(signum) is interrupts._raise  # the exportkit handler is back


def test_without_a_signal_the_block_runs_and_the_handlers_are_restored(handlers):
    interrupts.install()
    with interrupts.deferred():
        assert signal.getsignal(signal.SIGTERM) is not interrupts._raise
    assert [signal.getsignal(s) for s in interrupts.SIGNALS] == [interrupts._raise] * 2


def test_an_ignored_signal_stays_ignored_and_a_python_handler_is_called_once(handlers):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    calls = []
    signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    with interrupts.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert calls == [signal.SIGINT]


def test_the_default_action_is_taken_after_the_block(tmp_path):
    import subprocess
    import sys

    code = (
        "import os, signal, sys\n"
        "from exportkit.interrupts import deferred\n"
        "with deferred():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('block done', flush=True)\n"
        "print('not reached', flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGTERM and proc.stdout == "block done\n"


def test_off_the_main_thread_the_block_just_runs(handlers):
    interrupts.install()
    seen = []

    def body():
        with interrupts.deferred():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [interrupts._raise]

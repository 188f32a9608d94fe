"""The warm worker of the `local` executor: a process that imports torch, Ultralytics and exportkit's export path
once, then forks a fresh child per cell (Android's zygote). The child runs the guide's `export.py` contract exactly
as `python export.py ARGS` would (the same script, argv, environment, working directory, log file and exit code);
it starts from the state the imports left, so nothing one export changes (Ultralytics' globals, torch's caches) is
seen by the next, and a crash is its own process's.

    python -m exportkit.build.executors.zygote SOCKET     (started by exportkit/build/executors/local_executor.py)

Protocol, one Unix-socket connection per cell: the client sends one JSON line
``{"entry": [...], "args": [...], "env": {...}, "cwd": "...", "log": "..."}``; the zygote forks and answers
``{"pid": N}``, then ``{"status": WAITSTATUS}`` when the child has exited. The zygote is single-threaded, so forks
are serialised; children run concurrently. It exits, ending its children with SIGTERM, when its stdin closes (the
client exited or closed it); each child gets SIGTERM when the zygote dies (Linux), so none outlives it.

Threads and fork: only the forking thread survives in a child. The zygote starts no thread of its own and imports
nothing that keeps a lock in a thread of its own: torch and Ultralytics start their pools on first use, not on
import; OpenBLAS' pool (numpy) handles fork itself. onnxruntime starts a thread when imported, so it is not warmed.
"""

from __future__ import annotations

import importlib
import json
import os
import selectors
import signal
import socket
import sys

# imported before the first fork: what every export loads, then per format what is safe to fork after (see above)
WARM_MODULES = (
    "torch",
    "torchvision",
    "ultralytics",
    "ultralytics.engine.exporter",
    "ultralytics.engine.model",
    "ultralytics.models.yolo",
    "ultralytics.nn.tasks",
    "thop",
    "exportkit.cli",
    "exportkit.pipeline",
    "exportkit.checkpoint",
    "exportkit.safe_load",
    "exportkit.capabilities",
    "exportkit.guide_config",
    "exportkit.userdata",
    "exportkit.interrupts",
    "exportkit.versions",
    "exportkit.metadata",
    "exportkit.publish",
    "exportkit.validate",
    "exportkit.checkers",
    "exportkit.families.yolo",
    "exportkit.families.sam2",
    "exportkit.formats._ultralytics",
)
WARM_FOR_FORMAT = {
    "onnx": ("exportkit.formats.onnx", "onnx", "onnxslim"),
    "openvino": (
        "exportkit.formats.openvino",
        "openvino",
        "openvino.frontend.pytorch",
        "openvino._offline_transformations",
    ),
    "torchscript": ("exportkit.formats.torchscript",),
}


def warm(modules) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the child reports a missing or broken package the way `python export.py` does
            pass


# -- the child: one cell -------------------------------------------------------------------------------------------
def run_contract(request: dict) -> int:
    """What `python ENTRY ARGS` does after the interpreter starts: the script (or module) as __main__, its exit code."""
    import runpy

    entry, args = request["entry"], request["args"]
    try:
        if entry[:2] == ["-m", "exportkit.cli"]:  # `python -m exportkit.cli`: its __main__ block is sys.exit(main())
            from exportkit.cli import main

            sys.argv[:] = [sys.modules["exportkit.cli"].__file__, *args]
            return main(args)
        sys.argv[:] = [entry[0], *args]  # in place: Ultralytics keeps a reference to sys.argv (ARGV)
        sys.path[0] = os.path.dirname(os.path.abspath(entry[0]))
        runpy.run_path(entry[0], run_name="__main__")
        return 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1


def child(request: dict, keep_open: list, zygote: int) -> None:
    """In the forked child: become `python export.py ...` with its output in the log, then exit with its code."""
    code = 1
    try:
        for fd in keep_open:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        die_with_parent(zygote)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = run_contract(request)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()  # what a normal interpreter exit runs (logging's flush, torch's)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code & 0xFF)


def die_with_parent(zygote: int) -> None:
    """SIGTERM when the zygote dies (Linux prctl PR_SET_PDEATHSIG): a cell never outlives its worker."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != zygote:  # it died before the prctl took effect
        os._exit(1)


# -- the zygote ----------------------------------------------------------------------------------------------------
class Zygote:
    def __init__(self, path: str):
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "child")
        self.children: dict[int, socket.socket] = {}  # pid -> the connection waiting for its status
        self.warmed: set[str] = set()

    def serve(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.data == "stdin" and not os.read(sys.stdin.fileno(), 4096):
                    return self.shutdown()
                if key.data == "accept":
                    self.accept()
                elif key.data == "child":
                    self.reap()

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            conn.settimeout(10)
            request = json.loads(conn.makefile("rb").readline())
            fmt = (
                request["args"][request["args"].index("--export_format") + 1]
                if "--export_format" in request["args"]
                else ""
            )
            if fmt not in self.warmed:
                warm(WARM_FOR_FORMAT.get(str(fmt).lower(), ()))
                self.warmed.add(fmt)
        except (OSError, ValueError, KeyError, IndexError):
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        zygote = os.getpid()
        pid = os.fork()
        if pid == 0:
            child(request, [conn.fileno(), *self.own_fds()], zygote)
        self.children[pid] = conn
        self.send(conn, {"pid": pid})

    def own_fds(self) -> list[int]:
        """The zygote's sockets, which a child closes: only the zygote talks to the clients."""
        sockets = [self.listener, self.wake_r, self.wake_w, *self.children.values()]
        selector = [self.selector.fileno()] if hasattr(self.selector, "fileno") else []
        return [s.fileno() for s in sockets] + selector

    def reap(self) -> None:
        try:
            while self.wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                self.send(conn, {"status": status})
                conn.close()

    @staticmethod
    def send(conn: socket.socket, message: dict) -> None:
        try:
            conn.sendall(json.dumps(message).encode() + b"\n")
        except OSError:  # the client went away; the child runs to its end, its status is dropped
            pass

    def shutdown(self) -> None:
        """stdin closed: the client is gone. End the children (they remove their staging folders) and exit."""
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in list(self.children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.listener.close()
        folder = os.path.dirname(self.path)  # the client's private folder: the socket and this log, nothing else
        for name in (os.path.basename(self.path), "zygote.log"):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass
        try:
            os.rmdir(folder)
        except OSError:
            pass


def main(argv: list[str]) -> int:
    ready = os.fdopen(os.dup(1), "w")  # the client reads one line from our stdout: "ready PID" or why not
    os.dup2(2, 1)  # what imports print goes to the zygote's log, never into the ready channel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the children (one line, exit 130), not us
    try:
        warm(WARM_MODULES[:3])
        import torch  # noqa: F401  (a broken torch is the one thing worth failing the worker for)

        warm(WARM_MODULES[3:])
        zygote = Zygote(argv[0])
    except BaseException as exc:
        ready.write(f"failed {type(exc).__name__}: {exc}\n")
        ready.close()
        return 1
    ready.write(f"ready {os.getpid()}\n")
    ready.close()
    zygote.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What runs on a Ray worker for one cell: the guide's `export.py` contract in a node-local scratch folder.

Nothing here assumes the user's project or a checkout: the checkpoint arrives as bytes (a Ray object); the export
runs as `python -m exportkit.build.executors.ray_worker PARENT_PID ARGS...`, i.e. the worker's *installed*
``exportkit.cli`` (what `export.py` calls) with the contract's four arguments. What comes back is plain data (exit
code, log, metadata.json, the artifact files, the worker's library versions), or, with ``shared_dir``, the folder
on storage every node mounts that holds them: the driver alone checks, publishes and writes the build state.

The export process dies with the Ray worker (Linux ``PR_SET_PDEATHSIG``): a killed worker leaves no export
running behind Ray's back, and Ray retries the task elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

SCRATCH_PREFIX = "exportkit-ray-"
MARKERS_ENV = "_EXPORTKIT_TEST_RAY_MARKERS"  # tests only: a folder where each attempt leaves a file before it runs


def export_on_worker(
    checkpoint: bytes,
    checkpoint_name: str,
    format_name: str,
    export_config: str,
    shared_dir: str | None = None,
    marker_dir: str | None = None,
) -> dict:
    """Export one cell here from the checkpoint's bytes. ``marker_dir`` (tests): a file per attempt
    (FORMAT.PID.RANDOM holding this node and pid), written before the export starts."""
    from exportkit.build.cell import library_versions

    where = {"node": _node_ip(), "pid": os.getpid(), "host": socket.gethostname()}
    remove_abandoned_scratch(Path(tempfile.gettempdir()))
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        path = scratch / Path(checkpoint_name).name
        path.write_bytes(checkpoint)
        out = Path(shared_dir) / "results" / uuid.uuid4().hex if shared_dir else scratch / "out"
        if marker_dir:
            Path(marker_dir, f"{format_name}.{os.getpid()}.{uuid.uuid4().hex[:8]}").write_text(json.dumps(where))
        command = [
            sys.executable,
            "-m",
            __name__,
            str(os.getpid()),
            "--checkpoint_path",
            str(path),
            "--export_format",
            format_name,
            "--output_dir",
            str(out),
            "--export_config",
            export_config,
        ]
        env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "EXPORTKIT_PROJECT": str(scratch)}
        proc = subprocess.run(command, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        result = {
            **where,
            "exit_code": proc.returncode,
            "log": proc.stdout.decode("utf-8", "replace"),
            "versions": library_versions(format_name),
            "metadata": None,
            "files": {},
            "folder": None,
        }
        if proc.returncode == 0 and (out / "metadata.json").is_file():
            result["metadata"] = (out / "metadata.json").read_text()
            if shared_dir:
                result["folder"] = str(out)  # the driver reads the files there, then removes the folder
            else:
                result["files"] = exported_files(out, json.loads(result["metadata"]))
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def remove_abandoned_scratch(folder: Path) -> None:
    """Scratch folders of attempts whose worker is gone (killed with its node or by the OOM killer: no ``finally``)."""
    for scratch in folder.glob(f"{SCRATCH_PREFIX}*-*"):
        pid = scratch.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(scratch, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def exported_files(folder: Path, metadata: dict) -> dict[str, bytes]:
    """{relative path: bytes} of every artifact metadata.json lists, and exportkit's files beside it (validation.json)."""
    from exportkit.publish import EXPORT_FILES

    names = [entry["path"] for entry in metadata.get("artifacts", [])]
    names += [name for name in EXPORT_FILES if name != "metadata.json"]
    return {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}


def _node_ip() -> str:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:  # outside a Ray worker (unit tests)
        return socket.gethostname()


def _tie_to_parent(parent: int) -> None:
    """Die with the Ray worker that started us (SIGKILL on its exit); exit now if it is already gone."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(137)


def main(argv: list[str]) -> int:
    _tie_to_parent(int(argv[0]))
    from exportkit.cli import main as export_main

    return export_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

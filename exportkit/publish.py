"""An output folder holds exactly one consistent export at every instant: locked, staged, switched atomically.

- :func:`folder_lock`: one export at a time per folder (``fcntl.flock`` on ``.exportkit.lock``); a second job
  waits, saying for whom, and the lock file is gone when the holder is done.
- :func:`make_staging`: the hidden folder an export is written into; its name records its owner (host, pid,
  start time), so a stale one is removed only when that process is gone (a zombie, or another process that
  reuses the pid, is not the owner).
- :func:`publish`: moves a staged export in, removing the previous export's files (those its metadata.json
  lists; files exportkit never wrote stay). The switch is a single ``rename`` of a symlink: until it, every
  entry of the old export resolves to the old files; after it, every entry of the new one to the new files.
  Then the entries are turned back into plain files and folders. ``kill -9`` at any step leaves the old
  complete export or the new complete one, and the next export into the folder finishes the job.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from exportkit.errors import ExportError
from exportkit.progress import say

log = logging.getLogger(__name__)

LOCK_FILE = ".exportkit.lock"
STAGING_PREFIX = ".exportkit-staging-"
PREVIOUS_PREFIX = ".exportkit-previous-"
CURRENT = ".exportkit-current"
TMP_SUFFIX = ".exportkit-tmp"
EXPORT_FILES = ("metadata.json", "validation.json")  # exportkit's own files beside the artifacts
FAULT_ENV = "_EXPORTKIT_TEST_KILL_AT_PUBLISH_STEP"  # tests only: SIGKILL this process at that step of a publish
PROC = Path("/proc")  # Linux's process table: start times tell a live owner from a zombie or a reused pid
_OWNER = re.compile(r"^\.exportkit-(?:staging|previous)-(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.(?:(?P<start>\d+)\.)?")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"


# -- the folder lock ----------------------------------------------------------------------------------
@contextmanager
def folder_lock(folder: Path, timeout: float | None = None):
    """Hold ``folder``'s export lock; wait for another holder (one line on stdout), or ExportError after ``timeout``."""
    path = Path(folder) / LOCK_FILE
    fd = _acquire(path, timeout)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
        yield
    finally:
        try:
            os.unlink(path)  # safe: a waiter re-checks that the path it locked is still this file
        except FileNotFoundError:
            pass
        os.close(fd)


def _acquire(path: Path, timeout: float | None) -> int:
    deadline = None if timeout is None else time.monotonic() + timeout
    announced = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not announced:
                say(f"waiting for the export running in {path.parent} ({_holder(fd)}) to finish")
                announced = True
            if deadline is not None and time.monotonic() > deadline:
                holder = _holder(fd)
                os.close(fd)
                raise ExportError(
                    f"output_dir {path.parent} is locked by another export ({holder}); gave up after {timeout:g}s"
                ) from None
            os.close(fd)
            time.sleep(0.2)
            continue
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the holder removed the lock file as we took it: lock the new one


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(info['pid'])} on {str(info['host'])[:64]}"
    except (ValueError, KeyError, TypeError, OSError):
        return "holder unknown"


# -- staging ------------------------------------------------------------------------------------------
def _owner_tag() -> str:
    """host.pid.start: the start time (clock ticks since boot) tells this process from a later one with its pid."""
    start = _start_time(os.getpid())
    return f"{_host()}.{os.getpid()}." + (f"{start}." if start is not None else "")


def _start_time(pid: int) -> int | None:
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])  # a zombie is gone, whatever kill(pid, 0) says


def make_staging(folder: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{_owner_tag()}", dir=folder))


def owner_alive(name: str) -> bool | None:
    """Whether the process that made this hidden folder still runs; None when it ran on another host."""
    match = _OWNER.match(name)
    if not match:
        return False
    if match["host"] != _host():
        return None
    pid = int(match["pid"])
    if (PROC / "self" / "stat").exists():  # Linux: a zombie or a new process under an old pid is not the owner
        start = _start_time(pid)
        return start is not None and (match["start"] is None or int(match["start"]) == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_stale(folder: Path) -> None:
    """Under the folder lock: finish an interrupted publish, then drop hidden folders whose owner is gone."""
    recover(folder)
    for entry in Path(folder).iterdir():  # a temporary name left by a kill inside one step
        if entry.name.endswith((TMP_SUFFIX, ".exportkit-swap")) and not entry.name.startswith("."):
            _remove(entry)
    for entry in Path(folder).glob(".exportkit-*"):
        if not entry.is_dir() or entry.is_symlink() or not entry.name.startswith((STAGING_PREFIX, PREVIOUS_PREFIX)):
            continue
        alive = owner_alive(entry.name)
        if alive is False:
            shutil.rmtree(entry, ignore_errors=True)
        elif alive is None:
            log.info("leaving %s: it belongs to a process on another host", entry.name)


# -- publish ------------------------------------------------------------------------------------------
def export_entries(folder: Path) -> list[str]:
    """The top-level entries of the export in ``folder``: its metadata.json's artifacts and exportkit's files."""
    folder = Path(folder)
    names = [n for n in EXPORT_FILES if os.path.lexists(folder / n)]
    try:
        artifacts = json.loads((folder / "metadata.json").read_text()).get("artifacts", [])
        paths = [str(a["path"]) for a in artifacts if isinstance(a, dict) and "path" in a]
    except (OSError, ValueError, AttributeError):
        paths = []
    for path in paths:
        top = path.split("/", 1)[0]
        if _safe_name(top) and top not in names and os.path.lexists(folder / top):
            names.append(top)
    return names


def _safe_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and not name.startswith(".")


class _Steps:
    """Counts the publish's file operations; the fault hook kills the process at the chosen one."""

    def __init__(self):
        self.count = 0
        wanted = os.environ.get(FAULT_ENV)
        self.kill_at = int(wanted) if wanted and wanted.isdigit() else None

    def __call__(self) -> None:
        self.count += 1
        if self.count == self.kill_at:
            sys.stdout.flush()
            os.kill(os.getpid(), 9)


def publish(staging: Path, folder: Path) -> list[str]:
    """Make the export staged in ``staging`` (artifacts + metadata.json) the folder's one export; return its entries."""
    folder, staging = Path(folder), Path(staging)
    step = _Steps()
    new = [e.name for e in staging.iterdir()]
    old = export_entries(folder)
    previous = Path(tempfile.mkdtemp(prefix=f"{PREVIOUS_PREFIX}{_owner_tag()}", dir=folder))
    for name in old:  # 1. the old export also lives in `previous` (hard links: no copy of the data)
        _link_tree(folder / name, previous / name)
    _switch(folder, previous.name)
    step()
    for name in old:  # 2. each old entry becomes a symlink through CURRENT: still the old files
        _replace_with(folder / name, _symlink_beside(folder / name, f"{CURRENT}/{name}"))
        step()
    for name in new:  # 3. new entries point through CURRENT too (dangling until the switch)
        if name not in old:
            _replace_with(folder / name, _symlink_beside(folder / name, f"{CURRENT}/{name}"))
            step()
    _switch(folder, staging.name)  # 4. the commit: one rename of a symlink
    step()
    _materialise(folder, staging, new, step)  # 5. plain files again, then tidy up
    return new


def recover(folder: Path) -> None:
    """Finish a publish that was killed: whatever CURRENT points at is the folder's export."""
    folder = Path(folder)
    current = folder / CURRENT
    if not current.is_symlink():
        return
    target = folder / os.readlink(current)
    names = [e.name for e in target.iterdir()] if target.is_dir() else []
    _materialise(folder, target, names, lambda: None)


def _materialise(folder: Path, source: Path, names: list[str], step) -> None:
    for name in names:
        entry = folder / name
        if entry.is_symlink() and os.readlink(entry) == f"{CURRENT}/{name}":
            if (source / name).is_dir() and not (source / name).is_symlink():
                _exchange(source / name, entry)
            else:
                _replace_with(entry, _link_beside(entry, source / name))
            step()
    for entry in folder.iterdir():  # entries of the old export that the new one does not have
        if entry.is_symlink() and os.readlink(entry).startswith(f"{CURRENT}/") and entry.name not in names:
            entry.unlink()
    (folder / CURRENT).unlink(missing_ok=True)
    for entry in folder.glob(".exportkit-*"):
        if entry.name.startswith(PREVIOUS_PREFIX) or entry == source:
            shutil.rmtree(entry, ignore_errors=True)


def _switch(folder: Path, target: str) -> None:
    _replace_with(folder / CURRENT, _symlink_beside(folder / CURRENT, target))


def _symlink_beside(path: Path, target: str) -> Path:
    return _beside(path, lambda tmp: os.symlink(target, tmp))


def _link_beside(path: Path, source: Path) -> Path:
    return _beside(path, lambda tmp: os.link(source, tmp))


def _beside(path: Path, make) -> Path:
    """A fresh temporary entry next to ``path`` (a leftover of a killed step is removed first), made by ``make``."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    if os.path.lexists(tmp):
        _remove(tmp)
    make(tmp)
    return tmp


def _replace_with(path: Path, replacement: Path) -> None:
    """Atomically put ``replacement`` where ``path`` is (a file, symlink or folder), then drop what was there."""
    if path.is_dir() and not path.is_symlink():
        _exchange(replacement, path)
        _remove(replacement)
    else:
        os.replace(replacement, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _link_tree(source: Path, target: Path) -> None:
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, copy_function=os.link, symlinks=True)
    else:
        os.link(source, target)


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); a non-atomic swap where it is missing."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:
        renameat2 = None
    if renameat2 is not None:
        if renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(b))
    parked = b.with_name(b.name + ".exportkit-swap")
    os.rename(b, parked)
    os.rename(a, b)
    os.rename(parked, a)

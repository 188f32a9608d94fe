"""Publish and staging on hand-made folders: CoreML's folder artifact, OpenVINO's two files."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import threading
import time

import pytest
from conftest import dead_pid

from exportkit import interrupts, pipeline
from exportkit import publish as pub
from exportkit.errors import ConfigError, ExportError
from exportkit.publish import STAGING_PREFIX, publish, remove_stale
from exportkit.registry import get_format

OPENVINO = get_format("openvino")
COREML = get_format("coreml")
ONNX = get_format("onnx")


def _metadata(folder, fmt, **extra) -> str:
    files = [p for p in fmt.artifact_paths(folder)]
    paths = [f"{p.name}/weights.bin" if fmt.files[0].endswith("/") else p.name for p in files]
    return json.dumps({"artifacts": [{"path": path} for path in paths], **extra})


def staged(tmp_path, fmt=OPENVINO, validation=True):
    staging = tmp_path / "out" / f"{STAGING_PREFIX}x"
    for path in fmt.artifact_paths(staging):
        if fmt.files[0].endswith("/"):
            path.mkdir(parents=True)
            (path / "weights.bin").write_bytes(b"new bin")
            (path / "Manifest.json").write_text("new manifest")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"new")
    (staging / "metadata.json").write_text(_metadata(staging, fmt, new=True))
    if validation:
        (staging / "validation.json").write_text('{"status": "passed"}')
    return staging


def test_publish_moves_artifacts_and_metadata_replacing_the_old_export(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, COREML)
    old = out / "model.mlpackage"
    old.mkdir(parents=True)
    (old / "weights.bin").write_bytes(b"old bin")
    (old / "stale.txt").write_text("from the old export")
    (out / "metadata.json").write_text(_metadata(out, COREML, old=True))
    publish(staging, out)
    assert (old / "weights.bin").read_bytes() == b"new bin" and (old / "Manifest.json").read_text() == "new manifest"
    assert not (old / "stale.txt").exists()  # the old folder is replaced, not merged
    assert json.loads((out / "metadata.json").read_text())["new"] is True
    assert (out / "validation.json").read_text() == '{"status": "passed"}'
    assert not staging.exists() and not old.is_symlink()
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "model.mlpackage", "validation.json"]


def test_publish_replaces_both_files_of_a_two_file_artifact(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, OPENVINO, validation=False)
    (out / "model.bin").write_bytes(b"old")
    (out / "model.xml").write_bytes(b"old")
    (out / "metadata.json").write_text(_metadata(out, OPENVINO))
    publish(staging, out)
    assert (out / "model.bin").read_bytes() == b"new" and (out / "model.xml").read_bytes() == b"new"
    assert not any(p.is_symlink() for p in out.iterdir())


def test_publish_without_validation_drops_the_old_report(tmp_path):
    out = tmp_path / "out"
    staging = staged(tmp_path, ONNX, validation=False)
    (out / "validation.json").write_text('{"status": "passed", "for": "the old model"}')
    publish(staging, out)
    assert not (out / "validation.json").exists()
    assert (out / ONNX.artifact_paths(out)[0].name).read_bytes() == b"new"


def test_the_export_changes_in_one_rename(tmp_path, monkeypatch):
    """Of every rename a publish makes, only one changes which export the folder's entries resolve to: the
    switch of .exportkit-current (the kill test in test_concurrency.py proves the states around it)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"old")
    (out / "metadata.json").write_text(_metadata(out, ONNX, old=True))
    staging = staged(tmp_path, ONNX, validation=False)
    states = []
    real = os.replace

    def replace(a, b):
        real(a, b)
        states.append(json.loads((out / "metadata.json").read_text()).get("new", False))

    monkeypatch.setattr("exportkit.publish.os.replace", replace)
    publish(staging, out)
    assert states and states == sorted(states)  # old (False) ... until one step, new (True) after it
    assert states.count(False) >= 1 and states.count(True) >= 1


def test_clean_staging_keeps_only_declared_artifacts(tmp_path):
    staging = staged(tmp_path, ONNX, validation=False)
    (staging / "model.pt").write_bytes(b"copy")
    (staging / "junk").mkdir()
    (staging / "junk" / "x").write_text("x")
    pipeline.clean_staging(ONNX.artifact_paths(staging), staging)
    assert sorted(p.name for p in staging.iterdir()) == sorted(p.name for p in ONNX.artifact_paths(staging))
    pipeline.check_files(ONNX.artifact_paths(staging), "onnx")
    for path in ONNX.artifact_paths(staging):
        path.unlink()
    with pytest.raises(ExportError, match=f"onnx export wrote no {ONNX.artifact_paths(staging)[0].name}"):
        pipeline.check_files(ONNX.artifact_paths(staging), "onnx")


def test_stale_staging_folders_are_removed(tmp_path):
    (tmp_path / f"{STAGING_PREFIX}old" / "sub").mkdir(parents=True)  # no owner in its name: an older exportkit's
    (tmp_path / "keep").mkdir()
    remove_stale(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_output_dir_checks(tmp_path, monkeypatch):
    assert pipeline.check_output_dir(tmp_path / "new" / "deeper") == (tmp_path / "new" / "deeper").resolve()
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        pipeline.check_output_dir(file)
    with pytest.raises(ConfigError, match=r"is not a directory path \(.*file is a file\)"):
        pipeline.check_output_dir(file / "sub")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anywhere: answer as the owner of a mode-500 folder who is not root
        monkeypatch.setattr(pipeline.os, "access", lambda path, mode: (os.stat(path).st_mode >> 6) & mode == mode)
    with pytest.raises(ConfigError) as err:
        pipeline.check_output_dir(locked / "out")
    assert str(err.value) == f"output_dir {locked / 'out'} is not writable (no write permission on {locked})"
    assert not (locked / "out").exists()


# -- the lock holder's description, entry names, the export's entries ----------------------------------
def _fd_with(tmp_path, data: bytes) -> int:
    path = tmp_path / "lockfile"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


@pytest.mark.parametrize(
    "data, expected",
    [
        (b'{"pid": 42, "host": "build-7"}', "pid 42 on build-7"),
        (b'{"pid": "42", "host": "' + b"h" * 100 + b'"}', "pid 42 on " + "h" * 64),  # a long host name is cut
        (b"", "holder unknown"),
        (b"not json", "holder unknown"),
        (b'{"host": "x"}', "holder unknown"),
        (b'{"pid": 1}', "holder unknown"),
        (b'{"pid": "x1", "host": "h"}', "holder unknown"),
        (b"[1]", "holder unknown"),
        (
            b'{"pid": 42, "host": "h", "pad": "' + b"x" * (4097 - 35) + b'"}',
            "holder unknown",
        ),  # 4097 bytes: only 4 KiB is read
    ],
)
def test_lock_holder_is_described_from_the_lock_file(tmp_path, data, expected):
    from exportkit.publish import _holder

    fd = _fd_with(tmp_path, data)
    try:
        assert _holder(fd) == expected
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "name, safe",
    [
        ("model.onnx", True),
        ("model_openvino_model", True),
        ("", False),
        (".", False),
        ("..", False),
        ("a/b", False),
        ("a\\b", False),
        (".ssh", False),
        ("x.", True),
    ],
)
def test_only_plain_visible_names_are_export_entries(name, safe):
    from exportkit.publish import _safe_name

    assert _safe_name(name) is safe


def test_export_entries_are_exportkits_files_then_each_artifacts_top_entry(tmp_path):
    from exportkit.publish import export_entries

    (tmp_path / "model_openvino_model").mkdir()
    for name in ("model_openvino_model/model.xml", "model_openvino_model/model.bin", "validation.json", "notes.txt"):
        (tmp_path / name).write_text("x")
    artifacts = [
        {"path": "model_openvino_model/model.xml"},
        {"path": "model_openvino_model/model.bin"},
        {"path": "gone.onnx"},
        "model.onnx",
        {"sha256": "no path"},
        {"path": "../outside"},
    ]
    (tmp_path / "metadata.json").write_text(json.dumps({"artifacts": artifacts}))
    # metadata.json and validation.json first; a folder artifact once; missing, path-less and unsafe entries left out
    assert export_entries(tmp_path) == ["metadata.json", "validation.json", "model_openvino_model"]
    (tmp_path / "metadata.json").write_text(json.dumps({"artifacts": [{"path": "model_openvino_model/sub/deep.bin"}]}))
    assert export_entries(tmp_path) == ["metadata.json", "validation.json", "model_openvino_model"]  # the top entry
    (tmp_path / "metadata.json").write_text("{}")  # no artifacts listed
    assert export_entries(tmp_path) == ["metadata.json", "validation.json"]
    (tmp_path / "metadata.json").write_text("[]")  # not an object: only exportkit's own files
    assert export_entries(tmp_path) == ["metadata.json", "validation.json"]
    (tmp_path / "metadata.json").write_text("{broken")
    assert export_entries(tmp_path) == ["metadata.json", "validation.json"]
    (tmp_path / "metadata.json").unlink()
    assert export_entries(tmp_path) == ["validation.json"]


def without_renameat2(monkeypatch) -> None:
    """A libc without renameat2: _exchange falls back to three renames."""

    class NoRenameat2:
        def __init__(self, *args, **kwargs):
            pass

    monkeypatch.setattr(pub.ctypes, "CDLL", NoRenameat2)


@pytest.mark.parametrize("atomic", [True, False])  # renameat2, and the fallback where libc lacks it
def test_exchange_swaps_two_files_or_folders(tmp_path, monkeypatch, atomic):
    if not atomic:
        without_renameat2(monkeypatch)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    (b / "inner").mkdir(parents=True)
    (b / "inner" / "f").write_text("B")
    pub._exchange(a, b)
    assert a.is_dir() and (a / "inner" / "f").read_text() == "B" and b.read_text() == "A"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # nothing parked is left
    if atomic:
        with pytest.raises(FileNotFoundError):
            pub._exchange(tmp_path / "missing", a)


def test_link_tree_shares_files_and_keeps_links(tmp_path):
    from exportkit.publish import _link_tree

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "w.bin").write_bytes(b"w")
    os.symlink("sub/w.bin", src / "link")
    (tmp_path / "file").write_bytes(b"f")
    _link_tree(src, tmp_path / "copy")
    assert os.path.samefile(src / "sub" / "w.bin", tmp_path / "copy" / "sub" / "w.bin")  # a hard link, not a copy
    assert os.readlink(tmp_path / "copy" / "link") == "sub/w.bin"  # the symlink itself, as it was
    _link_tree(tmp_path / "file", tmp_path / "file2")
    assert os.path.samefile(tmp_path / "file", tmp_path / "file2")
    _link_tree(src / "link", tmp_path / "link2")
    assert os.readlink(tmp_path / "link2") == "sub/w.bin"


def test_fault_hook_kills_at_the_chosen_step_only(monkeypatch):
    killed = []
    monkeypatch.setattr(pub.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    monkeypatch.setenv(pub.FAULT_ENV, "3")
    step = pub._Steps()
    for _ in range(5):
        step()
    assert step.count == 5 and killed == [(os.getpid(), 9)]
    for value in ("", "x", "-1"):
        monkeypatch.setenv(pub.FAULT_ENV, value)
        assert pub._Steps().kill_at is None
    monkeypatch.delenv(pub.FAULT_ENV)
    step = pub._Steps()
    step()
    assert step.kill_at is None and step.count == 1 and killed == [(os.getpid(), 9)]


def test_staging_name_records_host_pid_and_start_time(tmp_path):
    from exportkit.publish import _host, _start_time, make_staging, owner_alive

    staging = make_staging(tmp_path)
    assert staging.parent == tmp_path and staging.is_dir()
    assert staging.name.startswith(f"{STAGING_PREFIX}{_host()}.{os.getpid()}.{_start_time(os.getpid())}.")
    assert owner_alive(staging.name) is True


def test_check_files_names_every_missing_file(tmp_path):
    with pytest.raises(ExportError) as err:  # OpenVINO writes two files: both missing, both named
        pipeline.check_files(OPENVINO.artifact_paths(tmp_path), "openvino")
    names = [p.name for p in OPENVINO.artifact_paths(tmp_path)]
    assert len(names) == 2 and str(err.value) == f"openvino export wrote no {names[0]}, {names[1]}"


def test_staging_name_without_a_start_time_is_host_and_pid(tmp_path, monkeypatch):
    monkeypatch.setattr(pub, "_start_time", lambda pid: None)  # no /proc: the name holds host and pid only
    assert pub._owner_tag() == f"{pub._host()}.{os.getpid()}."


def test_a_temporary_link_left_by_a_kill_is_replaced(tmp_path):
    from exportkit.publish import TMP_SUFFIX, _symlink_beside

    (tmp_path / f"entry{TMP_SUFFIX}").write_text("left over")
    tmp = _symlink_beside(tmp_path / "entry", "target")
    assert tmp == tmp_path / f"entry{TMP_SUFFIX}" and os.readlink(tmp) == "target"


def test_exchange_of_relative_paths_is_one_atomic_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").write_text("A")
    (tmp_path / "b").write_text("B")

    def no_rename(*args):
        raise AssertionError("a swap by three renames is not atomic")

    monkeypatch.setattr(pub.os, "rename", no_rename)
    pub._exchange(pub.Path("a"), pub.Path("b"))  # renameat2(AT_FDCWD, ..., RENAME_EXCHANGE): relative to the cwd
    assert (tmp_path / "a").read_text() == "B" and (tmp_path / "b").read_text() == "A"


# -- the folder lock, in-process (flock: two open files of one lock conflict, even in one process) ----------
def _holding(folder, seconds: float):
    """A thread that holds ``folder``'s lock for ``seconds``; returns it once the lock is held."""
    from exportkit.publish import folder_lock

    held = threading.Event()

    def hold():
        with folder_lock(folder):
            held.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    return thread


def test_a_second_holder_waits_says_so_once_and_gets_the_lock(tmp_path, monkeypatch):
    said, polls, real_sleep = [], [], time.sleep
    monkeypatch.setattr(pub, "say", said.append)
    thread = _holding(tmp_path, 0.7)  # the waiter polls several times before it is released

    def sleep(seconds):
        if threading.current_thread() is threading.main_thread():
            polls.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(pub.time, "sleep", sleep)
    with pub.folder_lock(tmp_path, timeout=30):
        holder = json.loads((tmp_path / pub.LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == pub.socket.gethostname()
    thread.join()
    assert len(polls) >= 2 and max(polls) <= 0.25  # a freed folder is taken within a quarter of a second
    assert said == [
        f"waiting for the export running in {tmp_path} (pid {os.getpid()} on {pub.socket.gethostname()[:64]}) to finish"
    ]
    assert not (tmp_path / pub.LOCK_FILE).exists()


def test_without_a_timeout_the_waiter_waits_for_the_holder(tmp_path, monkeypatch):
    monkeypatch.setattr(pub, "say", lambda line: None)
    thread = _holding(tmp_path, 0.5)
    with pub.folder_lock(tmp_path):
        assert not thread.is_alive()  # the holder had finished
    thread.join()


def test_a_waiter_gives_up_after_its_timeout_naming_the_holder(tmp_path, monkeypatch):
    monkeypatch.setattr(pub, "say", lambda line: None)
    thread = _holding(tmp_path, 3)  # held past the timeout; released later, so a waiter that never gives up ends
    start = time.monotonic()
    with pytest.raises(ExportError) as err:
        with pub.folder_lock(tmp_path, timeout=0.3):
            pass
    waited = time.monotonic() - start
    assert str(err.value) == (
        f"output_dir {tmp_path} is locked by another export (pid {os.getpid()} on {pub.socket.gethostname()[:64]}); "
        "gave up after 0.3s"
    )
    assert 0.3 <= waited and thread.is_alive()  # it tried for its whole timeout, not past the holder
    thread.join()
    with pub.folder_lock(tmp_path, timeout=0.3):  # each failed try closed its file: the lock is free again
        pass


def test_the_lock_file_is_readable_by_all_while_held(tmp_path):
    previous = os.umask(0)
    try:
        with pub.folder_lock(tmp_path):
            assert (tmp_path / pub.LOCK_FILE).stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(previous)


def test_a_lock_file_replaced_while_taking_it_is_taken_again(tmp_path, monkeypatch):
    answers = iter([False, True])  # the holder removed the file just as this job locked it
    opened = []
    real_same, real_open = pub._same_file, pub.os.open
    monkeypatch.setattr(pub, "_same_file", lambda fd, path: next(answers) and real_same(fd, path))
    monkeypatch.setattr(pub.os, "open", lambda *a, **kw: opened.append(a[0]) or real_open(*a, **kw))
    with pub.folder_lock(tmp_path):
        pass
    assert opened == [tmp_path / pub.LOCK_FILE] * 2


def test_same_file_is_false_for_a_removed_path(tmp_path):
    from exportkit.publish import _same_file

    path = tmp_path / "lock"
    path.write_text("")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert _same_file(fd, path) is True
        path.unlink()
        assert _same_file(fd, path) is False
        path.write_text("")  # a new file under the old name is another file
        assert _same_file(fd, path) is False
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "hostname, tag",
    [
        ("build-7_A", "build-7_A"),
        ("node.cluster.local", "node_cluster_local"),
        ("Ünïcode host", "_n_code_host"),
        ("x" * 80, "x" * 64),
        ("", "host"),
    ],
)
def test_the_host_in_a_staging_name_is_filename_safe(hostname, tag, monkeypatch):
    monkeypatch.setattr(pub.socket, "gethostname", lambda: hostname)
    assert pub._host() == tag and pub._OWNER.match(f"{STAGING_PREFIX}{tag}.12.34.xyz")["host"] == tag


def test_a_start_time_is_read_past_a_command_name_with_parentheses():
    from exportkit.publish import PROC, _start_time

    comm = PROC / "self" / "task" / str(threading.get_native_id()) / "comm"
    before, name = _start_time(os.getpid()), comm.read_text().strip()
    try:
        comm.write_text("a) 1 2 (3) 4")  # /proc/PID/stat's second field is "(COMM)": only the last ")" ends it
        assert (PROC / str(os.getpid()) / "stat").read_text().startswith(f"{os.getpid()} (a) 1 2 (3) 4) ")
        assert _start_time(os.getpid()) == before and before > 0
    finally:
        comm.write_text(name)


def test_without_proc_an_owner_is_alive_while_its_pid_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(pub, "PROC", tmp_path / "no-proc")  # macOS: no process table to read start times from
    tag = pub._host()
    assert pub._start_time(os.getpid()) is None
    assert pub.owner_alive(f"{STAGING_PREFIX}{tag}.{os.getpid()}.abc") is True
    dead = dead_pid()
    assert pub.owner_alive(f"{STAGING_PREFIX}{tag}.{dead}.abc") is False
    signals = []
    monkeypatch.setattr(pub.os, "kill", lambda pid, sig: signals.append((pid, sig)))
    assert pub.owner_alive(f"{STAGING_PREFIX}{tag}.77.abc") is True and signals == [(77, 0)]  # signal 0: only asks

    def not_ours(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(pub.os, "kill", not_ours)  # another user's live process
    assert pub.owner_alive(f"{STAGING_PREFIX}{tag}.1.abc") is True


def test_remove_stale_tidies_leftovers_and_keeps_other_hosts_and_users_files(tmp_path, caplog):
    from exportkit.publish import PREVIOUS_PREFIX, TMP_SUFFIX, _host, remove_stale

    dead = dead_pid()
    for i in range(6):  # interleaved: what is skipped never stops the sweep, whatever the directory order
        (tmp_path / f"{STAGING_PREFIX}{_host()}.{dead}.s{i}" / "sub").mkdir(parents=True)
        (tmp_path / f"{PREVIOUS_PREFIX}{_host()}.{dead}.p{i}").mkdir()
        (tmp_path / f".exportkit-note{i}").write_text("a file, not a folder of ours")
        (tmp_path / f".exportkit-other{i}").mkdir()
    leftovers = ["model.onnx" + TMP_SUFFIX, "model_openvino_model.exportkit-swap"]
    (tmp_path / leftovers[0]).write_bytes(b"half")
    (tmp_path / leftovers[1]).mkdir()
    (tmp_path / (".user" + TMP_SUFFIX)).write_text("a user's hidden file")
    elsewhere = f"{STAGING_PREFIX}otherhost.1.c"
    (tmp_path / elsewhere).mkdir()
    with caplog.at_level("INFO", logger="exportkit.publish"):
        remove_stale(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(
        [
            ".user" + TMP_SUFFIX,
            elsewhere,
            *(f".exportkit-note{i}" for i in range(6)),
            *(f".exportkit-other{i}" for i in range(6)),
        ]
    )
    assert [r.getMessage() for r in caplog.records] == [f"leaving {elsewhere}: it belongs to a process on another host"]


def _unremovable(monkeypatch, name: str):
    """Removing a tree (shutil.rmtree: unlink by folder descriptor) fails on files called ``name``, as on a file
    another user owns in a sticky folder."""
    real = os.unlink

    def unlink(path, *args, **kwargs):
        if os.path.basename(path) == name and kwargs.get("dir_fd") is not None:
            raise PermissionError(1, "Operation not permitted", path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)


def test_a_stale_folder_that_cannot_be_removed_does_not_fail_the_export(tmp_path, monkeypatch):
    from exportkit.publish import _host, remove_stale

    stale = tmp_path / f"{STAGING_PREFIX}{_host()}.{dead_pid()}.x"
    stale.mkdir()
    (stale / "busy").write_text("")
    (stale / "other").write_text("")
    _unremovable(monkeypatch, "busy")
    remove_stale(tmp_path)
    assert [p.name for p in stale.iterdir()] == ["busy"]  # what could go went


def test_a_previous_export_that_cannot_be_removed_does_not_fail_the_publish(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"old")
    (out / "busy").write_text("")  # a user's file that the old export listed as its own
    (out / "metadata.json").write_text(json.dumps({"artifacts": [{"path": "model.onnx"}, {"path": "busy"}]}))
    staging = staged(tmp_path, ONNX, validation=False)
    _unremovable(monkeypatch, "busy")
    publish(staging, out)
    assert (out / "model.onnx").read_bytes() == b"new" and json.loads((out / "metadata.json").read_text())["new"]


def test_recover_with_a_current_link_to_nothing_just_drops_it(tmp_path):
    from exportkit.publish import CURRENT, recover

    (tmp_path / "model.onnx").write_bytes(b"kept")
    os.symlink(f"{STAGING_PREFIX}gone", tmp_path / CURRENT)  # killed after the staging folder was removed
    recover(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_a_failed_exchange_says_which_path_and_leaves_both_as_they_were(tmp_path):
    (tmp_path / "a").write_text("A")
    ctypes.set_errno(0)  # the errno renameat2 sets is the one reported, not a stale one
    with pytest.raises(FileNotFoundError) as err:
        pub._exchange(tmp_path / "missing", tmp_path / "a")
    assert (err.value.errno, err.value.strerror, err.value.filename) == (
        2,
        os.strerror(2),
        str(tmp_path / "a"),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"] and (tmp_path / "a").read_text() == "A"


def test_a_fallback_swap_cut_short_leaves_a_name_remove_stale_tidies(tmp_path, monkeypatch):
    without_renameat2(monkeypatch)
    (tmp_path / "new").mkdir()
    os.symlink("elsewhere", tmp_path / "entry")
    real, calls = os.rename, []

    def rename(a, b):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed between the swap's renames
        real(a, b)

    monkeypatch.setattr(pub.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        pub._exchange(tmp_path / "new", tmp_path / "entry")
    monkeypatch.setattr(pub.os, "rename", real)
    pub.remove_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


# -- the pipeline's publish: signals wait for it ----------------------------------------------------------
def test_the_pipeline_publishes_the_staged_export(tmp_path):
    staging = staged(tmp_path, ONNX)
    pipeline._publish(staging, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["new"] is True and not staging.exists()


def test_a_signal_during_the_publish_waits_for_it_and_says_it_was_published(tmp_path, monkeypatch):
    real = pub.publish

    def publish_signalled(staging, folder):
        os.kill(os.getpid(), signal.SIGTERM)  # held back until the publish is done
        assert not (folder / "metadata.json").exists()
        return real(staging, folder)

    monkeypatch.setattr(pub, "publish", publish_signalled)
    previous = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    interrupts.install()
    try:
        with pytest.raises(interrupts.Interrupted) as err:
            pipeline._publish(staged(tmp_path, ONNX), tmp_path / "out")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert err.value.published is True and err.value.exit_code == 143
    assert err.value.one_line() == "interrupted by SIGTERM; the export had already been published"
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["new"] is True

"""Publish and staging on hand-made folders: CoreML's folder artifact, OpenVINO's two files."""

from __future__ import annotations

import json
import os

import pytest

from exportkit import pipeline
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


def test_output_dir_checks(tmp_path):
    assert pipeline.check_output_dir(tmp_path / "new" / "deeper") == (tmp_path / "new" / "deeper").resolve()
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        pipeline.check_output_dir(file)
    with pytest.raises(ConfigError, match=r"is not a directory path \(.*file is a file\)"):
        pipeline.check_output_dir(file / "sub")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="is not writable"):
            pipeline.check_output_dir(locked / "out")


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


@pytest.mark.parametrize("atomic", [True, False])  # renameat2, and the fallback where libc lacks it
def test_exchange_swaps_two_files_or_folders(tmp_path, monkeypatch, atomic):
    from exportkit import publish as pub

    if not atomic:

        class NoRenameat2:
            def __init__(self, *args, **kwargs):
                pass

        monkeypatch.setattr(pub.ctypes, "CDLL", NoRenameat2)
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
    from exportkit import publish as pub

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
    from exportkit import publish as pub

    monkeypatch.setattr(pub, "_start_time", lambda pid: None)  # no /proc: the name holds host and pid only
    assert pub._owner_tag() == f"{pub._host()}.{os.getpid()}."


def test_a_temporary_link_left_by_a_kill_is_replaced(tmp_path):
    from exportkit.publish import TMP_SUFFIX, _symlink_beside

    (tmp_path / f"entry{TMP_SUFFIX}").write_text("left over")
    tmp = _symlink_beside(tmp_path / "entry", "target")
    assert tmp == tmp_path / f"entry{TMP_SUFFIX}" and os.readlink(tmp) == "target"


def test_exchange_of_relative_paths_is_one_atomic_step(tmp_path, monkeypatch):
    from exportkit import publish as pub

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").write_text("A")
    (tmp_path / "b").write_text("B")

    def no_rename(*args):
        raise AssertionError("a swap by three renames is not atomic")

    monkeypatch.setattr(pub.os, "rename", no_rename)
    pub._exchange(pub.Path("a"), pub.Path("b"))  # renameat2(AT_FDCWD, ..., RENAME_EXCHANGE): relative to the cwd
    assert (tmp_path / "a").read_text() == "B" and (tmp_path / "b").read_text() == "A"

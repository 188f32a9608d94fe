"""Concurrent, interrupted and mixed-folder jobs: an output folder always holds exactly one consistent export."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BUNDLED, ENV, ROOT, dead_pid, run_export

from exportkit.publish import (
    CURRENT,
    FAULT_ENV,
    LOCK_FILE,
    _host,
    export_entries,
    folder_lock,
    publish,
    remove_stale,
)


# -- hand-made exports ------------------------------------------------------------------------------------
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_export(folder: Path, files: dict[str, bytes], validation: bool = False) -> dict:
    """Write ``files`` (a name ending in '/' is a folder holding one file) and a metadata.json listing them."""
    folder.mkdir(parents=True, exist_ok=True)
    artifacts = []
    for name, data in files.items():
        if name.endswith("/"):
            inner = folder / name / "Data" / "weights.bin"
            inner.parent.mkdir(parents=True)
            inner.write_bytes(data)
            artifacts.append({"path": f"{name}Data/weights.bin", "sha256": _sha(inner), "bytes": len(data)})
        else:
            (folder / name).write_bytes(data)
            artifacts.append({"path": name, "sha256": _sha(folder / name), "bytes": len(data)})
    if validation:
        (folder / "validation.json").write_text(json.dumps({"status": "passed", "of": sorted(files)}))
    (folder / "metadata.json").write_text(json.dumps({"artifacts": artifacts}))
    return {a["path"]: a["sha256"] for a in artifacts}


def complete_export(folder: Path) -> dict | None:
    """{path: sha256} of the export metadata.json describes, if every file it lists is there with that hash."""
    try:
        artifacts = json.loads((folder / "metadata.json").read_text())["artifacts"]
    except (OSError, ValueError):
        return None
    found = {}
    for artifact in artifacts:
        path = folder / artifact["path"]
        if not path.is_file() or _sha(path) != artifact["sha256"]:
            return None
        found[artifact["path"]] = artifact["sha256"]
    return found


SCENARIOS = {
    "same-name": ({"model.onnx": b"old onnx"}, {"model.onnx": b"new onnx, longer"}),
    "onnx-then-openvino": ({"model.onnx": b"old onnx"}, {"model.xml": b"<xml/>", "model.bin": b"new weights"}),
    "folder-then-file": ({"model.mlpackage/": b"old package"}, {"model.tflite": b"new tflite"}),
    "file-then-folder": ({"model.xml": b"<old/>", "model.bin": b"old"}, {"model.mlpackage/": b"new package"}),
    "folder-same-name": ({"model.mlpackage/": b"old package"}, {"model.mlpackage/": b"new package!"}),
}

PUBLISH = """
import sys
from pathlib import Path
from exportkit.publish import folder_lock, publish
folder, staging = Path(sys.argv[1]), Path(sys.argv[2])
with folder_lock(folder):
    print(len(publish(staging, folder)))
"""


def _setup(tmp: Path, scenario: str):
    old_files, new_files = SCENARIOS[scenario]
    folder = tmp / "out"
    old = make_export(folder, old_files, validation=True)
    (folder / "notes.txt").write_text("the user's own file")
    staging = folder / f".exportkit-staging-{_host()}.{dead_pid()}.x"  # its owner is gone, as after a kill
    new = make_export(staging, new_files)
    return folder, staging, old, new


def _run_publish(folder: Path, staging: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = {**ENV, **({FAULT_ENV: str(kill_at)} if kill_at else {})}
    return subprocess.run(
        [sys.executable, "-c", PUBLISH, str(folder), str(staging)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def _assert_tidy(folder: Path, expected: dict):
    assert complete_export(folder) == expected
    assert (folder / "notes.txt").read_text() == "the user's own file"
    entries = {p.name for p in folder.iterdir()}
    listed = {path.split("/")[0] for path in expected} | {"metadata.json", "notes.txt"}
    assert entries - {"validation.json"} == listed, entries
    assert not any((folder / e).is_symlink() for e in entries)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_publish_replaces_the_previous_export_whole(tmp_path, scenario):
    folder, staging, old, new = _setup(tmp_path, scenario)
    assert _run_publish(folder, staging).returncode == 0
    _assert_tidy(folder, new)
    assert not (folder / "validation.json").exists()  # the old export's validation went with it


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_kill_at_every_step_of_a_publish_leaves_old_or_new(tmp_path, scenario):
    """kill -9 after each file operation of a publish: the folder holds the old complete export or the new one,
    never a mix; the next export into the folder finishes or rolls back and leaves it tidy."""
    outcomes = []
    for kill_at in range(1, 40):
        case = tmp_path / str(kill_at)
        folder, staging, old, new = _setup(case, scenario)
        proc = _run_publish(folder, staging, kill_at)
        if proc.returncode == 0:  # fewer steps than kill_at: every step has been tried
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        state = complete_export(folder)
        assert state in (old, new), f"step {kill_at}: a mix {state}"
        assert (folder / "notes.txt").read_text() == "the user's own file"
        outcomes.append("old" if state == old else "new")
        with folder_lock(folder):
            remove_stale(folder)
        _assert_tidy(folder, state)
    assert "old" in outcomes and "new" in outcomes and len(outcomes) >= 3, outcomes
    assert outcomes == sorted(outcomes, key=("old", "new").index)  # old until the switch, new after it


def test_stale_staging_is_removed_only_when_its_owner_is_gone(tmp_path, zombies):
    folder = tmp_path / "out"
    start = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    names = {
        "dead": f".exportkit-staging-{_host()}.{dead_pid()}.a",
        "alive": f".exportkit-staging-{_host()}.{os.getpid()}.{start}.b",
        "reused-pid": f".exportkit-staging-{_host()}.{os.getpid()}.{int(start) - 1}.d",
        "zombie": f".exportkit-staging-{_host()}.{_zombie_pid(zombies)}.e",
        "elsewhere": ".exportkit-staging-otherhost.1.c",
    }
    for name in names.values():
        (folder / name).mkdir(parents=True)
    with folder_lock(folder):
        remove_stale(folder)
    assert not (folder / names["dead"]).exists()
    assert not (folder / names["reused-pid"]).exists()  # this pid now belongs to another process
    assert not (folder / names["zombie"]).exists()  # killed, not yet reaped: kill(pid, 0) still answers
    assert (folder / names["alive"]).exists() and (folder / names["elsewhere"]).exists()


@pytest.fixture
def zombies():
    """Children left unreaped during a test, reaped after it (an unreaped child outlives the test otherwise, and
    a caller that waits for any child, as mutmut's runner does, would collect it as its own)."""
    children: list[subprocess.Popen] = []
    yield children
    for child in children:
        child.wait()


def _zombie_pid(zombies: list) -> int:
    """A child that has exited but is not reaped yet (as after kill -9 in a container whose init never reaps)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z" and time.time() < deadline:
        time.sleep(0.01)
    zombies.append(child)
    return child.pid


def test_lock_file_is_gone_after_the_holder_and_export_entries_ignore_hostile_paths(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (tmp_path / "precious").write_text("keep")
    (folder / "metadata.json").write_text(
        json.dumps({"artifacts": [{"path": "../precious"}, {"path": ".ssh"}, {"path": "/etc/passwd"}]})
    )
    with folder_lock(folder):
        assert (folder / LOCK_FILE).exists()
    assert not (folder / LOCK_FILE).exists()
    assert export_entries(folder) == ["metadata.json"]
    staging = folder / ".exportkit-staging-x.1.y"
    make_export(staging, {"model.onnx": b"new"})
    publish(staging, folder)
    assert (tmp_path / "precious").read_text() == "keep"
    assert not (folder / CURRENT).exists()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from exportkit.publish import folder_lock
with folder_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_lock(folder: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(folder), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_second_job_gives_up_after_lock_timeout_naming_the_holder(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    holder = _hold_lock(folder, 30)
    try:
        cmd = [
            sys.executable,
            str(ROOT / "export.py"),
            "--checkpoint_path",
            str(BUNDLED["detect"]),
            "--export_format",
            "onnx",
            "--output_dir",
            str(folder),
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env={**ENV, "EXPORTKIT_LOCK_TIMEOUT": "0.5"}, cwd=ROOT, timeout=120
        )
    finally:
        holder.kill()
        holder.wait()
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert f"is locked by another export (pid {holder.pid} on {socket.gethostname()})" in lines[0]
    assert f"waiting for the export running in {folder}" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_two_jobs_into_one_folder_the_second_waits_and_replaces(tmp_path):
    """The issue's reproduction: onnx, then torchscript two seconds later, into one output_dir."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    common = [
        "--checkpoint_path",
        str(BUNDLED["detect"]),
        "--output_dir",
        str(folder),
        "--export_config",
        '{"imgsz": 64}',
    ]
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "export.py"), "--export_format", "onnx", *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    deadline = time.time() + 120
    while not any(folder.glob(".exportkit-staging-*")) and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.run(
        [sys.executable, str(ROOT / "export.py"), "--export_format", "torchscript", *common],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert "waiting for the export running in" in second.stdout
    assert err == "" and second.stderr == ""  # stderr is for failures only
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["export_format"] == "torchscript"
    assert {p.name for p in folder.iterdir()} == {"model.torchscript", "metadata.json", "notes.txt"}
    assert complete_export(folder) is not None


def _start_export(folder: Path, fmt: str = "onnx") -> subprocess.Popen:
    cmd = [
        sys.executable,
        str(ROOT / "export.py"),
        "--checkpoint_path",
        str(BUNDLED["detect"]),
        "--export_format",
        fmt,
        "--output_dir",
        str(folder),
        "--export_config",
        '{"imgsz": 64, "include_validation": true}',
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)


def _wait_for_staging(folder: Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        staging = list(folder.glob(".exportkit-staging-*"))
        if staging and any(staging[0].iterdir()):  # the exporter is writing
            return
        time.sleep(0.02)
    raise AssertionError("the export never started writing")


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_export_publishes_nothing_and_keeps_the_old_export(tmp_path, signum, code):
    folder = tmp_path / "out"
    assert run_export(BUNDLED["detect"], "torchscript", folder, {"imgsz": 64}).returncode == 0
    before = complete_export(folder)
    proc = _start_export(folder)
    _wait_for_staging(folder, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    name = signal.Signals(signum).name
    assert proc.returncode == code, err
    assert err.splitlines() == [f"exportkit: error: interrupted by {name}; nothing was published"]
    assert complete_export(folder) == before  # the torchscript export is untouched
    assert not list(folder.glob(".exportkit*")) and not (folder / "model.onnx").exists()

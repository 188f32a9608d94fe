"""The `local` executor: the guide's export.py contract in forks of one warm worker. Same bytes as a subprocess per
cell, the same exit codes, a crash that stays in its cell, nothing that leaks from one cell to the next, and a
worker that does not outlive the process that started it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BUNDLED, ENV, ROOT

from exportkit.build import runner
from exportkit.build.cell import Cell, as_dict, export_cell

pytestmark = pytest.mark.slow  # each test starts the warm worker (torch, Ultralytics) or exports

LOCAL = {"name": "local", "settings": {}}
SUBPROCESS = {"name": "subprocess", "settings": {}}
CELLS = [("shapes-det", "torchscript"), ("shapes-seg", "onnx")]  # two models in a row through one worker


def make_cell(root: Path, model: str, fmt: str, **config) -> Cell:
    task = {"shapes-det": "detect", "shapes-seg": "segment", "shapes-pose": "pose"}[model]
    return Cell(
        name=f"{model}-{fmt}-fp32",
        model={"name": model, "task": task, "checkpoint": str(BUNDLED[task])},
        format={"name": fmt},
        precision="fp32",
        validation={},
        output_dir=str(root / model / f"{fmt}-fp32"),
        export_config={"include_validation": False, **config},
        output_root=str(root),
    )


def digests(folder: Path) -> dict[str, str]:
    meta = json.loads((folder / "metadata.json").read_text())
    return {a["path"]: hashlib.sha256((folder / a["path"]).read_bytes()).hexdigest() for a in meta["artifacts"]}


def status(cell: Cell) -> dict:
    return json.loads((cell.out / "status.json").read_text())


def worker_pid() -> int:
    from exportkit.build.executors import get_executor

    return get_executor(LOCAL).worker().process.pid


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The same cells built by each executor: {executor: [(cell, ok)]}."""
    root = tmp_path_factory.mktemp("local-executor")
    return {
        name: [
            (cell, export_cell(as_dict(cell), executor=spec))
            for cell in (make_cell(root / name, model, fmt) for model, fmt in CELLS)
        ]
        for name, spec in (("subprocess", SUBPROCESS), ("local", LOCAL))
    }


def test_local_builds_the_same_bytes_as_a_subprocess_per_cell(built):
    for (local, ok), (fresh, fresh_ok) in zip(built["local"], built["subprocess"]):
        assert ok and fresh_ok, (local.out / "export.log").read_text()[-2000:]
        assert digests(local.out) == digests(fresh.out) and digests(local.out)
        assert status(local)["exit_code"] == 0
        assert "export success" in (local.out / "export.log").read_text()  # the export's own log, in the cell's log
        assert (local.out / "reproduce.sh").read_text() == (fresh.out / "reproduce.sh").read_text().replace(
            "/subprocess/", "/local/"
        )  # the same contract, whichever executor ran it


def test_exit_codes_1_2_and_3_come_through_with_their_line(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(256))
    cases = {
        3: make_cell(tmp_path / "config", "shapes-det", "onnx", opset_version="seventeen"),
        1: Cell(
            **{
                **vars(make_cell(tmp_path / "export", "shapes-det", "onnx")),
                "model": {"name": "junk", "task": "detect", "checkpoint": str(junk)},
            }
        ),
        2: make_cell(
            tmp_path / "validation", "shapes-det", "onnx", include_validation=True, validation={"raw_rel_max_diff": 0.0}
        ),  # ONNX Runtime is ~1e-6 off PyTorch: zero fails
    }
    for code, cell in cases.items():
        assert export_cell(as_dict(cell), executor=LOCAL) is False
        assert status(cell)["exit_code"] == code, (cell.out / "export.log").read_text()[-2000:]
        last = (cell.out / "export.log").read_text().strip().splitlines()[-1]
        assert last.startswith("exportkit: error: ") and "Traceback" not in (cell.out / "export.log").read_text()


def test_a_child_killed_by_a_signal_fails_only_its_cell_and_the_worker_goes_on(tmp_path, monkeypatch):
    pid = worker_pid()
    killer = tmp_path / "kill_self.py"  # stands in for export.py: the child SIGKILLs itself mid-cell
    killer.write_text("import os, signal\nprint('exporting ...', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    entry = runner.export_entry()
    monkeypatch.setattr(runner, "export_entry", lambda: [sys.executable, str(killer)])
    crashed = make_cell(tmp_path, "shapes-det", "torchscript")
    assert export_cell(as_dict(crashed), executor=LOCAL) is False
    assert status(crashed)["exit_code"] == -9  # what subprocess reports for the same death
    log = (crashed.out / "export.log").read_text().strip().splitlines()
    assert log[0] == "exporting ..." and "was killed by SIGKILL; this cell failed" in log[-1]
    monkeypatch.setattr(runner, "export_entry", lambda: entry)
    after = make_cell(tmp_path, "shapes-pose", "torchscript")
    assert export_cell(as_dict(after), executor=LOCAL) is True
    assert worker_pid() == pid  # the same warm worker built the next cell


def test_nothing_one_cell_changes_is_seen_by_the_next(tmp_path):
    from exportkit.build.executors import get_executor

    probe = tmp_path / "probe.py"  # each run reports what it finds, then changes Ultralytics' and exportkit's globals
    probe.write_text(
        "import os, sys\nimport ultralytics.utils as u\nfrom exportkit import safe_load\n"
        "print(getattr(u, 'LEAK', None), os.environ.get('LEAK'), len(safe_load._last_scan), sys.argv[1:])\n"
        "u.LEAK = os.environ['LEAK'] = 'yes'\n"
        "safe_load.scan_archive(__import__('pathlib').Path(sys.argv[1]))\nsys.exit(7)\n"
    )
    worker = get_executor(LOCAL).worker()
    seen = []
    for run, model in enumerate(("detect", "segment")):
        log = tmp_path / f"probe-{run}.log"
        assert worker.run([str(probe)], [str(BUNDLED[model])], log) == 7  # sys.exit's code, as `python probe.py`
        seen.append(log.read_text().strip())
    assert seen == [f"None None 0 ['{BUNDLED['detect']}']", f"None None 0 ['{BUNDLED['segment']}']"]


def test_the_worker_exits_with_the_process_that_started_it(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys, time\nfrom exportkit import project\nfrom exportkit.build import runner\n"
        "from exportkit.build.executors.local_executor import WarmWorker\n"
        "worker = WarmWorker(runner.cell_env(), project.root())\nprint(worker.process.pid, worker.folder, flush=True)\ntime.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    try:
        pid, folder = proc.stdout.readline().split()
        zygote = int(pid)
        os.kill(zygote, 0)  # running
    finally:
        proc.kill()  # SIGKILL: no atexit, no cleanup; only the closed pipe tells the worker
        proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{zygote}").exists() and "Z" not in zombie_state(zygote):
        time.sleep(0.2)
    assert not Path(f"/proc/{zygote}").exists() or "Z" in zombie_state(zygote)
    assert not Path(folder).exists()  # its socket and log went with it


def zombie_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "gone"


def test_an_installed_exportkit_runs_its_module_the_way_python_m_does(tmp_path):
    from exportkit.build.executors import get_executor

    log = tmp_path / "export.log"  # what export_entry() gives without a checkout: `python -m exportkit.cli ARGS`
    args = ["--checkpoint_path", str(BUNDLED["detect"]), "--export_format", "nope", "--output_dir", str(tmp_path / "o")]
    assert get_executor(LOCAL).worker().run(["-m", "exportkit.cli"], args, log) == 3
    assert log.read_text().strip().splitlines()[-1].startswith("exportkit: error: unknown export format 'nope'")

"""executor=ray: one Ray task per stale cell; the driver checks every sha256 and publishes, doit stays the planner.

The cluster tests share one local two-node cluster (ray.cluster_utils.Cluster: `ray stop` would kill every Ray process
on the machine). Nodes listen on 127.0.0.2 and 127.0.0.3: Ray rewrites 127.0.0.1 and localhost to the machine's
external address (ray issues 26293, 59110). Each node advertises a custom resource, so a cell is pinned to a node.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BUNDLED, ENV, ROOT, run_export

from exportkit.build.cell import Cell, library_versions
from exportkit.build.executors import ray_executor
from exportkit.build.executors.ray_worker import MARKERS_ENV, SCRATCH_PREFIX
from exportkit.errors import ConfigError, ExportError

MODEL = "defaults:\n  - /exportkit_model_schema@_here_\n  - _self_\nname: {name}\ncheckpoint: {ckpt}\ntask: detect\nimgsz: 64\ncapability: yolo11n\n"
MATRIX = "defaults:\n  - /exportkit_matrix_schema@_here_\n  - _self_\nname: {name}\nblocks:\n  - models: [{model}]\n    formats: [{formats}]\n    precisions: [fp32]\n"


# -- the driver's checks, without a cluster (fast) ----------------------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cell(tmp_path) -> Cell:
    ckpt = tmp_path / "det.pt"
    ckpt.write_bytes(b"not really a checkpoint")
    return Cell(
        name="mine-onnx-fp32",
        model={"name": "mine", "checkpoint": str(ckpt)},
        format={"name": "onnx"},
        precision="fp32",
        validation={},
        output_dir=str(tmp_path / "out"),
    )


def _result(cell: Cell, files: dict[str, bytes], **changes) -> dict:
    metadata = {
        "artifacts": [{"path": name, "sha256": _sha(data)} for name, data in files.items()],
        "checkpoint": {"path": "/worker/scratch/det.pt", "sha256": _sha(cell.checkpoint.read_bytes())},
    }
    return {
        "node": "10.0.0.9",
        "pid": 7,
        "exit_code": 0,
        "log": "exported\n",
        "versions": library_versions("onnx"),
        "metadata": json.dumps(metadata),
        "files": dict(files),
        "folder": None,
        **changes,
    }


def test_what_comes_back_intact_is_published_with_this_machines_checkpoint_path(cell):
    cell.out.mkdir()
    outcome = ray_executor.receive(cell, _result(cell, {"model.onnx": b"onnx bytes"}), cell.out / "export.log", 1.0)
    assert outcome.exit_code == 0 and outcome.versions == library_versions("onnx")
    assert (cell.out / "model.onnx").read_bytes() == b"onnx bytes"
    assert json.loads((cell.out / "metadata.json").read_text())["checkpoint"]["path"] == str(cell.checkpoint)
    assert "exported on Ray node 10.0.0.9 pid 7" in (cell.out / "export.log").read_text()


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda r: r["files"].update({"model.onnx": b"flipped"}), "model.onnx came back altered"),
        (lambda r: r["files"].pop("model.onnx"), "model.onnx did not come back"),
        (lambda r: r.update(metadata=r["metadata"].replace('"model.onnx"', '"../model.onnx"')), "unsafe artifact path"),
        (
            lambda r: r.update(metadata=r["metadata"].replace(_sha(b"not really a checkpoint"), "0" * 64)),
            "another checkpoint",
        ),
        (
            lambda r: r["versions"].update(torch="0.0.1"),
            "the worker's libraries differ from this machine's: torch 0.0.1",
        ),
    ],
)
def test_a_damaged_or_foreign_result_fails_the_cell_and_publishes_nothing(cell, damage, problem):
    cell.out.mkdir()
    result = _result(cell, {"model.onnx": b"onnx bytes"})
    damage(result)
    outcome = ray_executor.receive(cell, result, cell.out / "export.log", 1.0)
    assert outcome.exit_code == 1
    assert problem in (cell.out / "export.log").read_text().splitlines()[-1]  # the line the build prints
    assert sorted(p.name for p in cell.out.iterdir()) == ["export.log"]


def test_resources_follow_the_format_and_a_cluster_without_them_is_a_config_error(cell):
    cluster = {"CPU": 2.0, "GPU": 1.0, "macos": 1.0, "fast": 1.0}
    options = ray_executor.task_options(cell, {"resources": '{"*": {"fast": 1}}'}, cluster)
    assert options == {
        "num_cpus": 1,
        "num_gpus": 0,
        "resources": {"fast": 1},
        "max_retries": 3,
        "retry_exceptions": False,
    }
    trt = Cell(**{**cell.__dict__, "format": {"name": "tensorrt"}})
    assert ray_executor.task_options(trt, {}, cluster)["num_gpus"] == 1
    coreml = Cell(**{**cell.__dict__, "format": {"name": "coreml"}, "export_config": {"include_validation": True}})
    assert ray_executor.task_options(coreml, {}, cluster)["resources"] == {"macos": 1}
    with pytest.raises(ConfigError, match="no node of the Ray cluster offers GPU=1 for mine-onnx-fp32"):
        ray_executor.task_options(trt, {}, {"CPU": 2.0})
    with pytest.raises(ConfigError, match="retries='many'"):
        ray_executor.task_options(cell, {"retries": "many"}, cluster)
    with pytest.raises(ConfigError, match="resources="):
        ray_executor.task_options(cell, {"resources": '{"onnx": 1}'}, cluster)


def test_checked_files_keep_exportkits_own_files_and_drop_strays(cell):
    files = {"model.onnx": b"a", "validation.json": b"{}", "stray.txt": b"?"}
    metadata = {"artifacts": [{"path": "model.onnx", "sha256": _sha(b"a")}], "checkpoint": {"sha256": "c"}}
    assert ray_executor.checked_files(metadata, files, "c") == {"model.onnx": b"a", "validation.json": b"{}"}
    with pytest.raises(ExportError, match="another checkpoint"):
        ray_executor.checked_files(metadata, files, "d")


def test_an_address_where_nothing_listens_fails_every_cell_at_once_with_exit_3(cell):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    executor = ray_executor.RayExecutor({"address": address})
    cell.out.mkdir()
    start = time.perf_counter()
    for _ in range(2):
        assert executor.export(cell, [], cell.out / "export.log").exit_code == 3
    assert time.perf_counter() - start < 30  # ray.init alone would retry for minutes
    assert f"cannot connect to the Ray cluster at {address}: ConnectionError" in (cell.out / "export.log").read_text()


def test_an_attempt_removes_the_scratch_folders_of_workers_that_are_gone(tmp_path):
    from exportkit.build.executors.ray_worker import remove_abandoned_scratch

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for pid in (int(gone.stdout), os.getpid()):
        (tmp_path / f"{SCRATCH_PREFIX}{pid}-abcd").mkdir()
    remove_abandoned_scratch(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"{SCRATCH_PREFIX}{os.getpid()}-abcd"]


# -- a two-node local cluster (slow) ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from ray.cluster_utils import Cluster

    patch = pytest.MonkeyPatch()
    patch.setenv("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
    patch.setenv("TMPDIR", str(tmp_path_factory.mktemp("scratch")))  # the workers' node-local scratch folders
    for name, value in ENV.items():  # the nodes' workers import this checkout and run offline
        if name in ("PYTHONPATH", "YOLO_OFFLINE", "YOLO_AUTOINSTALL", "YOLO_CONFIG_DIR"):
            patch.setenv(name, value)
    fast_failure = {"health_check_period_ms": 500, "health_check_failure_threshold": 4}
    started = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "node_ip_address": "127.0.0.2",
            "resources": {"node_a": 1},
            "_system_config": fast_failure,
        },
    )
    started.add_node(num_cpus=1, node_ip_address="127.0.0.3", resources={"node_b": 1})
    started.wait_for_nodes()
    yield started
    started.shutdown()
    patch.undo()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-project")
    conf = root / "conf"
    shutil.copytree(ROOT / "conf", conf)
    shutil.copy(BUNDLED["detect"], root / "det.pt")
    (root / "bad.pt").write_bytes(b"these bytes are no checkpoint")
    for model, ckpt in (("mine", root / "det.pt"), ("broken", root / "bad.pt")):
        (conf / f"model/{model}.yaml").write_text(MODEL.format(name=model, ckpt=ckpt))
    for name, model, formats in (
        ("two", "mine", "onnx, torchscript"),
        ("one", "mine", "onnx"),
        ("bad", "broken", "onnx"),
    ):
        (conf / f"matrix/{name}.yaml").write_text(MATRIX.format(name=name, model=model, formats=formats))
    return {"root": root, "env": {**ENV, "EXPORTKIT_CONF": str(conf), "EXPORTKIT_MATRIX": "two"}}


def doit(project, output: str, *args, env=None, check=True, popen=False):
    env = {**project["env"], "EXPORTKIT_OUTPUT": str(project["root"] / output), **(env or {})}
    command = [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args]
    if popen:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def on_ray(cluster, markers: Path, resources: dict) -> dict:
    markers.mkdir(parents=True, exist_ok=True)
    return {
        "EXPORTKIT_EXECUTOR": "ray",
        "EXPORTKIT_RAY_ADDRESS": cluster.address,
        "EXPORTKIT_RAY_RESOURCES": json.dumps(resources),
        MARKERS_ENV: str(markers),
    }


def attempts(markers: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(markers.iterdir(), key=lambda p: p.stat().st_mtime_ns)]


def artifacts(folder: Path) -> dict[str, bytes]:
    metadata = json.loads((folder / "metadata.json").read_text())
    return {entry["path"]: (folder / entry["path"]).read_bytes() for entry in metadata["artifacts"]}


@pytest.fixture(scope="module")
def builds(cluster, project):
    """The matrix built by a subprocess per cell, and on the cluster: onnx pinned to the head, torchscript to the
    other node (two doit threads keep both busy)."""
    local = doit(project, "local", "export", env={"EXPORTKIT_EXECUTOR": "subprocess"})
    pinned = {"onnx": {"node_a": 1}, "torchscript": {"node_b": 1}}
    remote = doit(
        project,
        "ray",
        "-n",
        "2",
        "-P",
        "thread",
        "export",
        env=on_ray(cluster, project["root"] / "markers-first", pinned),
    )
    return {"local": local, "ray": remote}


@pytest.mark.slow
def test_cells_built_on_either_node_come_back_byte_for_byte(project, builds):
    for fmt, node in (("onnx", "127.0.0.2"), ("torchscript", "127.0.0.3")):
        local, remote = (project["root"] / side / "mine" / f"{fmt}-fp32" for side in ("local", "ray"))
        assert artifacts(remote) == artifacts(local)  # every file of the artifact, byte for byte
        assert f"exported on Ray node {node} " in (remote / "export.log").read_text()
        assert json.loads((remote / "status.json").read_text())["exit_code"] == 0
        assert (remote / "build-state.json").read_text() == (local / "build-state.json").read_text()  # the same key
    nodes = {a["node"] for a in attempts(project["root"] / "markers-first")}
    assert nodes == {"127.0.0.2", "127.0.0.3"}


@pytest.mark.slow
def test_an_up_to_date_rerun_submits_nothing(cluster, project, builds):
    markers = project["root"] / "markers-rerun"
    rerun = doit(project, "ray", "-n", "2", "-P", "thread", "export", env=on_ray(cluster, markers, {}))
    skipped = {line.split()[1] for line in rerun.stdout.splitlines() if line.startswith("-- export:")}
    assert skipped == {"export:mine-onnx-fp32", "export:mine-torchscript-fp32"}
    assert attempts(markers) == []


@pytest.mark.slow
def test_a_failing_cell_records_its_exit_code_and_is_not_retried(cluster, project, tmp_path):
    local = run_export(project["root"] / "bad.pt", "onnx", tmp_path / "local", {"imgsz": 64})
    assert local.returncode in (1, 3), local.stderr
    markers = project["root"] / "markers-bad"
    proc = doit(project, "bad", "export", env={"EXPORTKIT_MATRIX": "bad", **on_ray(cluster, markers, {})}, check=False)
    assert proc.returncode != 0
    status = json.loads((project["root"] / "bad" / "broken" / "onnx-fp32" / "status.json").read_text())
    assert (status["exit_code"], status["ok"]) == (local.returncode, False)
    assert len(attempts(markers)) == 1  # a deterministic failure: one attempt


@pytest.mark.slow
def test_a_lost_worker_is_retried_and_its_cell_completes_on_another_node(cluster, project, builds):
    doomed = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.4", resources={"spare": 1})
    markers = project["root"] / "markers-kill"
    build = doit(
        project,
        "kill",
        "export",
        env={"EXPORTKIT_MATRIX": "one", **on_ray(cluster, markers, {"*": {"spare": 1}})},
        popen=True,
    )
    deadline = time.monotonic() + 120
    while not os.listdir(markers) and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert attempts(markers) and attempts(markers)[0]["node"] == "127.0.0.4", (
        build.communicate()[0] if build.poll() is not None else ""
    )
    cluster.remove_node(doomed, allow_graceful=False)  # mid-cell: the export has just started there
    spare = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.5", resources={"spare": 1})
    try:
        output = build.communicate(timeout=300)[0]
        assert build.returncode == 0, output
        assert [a["node"] for a in attempts(markers)] == ["127.0.0.4", "127.0.0.5"]
        out = project["root"] / "kill" / "mine" / "onnx-fp32"
        assert "exported on Ray node 127.0.0.5 " in (out / "export.log").read_text()
        assert artifacts(out) == artifacts(project["root"] / "local" / "mine" / "onnx-fp32")
        left = [name for name in os.listdir(os.environ["TMPDIR"]) if name.startswith(SCRATCH_PREFIX)]
        assert left == []  # the killed attempt's scratch went with the retry
    finally:
        cluster.remove_node(spare)


@pytest.mark.slow
def test_with_a_shared_folder_results_travel_through_it(cluster, project, builds):
    shared = project["root"] / "mounted"
    shared.mkdir()
    env = {
        "EXPORTKIT_MATRIX": "one",
        "EXPORTKIT_RAY_SHARED": str(shared),
        **on_ray(cluster, project["root"] / "markers-shared", {"*": {"node_b": 1}}),
    }
    doit(project, "shared", "export", env=env)
    out = project["root"] / "shared" / "mine" / "onnx-fp32"
    assert artifacts(out) == artifacts(project["root"] / "local" / "mine" / "onnx-fp32")
    assert list((shared / "results").iterdir()) == []  # the driver removed what it published

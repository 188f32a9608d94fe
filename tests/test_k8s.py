"""The matrix as Kubernetes Indexed Jobs: `exportkit k8s-job` manifests (schema-valid offline, plus the Job semantics
the schemas do not check), the pod entry point, `exportkit collect`, and a local simulation of every index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import BUNDLED, ENV, ROOT

MATRIX = "k8s"
MODEL = (
    "defaults:\n  - /exportkit_model_schema@_here_\n  - _self_\nname: k8sdet\ncheckpoint: models/det.pt\ntask: detect\n"
)
# 6 cells: onnx and torchscript on the CPU (torchscript fp16 skipped: the format has no fp16), tensorrt needs a GPU
BLOCKS = "  - models: [k8sdet]\n    formats: [onnx, torchscript, tensorrt]\n    precisions: [fp32, fp16]\n"
SIM_BLOCKS = "  - models: [k8sdet]\n    formats: [onnx, torchscript]\n    precisions: [fp32, fp16]\n"


def make_project(root: Path, blocks: str, imgsz: int = 192) -> dict:
    """A project folder (conf/config.yaml marks it) with its checkpoint inside it and a test-only matrix."""
    shutil.copytree(ROOT / "conf", root / "conf")
    (root / "models").mkdir()
    shutil.copy(BUNDLED["detect"], root / "models/det.pt")
    (root / "conf/model/k8sdet.yaml").write_text(MODEL + f"imgsz: {imgsz}\ncapability: yolo11n\n")
    (root / f"conf/matrix/{MATRIX}.yaml").write_text(
        f"defaults:\n  - /exportkit_matrix_schema@_here_\n  - _self_\nname: {MATRIX}\nblocks:\n{blocks}"
    )
    (root / "dodo.py").write_text("from exportkit.dodo import *  # noqa: F403\n")
    env = {k: v for k, v in ENV.items() if not k.startswith("EXPORTKIT_")}
    return {"root": root, "env": {**env, "EXPORTKIT_PROJECT": str(root), "EXPORTKIT_MATRIX": MATRIX}}


def exportkit(project: dict, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "exportkit", *args],
        capture_output=True,
        text=True,
        env=project["env"],
        cwd=project["root"],
        timeout=600,
    )
    if check is not None:
        assert proc.returncode == check, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def jobs_of(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["labels"]["exportkit/profile"]: d for d in docs if d["kind"] == "Job"}


def frozen_cells(docs: list[dict], job: dict) -> list[dict]:
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    container = job["spec"]["template"]["spec"]["containers"][0]
    cells_file = next(e["value"] for e in container["env"] if e["name"] == "EXPORTKIT_CELLS")
    assert job["spec"]["template"]["spec"]["volumes"][-2]["configMap"]["name"] == configmap["metadata"]["name"]
    return json.loads(configmap["data"][Path(cells_file).name])


def matrix_cells(project: dict):
    """The matrix's cells as the build layer composes them, in this process (the test's own count)."""
    from exportkit.build.matrix import matrix_cells as compose

    old = os.environ.get("EXPORTKIT_PROJECT")
    os.environ["EXPORTKIT_PROJECT"] = str(project["root"])
    try:
        return compose(MATRIX, project["root"] / "exports")
    finally:
        os.environ.pop("EXPORTKIT_PROJECT") if old is None else os.environ.__setitem__("EXPORTKIT_PROJECT", old)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict:
    project = make_project(tmp_path_factory.mktemp("k8s-project"), BLOCKS)
    host = exportkit(
        project, "k8s-job", f"matrix={MATRIX}", "--image", "registry.example/exportkit:0.1", "--parallelism", "3"
    ).stdout
    pvc = exportkit(
        project,
        "k8s-job",
        f"matrix={MATRIX}",
        "--image",
        "registry.example/exportkit:0.1",
        "--pvc",
        "exportkit-data",
        "--namespace",
        "ml",
    ).stdout
    (project["root"] / "host.yaml").write_text(host)
    (project["root"] / "pvc.yaml").write_text(pvc)
    return {**project, "host": host, "pvc": pvc}


@pytest.mark.parametrize("version", ["1.33.0", "1.37.0"])  # 1.33: backoffLimitPerIndex and podFailurePolicy are GA
def test_manifests_validate_strictly_against_the_kubernetes_schemas(generated, version):
    validator = Path(sys.executable).parent / "kubernetes-validate"
    for name in ("host.yaml", "pvc.yaml"):
        proc = subprocess.run(
            [str(validator), "--strict", "-k", version, str(generated["root"] / name)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("passed") == 3, proc.stdout  # the ConfigMap and the two Jobs


def test_one_indexed_job_per_resource_profile_with_one_index_per_buildable_cell(generated):
    docs = documents(generated["host"])
    cells = matrix_cells(generated)
    buildable = [c for c in cells if not c.skip_reason]
    assert len(cells) == 6 and len(buildable) == 5  # torchscript fp16 is impossible
    jobs = jobs_of(docs)
    assert sorted(jobs) == ["cpu", "gpu"]
    indexed = {profile: [c["name"] for c in frozen_cells(docs, job)] for profile, job in jobs.items()}
    assert indexed["gpu"] == [c.name for c in buildable if c.format["name"] == "tensorrt"]
    assert indexed["cpu"] == [c.name for c in buildable if c.format["name"] != "tensorrt"]  # matrix order
    for profile, job in jobs.items():
        spec = job["spec"]
        assert spec["completionMode"] == "Indexed"  # the schema has no enum for it: "Indexd" would validate
        assert spec["completions"] == len(indexed[profile])
        assert spec["parallelism"] == min(3, len(indexed[profile]))
        assert spec["backoffLimitPerIndex"] >= 1
        assert spec["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy requires it
        limits = spec["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits.get("nvidia.com/gpu") == (1 if profile == "gpu" else None)


def test_exit_codes_1_2_3_fail_the_index_and_disruptions_are_not_counted(generated):
    for job in jobs_of(documents(generated["pvc"])).values():
        rules = job["spec"]["podFailurePolicy"]["rules"]
        container = job["spec"]["template"]["spec"]["containers"][0]["name"]
        on_exit = [r for r in rules if "onExitCodes" in r]
        assert [r["action"] for r in on_exit] == ["FailIndex"]
        assert on_exit[0]["onExitCodes"] == {"containerName": container, "operator": "In", "values": [1, 2, 3]}
        ignore = [r for r in rules if r["action"] == "Ignore"]
        assert [c["type"] for r in ignore for c in r["onPodConditions"]] == ["DisruptionTarget"]
        assert rules.index(ignore[0]) < rules.index(on_exit[0])  # the first match wins: an evicted pod is retried


def test_skipped_cells_are_comments_never_indexes(generated):
    skipped = [c for c in matrix_cells(generated) if c.skip_reason]
    assert [c.name for c in skipped] == ["k8sdet-torchscript-fp16"]
    comments = [line for line in generated["host"].splitlines() if line.startswith("#")]
    assert any(
        line.startswith(f"# skipped: {skipped[0].name}: ") and skipped[0].skip_reason in line for line in comments
    )
    body = "\n".join(line for line in generated["host"].splitlines() if not line.startswith("#"))
    assert skipped[0].name not in body
    docs = documents(generated["host"])
    listed = [c["name"] for job in jobs_of(docs).values() for c in frozen_cells(docs, job)]
    assert skipped[0].name not in listed and len(listed) == len(set(listed))


def test_volumes_hold_the_checkpoints_at_their_project_paths(generated):
    docs = documents(generated["pvc"])
    job = jobs_of(docs)["cpu"]
    pod = job["spec"]["template"]["spec"]
    assert job["metadata"]["namespace"] == "ml"
    assert [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v] == [
        "exportkit-data"
    ]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert (
        mounts[env["EXPORTKIT_CHECKPOINTS"]]["subPath"] == "checkpoints"
        and mounts[env["EXPORTKIT_CHECKPOINTS"]]["readOnly"]
    )
    assert mounts[env["EXPORTKIT_EXPORTS"]]["subPath"] == "exports"
    for cell in frozen_cells(docs, job):
        assert (generated["root"] / cell["checkpoint"]).is_file()  # the project-relative path the PVC mirrors
        assert cell["output_dir"] == f"k8sdet/{cell['cell']['format']['name']}-{cell['cell']['precision']}"
        assert json.loads(cell["export_config"]) == cell["cell"]["export_config"]
    host = jobs_of(documents(generated["host"]))["cpu"]["spec"]["template"]["spec"]["volumes"]
    paths = {v["name"]: v["hostPath"]["path"] for v in host if "hostPath" in v}
    assert paths == {"checkpoints": str(generated["root"]), "exports": str(generated["root"] / "exports")}


@pytest.mark.parametrize(
    "args, message",
    [
        ([f"matrix={MATRIX}"], "--image IMAGE is required"),
        ([f"matrix={MATRIX}", "--image", "x", "--parallelism", "0"], "--parallelism must be >= 1"),
        (["matrix=nope", "--image", "x"], "unknown matrix 'nope'"),
        (["--image", "x", "colour=red"], "unknown argument 'colour=red'"),
        (["--loader", "--image", "x"], "--loader needs --pvc"),
    ],
)
def test_bad_k8s_job_arguments_are_one_line_and_exit_3(generated, args, message):
    proc = exportkit(generated, "k8s-job", *args, check=3)
    assert proc.stderr.startswith("exportkit: error: ") and message in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stdout == ""


def test_a_checkpoint_missing_from_the_project_is_refused(tmp_path):
    project = make_project(tmp_path, BLOCKS)
    (tmp_path / "models/det.pt").unlink()
    proc = exportkit(project, "k8s-job", f"matrix={MATRIX}", "--image", "x", check=3)
    assert "checkpoint" in proc.stderr and "does not exist" in proc.stderr and proc.stdout == ""


def entry(cells_file: Path, index: str, exports: Path, checkpoints: Path) -> subprocess.CompletedProcess:
    env = {
        **ENV,
        "JOB_COMPLETION_INDEX": index,
        "EXPORTKIT_CELLS": str(cells_file),
        "EXPORTKIT_EXPORTS": str(exports),
        "EXPORTKIT_CHECKPOINTS": str(checkpoints),
    }
    return subprocess.run(
        [sys.executable, "-m", "exportkit.build.k8s_entry"],
        capture_output=True,
        text=True,
        env=env,
        cwd=exports.parent,
        timeout=300,
    )


def test_entry_refuses_an_index_past_the_cells_with_exit_3(tmp_path):
    cells = tmp_path / "cells.json"
    cells.write_text("[]")
    for index, message in (("0", "past the 0 cells"), ("", "JOB_COMPLETION_INDEX is ''")):
        proc = entry(cells, index, tmp_path / "exports", tmp_path)
        assert proc.returncode == 3 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_a_failed_index_passes_its_exit_code_and_collect_reports_it(tmp_path):
    """The CLI's exit code (1: the checkpoint is missing) is the pod's; `collect` records the cell as failed."""
    project = make_project(tmp_path / "project", BLOCKS)
    cell = {
        "name": "k8sdet-onnx-fp32",
        "checkpoint": "models/missing.pt",
        "export_format": "onnx",
        "output_dir": "k8sdet/onnx-fp32",
        "export_config": "{}",
        "cell": {
            "name": "k8sdet-onnx-fp32",
            "model": {"name": "k8sdet", "checkpoint": "models/missing.pt"},
            "format": {"name": "onnx"},
            "precision": "fp32",
            "validation": {},
            "export_config": {},
        },
    }
    (tmp_path / "cells.json").write_text(json.dumps([cell]))
    exports = project["root"] / "exports"
    proc = entry(tmp_path / "cells.json", "0", exports, project["root"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    folder = exports / "k8sdet/onnx-fp32"
    status = json.loads((folder / "status.json").read_text())
    assert status["exit_code"] == 1 and status["env"]["CHECKPOINT_PATH"] == str(project["root"] / "models/missing.pt")
    assert "exportkit: error:" in (folder / "export.log").read_text()  # the CLI's own line, in the cell's log too
    collected = exportkit(project, "collect", "exports", check=1)
    assert (
        "collect: 0 of 1 cells recorded" in collected.stdout
        and "k8sdet-onnx-fp32: export failed (exit 1)" in collected.stderr
    )
    assert not (folder / "build-state.json").exists()


def test_collect_without_pod_cells_is_a_config_error(tmp_path):
    project = make_project(tmp_path / "project", BLOCKS)
    (project["root"] / "exports").mkdir()
    for target, message in (("exports", "no cell under"), ("nowhere", "is not a folder")):
        proc = exportkit(project, "collect", target, check=3)
        assert message in proc.stderr and proc.stderr.count("\n") == 1


# -- the Job, simulated locally (slow: it exports) -------------------------------------------------------------------
def run_index(job: dict, configmap: dict, index: int, scratch: Path) -> subprocess.CompletedProcess:
    """One pod of ``job``: its command, with exactly its env (mount paths remapped to the folders its volumes name:
    hostPath -> that folder, the ConfigMap -> its files, emptyDir -> ``scratch``) and JOB_COMPLETION_INDEX."""
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    local = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "hostPath" in volume:
            local[mount["mountPath"]] = volume["hostPath"]["path"]
        elif "configMap" in volume:
            folder = scratch / "configmap"
            folder.mkdir(parents=True, exist_ok=True)
            for key, text in configmap["data"].items():
                (folder / key).write_text(text)
            local[mount["mountPath"]] = str(folder)
        else:
            local[mount["mountPath"]] = str(scratch / "emptydir")
            (scratch / "emptydir").mkdir(parents=True, exist_ok=True)

    def remap(value: str) -> str:
        for mount_path, folder in local.items():
            if value == mount_path or value.startswith(mount_path + "/"):
                return folder + value[len(mount_path) :]
        return value

    env = {e["name"]: remap(e["value"]) for e in container["env"]}
    env.update(
        JOB_COMPLETION_INDEX=str(index),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(ROOT),
    )  # the image's installed exportkit is this checkout here
    return subprocess.run(
        container["command"] + container.get("args", []),
        capture_output=True,
        text=True,
        env=env,
        cwd=remap(container["workingDir"]),
        timeout=600,
    )


@pytest.mark.slow
def test_every_index_run_locally_then_collect_lock_and_verify(tmp_path):
    project = make_project(tmp_path / "project", SIM_BLOCKS, imgsz=64)
    docs = documents(exportkit(project, "k8s-job", f"matrix={MATRIX}", "--image", "x").stdout)
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    (job,) = jobs_of(docs).values()
    assert job["spec"]["completions"] == 3
    for index in range(job["spec"]["completions"]):
        proc = run_index(job, configmap, index, tmp_path / f"pod-{index}")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cells = frozen_cells(docs, job)
    out = project["root"] / "exports"
    for cell in cells:
        assert json.loads((out / cell["output_dir"] / "status.json").read_text())["executor"] == "k8s"
    assert not list(out.glob("*/*/build-state.json"))  # the pods write no build state: collect does
    collected = exportkit(project, "collect", "exports")
    assert "collect: 3 of 3 cells recorded as built" in collected.stdout
    doit = [sys.executable, "-m", "doit"]
    built = subprocess.run(
        [*doit, "export"], capture_output=True, text=True, env=project["env"], cwd=project["root"], timeout=600
    )
    assert built.returncode == 0 and built.stdout.count("-- export:") == 3, built.stdout  # collected = up to date
    for task in ("lock", "verify"):
        proc = subprocess.run(
            [*doit, task], capture_output=True, text=True, env=project["env"], cwd=project["root"], timeout=600
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    lock = json.loads((project["root"] / "exports.lock").read_text())["cells"]
    assert sorted(lock) == sorted(c["name"] for c in cells)
    for cell in cells:
        metadata = json.loads((out / cell["output_dir"] / "metadata.json").read_text())
        assert lock[cell["name"]]["artifacts"] == {a["path"]: a["sha256"] for a in metadata["artifacts"]}
    assert "verify: 3 of 3 cells match" in proc.stdout

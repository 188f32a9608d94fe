"""The declarative layer: composition errors, incremental doit builds, no-torch no-op, parallel,
kill-and-resume, lock and verify, Hydra sweeps."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BUNDLED, ENV, ROOT, run_export

from exportkit.errors import ConfigError
from exportkit.registry import get_format, list_formats


# -- composition (fast) ---------------------------------------------------------------------------
@pytest.fixture
def conf(tmp_path) -> Path:
    target = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", target)
    return target


def _compose(conf: Path, *overrides: str):
    from exportkit.build.config import compose

    return compose(list(overrides), conf)


def test_compose_resolves_defaults(conf):
    cfg = _compose(conf, "model=shapes-pose", "format=openvino", "precision=fp16")
    assert cfg.model.task == "pose" and cfg.format.half is False and cfg.precision.name == "fp16"


@pytest.mark.parametrize(
    "file,line,fragment",
    [
        ("model/shapes-det.yaml", "colour: red", "Key 'colour' not in 'ModelConfig'"),
        ("format/onnx.yaml", "opset: 17", "Key 'opset' not in 'ONNXFormatConfig'"),
        ("validation/default.yaml", "strictness: 3", "Key 'strictness' not in 'ValidationConfig'"),
    ],
)
def test_unknown_key_fails_at_composition_naming_key_and_file(conf, file, line, fragment):
    with open(conf / file, "a") as handle:
        handle.write(line + "\n")
    with pytest.raises(ConfigError) as info:
        _compose(conf)
    assert fragment in str(info.value) and file.removesuffix(".yaml") in str(info.value)


def test_wrong_type_fails_at_composition(conf):
    text = (conf / "format/onnx.yaml").read_text().replace("opset_version: 17", "opset_version: seventeen")
    (conf / "format/onnx.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        _compose(conf)
    assert "opset_version" in str(info.value) and "format/onnx" in str(info.value)


def test_out_of_range_fails_after_composition_naming_file(conf):
    text = (conf / "format/onnx.yaml").read_text().replace("opset_version: 17", "opset_version: 30")
    (conf / "format/onnx.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"conf/format/onnx.yaml: option 'opset_version' must be in 13-18, got 30"):
        _compose(conf)


def test_impossible_cells_are_skipped_with_reason(conf):
    from exportkit.build.matrix import cell_from_config

    cell = cell_from_config(_compose(conf, "format=torchscript", "precision=fp16"), Path("/tmp/out"))
    assert cell.skip_reason == "format torchscript has no fp16 precision (it has: fp32)"
    world = cell_from_config(_compose(conf, "model=yolov8s-worldv2", "format=coreml"), Path("/tmp/out"))
    assert "not supported" in world.skip_reason


def test_precision_maps_onto_format_options(conf):
    from exportkit.build.matrix import cell_from_config

    cell = cell_from_config(_compose(conf, "format=onnx", "precision=fp16"), Path("/tmp/out"))
    assert cell.export_config["half"] is True and cell.name == "shapes-det-onnx-fp16"
    assert cell.export_config["imgsz"] == 192 and cell.export_config["model_name"] == "shapes-det"


def test_key_changes_with_library_version(conf, monkeypatch, tmp_path):
    import exportkit.build.cell as build
    import exportkit.versions as versions
    from exportkit.build.hashing import HashCache
    from exportkit.build.matrix import cell_from_config
    from exportkit.build.tasks import CellKeyUnchanged

    cell = cell_from_config(_compose(conf), tmp_path)
    hashes = HashCache(tmp_path / "h.json")
    before = build.cell_key(cell, hashes)

    class FakeTask:
        value_savers: list = []

    check = CellKeyUnchanged(build.cell_key(cell, hashes))
    assert check(FakeTask(), {"_cell_key": build.canonical(before)}) is True
    real = versions.metadata.version
    monkeypatch.setattr(versions.metadata, "version", lambda p: "999.0" if p == "onnx" else real(p))
    check = CellKeyUnchanged(build.cell_key(cell, hashes))
    assert check(FakeTask(), {"_cell_key": build.canonical(before)}) is False
    assert repr(check) == "<cell key: changed versions.onnx>"


# -- doit, end to end (slow) ----------------------------------------------------------------------
@pytest.fixture
def project(tmp_path):
    """A config tree with a private copy of the detect checkpoint, matrices, and an output folder."""
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    ckpt = tmp_path / "det.pt"
    shutil.copy(BUNDLED["detect"], ckpt)
    (conf / "model/mine.yaml").write_text(
        f"defaults:\n  - /exportkit_model_schema@_here_\n  - _self_\nname: mine\ncheckpoint: {ckpt}\ntask: detect\nimgsz: 192\ncapability: yolo11n\n"
    )
    (conf / "matrix/two.yaml").write_text(
        "defaults:\n  - /exportkit_matrix_schema@_here_\n  - _self_\nname: two\nblocks:\n  - models: [mine]\n    formats: [onnx, torchscript]\n    precisions: [fp32]\n"
    )
    (conf / "matrix/three.yaml").write_text(
        "defaults:\n  - /exportkit_matrix_schema@_here_\n  - _self_\nname: three\nblocks:\n  - models: [mine]\n    formats: [onnx, torchscript, openvino]\n    precisions: [fp32]\n"
    )
    env = {
        **ENV,
        "EXPORTKIT_CONF": str(conf),
        "EXPORTKIT_OUTPUT": str(tmp_path / "out"),
        "EXPORTKIT_MATRIX": "two",
        "EXPORTKIT_LOCK": str(tmp_path / "exports.lock"),
    }
    return {"root": tmp_path, "conf": conf, "ckpt": ckpt, "out": tmp_path / "out", "env": env}


def doit(project, *args, env=None, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), *args],
        capture_output=True,
        text=True,
        env={**project["env"], **(env or {})},
        cwd=ROOT,
        timeout=900,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def ran(proc) -> set[str]:
    return {line.split()[1] for line in proc.stdout.splitlines() if line.split()[:1] == ["."] and "export:" in line}


def skipped(proc) -> set[str]:
    return {line.split()[1] for line in proc.stdout.splitlines() if line.split()[:1] == ["--"] and "export:" in line}


def dry_run(project) -> dict[str, str]:
    """`doit list --all --status`: R (would run) or U (up to date) per export cell."""
    lines = doit(project, "list", "--all", "--status").stdout.splitlines()
    return {f[1]: f[0] for f in (line.split() for line in lines) if len(f) > 1 and f[1].startswith("export:")}


@pytest.mark.slow
def test_incremental_rebuilds(project):
    first = doit(project, "export")
    assert ran(first) == {"export:mine-onnx-fp32", "export:mine-torchscript-fp32"}
    for position, name in enumerate(["mine-onnx-fp32", "mine-torchscript-fp32"], 1):  # progress, cell by cell
        assert f"[{position}/2] {name}: exporting ..." in first.stdout
        assert f"[{position}/2] {name}: exported in " in first.stdout
    assert skipped(doit(project, "export")) == {"export:mine-onnx-fp32", "export:mine-torchscript-fp32"}

    # config change: only the ONNX cell
    onnx_yaml = project["conf"] / "format/onnx.yaml"
    onnx_yaml.write_text(onnx_yaml.read_text().replace("opset_version: 17", "opset_version: 16"))
    info = doit(project, "info", "export:mine-onnx-fp32", check=False)
    assert "changed export_config.opset_version" in info.stdout
    assert dry_run(project) == {"export:mine-onnx-fp32": "R", "export:mine-torchscript-fp32": "U"}  # builds nothing
    assert ran(doit(project, "export")) == {"export:mine-onnx-fp32"}

    # checkpoint content change (same path): both cells
    import torch

    ckpt = torch.load(project["ckpt"], weights_only=False)
    ckpt["date"] = "changed"
    torch.save(ckpt, project["ckpt"])
    assert ran(doit(project, "export")) == {"export:mine-onnx-fp32", "export:mine-torchscript-fp32"}

    # an artifact edited on disk: that cell only, and `doit info` says which file
    model = project["out"] / "mine/torchscript-fp32/model.torchscript"
    model.write_bytes(model.read_bytes() + b"\0")
    assert (
        "model.torchscript changed on disk" in doit(project, "info", "export:mine-torchscript-fp32", check=False).stdout
    )
    assert ran(doit(project, "export")) == {"export:mine-torchscript-fp32"}
    assert not ran(doit(project, "export"))
    for cell in ("onnx-fp32", "torchscript-fp32"):
        folder = project["out"] / "mine" / cell
        assert {"export.log", "status.json", "reproduce.sh", "build-state.json", "metadata.json"} <= {
            p.name for p in folder.iterdir()
        }


NOOP = """
import sys
from doit.doit_cmd import DoitMain
code = DoitMain().run(["-f", sys.argv[1], "export"])
heavy = sorted(m for m in ("torch", "ultralytics", "onnx", "openvino", "onnxruntime") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), "CODE=%d" % code)
"""


@pytest.mark.slow
def test_up_to_date_build_of_twelve_cells_imports_no_torch(project):
    blocks = "  - models: [mine]\n    formats: [onnx, openvino]\n    precisions: [fp32, fp16]\n"
    blocks += (
        "  - models: [shapes-seg, shapes-pose]\n    formats: [onnx, torchscript, openvino]\n    precisions: [fp32]\n"
    )
    blocks += "  - models: [mine]\n    formats: [torchscript]\n    precisions: [fp32, fp16]\n"  # fp16: skipped cell
    blocks += "  - models: [shapes-det]\n    formats: [onnx]\n    precisions: [fp32]\n"
    (project["conf"] / "matrix/twelve.yaml").write_text(
        "defaults:\n  - /exportkit_matrix_schema@_here_\n  - _self_\nname: twelve\nblocks:\n" + blocks
    )
    env = {"EXPORTKIT_MATRIX": "twelve"}
    first = doit(project, "-n", "2", "export", env=env)
    assert len(ran(first)) == 13 and "mine-torchscript-fp16: skipped" in first.stdout, (
        first.stdout
    )  # 12 cells + 1 skipped
    proc = subprocess.run(
        [sys.executable, "-c", NOOP, str(ROOT / "dodo.py")],
        capture_output=True,
        text=True,
        env={**project["env"], **env},
        cwd=ROOT,
        timeout=300,
    )
    assert "HEAVY= CODE=0" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.count("-- export:") == 12


@pytest.mark.slow
def test_parallel_build_matches_serial(project, tmp_path):
    serial = doit(project, "export", env={"EXPORTKIT_MATRIX": "three"})
    parallel = doit(
        project, "-n", "2", "export", env={"EXPORTKIT_MATRIX": "three", "EXPORTKIT_OUTPUT": str(tmp_path / "par")}
    )
    assert len(ran(serial)) == len(ran(parallel)) == 3
    for cell in ("onnx-fp32", "torchscript-fp32", "openvino-fp32"):
        a = json.loads((project["out"] / "mine" / cell / "metadata.json").read_text())["artifacts"]
        b = json.loads((tmp_path / "par/mine" / cell / "metadata.json").read_text())["artifacts"]
        assert a == b, cell  # same files, same sha256: byte-identical


REPRODUCIBLE = [(f, p) for f in list_formats() for p in get_format(f).reproducible]


def test_reproducibility_claims_cover_the_cpu_formats():
    """What `doit verify --rebuild` may compare byte for byte; the test below proves each claim."""
    assert {f for f, _ in REPRODUCIBLE} == {"onnx", "torchscript", "openvino", "coreml", "tflite"}
    assert all(p in get_format(f).precisions for f, p in REPRODUCIBLE)


@pytest.mark.slow
@pytest.mark.parametrize("fmt, precision", REPRODUCIBLE)
def test_reproducible_precisions_export_the_same_bytes_twice(fmt, precision, tmp_path):
    options = {**get_format(fmt).precisions[precision], "imgsz": 64}
    artifacts = []
    for attempt in ("first", "second"):
        proc = run_export(BUNDLED["detect"], fmt, tmp_path / attempt, options)
        assert proc.returncode == 0, proc.stderr[-2000:]
        artifacts.append(json.loads((tmp_path / attempt / "metadata.json").read_text())["artifacts"])
    assert artifacts[0] == artifacts[1]  # every file of the artifact, by sha256


@pytest.mark.slow
def test_torchscript_bytes_do_not_depend_on_where_python_lives(tmp_path):
    """The same export through another path to the same interpreter (a linked venv, another checkout's layout):
    TorchScript's debug records held those absolute paths, so the bytes differed and `verify --rebuild` drifted."""
    venv = Path(sys.prefix)
    linked = tmp_path / "linked-venv"
    linked.symlink_to(venv, target_is_directory=True)
    shas = []
    for python in (Path(sys.executable), linked / "bin" / Path(sys.executable).name):
        out = tmp_path / python.parent.parent.name
        cmd = [
            str(python),
            str(ROOT / "export.py"),
            "--checkpoint_path",
            str(BUNDLED["detect"]),
            "--export_format",
            "torchscript",
            "--output_dir",
            str(out),
            "--export_config",
            '{"imgsz": 64}',
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
        assert proc.returncode == 0, proc.stderr
        shas.append(json.loads((out / "metadata.json").read_text())["artifacts"][0]["sha256"])
    assert shas[0] == shas[1]


@pytest.mark.slow
def test_kill_during_export_then_resume(project):
    env = {**project["env"]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), "export"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first_done = project["out"] / "mine/onnx-fp32/build-state.json"
    second = project["out"] / "mine/torchscript-fp32"
    deadline = time.time() + 300
    while time.time() < deadline and not (first_done.exists() and any(second.glob(".exportkit-staging-*"))):
        time.sleep(0.05)
    assert first_done.exists(), "first cell never finished"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (second / "metadata.json").exists() and not (second / "model.torchscript").exists()
    assert not (second / "build-state.json").exists()
    lock = doit(project, "-s", "lock", check=False)  # -s: the lock alone, without building its dependencies
    assert lock.returncode != 0 and "mine-torchscript-fp32" in lock.stderr  # the lock refuses a half-built matrix
    resumed = doit(project, "export")
    assert ran(resumed) == {"export:mine-torchscript-fp32"}
    assert not list(second.glob(".exportkit-staging-*"))


@pytest.mark.slow
def test_lock_and_verify(project):
    doit(project, "export")
    doit(project, "lock")
    lock = json.loads(Path(project["env"]["EXPORTKIT_LOCK"]).read_text())
    entry = lock["cells"]["mine-onnx-fp32"]
    assert entry["checkpoint"]["sha256"] and entry["artifacts"]["model.onnx"] and entry["versions"]["onnx"]
    assert entry["config"]["opset_version"] == 17
    assert doit(project, "verify", check=False).returncode == 0
    assert doit(project, "verify", "--rebuild", check=False).returncode == 0  # bit-for-bit rebuild

    model = project["out"] / "mine/onnx-fp32/model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\1")
    drift = doit(project, "verify", check=False)
    assert drift.returncode != 0
    assert "DRIFT mine-onnx-fp32: model.onnx: sha256 differs from the lock" in drift.stderr


def hydra(project, *args):
    return subprocess.run(
        [sys.executable, "-m", "exportkit", *args, f"output_root={project['out']}", "model=mine"],
        capture_output=True,
        text=True,
        env=project["env"],
        cwd=ROOT,
        timeout=900,
    )


@pytest.mark.slow
def test_hydra_sweep_twice_rebuilds_nothing(project):
    args = ("-m", "format=onnx,torchscript", "precision=fp32,fp16", "validation=off")
    first = hydra(project, *args, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")  # the parallel launcher
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count(": built:") == 3
    assert "mine-torchscript-fp16: skipped: format torchscript has no fp16 precision" in first.stdout
    second = hydra(project, *args)  # the basic launcher sees the same build state
    assert second.returncode == 0 and second.stdout.count(": up-to-date:") == 3 and ": built:" not in second.stdout


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_hydra_sweep_exit_code_survives_any_launcher(project, launcher):
    """A failing cell fails the sweep (exit 1) whether the jobs ran in this process or in joblib's workers
    (whose return values Hydra's launcher drops)."""
    (project["conf"] / "model/gone.yaml").write_text(
        "defaults:\n  - /exportkit_model_schema@_here_\n  - _self_\nname: gone\ncheckpoint: /nonexistent/gone.pt\n"
        "task: detect\nimgsz: 64\ncapability: yolo11n\n"
    )
    args = [
        "-m",
        f"hydra/launcher={launcher}",
        "model=gone",
        "format=onnx,torchscript",
        "validation=off",
        f"output_root={project['out']}",
    ]
    if launcher == "joblib":
        args.append("hydra.launcher.n_jobs=2")
    proc = subprocess.run(
        [sys.executable, "-m", "exportkit", *args],
        capture_output=True,
        text=True,
        env=project["env"],
        cwd=ROOT,
        timeout=600,
    )
    assert proc.stdout.count(": failed:") == 2, proc.stdout
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_worst_outcome_decides_the_exit_code():
    from exportkit.build.hydra_app import exit_code

    assert exit_code(["built", "up-to-date", "skipped"]) == 0
    assert exit_code(["built", "validation-failed"]) == 2
    assert exit_code(["validation-failed", "failed"]) == 1
    assert exit_code(["failed", "config-error", "built"]) == 3


@pytest.mark.slow
def test_hydra_single_run_with_validation_and_cfg_job(project):
    single = hydra(project, "format=openvino", "precision=fp16")
    assert single.returncode == 0, single.stdout + single.stderr
    folder = project["out"] / "mine/openvino-fp16"
    assert json.loads((folder / "metadata.json").read_text())["precision"] == "fp16"
    assert json.loads((folder / "validation.json").read_text())["passed"] is True
    shown = hydra(project, "--cfg", "job", "format=onnx")
    assert "opset_version: 17" in shown.stdout and "name: mine" in shown.stdout

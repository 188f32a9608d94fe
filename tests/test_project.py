"""The project folder (discovery, config search path, init, where) and the guide's other ways in; no exports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLED, ENV, ROOT

from exportkit import project

NO_TORCH = "import sys; sys.modules['torch'] = None; sys.argv[0] = 'exportkit'; from exportkit.__main__ import main; sys.exit(main())"


def exportkit(*args, cwd: Path, env: dict | None = None, block_torch: bool = False):
    cmd = [sys.executable, "-c", NO_TORCH, *args] if block_torch else [sys.executable, "-m", "exportkit", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env={**ENV, **(env or {})}, timeout=120)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("EXPORTKIT_PROJECT", "EXPORTKIT_CONF", "EXPORTKIT_CACHE"):
        monkeypatch.delenv(name, raising=False)


# -- discovery ------------------------------------------------------------------------------------
def test_nearest_marker_upward_wins_and_env_overrides(tmp_path, monkeypatch, clean_env):
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "repo"
    (inner / "src" / "deep").mkdir(parents=True)
    (outer / "exportkit.yaml").write_text("")
    (inner / "conf").mkdir()
    (inner / "conf" / "config.yaml").write_text("")
    monkeypatch.chdir(inner / "src" / "deep")
    assert project.root() == inner.resolve()
    assert (
        project.resolve("exports") == inner.resolve() / "exports" and project.cache_dir() == inner.resolve() / ".cache"
    )
    monkeypatch.setenv("EXPORTKIT_PROJECT", str(outer))
    assert project.root() == outer.resolve()
    monkeypatch.setenv("EXPORTKIT_CACHE", "/tmp/elsewhere-cache")
    assert project.cache_dir() == Path("/tmp/elsewhere-cache")


def test_without_marker_the_working_directory_is_the_project(tmp_path, monkeypatch, clean_env):
    monkeypatch.chdir(tmp_path)
    assert project.root() == tmp_path.resolve() and project.user_conf() is None
    assert project.search_path() == [project.package_conf()]


def test_checkout_is_a_project_with_one_config_folder(monkeypatch, clean_env):
    monkeypatch.chdir(ROOT / "exportkit" / "formats")
    assert project.root() == ROOT and project.search_path() == [(ROOT / "conf").resolve()]


def test_project_flag_is_checked_and_reaches_subcommands(tmp_path):
    proc = exportkit("--project", str(tmp_path / "missing"), "where", cwd=tmp_path)
    assert (
        proc.returncode == 3
        and proc.stderr.strip() == f"exportkit: error: --project {tmp_path / 'missing'}: no such folder"
    )
    (tmp_path / "repo").mkdir()
    proc = exportkit("--project", str(tmp_path / "repo"), "where", cwd=tmp_path)
    assert proc.returncode == 0 and f"project: {(tmp_path / 'repo').resolve()}" in proc.stdout


# -- configs: the project's over the package's ---------------------------------------------------
@pytest.fixture
def user_project(tmp_path, monkeypatch, clean_env) -> Path:
    folder = tmp_path / "repo"
    (folder / "conf" / "model").mkdir(parents=True)
    (folder / "conf" / "precision").mkdir()
    (folder / "exportkit.yaml").write_text("")
    (folder / "conf/model/mine.yaml").write_text(
        "defaults:\n  - /exportkit_model_schema@_here_\n  - _self_\nname: mine\ncheckpoint: weights/mine.pt\ntask: pose\nimgsz: 96\n"
    )
    # a name clash: the project's fp16 precision file replaces the package's (here: a stricter thresholds group would)
    (folder / "conf/precision/fp16.yaml").write_text(
        "defaults:\n  - /exportkit_precision_schema@_here_\n  - _self_\nname: int8\n"
    )
    monkeypatch.chdir(folder)
    return folder


def test_project_groups_add_to_and_override_package_groups(user_project):
    from exportkit.build.cell import checkpoint_path
    from exportkit.build.config import compose
    from exportkit.build.matrix import cell_from_config

    cfg = compose(["model=mine", "format=onnx", "precision=fp16"])
    assert cfg.model.task == "pose" and cfg.precision.name == "int8"  # the project's file won the clash
    assert compose(["model=shapes-seg"]).model.task == "segment"  # package groups still there
    cell = cell_from_config(cfg, project.resolve("exports"))
    assert cell.out == user_project.resolve() / "exports" / "mine" / "onnx-int8"
    assert checkpoint_path(cell.model) == user_project.resolve() / "weights" / "mine.pt"


def test_where_names_the_file_each_option_comes_from(user_project):
    proc = exportkit("where", cwd=user_project / "conf")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"precision=fp16: {user_project.resolve() / 'conf/precision/fp16.yaml'}" in lines
    assert f"precision=fp32: {project.package_conf() / 'precision/fp32.yaml'}" in lines
    assert f"model=mine: {user_project.resolve() / 'conf/model/mine.yaml'}" in lines


def test_hydra_front_end_composes_the_project_config(user_project):
    proc = exportkit("model=mine", "precision=fp16", "--cfg", "job", cwd=user_project)
    assert proc.returncode == 0, proc.stderr
    assert "checkpoint: weights/mine.pt" in proc.stdout and "name: int8" in proc.stdout


# -- init ------------------------------------------------------------------------------------------
def test_init_writes_a_starter_project_from_the_checkpoint(tmp_path):
    shutil.copy(BUNDLED["pose"], tmp_path / "best.pt")
    proc = exportkit("init", "--checkpoint", "best.pt", "--name", "kp", cwd=tmp_path, block_torch=True)
    assert proc.returncode == 0, proc.stderr
    model = (tmp_path / "conf/model/kp.yaml").read_text()
    assert "task: pose" in model and "imgsz: 192" in model and "checkpoint: best.pt" in model
    assert "models: [kp]" in (tmp_path / "conf/matrix/default.yaml").read_text()
    assert len((tmp_path / "dodo.py").read_text().splitlines()) <= 3 and (tmp_path / "exportkit.yaml").is_file()
    assert "/exports/" in (tmp_path / ".gitignore").read_text()
    listed = subprocess.run(
        [sys.executable, "-m", "doit", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**ENV, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert listed.returncode == 0 and {"export", "validate", "lock", "verify"} <= {
        ln.split()[0] for ln in listed.stdout.splitlines()
    }


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path):
    shutil.copy(BUNDLED["detect"], tmp_path / "best.pt")
    (tmp_path / ".gitignore").write_text("mine\n")
    proc = exportkit("init", "--checkpoint", "best.pt", cwd=tmp_path)
    assert proc.returncode == 3 and proc.stderr.startswith("exportkit: error: init: .gitignore already exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", "best.pt"]
    assert (tmp_path / ".gitignore").read_text() == "mine\n"


def test_init_refuses_a_malicious_checkpoint_without_running_it(tmp_path):
    import pickle
    import zipfile

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"model": Payload()}))
        archive.writestr("evil/version", "3\n")
    proc = exportkit("init", "--checkpoint", "evil.pt", cwd=tmp_path, block_torch=True)
    assert proc.returncode != 0 and proc.stderr.startswith("exportkit: error:") and "Traceback" not in proc.stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "exportkit.yaml").exists()


# -- the guide's per-format file, user data, the API ------------------------------------------------
GUIDE_FILE = {
    "onnx": {"opset_version": 16, "simplify": False},
    "tensorrt": {"fp16": True, "workspace": 8},
    "coreml": {"minimum_deployment_target": "iOS15"},
}


@pytest.mark.parametrize(
    "fmt,expected",
    [
        ("onnx", {"opset_version": 16, "simplify": False}),
        ("coreml", {"minimum_deployment_target": "iOS15"}),
        ("torchscript", {}),
    ],
)
def test_guide_config_file_uses_the_section_of_the_format(tmp_path, fmt, expected):
    from exportkit.pipeline import plan_export
    from exportkit.registry import get_format

    defaults = {o.name: o.default for o in get_format(fmt).options}
    plan = plan_export(BUNDLED["detect"], fmt, tmp_path / "out", GUIDE_FILE)
    assert {k: plan.options[k] for k in defaults} == {**defaults, **expected}


def test_guide_config_file_through_the_cli_reaches_option_checks(tmp_path):
    bad = dict(GUIDE_FILE, onnx={"opset_version": 99})
    (tmp_path / "export_config.json").write_text(json.dumps(bad))
    proc = exportkit(
        "export",
        "--checkpoint_path",
        str(BUNDLED["detect"]),
        "--export_format",
        "onnx",
        "--output_dir",
        str(tmp_path / "o"),
        "--export_config",
        str(tmp_path / "export_config.json"),
        cwd=tmp_path,
        block_torch=True,
    )
    assert proc.returncode == 3 and "opset_version" in proc.stderr and "coreml" not in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "validation,message",
    [
        ({"images": "nowhere"}, "validation.images 'nowhere' is not a folder of images"),
        ({"data": "nowhere.yaml"}, "validation.data 'nowhere.yaml' does not exist"),
        ({"images": "."}, "validation.images '.' is not a folder of images"),
    ],
)
def test_user_data_paths_are_checked_before_torch(tmp_path, validation, message):
    proc = exportkit(
        "export",
        "--checkpoint_path",
        str(BUNDLED["detect"]),
        "--export_format",
        "onnx",
        "--output_dir",
        str(tmp_path / "o"),
        "--export_config",
        json.dumps({"include_validation": True, "validation": validation}),
        cwd=tmp_path,
        block_torch=True,
    )
    assert proc.returncode == 3 and proc.stderr.strip() == f"exportkit: error: {message}" + (
        "; give an Ultralytics data YAML" if "data" in validation else ""
    )


def test_data_yaml_feeds_int8_calibration_unless_calibration_data_is_given(tmp_path, monkeypatch, clean_env):
    from exportkit.shapes import write_dataset
    from exportkit.userdata import calibration_from_data, split_validation

    monkeypatch.chdir(tmp_path)
    write_dataset(tmp_path / "data", "detect", n_train=2, n_val=2, size=64)
    thresholds, own = split_validation({"data": "data/data.yaml", "box_iou": 0.9})
    assert thresholds == {"box_iou": 0.9} and own == {"data": str(tmp_path / "data/data.yaml")}
    assert calibration_from_data({}, {"calibration_data"}, own)["calibration_data"] == own["data"]
    assert (
        calibration_from_data({"calibration_data": "mine/"}, {"calibration_data"}, own)["calibration_data"] == "mine/"
    )
    assert "calibration_data" not in calibration_from_data({}, {"half"}, own)


def test_validation_group_data_calibrates_int8_cells(user_project):
    from exportkit.build.config import compose
    from exportkit.build.matrix import cell_from_config

    (user_project / "conf/validation").mkdir()
    (user_project / "conf/validation/mine.yaml").write_text(
        "defaults:\n  - /exportkit_validation_schema@_here_\n  - _self_\nenabled: true\nthresholds: {}\ndata: data/data.yaml\n"
    )
    int8 = cell_from_config(compose(["format=tflite", "precision=int8", "validation=mine"]), user_project / "exports")
    fp32 = cell_from_config(compose(["format=tflite", "precision=fp32", "validation=mine"]), user_project / "exports")
    assert int8.export_config["calibration_data"] == str(user_project.resolve() / "data/data.yaml")
    assert fp32.export_config["calibration_data"] is None and int8.validation["data"] == "data/data.yaml"


def test_other_classes_are_told_they_compare_on_synthetic_samples(caplog):
    from exportkit.validation.own_data import parity_images

    with caplog.at_level("WARNING"):
        assert parity_images({}, {"model_name": "coco", "class_names": ["person", "car"]}) is None
    assert len(caplog.records) == 1 and "synthetic sample images" in caplog.text and "validation.images=" in caplog.text
    caplog.clear()
    assert parity_images({}, {"class_names": ["rectangle", "ellipse", "triangle"]}) is None and not caplog.records


def test_sample_images_come_from_the_package():
    from exportkit.validation import sample_images

    assert [p.name for p in sample_images()] == sorted(p.name for p in (ROOT / "models/samples").glob("*.jpg"))
    assert all(p.parent == project.samples_dir() for p in sample_images())


def test_python_api_raises_typed_errors_without_torch(tmp_path):
    code = (
        "import sys; sys.modules['torch'] = None\nimport exportkit\nfrom exportkit.errors import ConfigError\n"
        f"try:\n    exportkit.export({str(BUNDLED['detect'])!r}, 'onnx', {str(tmp_path / 'o')!r}, {{'opset_version': 3}})\n"
        "except ConfigError as exc:\n    print(exc.exit_code, exc.one_line())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.startswith("3 ") and "opset_version" in proc.stdout, proc.stderr


@pytest.mark.parametrize(
    "args",
    [["--help"], ["export", "--help"], ["init", "--help"], ["where", "--help"], ["export", "--export_format", "onnx"]],
)
def test_help_and_config_errors_import_no_torch(tmp_path, args):
    proc = exportkit(*args, cwd=tmp_path, block_torch=True)
    assert proc.returncode in (0, 3) and "Traceback" not in proc.stderr, proc.stderr


def test_long_steps_log_progress_without_tqdm(monkeypatch, caplog):
    from exportkit.progress import progress

    monkeypatch.setitem(sys.modules, "tqdm", None)
    with caplog.at_level("INFO", logger="exportkit.progress"):
        assert list(progress(range(8), 8, "INT8 calibration")) == list(range(8))
    assert [r.getMessage() for r in caplog.records] == [f"INT8 calibration: {n}/8 images" for n in (2, 4, 6, 8)]


def test_report_chart_has_one_point_per_artifact_with_latency_and_accuracy():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from exportkit.validation.report import Row, accuracy_against_latency

    def row(fmt, latency, map50):
        return Row(Path("."), "m", "detect", fmt, "fp32", 1.0, 1.0, "passed", 1.0, 0.0, 0.0, map50, map50, latency)

    fig, axis = plt.subplots()
    accuracy_against_latency(axis, [row("onnx", 3.0, 0.9), row("openvino", 2.0, 0.8), row("coreml", None, None)])
    points = [tuple(p) for c in axis.collections for p in c.get_offsets()]
    plt.close(fig)
    assert sorted(points) == [(2.0, 0.8), (3.0, 0.9)] and axis.get_xlabel().startswith("latency")


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["model=a", "--cfg", "job"], ["model=a", "hydra.searchpath=[x]", "--cfg", "job"]),
        (["-m", "format=onnx,openvino"], ["-m", "format=onnx,openvino", "hydra.searchpath=[x]"]),
        (["--cfg", "job"], ["--cfg", "job", "hydra.searchpath=[x]"]),
        (["hydra.searchpath=[mine]"], ["hydra.searchpath=[mine]"]),
    ],
)
def test_hydra_overrides_of_exportkit_join_the_users_overrides(argv, expected):
    from exportkit.build.hydra_app import with_overrides

    assert with_overrides(argv, ["hydra.searchpath=[x]"]) == expected


def test_hydra_info_searchpath_lists_the_project_before_the_package(user_project):
    proc = exportkit("--info", "searchpath", cwd=user_project)
    assert proc.returncode == 0, proc.stderr
    folders = [line.split("|")[2].strip() for line in proc.stdout.splitlines() if "file://" in line]
    assert folders.index(f"file://{user_project.resolve() / 'conf'}") < folders.index(
        f"file://{project.package_conf()}"
    )

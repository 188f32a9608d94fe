"""exportkit as an installed tool: the wheel in a fresh virtualenv, used from a folder of the user's own.

The virtualenv reuses the dev environment's packages through a .pth file (torch is not installed twice); the
checkout is not on sys.path. Everything the run writes must land in the user's folder: nothing in
site-packages, nothing in the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from conftest import BUNDLED, ROOT

pytestmark = pytest.mark.slow
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
IMGSZ = 64


def make_venv(where: Path, reuse: list[Path]) -> Path:
    """A virtualenv without pip whose site-packages ends with ``reuse`` (a .pth file, read after its own packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "reuse-dev-env.pth").write_text("".join(f"{p}\n" for p in reuse))
    return python


def dev_packages(into: Path, keep=lambda name: True) -> Path:
    """A folder of links to the dev environment's packages, less exportkit's own (its editable install, its
    dist-info: pip would see exportkit installed, and an editable finder would import the checkout) and .pth files."""
    into.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.lower()
        if name.startswith(("exportkit", "__editable__", "runtimes")) or name.endswith(".pth") or not keep(name):
            continue
        (into / entry.name).symlink_to(entry)
    return into


def build_wheel(source: Path, into: Path) -> Path:
    proc = subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(into), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(into.glob("*.whl"))


def install(python: Path, wheel: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # the checkout must not look installed
    proc = subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def snapshot(folder: Path, skip=("__pycache__", ".git", ".venv", ".pytest_cache")) -> dict[str, float]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                found[path] = os.stat(path, follow_symlinks=False).st_mtime_ns
            except FileNotFoundError:
                pass
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, bin folder, site-packages) of a fresh virtualenv holding the exportkit wheel."""
    base = tmp_path_factory.mktemp("installed")
    source = base / "src"  # a clean copy: the build writes build/ and *.egg-info beside its sources
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=_outputs(
            ".git",
            ".venv",
            ".cache",
            "exports",
            "build",
            "*.egg-info",
            "__pycache__",
            "runs",
            "tests",
            "*.pt",
            ".doit*",
        ),
    )
    wheel = build_wheel(source, base / "wheels")
    python = make_venv(base / "venv", [dev_packages(base / "dev-packages")])
    install(python, wheel)
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    return python, python.parent, site


def user_env(folder: Path, bin_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPORTKIT_", "PYTHON")) and k != "VIRTUAL_ENV"}
    return {
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "False",
        "YOLO_CONFIG_DIR": str(folder / ".ultralytics"),
        "MPLCONFIGDIR": str(folder / ".matplotlib"),
    }


def test_wheel_installs_no_runtimes_package_and_ships_its_data(installed):
    python, _, site = installed
    assert not (site / "runtimes").exists()
    assert sorted(p.name for p in (site / "exportkit" / "samples").glob("*.jpg")) == sorted(
        p.name for p in (ROOT / "models" / "samples").glob("*.jpg")
    )
    assert (site / "exportkit" / "conf" / "format" / "onnx.yaml").is_file() and (site / "exportkit" / "schema").is_dir()
    assert (site / "exportkit" / "_runtime" / "inference.py").is_file()


def test_user_project_end_to_end(installed, tmp_path):
    python, bin_dir, site = installed
    user = tmp_path / "my-repo"
    user.mkdir()
    shutil.copy(BUNDLED["detect"], user / "mymodel.pt")
    env = user_env(user, bin_dir)
    before_site, before_checkout, started = snapshot(site), snapshot(ROOT), time.time_ns()

    def run(*cmd, ok=0):
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, cwd=user, timeout=900)
        assert proc.returncode == ok, f"{cmd}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    where = run(str(python), "-c", "import exportkit, sys; print(exportkit.__file__); print(sys.path)").stdout
    assert where.startswith(str(site)) and str(ROOT) not in where
    run(str(python), "-c", "import runtimes", ok=1)  # the checkout's runtimes package is nowhere on sys.path

    run(str(bin_dir / "exportkit"), "init", "--checkpoint", "mymodel.pt")
    model = (user / "conf/model/mymodel.yaml").read_text()
    assert "task: detect" in model and "imgsz: 192" in model and "checkpoint: mymodel.pt" in model
    assert run(str(bin_dir / "exportkit"), "init", "--checkpoint", "mymodel.pt", ok=3).stderr.startswith(
        "exportkit: error: init:"
    )
    # modest wall time: a small input size, one format; a second model the user adds by hand
    (user / "conf/model/mymodel.yaml").write_text(model.replace("imgsz: 192", f"imgsz: {IMGSZ}"))
    (user / "conf/matrix/default.yaml").write_text(
        (user / "conf/matrix/default.yaml").read_text().replace("[onnx, torchscript, openvino]", "[onnx]")
    )
    doit = [str(python), "-m", "doit"]
    run(*doit, "export")
    run(*doit, "validate")
    assert json.loads((user / "exports/mymodel/onnx-fp32/validation.json").read_text())["status"] == "passed"
    run(*doit, "lock")
    assert "1 of 1 cells match" in run(*doit, "verify").stdout
    assert "1 of 1 cells match" in run(str(bin_dir / "exportkit"), "verify").stdout  # the same task without a dodo.py
    shutil.copy(user / "mymodel.pt", user / "other.pt")
    (user / "conf/model/other.yaml").write_text(
        f"defaults:\n  - /exportkit_model_schema@_here_\n  - _self_\nname: other\ncheckpoint: other.pt\ntask: detect\nimgsz: {IMGSZ}\n"
    )
    (user / "conf/matrix/default.yaml").write_text(
        (user / "conf/matrix/default.yaml").read_text().replace("models: [mymodel]", "models: [mymodel, other]")
    )
    built = run(*doit, "export").stdout
    assert "other-onnx-fp32" in built and (user / "exports/other/onnx-fp32/model.onnx").is_file()
    assert (
        "model=other: " + str(user / "conf/model/other.yaml")
        in run(str(bin_dir / "exportkit"), "where", "model").stdout
    )

    # the Hydra front end (the first failure: "config directory .../site-packages/conf")
    hydra = run(str(bin_dir / "exportkit"), "model=mymodel", "format=torchscript", "validation=off").stdout
    assert (
        "mymodel-torchscript-fp32: built:" in hydra
        and (user / "exports/mymodel/torchscript-fp32/model.torchscript").is_file()
    )
    assert any((user / ".cache/hydra").iterdir())

    # the guide's contract, validated on the packaged sample images
    run(
        str(bin_dir / "exportkit"),
        "export",
        "--checkpoint_path",
        "mymodel.pt",
        "--export_format",
        "onnx",
        "--output_dir",
        "out/guide",
        "--export_config",
        json.dumps({"include_validation": True, "imgsz": IMGSZ}),
    )
    report = json.loads((user / "out/guide/validation.json").read_text())
    images = [name for name in report["inputs"] if name.startswith("image:")]
    assert report["status"] == "passed" and len(images) == len(list((site / "exportkit/samples").glob("*.jpg"))) > 1

    # validation.data: mAP of artifact and .pt on a small labelled data set of the user's
    run(
        str(python),
        "-c",
        "from exportkit.shapes import write_dataset; write_dataset('data', 'detect', n_train=4, n_val=6, size=96)",
    )
    run(
        str(bin_dir / "exportkit"),
        "export",
        "--checkpoint_path",
        "mymodel.pt",
        "--export_format",
        "onnx",
        "--output_dir",
        "out/data",
        "--export_config",
        json.dumps(
            {
                "include_validation": True,
                "imgsz": IMGSZ,
                "validation": {"data": "data/data.yaml", "images": "data/images/train"},
            }
        ),
    )
    validation = json.loads((user / "out/data/validation.json").read_text())
    assert sorted(n for n in validation["inputs"] if n.startswith("image:")) == sorted(
        f"image:{p.name}" for p in (user / "data/images/train").iterdir()
    )  # validation.images: parity on the user's images
    accuracy = validation["accuracy"]
    assert accuracy["images"] == 6 and accuracy["data"] == str(user / "data/data.yaml")
    assert 0 <= accuracy["map50_95"] <= accuracy["map50"] <= 1 and abs(accuracy["map50"] - accuracy["map50_pt"]) < 0.05
    # the same data through the validation group: the project's validation/default.yaml replaces the package's
    (user / "conf/validation").mkdir()
    (user / "conf/validation/default.yaml").write_text(
        "defaults:\n  - /exportkit_validation_schema@_here_\n  - _self_\nenabled: true\nthresholds: {}\ndata: data/data.yaml\n"
    )
    assert "validate:mymodel-onnx-fp32" in run(*doit, "validate").stdout  # the new data makes the cell stale
    assert json.loads((user / "exports/mymodel/onnx-fp32/validation.json").read_text())["accuracy"]["images"] == 6
    run(str(bin_dir / "exportkit"), "report", "out")  # the report takes the user's mAP from validation.json
    assert f"mAP on {user / 'data/data.yaml'} val split (6 images)" in (user / "out/report.md").read_text()
    run(*doit, "report")
    assert (user / "exports/report.html").is_file()

    # every state file in the user's folder; nothing written into site-packages or the checkout
    assert (user / "exports.lock").is_file() and (user / "exports/.doit.sqlite3").is_file()
    assert (user / ".cache").is_dir() and json.loads((user / "exports.lock").read_text())["cells"]
    assert snapshot(site) == before_site
    changed = {p for p, m in snapshot(ROOT).items() if before_checkout.get(p) != m and m >= started}
    assert not changed, sorted(changed)[:10]


def test_runtime_distribution_installs_alone_and_predicts(exports, tmp_path):
    """`pip install ./runtimes/python` into a virtualenv without torch: exportkit_runtime predicts on an export."""
    artifact = exports.get("detect", "onnx")
    wheel = build_wheel_copy(ROOT / "runtimes" / "python", tmp_path)
    wanted = (
        "numpy",
        "onnxruntime",
        "cv2",
        "opencv_python",
        "flatbuffers",
        "packaging",
        "protobuf",
        "google",
        "sympy",
        "mpmath",
        "coloredlogs",
        "humanfriendly",
    )  # numpy, onnxruntime, OpenCV and what they import; no torch
    allowed = dev_packages(tmp_path / "allowed", lambda name: name.split("-")[0].split(".")[0] in wanted)
    python = make_venv(tmp_path / "venv", [allowed])
    install(python, wheel)
    code = (
        "import sys, numpy, cv2\n"
        "from exportkit_runtime import YOLOInference\n"
        f"result = YOLOInference({str(artifact)!r}).predict(cv2.imread({str(ROOT / 'models/samples/shapes_1_192x192.jpg')!r}))\n"
        "assert 'torch' not in sys.modules and 'exportkit' not in sys.modules\n"
        "print(len(result.detections))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0 and int(proc.stdout.strip()) > 0, proc.stderr[-3000:]
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True, env=env).returncode != 0
    assert (
        subprocess.run([str(python), "-c", "import runtimes"], capture_output=True, env=env, cwd=tmp_path).returncode
        != 0
    )


def _outputs(*patterns):
    """shutil.ignore_patterns, except that the package exportkit/build/ (the build layer) is source, not output."""
    plain = shutil.ignore_patterns(*patterns)

    def ignore(folder, names):
        return {n for n in plain(folder, names) if not (n == "build" and Path(folder).name == "exportkit")}

    return ignore


def build_wheel_copy(source: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "src"
    shutil.copytree(source, copy, ignore=_outputs("__pycache__", "build", "*.egg-info"))
    return build_wheel(copy, tmp_path / "wheels")

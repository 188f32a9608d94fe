"""The registry's facts match the export guide's tables; every format has a test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from exportkit.errors import ConfigError
from exportkit.registry import get_format, list_formats

# The export guide's option tables: format -> {option: default}
GUIDE_DEFAULTS = {
    "onnx": {"opset_version": 17, "dynamic_axes": False, "simplify": True, "half": False},
    "tensorrt": {"fp16": False, "int8": False, "workspace": 4, "max_batch_size": 1},
    "coreml": {"minimum_deployment_target": "iOS15", "nms": True},
    "tflite": {"int8": False, "tflite_model": "default"},
    "torchscript": {"optimize": True},
    "openvino": {"half": False},
}
SUFFIXES = {
    "onnx": ".onnx",
    "tensorrt": ".engine",
    "coreml": ".mlpackage",
    "tflite": ".tflite",
    "torchscript": ".torchscript",
    "openvino": ".xml",
}


def test_registry_lists_the_guides_six_formats():
    assert sorted(list_formats()) == sorted(GUIDE_DEFAULTS)


@pytest.mark.parametrize("name", sorted(GUIDE_DEFAULTS))
def test_guide_defaults(name):
    fmt = get_format(name)
    resolved = fmt.resolve({})
    for option, default in GUIDE_DEFAULTS[name].items():
        assert resolved[option] == default, option
    assert resolved["include_validation"] is False
    assert Path(fmt.files[0].rstrip("/")).suffix == SUFFIXES[name]


@pytest.mark.parametrize("name", sorted(GUIDE_DEFAULTS))
def test_precisions_map_onto_declared_options(name):
    fmt = get_format(name)
    assert "fp32" in fmt.precisions
    known = {o.name for o in fmt.all_options()}
    for precision, overrides in fmt.precisions.items():
        assert set(overrides) <= known
        assert fmt.precision_of(fmt.resolve(overrides)) == precision


def test_onnx_opset_range_is_enforced():
    fmt = get_format("onnx")
    assert fmt.resolve({"opset_version": 13})["opset_version"] == 13
    assert fmt.resolve({"opset_version": 18})["opset_version"] == 18
    for bad in (12, 19, 17.0, True, "17"):
        with pytest.raises(ConfigError):
            fmt.resolve({"opset_version": bad})


def test_format_name_is_case_insensitive_in_plan(tmp_path):
    from conftest import BUNDLED

    from exportkit.pipeline import plan_export

    plan = plan_export(BUNDLED["detect"], "ONNX", tmp_path / "o", {"opset_version": 13, "validation": {"box_iou": 0.9}})
    assert plan.format is get_format("onnx") and plan.format.name == "onnx"
    assert plan.options == {**get_format("onnx").resolve({}), "opset_version": 13}
    assert plan.validation == {"box_iou": 0.9} and not plan.include_validation
    assert plan.output_dir == (tmp_path / "o").resolve() and not plan.output_dir.exists()  # planning writes nothing
    assert plan.checkpoint.resolve() == BUNDLED["detect"].resolve()
    with pytest.raises(ConfigError, match="unknown"):
        plan_export(BUNDLED["detect"], "ONNXX", tmp_path / "o", {})


@pytest.fixture(scope="module")
def collected_tests() -> list[str]:
    """Every test node id in the suite, slow ones included (pytest --collect-only in a subprocess)."""
    import subprocess
    import sys

    tests = Path(__file__).parent
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        cwd=tests.parent,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def exercised_formats(node_ids: list[str]) -> set[str]:
    """Formats a test outside this module is parametrized with (a `-`-separated token of its id), or has a module for."""
    found = set()
    for node in node_ids:
        module = node.split("::")[0].rsplit("/", 1)[-1]
        if module == Path(__file__).name:
            continue
        if module.startswith("test_format_"):
            found.add(module[len("test_format_") : -3])
        if "[" in node:
            found.update(node[node.index("[") + 1 : -1].split("-"))
    return found & set(list_formats())


def test_exercised_formats_reads_parameters_not_text():
    nodes = [
        "tests/test_x.py::test_a[detect-onnx]",
        "tests/test_format_tflite.py::test_b",
        "tests/test_y.py::test_onnx_word",
        f"tests/{Path(__file__).name}::test_c[openvino]",
        "tests/test_z.py::test_d[coreml-x]",
    ]
    assert exercised_formats(nodes) == {"onnx", "tflite", "coreml"}


@pytest.mark.parametrize("name", list_formats())
def test_every_format_has_tests(name, collected_tests):
    assert name in exercised_formats(collected_tests), (
        f"no test is parametrized over format {name!r} and no tests/test_format_{name}.py"
    )


def test_readme_tables_are_generated_from_the_registry():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, str(root / "scripts/update_readme.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", sorted(GUIDE_DEFAULTS))
def test_conf_format_yaml_lists_every_option_with_its_default(name):
    import yaml

    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "conf/format" / f"{name}.yaml").read_text())
    fmt = get_format(name)
    assert {k: v for k, v in data.items() if k not in ("defaults", "name")} == {o.name: o.default for o in fmt.options}

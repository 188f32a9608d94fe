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
SUFFIXES = {"onnx": ".onnx", "tensorrt": ".engine", "coreml": ".mlpackage", "tflite": ".tflite", "torchscript": ".torchscript", "openvino": ".xml"}


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
    from exportkit.pipeline import plan_export

    with pytest.raises(Exception) as info:
        plan_export(tmp_path / "missing.pt", "ONNX", tmp_path / "o", {})
    assert "checkpoint not found" in str(info.value)


@pytest.mark.parametrize("name", sorted(GUIDE_DEFAULTS))
def test_every_format_has_tests(name):
    tests = Path(__file__).parent
    mentioned = any(f'"{name}"' in p.read_text() for p in tests.glob("test_*.py") if p.name != Path(__file__).name)
    assert mentioned, f"no test module exercises format {name!r}"


def test_readme_tables_are_generated_from_the_registry():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "scripts/update_readme.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", sorted(GUIDE_DEFAULTS))
def test_conf_format_yaml_lists_every_option_with_its_default(name):
    import yaml

    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "conf/format" / f"{name}.yaml").read_text())
    fmt = get_format(name)
    assert {k: v for k, v in data.items() if k not in ("defaults", "name")} == {o.name: o.default for o in fmt.options}

"""The folder layout is the architecture: the core and the format plugins never import the build layer (nor,
once validation is its own package, validation); a fact shared by formats is defined once."""

from __future__ import annotations

import ast
from pathlib import Path

import exportkit

PACKAGE = Path(exportkit.__file__).parent
LAYERS = ("exportkit.build",)


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def core_modules() -> list[Path]:
    """The flat core and the plugins (formats, families): everything but the layers above them."""
    return [*PACKAGE.glob("*.py"), *(PACKAGE / "formats").glob("*.py"), *(PACKAGE / "families").glob("*.py")]


def test_the_core_and_the_plugins_never_import_the_layers_above_them():
    offenders = {}
    for path in core_modules():
        if path.name in ("__main__.py", "dodo.py", "commands.py", "init.py", "api.py"):  # entry points: they assemble
            continue
        bad = sorted(m for m in imported_modules(path) if m.startswith(LAYERS))
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = bad
    assert not offenders, offenders


def test_the_rule_sees_a_violation(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from exportkit.build.cell import Cell\n")
    assert "exportkit.build.cell" in imported_modules(module)


def test_the_int8_formats_share_one_calibration_option():
    from exportkit.formats._calibration import CALIBRATION_DATA
    from exportkit.registry import get_format

    for name in ("tensorrt", "tflite"):
        assert [o for o in get_format(name).options if o.name == "calibration_data"] == [CALIBRATION_DATA]


def test_the_format_order_has_one_source():
    from exportkit import capabilities, cli
    from exportkit.registry import FORMAT_MODULES

    assert cli.FORMATS is FORMAT_MODULES and capabilities.FORMAT_ORDER is FORMAT_MODULES
    # the guide's "Capability Matrix by Model" header, in its order
    guide = ("ONNX", "TensorRT", "CoreML", "TFLite", "TorchScript", "OpenVINO")
    assert tuple(exportkit.registry.get_format(f).title for f in FORMAT_MODULES) == guide

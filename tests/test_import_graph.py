"""The layers the folder layout shows, checked on the source: every import, module level or inside a function.

    runtimes/python          imports nothing of exportkit (it ships on its own)
    core (exportkit/*.py)    registry, options, checkpoint, metadata, pipeline, errors, cli ...
    formats, families        plugins: the core only (families also call validation, a layer above them)
    validation               the core, the plugins; never the build layer
    build                    everything below it

The CLI dispatchers (``exportkit/__main__.py``, ``exportkit/dodo.py``) start any layer and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "exportkit"
LAYERS = ("build", "validation", "formats", "families", "_runtime")
DISPATCHERS = {"exportkit", "exportkit.__main__", "exportkit.dodo"}
ALLOWED = {
    "core": {"core", "formats", "families"},  # the registry loads format plugins, the pipeline a model family
    "formats": {"core", "formats"},
    "families": {"core", "formats", "families", "validation"},
    "validation": {"core", "formats", "families", "validation"},
    "build": {"core", "formats", "families", "validation", "build"},
}


def layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "exportkit":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "core"


def module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def violations(package: Path, root: Path) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        source = module_name(path, root)
        if source in DISPATCHERS or layer(source) == "_runtime":
            continue
        for target in sorted(imports(path)):
            wanted = layer(target)
            if wanted is not None and wanted not in ALLOWED[layer(source)]:
                problems.append(f"{source} ({layer(source)}) imports {target} ({wanted})")
    return problems


def test_every_package_imports_only_the_layers_below_it():
    assert violations(PACKAGE, ROOT) == []


def test_the_python_runtime_imports_nothing_of_exportkit():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "runtimes" / "python").rglob("*.py"))
        for name in imports(path)
        if name.split(".")[0] == "exportkit"
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "source, target, bad",
    [
        ("formats/coreml.py", "exportkit.validation", True),  # the hub this redesign removed
        ("formats/onnx.py", "exportkit.build.cell", True),
        ("metadata.py", "exportkit.validation.harness", True),
        ("validation/report.py", "exportkit.build.lock", True),
        ("families/yolo.py", "exportkit.validation", False),
        ("build/tasks.py", "exportkit.validation", False),
    ],
)
def test_the_checker_sees_a_planted_import(tmp_path, source, target, bad):
    package = tmp_path / "exportkit"
    path = package / source
    path.parent.mkdir(parents=True)
    path.write_text(f"def hook():\n    from {target} import something\n")
    assert bool(violations(package, tmp_path)) is bad

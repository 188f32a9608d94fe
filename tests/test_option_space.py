"""The guide's option space, tested as a space: cells generated from each format's option facts.

For every format that runs here: each boolean option both ways, each end of every numeric range, every
enumerated value; the full product where it is small, else a seeded pairwise cover (every pair of values
of every two options appears in some cell). Each cell exports the bundled detect model with
include_validation and must either pass, or be refused by the plan (before any export) with exit 3 and
a one-line reason. A combination a converter cannot produce is a fact on the format (checked in
``resolve``), never an exit 1 after the work.

Not covered here: the common options (imgsz up to 4096, batch up to 256: their ends are checked by the
fast option tests, exporting them is minutes each on a CPU), and ``calibration_data`` (a path). A cell
equal to the format's defaults is the `exports` fixture's default cell, exported once for the session.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest
from conftest import BUNDLED

from exportkit.errors import ConfigError, EnvironmentUnsupported, ExportkitError
from exportkit.options import Option
from exportkit.registry import get_format

FORMATS = ("onnx", "torchscript", "openvino", "tflite", "coreml")
FULL_PRODUCT_LIMIT = 10  # above this many cells a format gets a pairwise cover
SEED = 12


def values_of(option: Option) -> list:
    if option.type is bool:
        return [False, True]
    if option.choices:
        return list(option.choices)
    if option.minimum is not None and option.maximum is not None:
        return [option.type(option.minimum), option.type(option.maximum)]
    return []  # free values (paths): not part of the space


def pairwise(axes: dict[str, list], seed: int) -> list[dict]:
    """A small set of cells covering every value pair of every two axes (greedy, seeded)."""
    names = list(axes)
    uncovered = {((a, va), (b, vb)) for a, b in itertools.combinations(names, 2) for va in axes[a] for vb in axes[b]}
    rng = random.Random(seed)
    cells = []
    while uncovered:
        best, best_gain = None, -1
        for _ in range(30):
            cell = {n: rng.choice(axes[n]) for n in names}
            (a, va), (b, vb) = rng.choice(sorted(uncovered, key=repr))  # seed each candidate with an uncovered pair
            cell[a], cell[b] = va, vb
            gain = sum(((x, cell[x]), (y, cell[y])) in uncovered for x, y in itertools.combinations(names, 2))
            if gain > best_gain:
                best, best_gain = cell, gain
        cells.append(best)
        uncovered -= {((x, best[x]), (y, best[y])) for x, y in itertools.combinations(names, 2)}
    return cells


def space(name: str) -> list[dict]:
    fmt = get_format(name)
    axes = {o.name: values_of(o) for o in fmt.options if values_of(o)}
    product = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    return product if len(product) <= FULL_PRODUCT_LIMIT else pairwise(axes, SEED)


def test_pairwise_covers_every_pair():
    axes = {"a": [0, 1], "b": [0, 1], "c": ["x", "y", "z"], "d": [True, False]}
    cells = pairwise(axes, SEED)
    assert len(cells) < 2 * 2 * 3 * 2
    for a, b in itertools.combinations(axes, 2):
        assert {(c[a], c[b]) for c in cells} == set(itertools.product(axes[a], axes[b]))
    assert pairwise(axes, SEED) == cells  # seeded: the same cells every run


def test_space_takes_each_end_and_every_value_from_the_facts():
    onnx = space("onnx")
    assert {c["opset_version"] for c in onnx} == {13, 18}  # the guide's opset range 13-18, both ends
    assert {c["dynamic_axes"] for c in onnx} == {False, True}
    coreml = space("coreml")
    assert {c["minimum_deployment_target"] for c in coreml} == set(get_format("coreml").options[0].choices)
    assert len(coreml) == len(get_format("coreml").options[0].choices) * 2  # small: the full product


CELLS = [(name, cell) for name in FORMATS for cell in space(name)]


def _id(cell) -> str:
    return ",".join(f"{k}={v}" for k, v in cell.items())


def _planned(name: str, cell: dict, tmp_path):
    """What the plan says before any export: None (accepted) or the error it raises."""
    from exportkit.pipeline import plan_export

    try:
        plan_export(BUNDLED["detect"], name, tmp_path / "plan", {**cell, "include_validation": True})
    except ExportkitError as exc:
        return exc
    return None


@pytest.mark.parametrize("name, cell", CELLS, ids=[f"{n}[{_id(c)}]" for n, c in CELLS])
def test_every_plan_decision_is_a_config_fact(name, cell, tmp_path):
    """Fast: the plan accepts a cell or refuses it with a ConfigError naming the option (no export)."""
    refused = _planned(name, cell, tmp_path)
    if refused is not None:
        assert isinstance(refused, (ConfigError, EnvironmentUnsupported)), refused
        assert any(option in str(refused) for option in cell) or isinstance(refused, EnvironmentUnsupported), str(
            refused
        )


@pytest.mark.slow
@pytest.mark.parametrize("name, cell", CELLS, ids=[f"{n}[{_id(c)}]" for n, c in CELLS])
def test_option_space_cell_exports_and_validates_or_is_refused_first(exports, name, cell, tmp_path):
    fmt = get_format(name)
    defaults = fmt.resolve({})
    config = {k: v for k, v in cell.items() if defaults[k] != v}  # a default cell is the shared default export
    refused = _planned(name, config, tmp_path)
    out, proc = exports.attempt("detect", name, **config)
    if refused is not None:
        # refused by the plan: exit 3 for a combination; a machine that lacks a tool (EnvironmentUnsupported,
        # exit 1) is refused the same way, before anything is exported
        assert proc.returncode == refused.exit_code, (proc.returncode, proc.stderr[-500:])
        assert proc.stderr == f"exportkit: error: {refused.one_line()}\n"
        assert not (out / "metadata.json").exists()
        return
    assert proc.returncode == 0, f"{name} {json.dumps(cell)}: exit {proc.returncode}: {proc.stderr[-1500:]}"
    validation = json.loads((out / "validation.json").read_text())
    assert validation["status"] in ("passed", "skipped"), validation["summary"]
    assert validation["status"] == "passed" or fmt.prediction_needs_macos  # only CoreML may skip numeric parity here


def test_combinations_converters_cannot_produce_are_refused_by_the_plan(tmp_path):
    """Found by the space: coremltools cannot write an NMS model for iOS13 (exit 1 after the conversion before)."""
    refused = _planned("coreml", {"minimum_deployment_target": "iOS13", "nms": True}, tmp_path)
    assert isinstance(refused, ConfigError) and "nms needs minimum_deployment_target iOS14 or later" in str(refused)
    assert _planned("coreml", {"minimum_deployment_target": "iOS13", "nms": False}, tmp_path) is None
    assert _planned("coreml", {"minimum_deployment_target": "iOS14", "nms": True}, tmp_path) is None
    refused = _planned("tflite", {"int8": False, "tflite_model": "edgetpu"}, tmp_path)
    assert isinstance(refused, ConfigError) and "edgetpu" in str(refused)

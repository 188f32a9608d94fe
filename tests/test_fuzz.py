"""Fuzzed inputs (hypothesis, bounded and derandomized): --export_config and metadata.json as the runtime reads it.

Every example either succeeds or raises the one typed error its reader documents (ConfigError, exit 3;
the runtime's ModelLoadError), with a one-line message; never another exception, a hang or a huge allocation.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLED, ENV, ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportkit.cli import parse_config
from exportkit.errors import ConfigError, EnvironmentUnsupported
from exportkit.pipeline import ExportPlan, plan_export
from exportkit.registry import get_format, list_formats
from exportkit.validation import thresholds_for
from runtimes.python.errors import ModelLoadError
from runtimes.python.spec import MAX_DIM, MAX_INPUT_SIZE, ModelSpec, load_spec

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

EDGE_NUMBERS = [0, -1, 1, 31, 32, 33, 4096, 4097, 2**31, 2**63, -(2**63) - 1, 10**300, -0.0, 0.5, 1e308, -1e308, 5e-324]
EDGE_STRINGS = ["", " ", "~no_such_user_xyz/data", "x" * 5000, "a\x00b", "\u2028", "..", "/", "model.pt"]
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(EDGE_NUMBERS)
    | st.sampled_from(EDGE_STRINGS)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
NON_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])


# -- --export_config ---------------------------------------------------------------------------------
def _runnable_formats() -> list[str]:
    """Formats whose environment check passes here with default options (TensorRT needs a GPU)."""
    runnable = []
    for name in list_formats():
        fmt = get_format(name)
        try:
            fmt.check_environment(fmt.resolve({}))
        except Exception:
            continue
        runnable.append(name)
    return runnable


FORMATS = _runnable_formats()


def _option_values(name: str):
    """Values near each option's edges: its choices, bounds +- 1, and any JSON value."""
    edges = []
    for fmt in FORMATS:
        for option in get_format(fmt).all_options():
            if option.name == name:
                edges += list(option.choices or ()) + [option.default]
                edges += [b + d for b in (option.minimum, option.maximum) if b is not None for d in (-1, 0, 1)]
    return st.sampled_from(edges) | JSON_VALUES if edges else JSON_VALUES


OPTION_NAMES = sorted({o.name for fmt in FORMATS for o in get_format(fmt).all_options()})
CONFIG_ENTRIES = st.one_of(
    st.sampled_from(OPTION_NAMES).flatmap(lambda key: st.tuples(st.just(key), _option_values(key))),
    st.tuples(
        st.just("validation"),
        st.dictionaries(
            st.sampled_from(sorted(thresholds_for("fp32", {}))) | st.text(max_size=6), JSON_VALUES, max_size=3
        )
        | JSON_VALUES,
    ),
    st.tuples(st.text(max_size=16), JSON_VALUES),
)
CONFIGS = st.lists(CONFIG_ENTRIES, max_size=6).map(dict)
# raw entries: keys may repeat, a value may be NaN or +-Infinity (tokens Python's json accepts by default)
ENTRY_LISTS = st.lists(CONFIG_ENTRIES | st.tuples(st.sampled_from(OPTION_NAMES), NON_FINITE), max_size=6).flatmap(
    lambda entries: st.just(entries) | st.sampled_from(entries or [("imgsz", 64)]).map(lambda dup: [*entries, dup])
)


def _object_text(entries: list) -> str:
    return (
        "{"
        + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}" for k, v in entries)
        + "}"
    )


def _names_a_key(message: str, config: dict) -> bool:
    return any(key in message or repr(key)[1:-1] in message for key in config)


def _non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return isinstance(value, list) and any(_non_finite(v) for v in value)


@FUZZ
@given(entries=ENTRY_LISTS, fmt=st.sampled_from(FORMATS))
def test_fuzzed_export_config_is_a_plan_or_a_config_error(tmp_path, entries, fmt):
    config = dict(entries)
    keys = [k for k, _ in entries]
    strict_error = len(set(keys)) < len(keys) or any(_non_finite(v) for _, v in entries)
    try:
        plan = plan_export(BUNDLED["detect"], fmt, tmp_path / "out", parse_config(_object_text(entries)))
        thresholds = thresholds_for(plan.format.precision_of(plan.options), plan.validation)
    except ConfigError as exc:
        message = exc.one_line()
        assert message and len(message.splitlines()) == 1
        if strict_error:  # the repeated key or the non-finite token is what is named
            assert "twice" in message or "finite" in message, message
        else:
            assert _names_a_key(message, config), message
        return
    except EnvironmentUnsupported as exc:  # a valid config this machine cannot run (an Edge TPU model)
        assert "edgetpu" in str(exc), exc
        return
    assert not strict_error, f"accepted {_object_text(entries)[:200]}"
    assert isinstance(plan, ExportPlan) and isinstance(thresholds, dict)
    assert set(plan.options) == {o.name for o in get_format(fmt).all_options()}


@FUZZ
@given(
    text=st.text(max_size=60)
    | st.sampled_from(["x" * 5000, "[" * 5000, '{"imgsz": 1' + "0" * 5000 + "}", "a\x00"])
    | CONFIGS.map(json.dumps).flatmap(lambda t: st.integers(0, len(t)).map(lambda n: t[:n]))
)
def test_fuzzed_config_text_is_a_dict_or_a_config_error(text):
    """Arbitrary text and JSON cut anywhere: a dict, or one ConfigError line, never another exception."""
    try:
        value = parse_config(text)
    except ConfigError as exc:
        assert len(exc.one_line().splitlines()) == 1
        return
    assert isinstance(value, dict)


@pytest.mark.parametrize(
    "text, key",
    [
        ('{"opset_version": 17, "opset_version": 18}', "'opset_version' twice"),
        ('{"validation": {"box_iou": 0.9, "box_iou": 0.5}}', "'box_iou' twice"),
        ('{"opset_version": NaN}', "NaN is not JSON"),
        ('{"imgsz": Infinity}', "Infinity is not JSON"),
        ('{"imgsz": -Infinity}', "-Infinity is not JSON"),
        ('{"workspace": 1e999}', "'1e999' is not a finite JSON number"),
        ('{"imgsz": 1' + "0" * 5000 + "}", "not usable JSON"),
        ("[" * 100_000, "not usable JSON"),
    ],
)
def test_strict_json_in_process(text, key):
    with pytest.raises(ConfigError, match=key.replace("(", r"\(")):
        parse_config(text)


@pytest.mark.parametrize(
    "config, key",
    [
        ('{"opset_version": 17, "opset_version": 18}', "opset_version"),
        ('{"half": true, "validation": {"box_iou": 0.9, "box_iou": 0.5}}', "box_iou"),
        ('{"opset_version": NaN}', "NaN"),
    ],
)
def test_export_py_rejects_duplicate_keys_and_nan_with_exit_3(tmp_path, config, key):
    cmd = [
        sys.executable,
        str(ROOT / "export.py"),
        "--checkpoint_path",
        str(BUNDLED["detect"]),
        "--export_format",
        "onnx",
        "--output_dir",
        str(tmp_path / "out"),
        "--export_config",
        config,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("exportkit: error: export_config") and key in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", ["~no_such_user_xyz/images", "x" * 5000, "a\x00b"])
def test_calibration_paths_that_are_not_paths_are_config_errors(tmp_path, path):
    with pytest.raises(ConfigError, match="calibration_data"):
        plan_export(BUNDLED["detect"], "tflite", tmp_path / "out", {"int8": True, "calibration_data": path})


# -- metadata.json as the Python runtime reads it ------------------------------------------------------
def _metadata(task: str) -> dict:
    from test_runtime_python import make_metadata

    return make_metadata(task, keypoints=4 if task == "pose" else 0)


HOSTILE_VALUES = [
    [1, 3, 100_000, 100_000],
    [100_000, 100_000, 3],
    [-5, -5, 3],
    [0, 0, 3],
    [2**40],
    [],
    [[[[]]]],
    "640",
    "",
    [1, "3", 64, 64],
    list(range(10_000)),
    10**6,
    -(10**6),
    2**64,
    -1,
    0,
    True,
    None,
    1.5,
    float("nan"),
    float("inf"),
    {"a": [1, {"b": None}]},
    [[1, 2, 3]],
    ["x", 1],
    json.loads("[" * 300 + "]" * 300),
]
HOSTILE = st.one_of(
    JSON_VALUES,
    st.sampled_from(HOSTILE_VALUES),
    st.integers(1, 300).map(lambda depth: json.loads("[" * depth + "]" * depth)),
)


def _paths(value, prefix=()):
    """Every key path into ``value`` (dict keys and list indices)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:8]):
            yield from _paths(item, (*prefix, i))


def _replaced(metadata: dict, path: tuple, value) -> dict:
    edited = json.loads(json.dumps(metadata))
    if not path:
        return value
    target = edited
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return edited


def _spec_or_load_error(metadata) -> ModelSpec | None:
    try:
        spec = ModelSpec.from_dict(metadata) if isinstance(metadata, dict) else None
    except ModelLoadError as exc:
        assert len(exc.one_line().splitlines()) == 1 and len(exc.one_line()) < 2000, exc.one_line()[:300]
        return None
    return spec


def _bounded(spec: ModelSpec) -> None:
    """What a spec that loads promises: an input the runtime can allocate, consistent class counts."""
    h, w = spec.input_size
    assert 0 < h <= MAX_INPUT_SIZE and 0 < w <= MAX_INPUT_SIZE
    assert spec.layout.class_scores[1] - spec.layout.class_scores[0] == len(spec.class_names) or spec.layout.nms_applied
    assert all(isinstance(n, str) for n in spec.class_names + spec.keypoint_names)
    assert spec.layout.keypoint_dims in (2, 3)
    for tensor in spec.inputs + spec.outputs:
        assert tensor.shape and all(d == -1 or 0 < d <= MAX_DIM for d in tensor.shape)
    assert 0 <= spec.preprocessing.pad_value <= 255 and isinstance(spec.batch_dynamic, bool)
    assert all(math.isfinite(v) for v in (*spec.preprocessing.mean, *spec.preprocessing.std))


@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_every_metadata_key_with_every_hostile_value(task):
    """Exhaustive and cheap: each key path of a genuine metadata.json replaced by each hostile value."""
    metadata = _metadata(task)
    for path in _paths(metadata):
        for value in HOSTILE_VALUES:
            spec = _spec_or_load_error(_replaced(metadata, path, value))
            if spec is not None:
                _bounded(spec)


@FUZZ
@given(data=st.data(), task=st.sampled_from(["detect", "segment", "pose"]))
def test_fuzzed_metadata_values_give_the_runtime_typed_error(data, task):
    metadata = _metadata(task)
    path = data.draw(st.sampled_from(list(_paths(metadata))), label="path")
    spec = _spec_or_load_error(_replaced(metadata, path, data.draw(HOSTILE, label="value")))
    if spec is not None:
        _bounded(spec)


@FUZZ
@given(data=st.data(), task=st.sampled_from(["detect", "segment", "pose"]))
def test_fuzzed_metadata_keys_removed_or_added(data, task):
    metadata = _metadata(task)
    path = data.draw(st.sampled_from([p for p in _paths(metadata) if p]), label="path")
    parent = json.loads(json.dumps(metadata))
    target = parent
    for key in path[:-1]:
        target = target[key]
    if isinstance(target, dict):
        del target[path[-1]]
    else:
        target.append(data.draw(HOSTILE, label="extra item"))
    spec = _spec_or_load_error(parent)
    if spec is not None:
        _bounded(spec)


@FUZZ
@given(cut=st.integers(min_value=0), task=st.sampled_from(["detect", "segment", "pose"]))
def test_truncated_metadata_file_is_a_load_error(tmp_path_factory, cut, task):
    text = json.dumps(_metadata(task))
    path = tmp_path_factory.mktemp("meta") / "metadata.json"
    path.write_text(text[: cut % len(text)])
    with pytest.raises(ModelLoadError, match="metadata"):
        load_spec(path)


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '{"task": "detect", "x": 1' + "0" * 5000 + "}", '{"task": NaN}', "\ud800"]
)
def test_hostile_metadata_files(tmp_path, text):
    path = tmp_path / "metadata.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with pytest.raises(ModelLoadError):
        load_spec(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(input_shape=[100_000, 100_000, 3]), "input_shape"),
        (lambda m: m["inputs"][0].update(shape=[1, 3, 100_000, 100_000]), "inputs[0].shape"),
        (lambda m: m.update(num_classes=10**9), "num_classes"),
        (lambda m: m.update(class_names=[1, 2, 3]), "class_names"),
        (lambda m: m.update(class_names="abc"), "class_names"),
        (lambda m: m["inputs"][0].update(shape=[]), "inputs[0].shape"),
        (lambda m: m.update(dynamic={"batch": "yes"}), "dynamic.batch"),
        (lambda m: m["preprocessing"].update(pad_value=10**6), "pad_value"),
        (lambda m: m["preprocessing"].update(mean=["0", "0", "0"]), "mean"),
        (lambda m: m["postprocessing"].update(confidence_threshold=float("nan")), "confidence_threshold"),
        (lambda m: m["output_layout"]["predictions"].update(keypoint_format=""), "keypoint_format"),
    ],
)
def test_hostile_metadata_values_are_named(edit, message):
    metadata = _metadata("pose")
    edit(metadata)
    with pytest.raises(ModelLoadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ModelSpec.from_dict(metadata)


def test_a_genuine_metadata_still_loads(tmp_path):
    for task in ("detect", "segment", "pose"):
        path = Path(tmp_path / f"{task}.json")
        path.write_text(json.dumps(_metadata(task)))
        _bounded(load_spec(path))

"""Bad input: one clear line on stderr, the documented exit code, no traceback, nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLED, ENV, ROOT

CHECKPOINT = BUNDLED["detect"]


def _text_pt(tmp: Path) -> Path:
    path = tmp / "notes.pt"
    path.write_text("this is not a checkpoint\n")
    return path


def _foreign_pt(tmp: Path) -> Path:
    import torch

    path = tmp / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    return path


def _broken_weights(tmp: Path) -> Path:
    """A checkpoint that loads but whose first convolution has the wrong number of input channels: the exporter
    itself fails (the dry run Ultralytics makes), as for a damaged upload."""
    import torch

    raw = torch.load(CHECKPOINT, map_location="cpu", weights_only=False)  # our own bundled file
    conv = raw["model"].model[0].conv
    conv.weight = torch.nn.Parameter(torch.zeros(conv.out_channels, 4, 3, 3, dtype=conv.weight.dtype))
    raw["ema"] = None
    path = tmp / "broken.pt"
    torch.save(raw, path)
    return path


def _malicious(tmp: Path) -> Path:
    from test_safe_load import fx_os_system_global

    return fx_os_system_global(tmp, tmp / "ran")


def _a_file(tmp: Path) -> Path:
    path = tmp / "occupied"
    path.write_text("x")
    return path


# (id, checkpoint maker, format, output-dir maker, export_config, extra env, exit code, message fragment)
CASES = [
    ("missing-checkpoint", lambda t: t / "nope.pt", "onnx", None, {}, {}, 1, "checkpoint not found"),
    ("checkpoint-is-dir", lambda t: t, "onnx", None, {}, {}, 1, "not a file"),
    ("checkpoint-wrong-suffix", lambda t: _a_file(t).rename(t / "m.onnx"), "onnx", None, {}, {}, 1, ".pt file"),
    ("text-file-named-pt", _text_pt, "onnx", None, {}, {}, 1, "not a readable PyTorch file"),
    ("pytorch-not-ultralytics", _foreign_pt, "onnx", None, {}, {}, 1, "not an Ultralytics model"),
    ("invalid-json", None, "onnx", None, "{opset_version: 17", {}, 3, "not valid JSON"),
    ("json-not-object", None, "onnx", None, "[17]", {}, 3, "must be a JSON object"),
    ("unknown-key", None, "onnx", None, {"opset": 17}, {}, 3, "accepted keys: batch, dynamic_axes"),
    ("wrong-type-opset", None, "onnx", None, {"opset_version": "17"}, {}, 3, "must be int"),
    ("wrong-type-bool", None, "onnx", None, {"simplify": 1}, {}, 3, "must be bool"),
    ("opset-too-low", None, "onnx", None, {"opset_version": 12}, {}, 3, "13-18"),
    ("opset-too-high", None, "onnx", None, {"opset_version": 19}, {}, 3, "13-18"),
    ("coreml-bad-target", None, "coreml", None, {"minimum_deployment_target": "iOS12"}, {}, 3, "'iOS13'"),
    ("unknown-format", None, "caffe", None, {}, {}, 3, "expected one of: onnx|tensorrt"),
    ("output-dir-is-file", None, "onnx", _a_file, {}, {}, 3, "not a directory"),
    ("output-dir-under-file", None, "onnx", lambda t: _a_file(t) / "sub", {}, {}, 3, "not a directory"),
    ("imgsz-out-of-range", None, "onnx", None, {"imgsz": 16}, {}, 3, "32-4096"),
    ("imgsz-not-stride-multiple", None, "onnx", None, {"imgsz": 200}, {}, 3, "multiple of the model stride"),
    (
        "bad-validation-threshold",
        None,
        "onnx",
        None,
        {"include_validation": True, "validation": {"iou": 2}},
        {},
        3,
        "unknown validation threshold",
    ),
    ("tensorrt-without-gpu", None, "tensorrt", None, {}, {}, 1, "tensorrt"),
    ("malicious-checkpoint", _malicious, "onnx", None, {}, {}, 1, "refused: it references posix.system"),
    ("exporter-fails", _broken_weights, "onnx", None, {}, {}, 1, "onnx export failed: RuntimeError"),
    (
        "lock-timeout-is-not-a-number",
        None,
        "onnx",
        None,
        {},
        {"EXPORTKIT_LOCK_TIMEOUT": "soon"},
        3,
        "EXPORTKIT_LOCK_TIMEOUT",
    ),
]


def _materialise(tmp: Path, case):
    _, make_ckpt, fmt, make_out, config, env, _, _ = case
    ckpt = make_ckpt(tmp) if make_ckpt else CHECKPOINT
    out = make_out(tmp) if make_out else tmp / "out"
    return ckpt, fmt, out, config, env


def _assert_clean_failure(proc, code: int, fragment: str, out: Path):
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got: {proc.stderr!r}"
    assert lines[0].startswith("exportkit: error:"), lines[0]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    if out.is_dir():
        leftovers = [p.name for p in out.iterdir() if p.name.startswith(("model", "metadata", ".exportkit"))]
        assert not leftovers, leftovers


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_flags(tmp_path, case):
    ckpt, fmt, out, config, env = _materialise(tmp_path, case)
    text = config if isinstance(config, str) else json.dumps(config)
    cmd = [
        sys.executable,
        str(ROOT / "export.py"),
        "--checkpoint_path",
        str(ckpt),
        "--export_format",
        fmt,
        "--output_dir",
        str(out),
        "--export_config",
        text,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**ENV, **env}, cwd=ROOT, timeout=300)
    _assert_clean_failure(proc, case[6], case[7], out)
    assert not (tmp_path / "ran").exists()  # a malicious checkpoint's payload never ran
    assert "\x1b[" not in proc.stderr and "❌" not in proc.stderr  # a pod log reads plain lines


def test_error_line_is_plain_text():
    from exportkit.cli import plain

    coloured = "\x1b[34m\x1b[1mONNX:\x1b[0m ERROR ❌ export failure\n  at line 2"
    assert plain(coloured) == "ONNX: ERROR export failure at line 2"


ENV_CASES = [
    ("env-bad-format", {"EXPORT_FORMAT": "pytorch"}, 3, "unknown export format 'pytorch'"),
    ("env-bad-config", {"EXPORT_CONFIG": "opset_version=17"}, 3, "not valid JSON"),
    ("env-missing-output", {"OUTPUT_DIR": ""}, 3, "--output_dir (or OUTPUT_DIR)"),
    ("env-missing-checkpoint", {"CHECKPOINT_PATH": "/nonexistent/model.pt"}, 1, "checkpoint not found"),
]


@pytest.mark.parametrize("case", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_bad_input_env_vars(tmp_path, case):
    _, override, code, fragment = case
    out = tmp_path / "out"
    env = {
        **ENV,
        "CHECKPOINT_PATH": str(CHECKPOINT),
        "EXPORT_FORMAT": "onnx",
        "OUTPUT_DIR": str(out),
        "EXPORT_CONFIG": "{}",
        **override,
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "export.py")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    _assert_clean_failure(proc, code, fragment, out)


def test_unknown_flag_is_config_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "export.py"), "--checkpoint", "x.pt"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    _assert_clean_failure(proc, 3, "unrecognized arguments", tmp_path)


def test_flags_win_over_env(tmp_path):
    env = {**ENV, "EXPORT_FORMAT": "onnx", "CHECKPOINT_PATH": str(tmp_path / "env.pt"), "OUTPUT_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "export.py"), "--checkpoint_path", str(tmp_path / "flag.pt")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 1 and "flag.pt" in proc.stderr and "env.pt" not in proc.stderr


NO_TORCH = """
import sys
sys.argv = ["export.py"] + sys.argv[1:]
from exportkit.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help
    code = exc.code or 0
heavy = sorted(m for m in ("torch", "ultralytics", "onnx", "openvino") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), "CODE=%d" % code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--checkpoint_path", str(CHECKPOINT), "--export_format", "caffe", "--output_dir", "/tmp/x"],
        [
            "--checkpoint_path",
            str(CHECKPOINT),
            "--export_format",
            "onnx",
            "--output_dir",
            "/tmp/x",
            "--export_config",
            "{bad",
        ],
        [
            "--checkpoint_path",
            str(CHECKPOINT),
            "--export_format",
            "onnx",
            "--output_dir",
            "/tmp/x",
            "--export_config",
            '{"opset_version": 99}',
        ],
        [
            "--checkpoint_path",
            str(CHECKPOINT),
            "--export_format",
            "onnx",
            "--output_dir",
            "/tmp/x",
            "--export_config",
            '{"nope": 1}',
        ],
        ["--export_format", "onnx"],
    ],
    ids=["help", "unknown-format", "bad-json", "out-of-range", "unknown-key", "missing-args"],
)
def test_help_and_config_errors_do_not_import_torch(args):
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=60
    )
    assert "HEAVY= " in proc.stdout, proc.stdout + proc.stderr
    assert "CODE=0" in proc.stdout if args == ["--help"] else "CODE=3" in proc.stdout


def test_missing_checkpoint_fails_fast_without_torch(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TORCH,
            "--checkpoint_path",
            str(tmp_path / "x.pt"),
            "--export_format",
            "onnx",
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=60,
    )
    assert "HEAVY= CODE=1" in proc.stdout, proc.stdout + proc.stderr


def test_export_config_from_file(tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"opset_version": 99}))
    cmd = [
        sys.executable,
        str(ROOT / "export.py"),
        "--checkpoint_path",
        str(CHECKPOINT),
        "--export_format",
        "onnx",
        "--output_dir",
        str(tmp_path / "o"),
        "--export_config",
        str(config),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert proc.returncode == 3 and "'opset_version' must be in 13-18, got 99" in proc.stderr


def _world(tmp: Path) -> Path:
    from exportkit.zoo import build_architecture

    return build_architecture("yolov8s-worldv2")


def _sam(tmp: Path) -> Path:
    path = tmp / "sam2_t.pt"
    path.write_bytes(b"PK\x03\x04 not really a SAM checkpoint")
    return path


CAPABILITY_CASES = [
    ("world-coreml", _world, "coreml", "YOLO-World-v2-s x CoreML is not supported"),
    ("world-tflite", _world, "tflite", "YOLO-World-v2-s x TFLite is not supported"),
    ("sam2-coreml", _sam, "coreml", "SAM2-t x CoreML: the CoreML converter cannot"),
    ("sam2-tflite", _sam, "tflite", "SAM2-t x TFLite: the TFLite converter cannot"),
]


@pytest.mark.parametrize("case", CAPABILITY_CASES, ids=[c[0] for c in CAPABILITY_CASES])
def test_unsupported_capability_cell_exits_3_without_torch(tmp_path, case):
    _, make, fmt, fragment = case
    ckpt = make(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TORCH,
            "--checkpoint_path",
            str(ckpt),
            "--export_format",
            fmt,
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=300,
    )
    assert "HEAVY= CODE=3" in proc.stdout, proc.stdout + proc.stderr
    assert fragment in proc.stderr and proc.stderr.count("\n") == 1

"""Untrusted checkpoints: every malicious fixture is built here, at run time, with a harmless payload (it
touches a file in tmp_path). Each is first shown to be live (plain ``pickle.loads`` runs the payload), then
refused by exportkit before anything from it runs: exit 1, one stderr line naming what was refused, no
torch import, nothing published, payload not run."""

from __future__ import annotations

import functools
import json
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import BUNDLED, ENV, ROOT

from exportkit.errors import CheckpointError
from exportkit.safe_load import CheckpointRefused, scan_archive


# -- building archives the way torch.save lays them out --------------------------------------------------
def torch_members(source: Path) -> tuple[str, dict[str, bytes]]:
    """(archive prefix, {name without prefix: bytes}) of a genuine checkpoint."""
    with zipfile.ZipFile(source) as archive:
        names = archive.namelist()
        prefix = names[0].split("/", 1)[0]
        return prefix, {n.split("/", 1)[1]: archive.read(n) for n in names}


def write_archive(path: Path, entries: list[tuple[str, bytes]], compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def with_pickle(tmp: Path, name: str, pickled: bytes, source: Path = BUNDLED["detect"]) -> Path:
    """A genuine checkpoint's archive with its data.pkl replaced."""
    prefix, members = torch_members(source)
    members["data.pkl"] = pickled
    return write_archive(tmp / name, [(f"{prefix}/{k}", v) for k, v in members.items()])


class Payload:
    """Pickles as ``func(*args)``: the classic pickle exploit, here with a harmless effect."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def marker_cmd(marker: Path) -> str:
    return f"touch {marker}"


def op_str(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


# -- the fixtures (id, builder(tmp, marker) -> path, fragment of the refusal) --------------------------------
def fx_os_system_global(tmp, marker):
    import os

    data = pickle.dumps({"model": Payload(os.system, marker_cmd(marker))}, protocol=2)
    assert b"cposix\nsystem" in data  # GLOBAL, as protocol 2 writes it
    return with_pickle(tmp, "evil.pt", data)


def fx_os_system_stack_global_memo(tmp, marker):
    """Protocol 4: the module and name strings are memoised, popped, and fetched back by BINGET before
    STACK_GLOBAL, so no 'posix system' pair is adjacent in the byte stream."""
    body = (
        b"\x80\x04"
        + op_str("posix")
        + b"\x94"
        + op_str("system")
        + b"\x94"
        + b"00"  # MEMOIZE twice, POP twice
        + b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        + op_str(marker_cmd(marker))
        + b"\x85R"
        + b"."
    )  # TUPLE1, REDUCE, STOP
    return with_pickle(tmp, "stackglobal.pt", body)


def fx_stack_global_computed(tmp, marker):
    """STACK_GLOBAL whose module operand is the result of a call, not a string: nothing static to check."""
    body = (
        b"\x80\x04"
        + op_str("collections")
        + op_str("OrderedDict")
        + b"\x93)R"  # OrderedDict()
        + op_str("system")
        + b"\x93)R."
    )  # STACK_GLOBAL(<that object>, 'system')()
    return with_pickle(tmp, "computed.pt", body)


def fx_builtins_exec(tmp, marker):
    data = pickle.dumps(Payload(exec, f"open({str(marker)!r}, 'w').close()"), protocol=2)
    return with_pickle(tmp, "exec.pt", data)


def fx_builtins_eval(tmp, marker):
    data = pickle.dumps(Payload(eval, f"open({str(marker)!r}, 'w').close()"), protocol=4)
    return with_pickle(tmp, "eval.pt", data)


def fx_importlib(tmp, marker):
    import importlib

    data = pickle.dumps(Payload(importlib.import_module, "this"), protocol=2)  # `this` prints the Zen of Python
    return with_pickle(tmp, "importlib.pt", data)


def fx_inst_opcode(tmp, marker):
    """Protocol 0's INST: builtins.eval called without GLOBAL."""
    body = b"(S'open(%r, \"w\").close()'\nibuiltins\neval\n." % str(marker).encode()
    return with_pickle(tmp, "inst.pt", body)


def fx_module_class_called(tmp, marker):
    """An allowlisted Ultralytics class reached through REDUCE with arguments (DetectionModel(cfg)), which
    torch.save never writes: constructing a model from a config runs its parser, which used to eval strings."""
    from ultralytics.nn.tasks import DetectionModel

    cfg = {
        "nc": 1,
        "activation": f"__import__('pathlib').Path({str(marker)!r}).touch() or nn.SiLU()",
        "backbone": [[-1, 1, "Conv", [16, 3, 2]]],
        "head": [[[0], 1, "Detect", ["nc"]]],
    }
    data = pickle.dumps({"model": Payload(DetectionModel, cfg)}, protocol=2)
    return with_pickle(tmp, "calledclass.pt", data)


def fx_getattr_gadget(tmp, marker):
    """builtins.getattr (which Ultralytics' own restricted mode allows) on an allowlisted class."""
    from ultralytics.nn.modules.conv import Conv

    data = pickle.dumps({"model": Payload(getattr, Conv, "__init__")}, protocol=2)
    return with_pickle(tmp, "getattr.pt", data)


def fx_global_as_value(tmp, marker):
    """An allowed callable stored as a plain value, for whoever reads it later to call."""
    import collections

    return with_pickle(tmp, "value.pt", pickle.dumps({"model": collections.OrderedDict}, protocol=2))


def fx_second_data_pkl(tmp, marker):
    """The first member whose name ends in data.pkl is benign; torch reads the one under the first entry's folder."""
    import os

    prefix, members = torch_members(BUNDLED["detect"])
    evil = pickle.dumps({"model": Payload(os.system, marker_cmd(marker))}, protocol=2)
    entries = [
        (f"{prefix}/.format_version", members[".format_version"]),
        ("decoy/data.pkl", members["data.pkl"]),
        (f"{prefix}/data.pkl", evil),
    ]
    entries += [(f"{prefix}/{k}", v) for k, v in members.items() if k not in ("data.pkl", ".format_version")]
    return write_archive(tmp / "decoy.pt", entries)


def fx_duplicate_member(tmp, marker):
    import os
    import warnings

    prefix, members = torch_members(BUNDLED["detect"])
    evil = pickle.dumps({"model": Payload(os.system, marker_cmd(marker))}, protocol=2)
    entries = [(f"{prefix}/{k}", v) for k, v in members.items()] + [(f"{prefix}/data.pkl", evil)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name, which is the point
        return write_archive(tmp / "duplicate.pt", entries)


@functools.lru_cache(maxsize=1)
def _zip_bomb() -> Path:
    """A genuine checkpoint plus a member that inflates to 2 GiB from about 2 MB (built once per session)."""
    prefix, members = torch_members(BUNDLED["detect"])
    path = Path(tempfile.mkdtemp(prefix="exportkit-bomb-")) / "bomb.pt"
    with zipfile.ZipFile(path, "w", compresslevel=1) as archive:
        for name, data in members.items():
            archive.writestr(f"{prefix}/{name}", data)
        info = zipfile.ZipInfo(f"{prefix}/data/9999")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            chunk = bytes(1 << 24)
            for _ in range(128):
                member.write(chunk)
    return path


def fx_zip_bomb(tmp, marker):
    return Path(shutil.copy(_zip_bomb(), tmp / "bomb.pt"))


FIXTURES = [
    ("os-system-global", fx_os_system_global, "posix.system", True),
    ("os-system-stack-global-memo", fx_os_system_stack_global_memo, "posix.system", True),
    ("stack-global-computed", fx_stack_global_computed, "STACK_GLOBAL on computed operands", False),
    ("builtins-exec", fx_builtins_exec, "builtins.exec", True),
    ("builtins-eval", fx_builtins_eval, "builtins.eval", True),
    ("importlib", fx_importlib, "importlib.import_module", False),
    ("inst-opcode", fx_inst_opcode, "opcode INST", True),
    ("module-class-called", fx_module_class_called, "calls ultralytics.nn.tasks.DetectionModel with arguments", False),
    ("getattr-gadget", fx_getattr_gadget, "builtins.getattr", False),
    ("global-as-value", fx_global_as_value, "uses collections.OrderedDict as a value", False),
    ("second-data-pkl", fx_second_data_pkl, "posix.system", False),
    ("duplicate-member", fx_duplicate_member, "more than once", False),
    ("zip-bomb", fx_zip_bomb, "absurd size", False),
]
IDS = [f[0] for f in FIXTURES]


def _pickle_of(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        first = archive.namelist()[0].split("/", 1)[0]
        return archive.read(f"{first}/data.pkl")


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if f[3]], ids=[f[0] for f in FIXTURES if f[3]])
def test_fixture_is_live(tmp_path, fixture):
    """The payload really runs under a plain unpickler: the refusals below refuse something real."""
    _, build, _, _ = fixture
    marker = tmp_path / "ran"
    path = build(tmp_path, marker)
    try:
        pickle.loads(_pickle_of(path))
    except Exception:
        pass  # the payload's return value does not fit where it lands; it ran already
    assert marker.exists()


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_scan_refuses_before_unpickling(tmp_path, fixture):
    _, build, fragment, _ = fixture
    marker = tmp_path / "ran"
    path = build(tmp_path, marker)
    with pytest.raises(CheckpointRefused) as refused:
        scan_archive(path)
    assert fragment in str(refused.value) and "nothing from it was run" in str(refused.value)
    assert path.name in str(refused.value)
    assert not marker.exists()


NO_TORCH = """
import sys
from exportkit.cli import main
code = main(sys.argv[1:])
print("HEAVY=" + ",".join(m for m in ("torch", "ultralytics") if m in sys.modules), "CODE=%d" % code)
"""


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_export_refuses_malicious_checkpoint(tmp_path, fixture):
    """Through the guide's contract: exit 1, one line naming the file and what was refused, no torch import,
    nothing published, payload not run."""
    _, build, fragment, _ = fixture
    marker = tmp_path / "ran"
    path = build(tmp_path, marker)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TORCH,
            "--checkpoint_path",
            str(path),
            "--export_format",
            "onnx",
            "--output_dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=120,
    )
    lines = proc.stderr.splitlines()
    assert "HEAVY= CODE=1" in proc.stdout, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f"exportkit: error: checkpoint {path.name} refused: "), proc.stderr
    assert fragment in lines[0] and "nothing from it was run" in lines[0]
    assert not marker.exists()
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_full_load_refuses_too(tmp_path, fixture):
    """The load path (validate, report) scans the bytes it loads, whatever the plan saw."""
    from exportkit.checkpoint import load_checkpoint

    _, build, fragment, _ = fixture
    marker = tmp_path / "ran"
    path = build(tmp_path, marker)
    with pytest.raises(CheckpointRefused, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_refusal_message_reads_as_documented(tmp_path):
    path = fx_os_system_global(tmp_path, tmp_path / "ran")
    with pytest.raises(CheckpointRefused) as refused:
        scan_archive(path)
    assert str(refused.value) == (
        "checkpoint evil.pt refused: it references posix.system, which is not an Ultralytics "
        "or torch model class; nothing from it was run"
    )


def test_not_a_zip_is_not_a_refusal(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("plain text")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file") as error:
        scan_archive(path)
    assert not isinstance(error.value, CheckpointRefused)


def test_truncated_pickle_is_refused_as_malformed(tmp_path):
    data = pickle.dumps({"a": [1, 2, 3]}, protocol=2)[:-3]
    with pytest.raises(CheckpointRefused, match="malformed"):
        scan_archive(with_pickle(tmp_path, "cut.pt", data))


def test_lying_size_header_is_not_trusted(tmp_path):
    """A central directory that declares a huge size for a small member: refused by the size check."""
    path = with_pickle(tmp_path, "liar.pt", pickle.dumps({}, protocol=2))
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x01\x02")  # the last central directory entry: patch its uncompressed size
    struct.pack_into("<I", data, end + 24, 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        scan_archive(path)


# -- genuine checkpoints: same model as an unrestricted load ---------------------------------------------------
def _forward(model, imgsz: int = 64):
    import torch

    torch.manual_seed(0)
    x = torch.rand(1, 3, imgsz, imgsz)
    with torch.inference_mode():
        y = model.float().eval()(x)
    return [t for t in (y if isinstance(y, (list, tuple)) else [y]) if isinstance(t, torch.Tensor)]


def _assert_same_as_unrestricted(path: Path):
    import torch

    from exportkit.checkpoint import load_checkpoint

    yolo, info = load_checkpoint(path)
    trusted = torch.load(path, map_location="cpu", weights_only=False)  # only in tests, on files we made
    reference = trusted.get("ema") or trusted["model"]
    assert set(yolo.model.state_dict()) == set(reference.state_dict())
    for key, value in reference.state_dict().items():
        assert torch.equal(yolo.model.state_dict()[key].float(), value.float()), key
    for ours, theirs in zip(_forward(yolo.model), _forward(reference), strict=True):
        assert torch.equal(ours, theirs)
    assert info.names == [str(reference.names[i]) for i in sorted(reference.names)]


@pytest.mark.parametrize("task", sorted(BUNDLED))
def test_bundled_checkpoints_load_identically(task):
    _assert_same_as_unrestricted(BUNDLED[task])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["yolov8n", "yolov8s", "yolov8m", "yolo11n", "yolo11n-seg", "yolo11n-pose", "yolov8s-worldv2"]
)
def test_zoo_checkpoints_load_identically(name):
    from exportkit.zoo import build_architecture

    _assert_same_as_unrestricted(build_architecture(name))


@pytest.fixture(scope="module")
def trainer_checkpoints(tmp_path_factory):
    """A one-epoch Ultralytics training run on generated shapes data: epoch0.pt keeps the optimizer and the
    trainer's args (IterableSimpleNamespace), last.pt went through strip_optimizer."""
    root = tmp_path_factory.mktemp("train")
    script = f"""
import sys
from pathlib import Path
from exportkit.shapes import write_dataset
from ultralytics import YOLO
data = write_dataset(Path({str(root)!r}) / "data", "detect", n_train=8, n_val=4, size=64)
YOLO({str(BUNDLED["detect"])!r}).train(data=str(data), epochs=1, imgsz=64, batch=4, device="cpu", workers=0, plots=False,
    val=False, project={str(root)!r}, name="run", exist_ok=True, save_period=1, verbose=False, amp=False)
"""
    env = {**ENV, "YOLO_CONFIG_DIR": str(root / "cfg"), "ULTRALYTICS_SAFE_LOAD": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    weights = root / "run" / "weights"
    return {"before strip": weights / "epoch0.pt", "after strip": weights / "last.pt"}


@pytest.mark.slow
@pytest.mark.parametrize("which", ["before strip", "after strip"])
def test_trainer_checkpoints_load_identically(trainer_checkpoints, which):
    path = trainer_checkpoints[which]
    scan = scan_archive(path)
    if which == "before strip":
        assert "ultralytics.utils.IterableSimpleNamespace" in scan.globals  # the trainer's own objects are there
    _assert_same_as_unrestricted(path)


@pytest.mark.slow
def test_trainer_checkpoint_exports(trainer_checkpoints, tmp_path):
    from conftest import run_export

    proc = run_export(trainer_checkpoints["before strip"], "onnx", tmp_path / "out", {"imgsz": 64})
    assert proc.returncode == 0, proc.stderr
    from exportkit.checkpoint import load_checkpoint

    names = load_checkpoint(BUNDLED["detect"])[1].names  # fine-tuned from the bundled model: its classes
    assert json.loads((tmp_path / "out" / "metadata.json").read_text())["class_names"] == names


# -- values read from a checkpoint are data ---------------------------------------------------------------------
def _rewritten(tmp: Path, name: str, change) -> Path:
    """A bundled checkpoint, loaded (trusted: it is ours), changed, saved again with torch.save."""
    import torch

    raw = torch.load(BUNDLED["pose"], map_location="cpu", weights_only=False)
    change(raw)
    path = tmp / name
    torch.save(raw, path)
    return path


def _set_names(raw, names):
    raw["model"].names = names
    if raw.get("ema") is not None:
        raw["ema"].names = names


def _set_kpt(raw, shape):
    for key in ("model", "ema"):
        if raw.get(key) is not None:
            raw[key].model[-1].kpt_shape = shape


HOSTILE_VALUES = [
    ("imgsz-huge", lambda r: r.setdefault("train_args", {}).update(imgsz=100000), "train_args.imgsz 100000"),
    ("imgsz-string", lambda r: r.setdefault("train_args", {}).update(imgsz="640; rm -rf /"), "train_args.imgsz"),
    ("names-not-strings", lambda r: _set_names(r, {0: ["a", "list"]}), "is not a short printable string"),
    ("names-too-long", lambda r: _set_names(r, {0: "x" * 10000}), "is not a short printable string"),
    ("names-gap", lambda r: _set_names(r, {0: "a", 7: "b"}), "class ids must be 0..1"),
    ("kpt-shape-misfit", lambda r: _set_kpt(r, [17, 3]), "does not fit the pose head"),
    ("kpt-shape-absurd", lambda r: _set_kpt(r, [10**9, 3]), "kpt_shape"),
]


@pytest.mark.parametrize("case", HOSTILE_VALUES, ids=[c[0] for c in HOSTILE_VALUES])
def test_hostile_values_are_checked_on_load(tmp_path, case):
    from exportkit.checkpoint import load_checkpoint

    name, change, fragment = case
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(_rewritten(tmp_path, f"{name}.pt", change))
    assert fragment in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("case", HOSTILE_VALUES, ids=[c[0] for c in HOSTILE_VALUES])
def test_hostile_values_get_a_clear_error(tmp_path, case):
    name, change, fragment = case
    path = _rewritten(tmp_path, f"{name}.pt", change)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "export.py"),
            "--checkpoint_path",
            str(path),
            "--export_format",
            "torchscript",
            "--output_dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=300,
    )
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert fragment in lines[0] and "Traceback" not in proc.stdout
    assert not (out / "metadata.json").exists()


def test_bad_train_imgsz_does_not_matter_when_imgsz_is_given(tmp_path):
    from exportkit.checkpoint import load_checkpoint

    path = _rewritten(tmp_path, "big.pt", HOSTILE_VALUES[0][1])
    with pytest.raises(CheckpointError, match="imgsz"):
        load_checkpoint(path)
    assert load_checkpoint(path, imgsz=96)[1].imgsz == 96


@pytest.mark.slow
def test_force_weights_only_env_still_exports(tmp_path):
    """The Job spec's TORCH_FORCE_WEIGHTS_ONLY_LOAD=1 makes every torch.load restricted: exports still work."""
    from conftest import run_export

    env = {**ENV, "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1"}
    proc = run_export(BUNDLED["detect"], "torchscript", tmp_path / "out", {"imgsz": 64}, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "metadata.json").exists()


def test_copy_of_genuine_checkpoint_under_any_name_loads(tmp_path):
    """The archive prefix follows the file name torch.save was given; a renamed copy still loads."""
    copy = tmp_path / "renamed.pt"
    shutil.copy(BUNDLED["detect"], copy)
    assert "ultralytics.nn.tasks.DetectionModel" in scan_archive(copy).globals

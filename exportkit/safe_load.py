"""Untrusted checkpoints: walk the pickle's opcodes against an allowlist, then load with ``weights_only``.

A ``.pt`` file is a zip archive holding a pickle, and a pickle is a program: ``torch.load(weights_only=False)``
runs whatever it says. Before anything is unpickled, :func:`scan_archive` reads the member torch would load
(``<archive>/data.pkl``, the prefix taken from the first entry as torch's reader does), refuses duplicate
names and absurd declared sizes, and walks every opcode with :mod:`pickletools`, executing nothing. It
accepts only what ``torch.save`` writes for an Ultralytics model:

- the default-safe rebuild functions and containers (``collections.OrderedDict``, ``builtins.set``,
  ``torch.Size``, ``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter``), called through REDUCE;
- storage types, only inside a persistent id (how tensors point at their data);
- ``ultralytics.utils.IterableSimpleNamespace``, created empty, then its state set;
- ``torch.nn.Module`` subclasses defined in ``torch.nn.modules.*``, ``ultralytics.nn.modules.*`` or
  ``ultralytics.nn.tasks``, created only the way pickle writes a module: ``cls.__new__(cls)`` (NEWOBJ on an
  empty tuple), then BUILD with its state; never called with arguments.

Everything else (``os.system``, ``builtins.eval``, ``importlib``, other torch functions, a global used as a
value, a STACK_GLOBAL whose operands are computed, opcodes ``torch.save`` never writes) is refused with the
name of what was found. Then :func:`load_untrusted` unpickles with ``torch.load(weights_only=True)`` and
exactly the classes the scan found, from the same bytes that were scanned.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from exportkit.errors import CheckpointError

MAX_FILE_BYTES = 8 << 30  # the biggest YOLO checkpoints are a few hundred MB
MAX_PICKLE_BYTES = 256 << 20  # data.pkl holds structure, not weights: ~1 MB for a YOLO model
EXPANSION_SLACK = 1 << 20  # declared sizes may exceed the archive by this much (headers), no more

REBUILD_CALLS = frozenset({
    "collections.OrderedDict",
    "builtins.set",
    "builtins.frozenset",
    "torch.Size",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
})
STORAGE_TYPES = frozenset(
    f"torch.{kind}Storage"
    for kind in ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char", "Byte", "Bool")
)
DTYPE_VALUES = frozenset(f"torch.{t}" for t in ("float32", "float16", "bfloat16", "float64", "int64", "int32",
                                                 "int16", "int8", "uint8", "bool"))
PLAIN_CLASSES = frozenset({"ultralytics.utils.IterableSimpleNamespace"})  # created empty, then state set
MODULE_CLASS_PACKAGES = ("torch.nn.modules.", "ultralytics.nn.modules.")
MODULE_CLASS_MODULES = frozenset({"ultralytics.nn.tasks"})

ALLOWED_OPCODES = frozenset("""
    PROTO FRAME STOP MARK POP POP_MARK DUP
    NONE NEWTRUE NEWFALSE INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT
    STRING BINSTRING SHORT_BINSTRING BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8
    UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8
    EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_LIST LIST APPEND APPENDS EMPTY_DICT DICT SETITEM SETITEMS
    EMPTY_SET ADDITEMS FROZENSET PUT BINPUT LONG_BINPUT MEMOIZE GET BINGET LONG_BINGET
    GLOBAL STACK_GLOBAL REDUCE NEWOBJ BUILD BINPERSID
""".split())


class CheckpointRefused(CheckpointError):
    """The checkpoint holds something torch.save never writes for an Ultralytics model (exit 1)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"checkpoint {Path(path).name} refused: {reason}; nothing from it was run")
        self.reason = reason


@dataclass
class ArchiveScan:
    """What a scan found: the pickle's bytes and the globals it references, all allowed."""

    data: bytes
    pickle: bytes
    globals: set[str] = field(default_factory=set)

    @property
    def module_classes(self) -> list[str]:
        return sorted(g for g in self.globals if is_module_class_name(g) or g in PLAIN_CLASSES)


def is_module_class_name(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if not attr.isidentifier() or attr.startswith("_") or not all(p.isidentifier() for p in module.split(".")):
        return False
    return module.startswith(MODULE_CLASS_PACKAGES) or module in MODULE_CLASS_MODULES


def _classify(name: str) -> str | None:
    """The role an allowed global may play, or None when it is not allowed at all."""
    if name in REBUILD_CALLS:
        return "call"
    if name in STORAGE_TYPES:
        return "storage"
    if name in DTYPE_VALUES:
        return "value"
    if name in PLAIN_CLASSES:
        return "plain"
    if is_module_class_name(name):
        return "module"
    return None


# -- the archive ------------------------------------------------------------------------------------
def read_archive(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CheckpointRefused(path, f"it is {size / 1e9:.1f} GB, over the {MAX_FILE_BYTES >> 30} GiB limit")
    return path.read_bytes()


def pickle_member(path: Path, data: bytes) -> bytes:
    """The bytes of the data.pkl torch would load, after refusing duplicate names and absurd sizes."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch file (not a zip archive: {exc})") from None
    if not entries:
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch file (an empty archive)")
    names = [e.filename for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CheckpointRefused(path, f"its archive holds member {duplicates[0]!r} more than once")
    declared = sum(e.file_size for e in entries)
    if declared > 2 * len(data) + EXPANSION_SLACK:
        biggest = max(entries, key=lambda e: e.file_size)
        raise CheckpointRefused(path, f"member {biggest.filename!r} declares {biggest.file_size} bytes, an absurd size "
                                      f"for a {len(data)}-byte archive")
    prefix = names[0].split("/", 1)[0]  # torch's reader: every record lives under the first entry's folder
    member = f"{prefix}/data.pkl"
    if member not in names:
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch file (no {member} in the archive)")
    info = archive.getinfo(member)
    if info.file_size > MAX_PICKLE_BYTES:
        raise CheckpointRefused(path, f"{member} declares {info.file_size} bytes, over {MAX_PICKLE_BYTES >> 20} MiB")
    try:
        return archive.read(member)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch file ({exc})") from None


# -- the opcode walk ----------------------------------------------------------------------------------
class _Global:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Tuple:
    __slots__ = ("items",)

    def __init__(self, items: list):
        self.items = items


class _Text(str):
    """A string constant, kept so STACK_GLOBAL's operands can be read."""


_MARK = object()
_VALUE = object()  # any other value: a constant, a container, an object


def _holds_global(value) -> _Global | None:
    if isinstance(value, _Global):
        return value
    if isinstance(value, _Tuple):
        return next((g for g in map(_holds_global, value.items) if g is not None), None)
    return None


def _global_name(arg: str, protocol: int) -> str:
    """'module name' as torch's weights_only unpickler resolves it (protocol-2 names mapped to Python 3)."""
    import _compat_pickle

    module, _, name = arg.partition(" ")
    if protocol < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


class _Walk:
    """A symbolic run of the pickle machine: tracks only what matters (globals, tuples, strings, marks)."""

    def __init__(self, path: Path):
        self.path = path
        self.stack: list = []
        self.memo: dict = {}
        self.protocol = 0
        self.globals: set[str] = set()

    def refuse(self, reason: str):
        raise CheckpointRefused(self.path, reason)

    def pop(self):
        if not self.stack or self.stack[-1] is _MARK:
            self.refuse("its pickle is malformed (stack underflow)")
        return self.stack.pop()

    def pop_mark(self) -> list:
        items = []
        while self.stack and self.stack[-1] is not _MARK:
            items.append(self.stack.pop())
        if not self.stack:
            self.refuse("its pickle is malformed (no mark)")
        self.stack.pop()
        return items[::-1]

    def as_data(self, value, where: str):
        found = _holds_global(value)
        if found is not None:
            self.refuse(f"it uses {found.name} as a value in {where}, which torch.save never writes")
        return value

    def push_global(self, name: str):
        if _classify(name) is None:
            self.refuse(f"it references {name}, which is not an Ultralytics or torch model class")
        self.globals.add(name)
        self.stack.append(_Global(name))

    def run(self, data: bytes) -> set[str]:
        try:
            for opcode, arg, _ in pickletools.genops(data):
                self.step(opcode.name, arg)
        except (ValueError, KeyError, IndexError, EOFError) as exc:  # pickletools on bytes it cannot parse
            self.refuse(f"its pickle is malformed ({type(exc).__name__}: {exc})")
        return self.globals

    def step(self, op: str, arg) -> None:  # noqa: C901 (one branch per opcode family, as pickle's own loop)
        if op not in ALLOWED_OPCODES:
            self.refuse(f"its pickle uses opcode {op}, which torch.save never writes")
        handler = _HANDLERS.get(op)
        if handler is not None:
            handler(self, arg)
        elif op in _CONSTANTS:
            self.stack.append(_Text(arg) if op in _TEXT else _VALUE)


def _op_proto(w: _Walk, arg) -> None:
    w.protocol = int(arg)


def _op_stop(w: _Walk, arg) -> None:
    if len(w.stack) != 1:
        w.refuse(f"its pickle is malformed (STOP with a stack of {len(w.stack)})")
    w.as_data(w.stack[0], "the top-level object")


def _op_global(w: _Walk, arg) -> None:
    w.push_global(_global_name(arg, w.protocol))


def _op_stack_global(w: _Walk, arg) -> None:
    name, module = w.pop(), w.pop()
    if not (isinstance(name, _Text) and isinstance(module, _Text)):
        w.refuse("its pickle builds a global name at run time (STACK_GLOBAL on computed operands)")
    w.push_global(f"{module}.{name}")


def _op_reduce(w: _Walk, arg) -> None:
    args, func = w.pop(), w.pop()
    if not isinstance(func, _Global):
        w.refuse("its pickle calls something that is not a named global (REDUCE on a computed callable)")
    role = _classify(func.name)
    if role == "call":
        w.as_data(args, f"the arguments of {func.name}")
    elif role == "plain" and isinstance(args, _Tuple) and not args.items:
        pass
    elif role in ("module", "plain"):
        w.refuse(f"it calls {func.name} with arguments, which torch.save never writes for a model class")
    else:
        w.refuse(f"it calls {func.name}, which is not a tensor rebuild function")
    w.stack.append(_VALUE)


def _op_newobj(w: _Walk, arg) -> None:
    args, cls = w.pop(), w.pop()
    if not isinstance(cls, _Global) or _classify(cls.name) not in ("module", "plain"):
        name = cls.name if isinstance(cls, _Global) else "a computed class"
        w.refuse(f"it creates {name} with NEWOBJ, which torch.save writes only for model classes")
    if not (isinstance(args, _Tuple) and not args.items):
        w.refuse(f"it creates {cls.name} with constructor arguments, which torch.save never writes")
    w.stack.append(_VALUE)


def _op_build(w: _Walk, arg) -> None:
    w.as_data(w.pop(), "an object's state")
    target = w.pop()
    if isinstance(target, (_Global, _Tuple)) or target is _MARK:
        w.refuse("it sets the state of a class or tuple (BUILD), which torch.save never writes")
    w.stack.append(target)


def _op_binpersid(w: _Walk, arg) -> None:
    pid = w.pop()
    items = pid.items if isinstance(pid, _Tuple) else []
    for item in items:
        found = _holds_global(item)
        if found is not None and _classify(found.name) != "storage":
            w.refuse(f"its tensor reference names {found.name}, which is not a storage type")
    w.stack.append(_VALUE)


def _op_tuple_n(n: int):
    def handler(w: _Walk, arg) -> None:
        items = [w.pop() for _ in range(n)][::-1]
        w.stack.append(_Tuple(items))

    return handler


def _op_tuple(w: _Walk, arg) -> None:
    w.stack.append(_Tuple(w.pop_mark()))


def _op_into_container(count):
    """APPEND, SETITEM, ...: values go into the container below them; none may be a global."""

    def handler(w: _Walk, arg) -> None:
        items = w.pop_mark() if count is None else [w.pop() for _ in range(count)]
        for item in items:
            w.as_data(item, "a container")
        if not w.stack or w.stack[-1] is _MARK or isinstance(w.stack[-1], (_Global, _Tuple)):
            w.refuse("its pickle adds items to something that is not a list, dict or set")

    return handler


def _op_new_container(w: _Walk, arg) -> None:
    for item in w.pop_mark():
        w.as_data(item, "a container")
    w.stack.append(_VALUE)


def _op_put(w: _Walk, arg) -> None:
    if not w.stack or w.stack[-1] is _MARK:
        w.refuse("its pickle is malformed (PUT on an empty stack)")
    w.memo[len(w.memo) if arg is None else arg] = w.stack[-1]


def _op_get(w: _Walk, arg) -> None:
    if arg not in w.memo:
        w.refuse(f"its pickle is malformed (GET of unset memo slot {arg})")
    w.stack.append(w.memo[arg])


def _op_dup(w: _Walk, arg) -> None:
    if not w.stack or w.stack[-1] is _MARK:
        w.refuse("its pickle is malformed (DUP on an empty stack)")
    w.stack.append(w.stack[-1])


_HANDLERS = {
    "PROTO": _op_proto, "FRAME": lambda w, a: None, "STOP": _op_stop,
    "MARK": lambda w, a: w.stack.append(_MARK), "POP": lambda w, a: w.pop(), "POP_MARK": lambda w, a: w.pop_mark(),
    "DUP": _op_dup, "GLOBAL": _op_global, "STACK_GLOBAL": _op_stack_global, "REDUCE": _op_reduce,
    "NEWOBJ": _op_newobj, "BUILD": _op_build, "BINPERSID": _op_binpersid,
    "EMPTY_TUPLE": _op_tuple_n(0), "TUPLE1": _op_tuple_n(1), "TUPLE2": _op_tuple_n(2), "TUPLE3": _op_tuple_n(3),
    "TUPLE": _op_tuple, "APPEND": _op_into_container(1), "APPENDS": _op_into_container(None),
    "SETITEM": _op_into_container(2), "SETITEMS": _op_into_container(None), "ADDITEMS": _op_into_container(None),
    "LIST": _op_new_container, "DICT": _op_new_container, "FROZENSET": _op_new_container,
    "EMPTY_LIST": lambda w, a: w.stack.append(_VALUE), "EMPTY_DICT": lambda w, a: w.stack.append(_VALUE),
    "EMPTY_SET": lambda w, a: w.stack.append(_VALUE),
    "PUT": _op_put, "BINPUT": _op_put, "LONG_BINPUT": _op_put, "MEMOIZE": lambda w, a: _op_put(w, None),
    "GET": _op_get, "BINGET": _op_get, "LONG_BINGET": _op_get,
}
_TEXT = frozenset({"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING", "SHORT_BINSTRING"})
_CONSTANTS = ALLOWED_OPCODES - set(_HANDLERS)


_last_scan: list[ArchiveScan] = []  # the plan scans, then the load scans again: the same bytes are walked once


def scan_archive(path: Path) -> ArchiveScan:
    """Read and scan a checkpoint without torch: raise CheckpointRefused / CheckpointError, or return the scan."""
    path = Path(path)
    data = read_archive(path)
    if _last_scan and _last_scan[0].data == data:  # byte for byte what was walked already
        return _last_scan[0]
    pickled = pickle_member(path, data)
    scan = ArchiveScan(data, pickled, _Walk(path).run(pickled))
    _last_scan[:] = [scan]
    return scan


def forget_scans() -> None:
    _last_scan.clear()


# -- the load -----------------------------------------------------------------------------------------
def resolve_classes(path: Path, names: list[str]) -> list[type]:
    """Import each allowed class the scan found; it must be a torch.nn.Module subclass defined where it says."""
    import importlib

    import torch

    classes = []
    for name in names:
        module_name, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            raise CheckpointRefused(path, f"it references {name}, which this Ultralytics version does not have") from None
        is_module = isinstance(obj, type) and issubclass(obj, torch.nn.Module) and obj.__module__ == module_name
        if not (is_module or (name in PLAIN_CLASSES and isinstance(obj, type))):
            raise CheckpointRefused(path, f"it references {name}, which is not an Ultralytics or torch model class")
        classes.append(obj)
    return classes


def torch_record(path: Path, data: bytes) -> bytes:
    """data.pkl as torch's own zip reader returns it."""
    import torch

    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        if not reader.has_record("data.pkl"):
            raise CheckpointError(f"checkpoint {path} is not a readable PyTorch file (torch finds no data.pkl)")
        if reader.get_record_size("data.pkl") > MAX_PICKLE_BYTES:
            raise CheckpointRefused(path, "torch's data.pkl declares an absurd size")
        return bytes(reader.get_record("data.pkl"))
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch file ({' '.join(str(exc).split())[:120]})") from None


def load_untrusted(path: Path):
    """Scan, then ``torch.load(weights_only=True)`` the scanned bytes with exactly the classes found."""
    import torch

    path = Path(path)
    scan = scan_archive(path)
    if torch_record(path, scan.data) != scan.pickle:
        raise CheckpointRefused(path, "torch's zip reader returns a different data.pkl than the one scanned")
    classes = resolve_classes(path, scan.module_classes)
    try:
        with torch.serialization.safe_globals(classes):
            return torch.load(io.BytesIO(scan.data), map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler's own refusals, damaged storages
        detail = " ".join(str(exc).split())[:160]
        raise CheckpointError(f"checkpoint {path} could not be loaded with weights_only=True ({type(exc).__name__}: {detail})") from None

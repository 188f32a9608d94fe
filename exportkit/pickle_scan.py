"""The opcode walk behind exportkit.safe_load: a symbolic run of the pickle machine that executes nothing.

It tracks only what decides safety (which globals are referenced, and how each is used: called by REDUCE,
instantiated by NEWOBJ, stored inside a tensor's persistent id, or, never allowed, kept as a value), and
refuses the first thing ``torch.save`` would not have written for an Ultralytics model.
"""

from __future__ import annotations

import pickletools
from pathlib import Path

from exportkit.errors import CheckpointRefused

REBUILD_CALLS = frozenset(
    {
        "collections.OrderedDict",
        "builtins.set",
        "builtins.frozenset",
        "torch.Size",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
    }
)
STORAGE_TYPES = frozenset(
    f"torch.{kind}Storage"
    for kind in ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char", "Byte", "Bool")
)
DTYPE_VALUES = frozenset(
    f"torch.{t}"
    for t in ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
)
PLAIN_CLASSES = frozenset({"ultralytics.utils.IterableSimpleNamespace"})  # created empty, then state set
MODULE_CLASS_PACKAGES = ("torch.nn.modules.", "ultralytics.nn.modules.")
MODULE_CLASS_MODULES = frozenset({"ultralytics.nn.tasks"})

ALLOWED_OPCODES = frozenset(
    """
    PROTO FRAME STOP MARK POP POP_MARK DUP
    NONE NEWTRUE NEWFALSE INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT
    STRING BINSTRING SHORT_BINSTRING BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8
    UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8
    EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_LIST LIST APPEND APPENDS EMPTY_DICT DICT SETITEM SETITEMS
    EMPTY_SET ADDITEMS FROZENSET PUT BINPUT LONG_BINPUT MEMOIZE GET BINGET LONG_BINGET
    GLOBAL STACK_GLOBAL REDUCE NEWOBJ BUILD BINPERSID
""".split()
)


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
    "PROTO": _op_proto,
    "FRAME": lambda w, a: None,
    "STOP": _op_stop,
    "MARK": lambda w, a: w.stack.append(_MARK),
    "POP": lambda w, a: w.pop(),
    "POP_MARK": lambda w, a: w.pop_mark(),
    "DUP": _op_dup,
    "GLOBAL": _op_global,
    "STACK_GLOBAL": _op_stack_global,
    "REDUCE": _op_reduce,
    "NEWOBJ": _op_newobj,
    "BUILD": _op_build,
    "BINPERSID": _op_binpersid,
    "EMPTY_TUPLE": _op_tuple_n(0),
    "TUPLE1": _op_tuple_n(1),
    "TUPLE2": _op_tuple_n(2),
    "TUPLE3": _op_tuple_n(3),
    "TUPLE": _op_tuple,
    "APPEND": _op_into_container(1),
    "APPENDS": _op_into_container(None),
    "SETITEM": _op_into_container(2),
    "SETITEMS": _op_into_container(None),
    "ADDITEMS": _op_into_container(None),
    "LIST": _op_new_container,
    "DICT": _op_new_container,
    "FROZENSET": _op_new_container,
    "EMPTY_LIST": lambda w, a: w.stack.append(_VALUE),
    "EMPTY_DICT": lambda w, a: w.stack.append(_VALUE),
    "EMPTY_SET": lambda w, a: w.stack.append(_VALUE),
    "PUT": _op_put,
    "BINPUT": _op_put,
    "LONG_BINPUT": _op_put,
    "MEMOIZE": lambda w, a: _op_put(w, None),
    "GET": _op_get,
    "BINGET": _op_get,
    "LONG_BINGET": _op_get,
}
_TEXT = frozenset(
    {"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_CONSTANTS = ALLOWED_OPCODES - set(_HANDLERS)


def walk(path: Path, pickled: bytes) -> set[str]:
    """The globals ``pickled`` references, all allowed; CheckpointRefused at the first thing that is not."""
    return _Walk(path).run(pickled)

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
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from exportkit.errors import CheckpointError, CheckpointRefused
from exportkit.pickle_scan import PLAIN_CLASSES, is_module_class_name, walk

MAX_FILE_BYTES = 8 << 30  # the biggest YOLO checkpoints are a few hundred MB
MAX_PICKLE_BYTES = 256 << 20  # data.pkl holds structure, not weights: ~1 MB for a YOLO model
EXPANSION_SLACK = 1 << 20  # declared sizes may exceed the archive by this much (headers), no more


@dataclass
class ArchiveScan:
    """What a scan found: the pickle's bytes and the globals it references, all allowed."""

    data: bytes
    pickle: bytes
    globals: set[str] = field(default_factory=set)

    @property
    def module_classes(self) -> list[str]:
        return sorted(g for g in self.globals if is_module_class_name(g) or g in PLAIN_CLASSES)


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
        raise CheckpointRefused(
            path,
            f"member {biggest.filename!r} declares {biggest.file_size} bytes, an absurd size "
            f"for a {len(data)}-byte archive",
        )
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


_last_scan: list[ArchiveScan] = []  # the plan scans, then the load scans again: the same bytes are walked once


def scan_archive(path: Path) -> ArchiveScan:
    """Read and scan a checkpoint without torch: raise CheckpointRefused / CheckpointError, or return the scan."""
    path = Path(path)
    data = read_archive(path)
    if _last_scan and _last_scan[0].data == data:  # byte for byte what was walked already
        return _last_scan[0]
    pickled = pickle_member(path, data)
    scan = ArchiveScan(data, pickled, walk(path, pickled))
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
            raise CheckpointRefused(
                path, f"it references {name}, which this Ultralytics version does not have"
            ) from None
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
        raise CheckpointError(
            f"checkpoint {path} is not a readable PyTorch file ({' '.join(str(exc).split())[:120]})"
        ) from None


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
        raise CheckpointError(
            f"checkpoint {path} could not be loaded with weights_only=True ({type(exc).__name__}: {detail})"
        ) from None

"""The Python runtime as exportkit uses it: ``exportkit._runtime`` in an installed wheel, ``runtimes.python`` in a checkout.

The wheel ships the runtime's modules inside exportkit (it installs no top-level ``runtimes`` package); a
checkout imports them from ``runtimes/python`` as the guide does. Both are the same files.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=1)
def runtime_package() -> str:
    """``runtimes.python`` when this exportkit is a checkout's (one copy of the runtime's classes, the one the
    guide's import gives), else the wheel's ``exportkit._runtime``; never a foreign ``runtimes`` package."""
    from pathlib import Path

    own = (Path(str(files("exportkit"))).parent / "runtimes" / "python" / "__init__.py").resolve()
    try:
        spec = importlib.util.find_spec("runtimes.python")
    except ImportError:
        spec = None
    if spec is not None and spec.origin and Path(spec.origin).resolve() == own:
        return "runtimes.python"
    return "exportkit._runtime" if importlib.util.find_spec("exportkit._runtime") is not None else "runtimes.python"


def runtime_module(name: str):
    """``runtime_module("postprocess")``: the runtime's module of that name, wherever this exportkit found it."""
    return importlib.import_module(f"{runtime_package()}.{name}")

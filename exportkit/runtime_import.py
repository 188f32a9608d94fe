"""The Python runtime as exportkit uses it: ``exportkit._runtime`` in an installed wheel, ``runtimes.python`` in a checkout.

The wheel ships the runtime's modules inside exportkit (it installs no top-level ``runtimes`` package); a
checkout imports them from ``runtimes/python`` as the guide does. Both are the same files.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import lru_cache


@lru_cache(maxsize=1)
def runtime_package() -> str:
    return "exportkit._runtime" if importlib.util.find_spec("exportkit._runtime") is not None else "runtimes.python"


def runtime_module(name: str):
    """``runtime_module("postprocess")``: the runtime's module of that name, wherever this exportkit found it."""
    return importlib.import_module(f"{runtime_package()}.{name}")

"""Where a stale cell's export runs. doit (the planner) decides *which* cells run: up-to-date checks, skips and the
lock are the same whatever runs them; an executor decides *where* and *how* the guide's `export.py` contract runs.

An executor is registered by name (``@register_executor``) and picked by the user: `doit export executor=NAME`
or ``EXPORTKIT_EXECUTOR``; its settings come the same way (``address=`` / ``EXPORTKIT_RAY_ADDRESS`` ...).

- ``subprocess``: a fresh `python export.py ...` per cell, exactly the command reproduce.sh shows.
- ``local``: the same command in a fresh fork of a warm worker that imported torch and Ultralytics once.
- ``ray``: one Ray task per cell on a cluster (``address=HOST:PORT``); the driver checks and publishes what comes back.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from exportkit.errors import ConfigError

DEFAULT = "subprocess"
EXECUTOR_MODULES = {
    "subprocess": "exportkit.build.executors.subprocess_executor",
    "local": "exportkit.build.executors.local_executor",
    "ray": "exportkit.build.executors.ray_executor",
}


@dataclass
class ExportOutcome:
    """What an executor reports for one cell; the artifacts are in the cell's folder when ``exit_code`` is 0."""

    exit_code: int
    versions: dict | None = None  # the exporting process's library versions, when that is not this process


@dataclass
class ExecutorSpec:
    """The user's choice, as plain data (it travels in doit's action arguments to worker processes)."""

    name: str = DEFAULT
    settings: dict = field(default_factory=dict)


class Executor:
    name: ClassVar[str]
    # settings the user gives as `doit export NAME=VALUE` or an environment variable: {setting: (doit var, env var)}
    settings_from: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, settings: dict | None = None):
        self.settings = dict(settings or {})

    def export(self, cell, command: list[str], log: Path) -> ExportOutcome:
        """Run ``command`` (the guide's contract for ``cell``) with its output in ``log``; publish into ``cell.out``."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Executor]] = {}
_ACTIVE: dict[tuple, Executor] = {}


def register_executor(cls: type[Executor]) -> type[Executor]:
    _REGISTRY[cls.name] = cls
    return cls


def executor_class(name: str) -> type[Executor]:
    if name not in EXECUTOR_MODULES:
        raise ConfigError(f"unknown executor {name!r}; expected one of: {'|'.join(EXECUTOR_MODULES)}")
    importlib.import_module(EXECUTOR_MODULES[name])
    return _REGISTRY[name]


def spec_from(lookup) -> ExecutorSpec:
    """The user's executor and its settings; ``lookup(doit_var, env_var, default)`` reads doit's vars, then the env."""
    name = lookup("executor", "EXPORTKIT_EXECUTOR", DEFAULT)
    settings = {key: lookup(var, env, "") for key, (var, env) in executor_class(name).settings_from.items()}
    return ExecutorSpec(name, {k: v for k, v in settings.items() if v})


def get_executor(spec: ExecutorSpec | dict | None = None) -> Executor:
    """The executor for ``spec`` (one instance per process and settings: warm workers and cluster connections
    are reused by every cell this process runs)."""
    spec = ExecutorSpec(**spec) if isinstance(spec, dict) else (spec or ExecutorSpec())
    cls = executor_class(spec.name)
    key = (spec.name, tuple(sorted(spec.settings.items())), os.getpid())
    if key not in _ACTIVE:
        _ACTIVE[key] = cls(spec.settings)
    return _ACTIVE[key]

"""Hydra structured configs behind every conf/ group, built from the same facts the CLI checks.

Unknown keys and wrong types fail when Hydra composes (the schemas are registered in its
ConfigStore); ranges and choices are checked right after, by the formats' own ``Option.check``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING

from exportkit.errors import ConfigError
from exportkit.registry import get_format, list_formats


def __getattr__(name: str):
    """ROOT (the project) and CONF_DIR (its conf/, or EXPORTKIT_CONF), looked up when asked: see exportkit/project.py."""
    from exportkit import project

    if name == "ROOT":
        return project.root()
    if name == "CONF_DIR":
        return project.user_conf() or project.package_conf()
    raise AttributeError(f"module 'exportkit.build.config' has no attribute {name!r}")


@dataclass
class ModelConfig:
    name: str = "???"
    checkpoint: str = "???"  # a path relative to the repository root, or zoo:<architecture>
    task: str = "detect"
    imgsz: int | None = None
    capability: str | None = None  # row of the capability matrix (exportkit/capabilities.py)
    family: str = "yolo"  # exportkit.families: names the artifact files a cell writes


@dataclass
class PrecisionConfig:
    name: str = "fp32"


@dataclass
class ValidationConfig:
    enabled: bool = True
    thresholds: dict[str, float] = field(default_factory=dict)
    images: Optional[str] = None  # noqa: UP045 (a folder of images for parity instead of the bundled samples)
    data: Optional[str] = None  # noqa: UP045 (an Ultralytics data YAML: mAP on its val split, INT8 calibration on its train split)


@dataclass
class MatrixBlock:
    models: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    precisions: list[str] = field(default_factory=lambda: ["fp32"])


@dataclass
class MatrixConfig:
    name: str = "???"
    blocks: list[MatrixBlock] = field(default_factory=list)


@dataclass
class ExportkitConfig:
    model: ModelConfig = MISSING
    format: Any = MISSING  # one of the per-format schemas from format_schema()
    precision: PrecisionConfig = MISSING
    validation: ValidationConfig = MISSING
    matrix: MatrixConfig = MISSING
    output_root: str = "exports"


def format_schema(name: str) -> type:
    """A dataclass with the format's own options, their types and defaults (from the registry)."""
    fmt = get_format(name)
    fields = [("name", str, field(default=name))]
    for option in fmt.options:
        kind = Optional[option.type] if option.nullable else option.type  # noqa: UP045 (OmegaConf needs typing.Optional)
        fields.append((option.name, kind, field(default=option.default)))
    return dataclasses.make_dataclass(f"{fmt.title.replace(' ', '')}FormatConfig", fields)


_REGISTERED = False


def register_schemas() -> None:
    """Register every group's schema in Hydra's ConfigStore (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from hydra.core.config_store import ConfigStore

    # Root-level names, outside the option groups: Hydra neither lists them in --help nor accepts them as
    # choices (`format=onnx_schema`); each conf/<group>/*.yaml pulls its schema in with `/exportkit_..._schema@_here_`.
    store = ConfigStore.instance()
    store.store(name="exportkit_schema", node=ExportkitConfig)
    store.store(name="exportkit_model_schema", node=ModelConfig)
    store.store(name="exportkit_precision_schema", node=PrecisionConfig)
    store.store(name="exportkit_validation_schema", node=ValidationConfig)
    store.store(name="exportkit_matrix_schema", node=MatrixConfig)
    for name in list_formats():
        store.store(name=f"exportkit_format_{name}_schema", node=format_schema(name))
    _REGISTERED = True


def check_composed(cfg: Any) -> None:
    """Range and choice checks the types cannot express, naming the key and the file."""
    fmt = get_format(cfg.format.name)
    where = f"conf/format/{cfg.format.name}.yaml"
    unknown = sorted(set(cfg.format) - {"name"} - {o.name for o in fmt.options})
    if unknown:
        raise ConfigError(
            f"{where}: unknown option {unknown[0]!r}; accepted keys: {', '.join(o.name for o in fmt.options)}"
        )
    for option in fmt.options:
        option.check(cfg.format[option.name], where)
    if cfg.precision.name not in ("fp32", "fp16", "int8"):
        raise ConfigError(f"conf/precision/{cfg.precision.name}.yaml: name must be fp32, fp16 or int8")
    if cfg.model.task not in ("detect", "segment", "pose", "classify", "obb"):
        raise ConfigError(f"conf/model/{cfg.model.name}.yaml: task {cfg.model.task!r} is not a YOLO task")
    for key in cfg.validation.thresholds:
        from exportkit.validation import thresholds_for

        thresholds_for(cfg.precision.name, {key: cfg.validation.thresholds[key]})


def compose(overrides: list[str] | None = None, conf_dir: Path | None = None):
    """Compose conf/ with Hydra's compose API (outside a Hydra app) and check it."""
    return compose_many([list(overrides or [])], conf_dir)[0]


def compose_many(override_lists: list[list[str]], conf_dir: Path | None = None) -> list:
    """Several compositions under one Hydra initialisation (cheaper than one each)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from exportkit.project import hydra_setup

    register_schemas()
    primary, search = hydra_setup(conf_dir)
    configs = []
    for overrides in override_lists:
        check_choices(overrides, None if conf_dir is None else [Path(conf_dir)])
    try:
        with initialize_config_dir(config_dir=str(primary), version_base="1.3"):
            for overrides in override_lists:
                configs.append(hydra_compose(config_name="config", overrides=[*search, *overrides]))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(hydra_message(exc)) from None
    for cfg in configs:
        check_composed(cfg)
    return configs


def group_choices(group: str, conf_dirs: list[Path] | None = None) -> list[str]:
    """The options of a config group over the whole search path (the project's conf/ and the package's)."""
    from exportkit import project

    folders = conf_dirs if conf_dirs is not None else project.search_path()
    return sorted({p.stem for folder in folders for p in (Path(folder) / group).glob("*.yaml")})


def check_choices(overrides: list[str], conf_dirs: list[Path] | None = None) -> None:
    """`matrix=relase` or `format=onnx_schema`: one line naming the valid choices, before Hydra composes."""
    from exportkit import project

    folders = conf_dirs if conf_dirs is not None else project.search_path()
    for override in overrides:
        group, sep, values = override.lstrip("+~").partition("=")
        if not sep or not any((Path(folder) / group).is_dir() for folder in folders):
            continue
        choices = group_choices(group, folders)
        for value in values.split(","):
            if value.strip() and value.strip() not in choices:
                raise ConfigError(
                    f"unknown {group} {value.strip()!r} ({group}={values}); choose one of: {', '.join(choices)}"
                )


def hydra_message(exc: BaseException) -> str:
    """Hydra's multi-line errors, folded onto one line (it names the key and the config file)."""
    parts = [str(exc)]
    cause = exc.__cause__
    while cause is not None:
        parts.append(str(cause))
        cause = cause.__cause__
    parts = [p.split("Config search path:")[0] for p in parts]  # Hydra's search path: noise for a user
    return " | ".join(" ".join(p.split()) for p in parts if p.strip())

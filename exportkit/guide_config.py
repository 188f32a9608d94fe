"""The export guide's "Custom Export Configuration" file: one section per format.

    {"onnx": {"opset_version": 17}, "tensorrt": {"fp16": true}, "coreml": {"minimum_deployment_target": "iOS15"}}

When every top-level key of an export_config is a format name, the section of the format being exported
is its config (a missing section means the defaults); ``validation`` may sit beside the sections and
applies to every format. Any other object is an ordinary export_config, as before.
"""

from __future__ import annotations

from exportkit.errors import ConfigError

SHARED_KEYS = frozenset({"validation"})


def is_sectioned(config: dict) -> bool:
    from exportkit.registry import list_formats

    keys = set(config) - SHARED_KEYS
    return bool(keys) and keys <= set(list_formats())


def section_for(config: dict, format_name: str) -> dict:
    """The options for ``format_name`` out of a sectioned file, or ``config`` itself when it is not one."""
    if not is_sectioned(config):
        return config
    section = config.get(format_name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"export_config section {format_name!r} must be a JSON object, got {type(section).__name__}")
    shared = {k: config[k] for k in SHARED_KEYS if k in config}
    return {**shared, **section}

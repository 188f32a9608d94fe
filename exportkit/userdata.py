"""The user's own data, as configuration: ``validation.images`` and ``validation.data`` checked and resolved.

``images``: a folder of images used for parity instead of the bundled samples. ``data``: an Ultralytics
data YAML with YOLO labels; its val split gives box mAP50 and mAP50-95 of the artifact and of the .pt
(written into validation.json, shown by the report), a few of its val images join parity, and INT8
calibration reads its train split unless ``calibration_data`` says otherwise. Without either, a model whose
classes are not the shapes classes is compared on the synthetic sample images, and validation says so.
What validation does with them is ``exportkit.validation.own_data``; this module is config-time (no torch).
"""

from __future__ import annotations

import logging

from exportkit.errors import ConfigError

log = logging.getLogger(__name__)
OWN_KEYS = ("images", "data")


def split_validation(validation: dict | None) -> tuple[dict, dict]:
    """(thresholds, {images, data}) from a validation object; the paths are checked and made absolute."""
    rest = dict(validation or {})
    rest = dict(rest.get("thresholds") or {}, **{k: v for k, v in rest.items() if k != "thresholds"})
    own = {k: rest.pop(k) for k in OWN_KEYS if k in rest}
    for key in ("enabled",):
        rest.pop(key, None)
    return rest, check_own(own)


def check_own(own: dict) -> dict:
    """Config-time checks (no torch): the folder holds images, the YAML is a local Ultralytics data YAML."""
    from exportkit.formats._calibration import _from_yaml, images_in
    from exportkit.project import resolve

    checked = {}
    if own.get("images"):
        folder = resolve(str(own["images"]))
        if not folder.is_dir() or not images_in(folder):
            raise ConfigError(f"validation.images {own['images']!r} is not a folder of images")
        checked["images"] = str(folder)
    if own.get("data"):
        path = resolve(str(own["data"]))
        if not path.is_file():
            raise ConfigError(f"validation.data {own['data']!r} does not exist; give an Ultralytics data YAML")
        data = _from_yaml(path, str(path))
        if not data.eval_images:
            raise ConfigError(f"validation.data {own['data']!r} has no 'val' split to measure mAP on")
        checked["data"] = str(path)
    return checked


def calibration_from_data(options: dict, accepted, validation: dict | None) -> dict:
    """INT8 calibration reads validation.data's train split when calibration_data is not given."""
    data = (validation or {}).get("data")
    if data and "calibration_data" in accepted and options.get("calibration_data") is None:
        from exportkit.project import resolve

        options = {**options, "calibration_data": str(resolve(str(data)))}
    return options

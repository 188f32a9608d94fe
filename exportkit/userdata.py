"""Validation on the user's own data: ``validation.images`` and ``validation.data``.

``images``: a folder of images used for parity instead of the bundled samples. ``data``: an Ultralytics
data YAML with YOLO labels; its val split gives box mAP50 and mAP50-95 of the artifact and of the .pt
(written into validation.json, shown by the report), a few of its val images join parity, and INT8
calibration reads its train split unless ``calibration_data`` says otherwise. Without either, a model whose
classes are not the shapes classes is compared on the synthetic sample images, and validation says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

from exportkit.errors import ConfigError

log = logging.getLogger(__name__)
OWN_KEYS = ("images", "data")
PARITY_IMAGES_FROM_DATA = 8


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


def parity_images(own: dict, metadata: dict) -> list[Path] | None:
    """The images parity runs on: validation.images, else a few val images of validation.data, else None
    (the bundled samples; then a model with other classes than the shapes gets a one-line notice)."""
    from exportkit.formats._calibration import _evenly, _from_yaml, images_in

    if own.get("images"):
        return list(images_in(Path(own["images"])))
    if own.get("data"):
        data = _from_yaml(Path(own["data"]), own["data"])
        return list(_evenly(list(data.eval_images), PARITY_IMAGES_FROM_DATA))
    from exportkit.validation.accuracy import applies_to

    if not applies_to(metadata):
        log.warning("validation: %s's classes are not the shapes classes; parity compares on the synthetic sample images "
                    "bundled with exportkit. Pass real ones with validation.images=FOLDER or validation.data=DATA.yaml",
                    metadata.get("model_name", "the model"))
    return None


def data_accuracy(own: dict, run_exported, run_reference, metadata: dict, ref_meta: dict) -> dict | None:
    """Box mAP50 and mAP50-95 of the artifact and of the .pt on validation.data's val split (None without data)."""
    if not own.get("data"):
        return None
    from exportkit.formats._calibration import _from_yaml
    from exportkit.validation.accuracy import evaluate, labelled

    data = _from_yaml(Path(own["data"]), own["data"])
    split = labelled(data.eval_images)
    m50, m5095 = evaluate(run_exported, metadata, split, both=True, progress="mAP (artifact)")
    p50, p5095 = evaluate(run_reference, ref_meta, split, both=True, progress="mAP (.pt)")
    result = {"data": own["data"], "images": len(split), "map50": m50, "map50_95": m5095, "map50_pt": p50, "map50_95_pt": p5095}
    log.info("accuracy on %s (%d val images): mAP50 %.3f (.pt %.3f), mAP50-95 %.3f (.pt %.3f)",
             own["data"], len(split), m50, p50, m5095, p5095)
    return result


def calibration_from_data(options: dict, accepted, validation: dict | None) -> dict:
    """INT8 calibration reads validation.data's train split when calibration_data is not given."""
    data = (validation or {}).get("data")
    if data and "calibration_data" in accepted and options.get("calibration_data") is None:
        from exportkit.project import resolve

        options = {**options, "calibration_data": str(resolve(str(data)))}
    return options

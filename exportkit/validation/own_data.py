"""Validation on the user's own data (``validation.images``, ``validation.data``), checked at config time by
``exportkit.userdata``: the images parity runs on, and mAP of the artifact and of the .pt on the val split."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)
PARITY_IMAGES_FROM_DATA = 8


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
        log.warning(
            "validation: %s's classes are not the shapes classes; parity compares on the synthetic sample images "
            "bundled with exportkit. Pass real ones with validation.images=FOLDER or validation.data=DATA.yaml",
            metadata.get("model_name", "the model"),
        )
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
    result = {
        "data": own["data"],
        "images": len(split),
        "map50": m50,
        "map50_95": m5095,
        "map50_pt": p50,
        "map50_95_pt": p5095,
    }
    log.info(
        "accuracy on %s (%d val images): mAP50 %.3f (.pt %.3f), mAP50-95 %.3f (.pt %.3f)",
        own["data"],
        len(split),
        m50,
        p50,
        m5095,
        p5095,
    )
    return result

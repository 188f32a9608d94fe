"""The YOLO family: Ultralytics YOLO checkpoints through the code paths exportkit always had."""

from __future__ import annotations

from pathlib import Path

from exportkit.families import ModelFamily, register_family


@register_family
class YoloFamily(ModelFamily):
    name = "yolo"

    @classmethod
    def recognises(cls, peeked: dict) -> bool:
        return True  # the default: a pickled Ultralytics model, or a file the full load will report on

    @classmethod
    def check_thresholds(cls, thresholds: dict) -> None:
        from exportkit.validation import thresholds_for  # numpy, not torch

        thresholds_for("fp32", thresholds)

    def export_into(self, plan, staging: Path):
        from exportkit.pipeline import export_yolo_into

        return export_yolo_into(plan, staging)

    def validate_folder(self, folder: Path, metadata: dict, checkpoint, thresholds, loaded=None):
        from exportkit.validation import validate_yolo_folder

        return validate_yolo_folder(folder, metadata, checkpoint, thresholds, loaded)

"""Validation: an artifact against its PyTorch model, gathered then decided, and the report over many.

Layered above the core: it imports the core (registry, metadata, checkers, the formats' runners), the core
and the format plugins never import it. Its public surface is this module; ``harness`` (the gather-then-decide
loop), ``parity`` (the comparisons), ``accuracy`` (mAP), ``reference`` (the PyTorch side), ``report`` and
``commands`` (the ``validate`` and ``report`` subcommands) are its parts.
"""

from __future__ import annotations

from exportkit.checkers import Check
from exportkit.validation.harness import (
    DEFAULT_THRESHOLDS,
    ParityReport,
    artifact_input_size,
    exported_input,
    sample_images,
    sample_input,
    thresholds_for,
    validate_folder,
    validate_yolo_folder,
)
from exportkit.validation.parity import _gate as gate
from exportkit.validation.parity import box_iou, raw_checks
from exportkit.validation.reference import reference_metadata, reference_runner

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Check",
    "ParityReport",
    "artifact_input_size",
    "box_iou",
    "exported_input",
    "gate",
    "raw_checks",
    "reference_metadata",
    "reference_runner",
    "sample_images",
    "sample_input",
    "thresholds_for",
    "validate_folder",
    "validate_yolo_folder",
]

"""The SAM2 family: a plain SAM2 state dict exported as a promptable image encoder + prompt decoder pair.

Recognised from the checkpoint's keys (``image_encoder.trunk.*`` and ``sam_mask_decoder.*``) without torch;
loaded through exportkit.safe_load; split as every SAM2 deployment splits it (exportkit.families.sam2_graph);
metadata in exportkit.families.sam2_metadata; validation against Ultralytics' SAM2Predictor in
exportkit.families.sam2_validate; the runtime is runtimes/python/sam2.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from exportkit.errors import ConfigError
from exportkit.families import ModelFamily, register_family
from exportkit.families.sam2_load import is_sam2_state_dict, variant_of

FORMATS = ("onnx", "torchscript", "openvino", "tensorrt")  # CoreML and TFLite: refused by the capability matrix


@register_family
class Sam2Family(ModelFamily):
    name = "sam2"

    @classmethod
    def recognises(cls, peeked: dict) -> bool:
        return is_sam2_state_dict(peeked.get("state_dict_keys") or [])

    @classmethod
    def architecture(cls, peeked: dict) -> str | None:
        return variant_of(peeked["state_dict_keys"])

    @classmethod
    def check_options(cls, fmt, options: dict) -> None:
        if fmt.name not in FORMATS:
            raise ConfigError(f"SAM2 exports to {', '.join(FORMATS)}, not {fmt.name}")
        reduced = [k for k in ("half", "int8") if options.get(k)]
        if reduced:
            raise ConfigError(f"SAM2 exports are FP32 only; remove {reduced[0]!r} from export_config")
        if options.get("imgsz") not in (None, 1024):
            raise ConfigError(f"SAM2 takes a 1024x1024 image; imgsz {options['imgsz']} is not supported (omit it)")
        if options.get("vocabulary"):
            raise ConfigError("option 'vocabulary' applies to YOLO-World models only, not SAM2")

    @classmethod
    def check_thresholds(cls, thresholds: dict) -> None:
        from exportkit.families.sam2_validate import thresholds_for

        thresholds_for(thresholds)

    @classmethod
    def artifact_paths(cls, fmt, folder: Path) -> list[Path]:
        from exportkit.families.sam2_export import artifact_files

        return [Path(folder) / name for name in artifact_files(fmt.name)]

    def export_into(self, plan, staging: Path):
        from exportkit.checkpoint import sha256_file
        from exportkit.families.sam2_export import describe_parts, export_parts
        from exportkit.families.sam2_load import load_sam2
        from exportkit.families.sam2_metadata import build_sam2_metadata
        from exportkit.metadata import versions, write_metadata
        from exportkit.pipeline import ExportResult, check_files, clean_staging

        model, variant = load_sam2(plan.checkpoint)
        digest = sha256_file(plan.checkpoint)
        embedded = {"model_family": self.name, "architecture": variant, "imgsz": [1024, 1024]}
        start = time.perf_counter()
        files, seconds = export_parts(model, plan.format.name, staging, embedded, plan.options)
        export_seconds = round(time.perf_counter() - start, 2)
        paths = self.artifact_paths(plan.format, staging)
        check_files(paths, plan.format.name)
        clean_staging(paths, staging)  # OpenVINO and TensorRT leave their ONNX intermediates
        metadata = build_sam2_metadata(
            variant=variant,
            checkpoint=plan.checkpoint.resolve(),
            checkpoint_sha256=digest,
            format_name=plan.format.name,
            options=plan.options,
            describe=describe_parts(),
            folder=staging,
            versions=versions(),
            multimask=False,
        )
        metadata.update(export_seconds=export_seconds, export_seconds_per_part=seconds)
        write_metadata(metadata, staging)
        result = ExportResult(plan, files, metadata, 0.0)
        if plan.include_validation:
            result.validation = self.validate_folder(staging, metadata, plan.checkpoint, plan.validation, loaded=model)
        return result

    def validate_folder(self, folder: Path, metadata: dict, checkpoint, thresholds, loaded=None):
        from exportkit.families.sam2_validate import validate_sam2_folder

        return validate_sam2_folder(folder, metadata, checkpoint, thresholds, loaded)

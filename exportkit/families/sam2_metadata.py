"""metadata.json for a SAM2 export: the guide's keys plus what a runtime needs to prompt the two parts."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from exportkit.checkpoint import sha256_file
from exportkit.families.sam2_export import DYNAMIC_AXES, PARTS, TRT_PROFILES, artifact_files

TASK_TYPE = "promptable_segmentation"
# Ultralytics' SAM preprocessing (Predictor.setup_model / pre_transform): top-left letterbox with 114, then
# (pixel - mean) / std on the 0-255 scale, RGB
PREPROCESSING = {
    "mean": [123.675, 116.28, 103.53],
    "std": [58.395, 57.12, 57.375],
    "color_space": "RGB",
    "resize_mode": "letterbox",
    "normalize": True,
    "layout": "NCHW",
    "pad_value": 114,
    "letterbox_center": False,
    "scale_up": True,
    "interpolation": "linear",
}
MASK_TOKENS = 4  # token 0: the single-mask output; 1-3: the multimask outputs


def prompt_facts() -> dict:
    return {
        "coordinates": "letterboxed input pixels (1024 scale): original x, y times min(1024 / height, 1024 / width), "
        "no offset (top-left letterbox); the decoder adds the half-pixel shift itself",
        "point_labels": {"foreground": 1, "background": 0, "padding": -1, "box_top_left": 2, "box_bottom_right": 3},
        "box": "two points labelled 2 and 3 (x1, y1 then x2, y2), placed before the object's other points",
        "padding_point": "appended inside the decoder (as SAM2Predictor does); pad shorter prompts with label -1",
        "mask_input": {
            "shape": [-1, 1, 256, 256],
            "kind": "low-resolution logits, e.g. a previous prediction's mask",
            "has_mask_input": "1.0 uses mask_input, 0.0 ignores it",
        },
    }


def postprocessing_facts() -> dict:
    return {
        "mask_threshold": 0.0,
        "mask_units": "logits",
        "mask_resolution": [256, 256],
        "mask_tokens": MASK_TOKENS,
        "multimask_tokens": [1, 2, 3],
        "single_mask_token": 0,
        "multimask_default": False,
        "dynamic_multimask_via_stability": {
            "delta": 0.05,
            "threshold": 0.98,
            "rule": "single mask: token 0 unless its stability (area(logit>delta) / "
            "area(logit>-delta)) is below threshold; then the multimask token "
            "with the highest IoU prediction",
        },
        "upscale": "bilinear from the 256x256 logits' letterboxed content span (top-left, content size / 4 pixels) to the "
        "original size, pixel centres aligned (Ultralytics' scale_masks)",
    }


def part_io(describe: dict) -> dict:
    """{part: {file, inputs, outputs}} with each tensor's dynamic axes named."""
    parts = {}
    for part in PARTS:
        tensors = describe[part]
        for group in ("inputs", "outputs"):
            for t in tensors[group]:
                axes = DYNAMIC_AXES.get(t["name"], {}) if part == "decoder" else {}
                t["dynamic_axes"] = {str(k): v for k, v in axes.items()}
        parts[part] = tensors
    return parts


def artifact_entries(folder: Path, format_name: str) -> list[dict]:
    entries = []
    for name in artifact_files(format_name):
        path = Path(folder) / name
        entries.append(
            {"path": name, "sha256": sha256_file(path), "bytes": path.stat().st_size, "part": name.split(".")[0]}
        )
    return entries


def build_sam2_metadata(
    *,
    variant: str,
    checkpoint: Path,
    checkpoint_sha256: str,
    format_name: str,
    options: dict,
    describe: dict,
    folder: Path,
    versions: dict,
    multimask: bool,
) -> dict:
    from exportkit.metadata import SCHEMA_VERSION

    parts = part_io(describe)
    model_name = options.get("model_name") or variant
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "model_family": "sam2",
        "framework": "ultralytics",
        "model_name": model_name,
        "architecture": variant,
        "export_format": format_name,
        "precision": "fp32",
        "task_type": TASK_TYPE,
        "task": "segment",
        "model_variant": "promptable_image",
        "input_shape": [1024, 1024, 3],
        "input_dtype": "float32",
        "output_shape": [t["shape"] for part in PARTS for t in parts[part]["outputs"]],
        "class_names": ["object"],  # the guide's keys; SAM2 is class-agnostic: every mask is one prompted object
        "num_classes": 1,
        "class_agnostic": True,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "export_config": dict(
            sorted({**options, "imgsz": 1024, "model_name": model_name, "multimask": multimask}.items())
        ),
        "preprocessing": dict(PREPROCESSING),
        "postprocessing": {**postprocessing_facts(), "multimask_default": multimask},
        "layout": "NCHW",
        "stride": 16,
        "batch_size": 1,
        "dynamic": {"batch": False, "spatial": False, "num_objects": True, "num_points": True},
        "inputs": parts["encoder"]["inputs"] + parts["decoder"]["inputs"],
        "outputs": parts["encoder"]["outputs"] + parts["decoder"]["outputs"],
        "parts": {
            part: {"file": artifact_files(format_name)[i * (len(artifact_files(format_name)) // 2)], **parts[part]}
            for i, part in enumerate(PARTS)
        },
        "prompt": prompt_facts(),
        "artifacts": artifact_entries(folder, format_name),
        "checkpoint": {"path": str(checkpoint), "name": checkpoint.name, "sha256": checkpoint_sha256},
        "versions": versions,
    }
    if format_name == "tensorrt":
        metadata["tensorrt_profiles"] = {k: list(v) for k, v in TRT_PROFILES.items()}
    return metadata

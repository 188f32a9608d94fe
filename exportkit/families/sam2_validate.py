"""Parity of a SAM2 export against the PyTorch SAM2 through Ultralytics' SAM2Predictor: gather, then decide.

Reference: ``SAM2Predictor`` (its preprocessing, ``get_im_features``, ``_prepare_prompts`` and
``_inference_features``). Exported side: what a deployment runs, runtimes/python/sam2.py driven by metadata.json
(its letterbox, prompt encoding and mask selection) on the format's part runners. Criteria:

    encoder   per feature map: relative max abs diff, cosine
    decoder   per case (point, box, three objects, mask_input): mask IoU at logit 0, sign agreement of the
              logits, max IoU-prediction difference; each case on one sample image
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from exportkit.checkers import Check
from exportkit.errors import ConfigError
from exportkit.validation import gate as _gate
from exportkit.validation import raw_checks

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = {
    "raw_rel_max_diff": 1e-3,
    "raw_cosine": 0.9999,
    "mask_iou": 0.98,
    "sign_agreement": 0.999,
    "iou_prediction_diff": 0.01,
}
SAMPLE = "shapes_3_480x320.jpg"


def thresholds_for(overrides: dict | None) -> dict:
    """SAM2's criteria with ``overrides`` applied; a YOLO criterion (box_iou ...; a build's shared validation
    group sets them) has nothing to gate here and is ignored; any other key is a ConfigError."""
    from exportkit.validation import DEFAULT_THRESHOLDS as YOLO_THRESHOLDS

    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (overrides or {}).items():
        if key not in merged and key not in YOLO_THRESHOLDS["fp32"]:
            raise ConfigError(f"unknown validation threshold {key!r}; SAM2 accepts: {', '.join(sorted(merged))}")
        if key not in merged:
            continue
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"validation threshold {key!r} must be a non-negative number or null, got {value!r}")
        merged[key] = value
    return merged


def reference_predictor(model):
    from ultralytics.models.sam.predict import SAM2Predictor

    predictor = SAM2Predictor(overrides={"imgsz": 1024, "device": "cpu", "verbose": False, "save": False})
    predictor.setup_model(model=model, verbose=False)
    return predictor


def prompt_cases(h: int, w: int) -> dict:
    """Prompts in original pixels: (points, labels, boxes, multimask); the mask_input case reuses the point's."""
    return {
        "point": ([[w * 0.5, h * 0.5]], [1], None, True),
        "box": (None, None, [[w * 0.25, h * 0.25, w * 0.75, h * 0.75]], False),
        "three_objects": ([[w * 0.2, h * 0.3], [w * 0.5, h * 0.5], [w * 0.8, h * 0.7]], [1, 1, 1], None, False),
        "point_and_background": ([[[w * 0.5, h * 0.5], [w * 0.1, h * 0.1]]], [[1, 0]], None, True),
    }


def mask_checks(
    name: str, ref_masks: np.ndarray, ref_iou: np.ndarray, exp_masks: np.ndarray, exp_iou: np.ndarray, limits: dict
) -> list[Check]:
    """Low-resolution logits (N,M,256,256) and IoU predictions (N,M) of one prompt case."""
    if ref_masks.shape != exp_masks.shape:
        return [
            Check(
                name,
                "masks.shape",
                0,
                None,
                False,
                f"exported {list(exp_masks.shape)} != reference {list(ref_masks.shape)}",
            )
        ]
    ref_on, exp_on = ref_masks > 0, exp_masks > 0
    inter = (ref_on & exp_on).reshape(*ref_on.shape[:2], -1).sum(-1)
    union = (ref_on | exp_on).reshape(*ref_on.shape[:2], -1).sum(-1)
    ious = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    agreement = float((ref_on == exp_on).mean())
    return [
        _gate(
            name,
            "mask_iou_min",
            float(ious.min()),
            limits["mask_iou"],
            True,
            f"{ref_on.shape[0]}x{ref_on.shape[1]} masks",
        ),
        _gate(name, "sign_agreement", agreement, limits["sign_agreement"], True),
        _gate(
            name,
            "iou_prediction_diff_max",
            float(np.abs(ref_iou - exp_iou).max()),
            limits["iou_prediction_diff"],
            False,
        ),
        Check(name, "logit_max_abs_diff", float(np.abs(ref_masks - exp_masks).max()), None, None),
    ]


def _reference_decode(predictor, image_hw, points, labels, boxes, multimask, masks=None):
    import torch

    pts, lbl, _ = predictor._prepare_prompts((1024, 1024), image_hw, boxes, points, labels, None)
    with torch.inference_mode():
        low, iou = predictor._inference_features(predictor.features, pts, lbl, masks, multimask)
    n = len(pts)
    return low.reshape(n, -1, 256, 256).float().numpy(), iou.reshape(n, -1).float().numpy()


def run_cases(report, predictor, sam, image: np.ndarray, limits: dict) -> None:
    import torch

    from exportkit.runtime_import import runtime_module

    encode_prompts, select_masks = (
        getattr(runtime_module("sam2_process"), n) for n in ("encode_prompts", "select_masks")
    )

    name = f"image:{SAMPLE}"
    predictor.set_image(image)
    sam.set_image(image)
    ref_feats = [*predictor.features["high_res_feats"], predictor.features["image_embed"]]
    checks = raw_checks(
        f"{name}:encoder", [t.float().numpy() for t in ref_feats], [sam.features[k] for k in sam.features], limits
    )
    _record(report, f"{name}:encoder", checks, "features")
    post, h, w = sam.metadata["postprocessing"], *image.shape[:2]
    for case, (points, labels, boxes, multimask) in prompt_cases(h, w).items():
        ref = _reference_decode(predictor, (h, w), points, labels, boxes, multimask)
        coords, tags = encode_prompts(sam.letterbox, points, labels, boxes)
        exp = select_masks(*sam.decode(coords, tags), multimask, post)
        _record(report, f"{name}:{case}", mask_checks(f"{name}:{case}", *ref, *exp, limits), "masks")
        if case == "point":  # refine with the best mask of the point prompt as mask_input, as SAM's clicks do
            best = ref[0][:, [int(np.argmax(ref[1][0]))]]
            ref_m = _reference_decode(predictor, (h, w), points, labels, None, False, torch.from_numpy(best))
            exp_m = select_masks(*sam.decode(coords, tags, best), False, post)
            _record(report, f"{name}:mask_input", mask_checks(f"{name}:mask_input", *ref_m, *exp_m, limits), "masks")


def _record(report, name: str, checks: list[Check], mode: str) -> None:
    report.checks += checks
    report.inputs[name] = {"mode": mode, "boxes_compared": 0, "passed": all(c.passed is not False for c in checks)}


def format_checks(folder: Path, format_name: str) -> list[Check]:
    """The format's own reader on each part (onnx.checker, OpenVINO read_model, torch.jit.load)."""
    from exportkit.checkers import check_onnx, run_checker

    checks = []
    for part in ("encoder", "decoder"):
        if format_name == "onnx":
            checks.append(check_onnx(Path(folder) / f"{part}.onnx"))
        elif format_name == "openvino":
            import openvino as ov

            xml = Path(folder) / f"{part}.xml"
            checks.append(
                run_checker(
                    "openvino.Core().read_model",
                    xml,
                    lambda x=xml: ov.Core().read_model(str(x), str(x.with_suffix(".bin"))),
                )
            )
        elif format_name == "torchscript":
            import torch

            path = Path(folder) / f"{part}.torchscript"
            checks.append(
                run_checker("torch.jit.load", path, lambda p=path: torch.jit.load(str(p), map_location="cpu"))
            )
    return checks


def validate_sam2_folder(folder: Path, metadata: dict, checkpoint, thresholds, loaded=None):
    import cv2

    from exportkit.families.sam2_load import load_sam2
    from exportkit.project import samples_dir
    from exportkit.runtime_import import runtime_module
    from exportkit.validation import ParityReport

    InferenceError = runtime_module("errors").InferenceError
    SAM2Inference = runtime_module("sam2").SAM2Inference

    folder = Path(folder)
    report = ParityReport(metadata["export_format"], metadata.get("precision", "fp32"))
    report.thresholds = limits = thresholds_for(thresholds)
    report.checks += format_checks(folder, metadata["export_format"])
    if any(c.passed is False for c in report.checks):
        report.skipped = "numeric parity not run: the artifact fails its format's checker"
    else:
        model = loaded if loaded is not None else load_sam2(Path(checkpoint or metadata["checkpoint"]["path"]))[0]
        try:
            run_cases(
                report,
                reference_predictor(model),
                SAM2Inference(folder),
                cv2.imread(str(samples_dir() / SAMPLE)),
                limits,
            )
        except (InferenceError, RuntimeError, ValueError, KeyError) as exc:  # a damaged artifact or metadata
            report.checks.append(
                Check("run", "run", 0, None, False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            )
    (folder / "validation.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    log.info("validation %s: %s", report.format, report.summary())
    return report

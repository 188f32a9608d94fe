"""Write the conformance vectors: the Python runtime's answers on small, seeded inputs.

    python runtimes/conformance/generate.py          # rewrites runtimes/conformance/vectors/*.json
    python runtimes/conformance/generate.py --check  # exit 1 when a committed file differs

Every input (image sizes, raw output tensors, NMS boxes) is made here from a fixed seed; every expected answer
(letterbox geometry, kept indices, final detections) is what ``runtimes/python`` computes from it. The Python,
C++, Kotlin and Swift test suites load the same files, so their decoders agree with one truth. Tolerances are
written into each file and every consumer uses them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `runtimes.python` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runtimes.conformance.decode_cases import DECODE_KINDS, FORMAT, IOU, RUNTIMES, decode_vectors  # noqa: E402
from runtimes.python.postprocess import batched_nms  # noqa: E402
from runtimes.python.preprocess import plan_letterbox  # noqa: E402

__all__ = ["DECODE_KINDS", "RUNTIMES", "main", "render", "vectors"]

VECTORS_DIR = Path(__file__).with_name("vectors")
SEED = 20261202
LETTERBOX_TOLERANCE = {"gain_atol": 1e-6, "point_atol": 1e-3}


# -- letterbox ----------------------------------------------------------------------------------------------
LETTERBOX_CASES = [  # (name, source w, h, target w, h, scale_up, center)
    ("landscape", 320, 240, 192, 192, True, True),
    ("portrait", 256, 384, 192, 192, True, True),
    ("odd_padding_goes_bottom", 200, 101, 192, 192, True, True),
    ("half_rounds_to_even", 384, 5, 192, 192, True, True),
    ("small_scaled_up", 100, 50, 192, 192, True, True),
    ("small_not_scaled_up", 100, 50, 192, 192, False, True),
    ("not_centred", 320, 240, 192, 192, True, False),
    ("non_square_target", 640, 480, 320, 256, True, True),
    ("exact_fit", 192, 192, 192, 192, True, True),
    ("tall_thin", 7, 1000, 192, 192, True, True),
]


def letterbox_vector() -> dict:
    cases = []
    for name, sw, sh, tw, th, scale_up, center in LETTERBOX_CASES:
        plan = plan_letterbox((sh, sw), (th, tw), scale_up, center)
        (gain_x, gain_y), (left, top) = plan.geometry.ratio, plan.geometry.pad
        top_, bottom, left_, right = plan.borders
        point = [tw * 0.37, th * 0.61]  # an input pixel, mapped back as scale_boxes does (float32)
        back = [
            (np.float32(point[0]) - np.float32(left)) / np.float32(gain_x),
            (np.float32(point[1]) - np.float32(top)) / np.float32(gain_y),
        ]
        cases.append(
            {
                "name": name,
                "source_width": sw,
                "source_height": sh,
                "target_width": tw,
                "target_height": th,
                "scale_up": scale_up,
                "center": center,
                "expected": {
                    "resized_width": plan.new_size[0],
                    "resized_height": plan.new_size[1],
                    "pad_top": top_,
                    "pad_bottom": bottom,
                    "pad_left": left_,
                    "pad_right": right,
                    "gain_x": round(gain_x, 9),
                    "gain_y": round(gain_y, 9),
                    "input_point": [round(p, 4) for p in point],
                    "source_point": [round(float(v), 4) for v in back],
                },
            }
        )
    return {
        "format": FORMAT,
        "kind": "letterbox",
        "tolerance": LETTERBOX_TOLERANCE,
        "description": "Ultralytics' LetterBox: resized size, padding split, per-axis gain, a point mapped back "
        "(x - pad_left) / gain_x without clipping",
        "cases": cases,
    }


# -- NMS ----------------------------------------------------------------------------------------------------
def _box(x, y, w, h):
    return [x, y, x + w, y + h]


def nms_vector(rng: np.random.Generator) -> dict:
    overlap = [_box(0, 0, 10, 10), _box(1, 1, 10, 10), _box(0, 0, 10, 10), _box(20, 20, 5, 5)]
    cases = [
        _nms_case("same_class_overlap", overlap, [0.9, 0.8, 0.7, 0.6], [0, 0, 0, 0], 0.45, False),
        _nms_case("class_aware", overlap, [0.9, 0.8, 0.7, 0.6], [0, 0, 1, 1], 0.45, False),
        _nms_case("agnostic", overlap, [0.9, 0.8, 0.7, 0.6], [0, 0, 1, 1], 0.45, True),
        # IoU exactly 0.5 (intersection 50, union 100): only IoU > threshold suppresses
        _nms_case(
            "iou_equal_threshold_kept", [_box(0, 0, 10, 7.5), _box(0, 2.5, 10, 7.5)], [0.9, 0.8], [0, 0], 0.5, False
        ),
        _nms_case(
            "iou_equal_threshold_kept_agnostic",
            [_box(0, 0, 10, 7.5), _box(0, 2.5, 10, 7.5)],
            [0.9, 0.8],
            [0, 0],
            0.5,
            True,
        ),
        # a chain: B overlaps A and C, C does not overlap A; B is suppressed so C stays
        _nms_case(
            "chain",
            [_box(0, 0, 10, 10), _box(5, 0, 10, 10), _box(10, 0, 10, 10)],
            [0.9, 0.8, 0.7],
            [0, 0, 0],
            0.3,
            False,
        ),
        _nms_case(
            "equal_scores_keep_input_order",
            [_box(0, 0, 10, 10), _box(0, 0, 10, 10), _box(30, 0, 10, 10)],
            [0.5, 0.5, 0.5],
            [0, 0, 0],
            0.45,
            False,
        ),
        _nms_case(
            "max_detections",
            [_box(20 * i, 0, 10, 10) for i in range(6)],
            [0.9, 0.3, 0.8, 0.4, 0.7, 0.5],
            [0] * 6,
            0.45,
            False,
            max_det=3,
        ),
        # past 7680 px a fixed offset of 7680 per class would shift the class-1 box onto the class-0 one; the offset
        # grows to 2 * max|coordinate| + 1, so both stay
        _nms_case(
            "large_coordinates_class_aware",
            [_box(7780, 7780, 1000, 1000), _box(100, 100, 1000, 1000)],
            [0.9, 0.8],
            [0, 1],
            0.45,
            False,
        ),
        _nms_case(
            "iou_threshold_zero",
            [_box(0, 0, 10, 10), _box(9, 9, 10, 10), _box(50, 50, 5, 5)],
            [0.9, 0.8, 0.7],
            [0, 0, 0],
            0.0,
            False,
        ),
    ]
    for i, agnostic in enumerate((False, True, False)):
        cases.append(_random_nms_case(rng, f"random_{i}_{'agnostic' if agnostic else 'per_class'}", agnostic))
    return {
        "format": FORMAT,
        "kind": "nms",
        "tolerance": {},
        "description": "greedy NMS, torchvision semantics (suppress when IoU > threshold, float32 IoU, stable by score), "
        "class-aware through a per-class offset max(7680, 2 * max|coordinate| + 1) unless agnostic; "
        "expected_keep: indices into boxes, best score first",
        "cases": cases,
    }


def _nms_case(name, boxes, scores, classes, iou, agnostic, max_det=300) -> dict:
    keep = batched_nms(
        np.asarray(boxes, np.float32),
        np.asarray(scores, np.float32),
        np.asarray(classes, np.int64),
        iou,
        max_det,
        agnostic,
    )
    return {
        "name": name,
        "boxes": [[float(v) for v in b] for b in boxes],
        "scores": list(scores),
        "class_ids": list(classes),
        "iou_threshold": iou,
        "agnostic": agnostic,
        "max_detections": max_det,
        "expected_keep": [int(k) for k in keep],
    }


def _random_nms_case(rng: np.random.Generator, name: str, agnostic: bool) -> dict:
    """Clusters of jittered boxes; no pair's IoU within 0.02 of the threshold, so float order cannot flip a decision."""
    while True:
        centres = rng.uniform(20, 180, (5, 2))
        boxes = []
        for cx, cy in centres:
            for _ in range(4):
                w, h = rng.uniform(15, 40, 2)
                x, y = cx + rng.normal(0, 4) - w / 2, cy + rng.normal(0, 4) - h / 2
                boxes.append([round(float(v), 2) for v in (x, y, x + w, y + h)])
        arr = np.asarray(boxes, np.float32)
        if _min_iou_gap(arr, IOU) > 0.02:
            break
    scores = [round(float(s), 4) for s in rng.uniform(0.05, 0.99, len(boxes))]
    classes = [int(c) for c in rng.integers(0, 3, len(boxes))]
    return _nms_case(name, boxes, scores, classes, IOU, agnostic)


def _min_iou_gap(boxes: np.ndarray, threshold: float) -> float:
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    w = np.maximum(0, np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]))
    h = np.maximum(0, np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]))
    areas = (x2 - x1) * (y2 - y1)
    iou = w * h / (areas[:, None] + areas[None] - w * h)
    off = iou[~np.eye(len(boxes), dtype=bool)]
    return float(np.abs(off - threshold).min())


# -- files --------------------------------------------------------------------------------------------------
def vectors() -> dict[str, dict]:
    """File name -> content, in a fixed order; the same on every run (seeded)."""
    rng = np.random.default_rng(SEED)
    return {"letterbox.json": letterbox_vector(), "nms.json": nms_vector(rng), **decode_vectors(SEED)}


def render(value) -> str:
    """JSON, one key per line down to lists of scalars, which stay on one line (small, diffable files)."""
    return _render(value, 0) + "\n"


def _render(value, level: int) -> str:
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {_render(v, level + 1).lstrip()}" for k, v in value.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        if all(isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v) for v in value):
            return pad + "[" + ", ".join(json.dumps(v) for v in value) + "]"
        return pad + "[\n" + ",\n".join(_render(v, level + 1) for v in value) + "\n" + pad + "]"
    return pad + json.dumps(value)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    VECTORS_DIR.mkdir(exist_ok=True)
    for name, content in vectors().items():
        path, text = VECTORS_DIR / name, render(content)
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(
            f"stale conformance vectors: {', '.join(stale)}; run python runtimes/conformance/generate.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

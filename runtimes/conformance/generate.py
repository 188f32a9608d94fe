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

from runtimes.python.postprocess import batched_nms, decode  # noqa: E402
from runtimes.python.preprocess import plan_letterbox  # noqa: E402

VECTORS_DIR = Path(__file__).with_name("vectors")
FORMAT = 1
SEED = 20261202
CONF, IOU = 0.25, 0.45
# How far a consumer's answer may be from the Python runtime's (float32 arithmetic in a different order).
DECODE_TOLERANCE = {"box_atol": 2e-3, "score_atol": 1e-5, "keypoint_atol": 2e-3, "visibility_atol": 1e-5, "mask_differing_pixels_max": 2}
LETTERBOX_TOLERANCE = {"gain_atol": 1e-6, "point_atol": 1e-3}
DECODE_KINDS = ("detect", "segment", "pose", "nms_applied", "nhwc", "coreml_pipeline")  # one vector file per output layout
RUNTIMES = ("python", "cpp", "kotlin", "swift")
MASK_RUNTIMES = ("python", "cpp", "kotlin")  # the Swift runtime decodes no masks


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
        back = [(np.float32(point[0]) - np.float32(left)) / np.float32(gain_x),
                (np.float32(point[1]) - np.float32(top)) / np.float32(gain_y)]
        cases.append({
            "name": name, "source_width": sw, "source_height": sh, "target_width": tw, "target_height": th,
            "scale_up": scale_up, "center": center,
            "expected": {"resized_width": plan.new_size[0], "resized_height": plan.new_size[1],
                         "pad_top": top_, "pad_bottom": bottom, "pad_left": left_, "pad_right": right,
                         "gain_x": round(gain_x, 9), "gain_y": round(gain_y, 9),
                         "input_point": [round(p, 4) for p in point], "source_point": [round(float(v), 4) for v in back]},
        })
    return {"format": FORMAT, "kind": "letterbox", "tolerance": LETTERBOX_TOLERANCE,
            "description": "Ultralytics' LetterBox: resized size, padding split, per-axis gain, a point mapped back "
                           "(x - pad_left) / gain_x without clipping", "cases": cases}


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
        _nms_case("iou_equal_threshold_kept", [_box(0, 0, 10, 7.5), _box(0, 2.5, 10, 7.5)], [0.9, 0.8], [0, 0], 0.5, False),
        _nms_case("iou_equal_threshold_kept_agnostic", [_box(0, 0, 10, 7.5), _box(0, 2.5, 10, 7.5)], [0.9, 0.8], [0, 0], 0.5, True),
        # a chain: B overlaps A and C, C does not overlap A; B is suppressed so C stays
        _nms_case("chain", [_box(0, 0, 10, 10), _box(5, 0, 10, 10), _box(10, 0, 10, 10)], [0.9, 0.8, 0.7], [0, 0, 0], 0.3, False),
        _nms_case("equal_scores_keep_input_order", [_box(0, 0, 10, 10), _box(0, 0, 10, 10), _box(30, 0, 10, 10)],
                  [0.5, 0.5, 0.5], [0, 0, 0], 0.45, False),
        _nms_case("max_detections", [_box(20 * i, 0, 10, 10) for i in range(6)], [0.9, 0.3, 0.8, 0.4, 0.7, 0.5],
                  [0] * 6, 0.45, False, max_det=3),
        # past 7680 px a fixed offset of 7680 per class would shift the class-1 box onto the class-0 one; the offset
        # grows to 2 * max|coordinate| + 1, so both stay
        _nms_case("large_coordinates_class_aware", [_box(7780, 7780, 1000, 1000), _box(100, 100, 1000, 1000)],
                  [0.9, 0.8], [0, 1], 0.45, False),
        _nms_case("iou_threshold_zero", [_box(0, 0, 10, 10), _box(9, 9, 10, 10), _box(50, 50, 5, 5)], [0.9, 0.8, 0.7], [0, 0, 0], 0.0, False),
    ]
    for i, agnostic in enumerate((False, True, False)):
        cases.append(_random_nms_case(rng, f"random_{i}_{'agnostic' if agnostic else 'per_class'}", agnostic))
    return {"format": FORMAT, "kind": "nms", "tolerance": {},
            "description": "greedy NMS, torchvision semantics (suppress when IoU > threshold, float32 IoU, stable by score), "
                           "class-aware through a per-class offset max(7680, 2 * max|coordinate| + 1) unless agnostic; "
                           "expected_keep: indices into boxes, best score first", "cases": cases}


def _nms_case(name, boxes, scores, classes, iou, agnostic, max_det=300) -> dict:
    keep = batched_nms(np.asarray(boxes, np.float32), np.asarray(scores, np.float32), np.asarray(classes, np.int64),
                       iou, max_det, agnostic)
    return {"name": name, "boxes": [[float(v) for v in b] for b in boxes], "scores": list(scores), "class_ids": list(classes),
            "iou_threshold": iou, "agnostic": agnostic, "max_detections": max_det, "expected_keep": [int(k) for k in keep]}


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


# -- decode -------------------------------------------------------------------------------------------------
INPUT = 32  # model input side: small tensors
STRIDES = (8,)


def _metadata(task: str, names: list[str], outputs: list[dict], layout: dict, *, nhwc=False, extra=None) -> dict:
    """The keys every runtime's metadata reader needs, as exportkit writes them."""
    shape = [1, INPUT, INPUT, 3] if nhwc else [1, 3, INPUT, INPUT]
    meta = {
        "task": task, "export_format": "onnx", "precision": "fp32", "class_names": names, "num_classes": len(names),
        "input_shape": [INPUT, INPUT, 3], "layout": "NHWC" if nhwc else "NCHW",
        "inputs": [{"name": "images", "shape": shape, "dtype": "float32"}], "outputs": outputs,
        "preprocessing": {"mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "color_space": "RGB", "resize_mode": "letterbox",
                          "normalize": True, "layout": "NHWC" if nhwc else "NCHW", "pad_value": 114, "letterbox_center": True,
                          "scale_up": True},
        "postprocessing": {"apply_nms": True, "confidence_threshold": CONF, "iou_threshold": IOU, "coordinate_format": "xyxy",
                           "max_detections": 300, "agnostic_nms": False},
        "dynamic": {"batch": False, "spatial": False},
        "output_layout": layout,
    }
    meta.update(extra or {})
    return meta


def _objects(rng, count_per_object=3):
    """Boxes (cx, cy, w, h in input pixels) of a few objects, each seen by several anchors; one runs off the image."""
    centres = [(9.0, 12.0, 10.0, 8.0), (22.0, 19.0, 12.0, 14.0), (30.5, 6.0, 9.0, 9.0), (14.0, 25.0, 6.0, 5.0)]
    rows = []
    for o, (cx, cy, w, h) in enumerate(centres):
        for j in range(count_per_object):
            jitter = rng.normal(0, 0.3, 4) if j else np.zeros(4)
            rows.append((o, [cx + jitter[0], cy + jitter[1], w + jitter[2], h + jitter[3]], 0.9 - 0.12 * o - 0.08 * j))
    return rows


def _raw_predictions(rng, nc: int, extra_channels: int, anchors: int, classes_of_objects, extra_of_object) -> np.ndarray:
    """(channels, anchors) float32: object anchors first-shuffled among noise anchors whose scores stay below CONF - 0.1."""
    channels = 4 + nc + extra_channels
    pred = np.zeros((channels, anchors), np.float32)
    pred[:4] = np.vstack([rng.uniform(2, 30, anchors), rng.uniform(2, 30, anchors), rng.uniform(2, 12, anchors), rng.uniform(2, 12, anchors)])
    pred[4 : 4 + nc] = rng.uniform(0.0, CONF - 0.1, (nc, anchors))
    for c in range(extra_channels):
        pred[4 + nc + c] = rng.uniform(0.05, 0.95, anchors)
    rows = _objects(rng)
    slots = rng.permutation(anchors)[: len(rows)]
    for slot, (o, box, score) in zip(slots, rows, strict=True):
        pred[:4, slot] = box
        pred[4 + classes_of_objects[o], slot] = score
        pred[4 + nc :, slot] = extra_of_object(o, rng)
    return np.round(pred, 4)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _tensor(array: np.ndarray) -> dict:
    return {"shape": list(array.shape), "values": [round(float(v), 6) for v in array.ravel()]}


def detect_case(rng) -> dict:
    names = ["circle", "square", "triangle"]
    pred = _raw_predictions(rng, 3, 0, 24, [0, 1, 1, 2], lambda o, r: [])
    layout = {"predictions": {"output": "output0", "shape_order": "batch, channels, anchors", "box": [0, 4], "box_format": "cxcywh",
                              "box_units": "input_pixels", "class_scores": [4, 7], "scores_activated": True}}
    meta = _metadata("detect", names, [{"name": "output0", "shape": [1, 7, 24], "dtype": "float32"}], layout)
    return _decode_case("detect", "raw detect: (batch, channels, anchors), cxcywh input pixels, activated scores",
                        meta, {"output0": pred[None]}, (40, 30))


def segment_case(rng) -> dict:
    names = ["circle", "square"]
    coefficients = 4
    protos = np.round(rng.normal(0, 1, (coefficients, 8, 8)), 4).astype(np.float32)

    def coeffs(o, r):  # object 3's mask is empty (zero coefficients): the runtime drops it
        return [0.0] * coefficients if o == 3 else list(r.normal(0, 1.5, coefficients))

    pred = _raw_predictions(rng, 2, coefficients, 20, [0, 1, 0, 1], coeffs)
    layout = {"predictions": {"output": "output0", "shape_order": "batch, channels, anchors", "box": [0, 4], "box_format": "cxcywh",
                              "box_units": "input_pixels", "class_scores": [4, 6], "scores_activated": True,
                              "mask_coefficients": [6, 6 + coefficients]},
              "prototypes": {"output": "output1", "shape_order": "batch, coefficients, height, width"}}
    outputs = [{"name": "output0", "shape": [1, 10, 20], "dtype": "float32"}, {"name": "output1", "shape": [1, 4, 8, 8], "dtype": "float32"}]
    meta = _metadata("segment", names, outputs, layout, extra={"mask_resolution": [8, 8]})
    return _decode_case("segment", "raw segment: mask coefficients and (batch, coefficients, height, width) prototypes; "
                        "a detection whose mask is empty is dropped", meta, {"output0": pred[None], "output1": protos[None]}, (40, 30),
                        runtimes=MASK_RUNTIMES)


def pose_case(rng) -> dict:
    names = ["person"]
    k = 3

    def points(o, r):
        _, (cx, cy, w, h), _ = _objects(np.random.default_rng(0))[o * 3]
        pts = []
        for _ in range(k):
            pts += [cx + r.uniform(-w, w) * 0.6, cy + r.uniform(-h, h) * 0.6, r.uniform(0.05, 0.95)]
        return pts

    pred = _raw_predictions(rng, 1, 3 * k, 20, [0, 0, 0, 0], points)
    layout = {"predictions": {"output": "output0", "shape_order": "batch, anchors, channels", "box": [0, 4], "box_format": "cxcywh",
                              "box_units": "input_pixels", "class_scores": [4, 5], "scores_activated": True,
                              "keypoints": [5, 5 + 3 * k], "keypoint_format": "x, y, visibility", "keypoint_units": "input_pixels"}}
    meta = _metadata("pose", names, [{"name": "output0", "shape": [1, 20, 14], "dtype": "float32"}], layout,
                     extra={"num_keypoints": k, "keypoint_names": ["head", "left", "right"], "skeleton": [[1, 2], [1, 3]]})
    return _decode_case("pose", "raw pose: (batch, anchors, channels), keypoints x, y, visibility in input pixels, clipped",
                        meta, {"output0": pred.T[None].copy()}, (24, 36))


def nms_applied_case(rng) -> dict:
    names = ["circle", "square", "triangle"]
    rows = []
    for o, (_, (cx, cy, w, h), score) in enumerate(_objects(rng, 1)):
        rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, [2, 0, 1, 2][o]])
    rows += [[3.0, 3.0, 9.0, 9.0, 0.2, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]  # below conf, padding
    pred = np.round(np.asarray(rows, np.float32), 4)
    layout = {"predictions": {"output": "output0", "shape_order": "batch, detections, values", "box": [0, 4], "box_format": "xyxy",
                              "box_units": "input_pixels", "class_scores": [4, 5], "scores_kind": "best_class", "class_index": 5,
                              "nms_applied": True}}
    meta = _metadata("detect", names, [{"name": "output0", "shape": [1, len(rows), 6], "dtype": "float32"}], layout)
    meta["postprocessing"].update(apply_nms=False, nms_in_model=True)
    return _decode_case("nms_applied", "NMS already applied in the model (Ultralytics nms=True, CoreML segment/pose): "
                        "(batch, detections, values) rows x1 y1 x2 y2 score class; score filter only", meta, {"output0": pred[None]}, (30, 40))


def nhwc_case(rng) -> dict:
    names = ["circle", "square"]
    coefficients = 4
    protos = np.round(rng.normal(0, 1, (coefficients, 8, 8)), 4).astype(np.float32)
    pred = _raw_predictions(rng, 2, coefficients, 20, [1, 0, 1, 0], lambda o, r: list(r.normal(0, 1.5, coefficients)))
    pred[4:6] = np.round(_logit(pred[4:6]), 4)  # raw logits: the runtime applies the sigmoid
    pred[:4] = np.round(pred[:4] / INPUT, 5)  # normalized boxes
    layout = {"predictions": {"output": "output0", "shape_order": "batch, anchors, channels", "box": [0, 4], "box_format": "cxcywh",
                              "box_units": "normalized", "class_scores": [4, 6], "scores_activated": False,
                              "mask_coefficients": [6, 6 + coefficients]},
              "prototypes": {"output": "output1", "shape_order": "batch, height, width, coefficients"}}
    outputs = [{"name": "output0", "shape": [1, 20, 10], "dtype": "float32"}, {"name": "output1", "shape": [1, 8, 8, 4], "dtype": "float32"}]
    meta = _metadata("segment", names, outputs, layout, nhwc=True, extra={"mask_resolution": [8, 8]})
    meta["export_format"] = "tflite"
    return _decode_case("nhwc", "channels last everywhere (TFLite-like): NHWC input, (batch, anchors, channels) predictions with "
                        "normalized boxes and logit scores, (batch, height, width, coefficients) prototypes",
                        meta, {"output0": pred.T[None].copy(), "output1": protos.transpose(1, 2, 0)[None].copy()}, (36, 24),
                        runtimes=MASK_RUNTIMES)


def coreml_pipeline_case(rng) -> dict:
    names = ["circle", "square", "triangle"]
    padded = 80  # Ultralytics pads the pipeline's class scores to a multiple of 80
    rows = _objects(rng, 1)
    coordinates = np.asarray([np.asarray(box) / INPUT for _, box, _ in rows] + [[0.5, 0.5, 0.2, 0.2]], np.float32)
    confidence = np.zeros((len(coordinates), padded), np.float32)
    for i, (o, _, score) in enumerate(rows):
        confidence[i, [1, 2, 0, 1][o]] = score
        confidence[i, [0, 0, 2, 2][o]] = score / 3  # a weaker second class: the best one wins
    confidence[-1, 0] = 0.2  # below the threshold
    confidence[:, len(names):] = 0.0
    layout = {"predictions": {"output": "coordinates", "shape_order": "detections, values", "box": [0, 4], "box_format": "cxcywh",
                              "box_units": "normalized", "class_scores_output": "confidence", "class_scores": [0, len(names)],
                              "class_scores_padded_to": padded, "nms_applied": True}}
    outputs = [{"name": "confidence", "shape": [-1, padded], "dtype": "float32"}, {"name": "coordinates", "shape": [-1, 4], "dtype": "float32"}]
    meta = _metadata("detect", names, outputs, layout)
    meta.update(export_format="coreml", precision="fp16")
    meta["inputs"][0]["name"] = "image"
    meta["preprocessing"].update(normalize=False)
    meta["postprocessing"].update(apply_nms=False, nms_in_model=True)
    return _decode_case("coreml_pipeline", "the default CoreML export (nms: true, detect): Apple's NMS pipeline, coordinates (detections, 4) "
                        "normalized cx cy w h beside confidence (detections, classes padded to 80); best class, score filter, no NMS",
                        meta, {"confidence": np.round(confidence, 4), "coordinates": np.round(coordinates, 6)}, (40, 30),
                        runtimes=("python", "swift"))


def _decode_case(kind: str, description: str, meta: dict, outputs: dict[str, np.ndarray], image: tuple[int, int],
                 runtimes: tuple[str, ...] = RUNTIMES) -> dict:
    width, height = image
    tensors = {name: _tensor(array) for name, array in outputs.items()}
    written = {name: np.asarray(t["values"], np.float32).reshape(t["shape"]) for name, t in tensors.items()}  # what consumers read
    plan = plan_letterbox((height, width), (INPUT, INPUT))
    (result,) = decode(written, meta, [plan.geometry])
    expected = []
    for i, d in enumerate(result.detections):
        item = {"class_id": d.class_id, "class_name": d.class_name, "score": round(d.confidence, 6),
                "box": [round(v, 4) for v in d.bbox]}
        if d.keypoints is not None:
            item["keypoints"] = [[round(k.x, 4), round(k.y, 4), round(k.visibility, 6)] for k in d.keypoints]
        if d.mask is not None:
            item["mask"] = {"size": [height, width], "area": int(d.mask.sum()), "counts": rle(result.masks[i])}
        expected.append(item)
    return {"format": FORMAT, "kind": "decode", "layout": kind, "description": description, "runtimes": list(runtimes),
            "tolerance": DECODE_TOLERANCE,
            "image": {"width": width, "height": height}, "metadata": meta,
            "outputs": tensors, "expected": expected}


def rle(mask: np.ndarray) -> list[int]:
    """Row-major run lengths, alternating 0-runs and 1-runs, starting with a (possibly empty) 0-run."""
    flat = mask.ravel().astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


# -- files --------------------------------------------------------------------------------------------------
def vectors() -> dict[str, dict]:
    """File name -> content, in a fixed order; the same on every run (seeded)."""
    rng = np.random.default_rng(SEED)
    files = {"letterbox.json": letterbox_vector(), "nms.json": nms_vector(rng)}
    builders = (detect_case, segment_case, pose_case, nms_applied_case, nhwc_case, coreml_pipeline_case)
    for kind, build in zip(DECODE_KINDS, builders, strict=True):
        files[f"decode_{kind}.json"] = build(np.random.default_rng([SEED, DECODE_KINDS.index(kind)]))
    return files


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
        print(f"stale conformance vectors: {', '.join(stale)}; run python runtimes/conformance/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

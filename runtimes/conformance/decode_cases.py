"""The decode vectors: one small seeded case per output layout, answered by the Python runtime's ``decode``.

Raw tensors are written rounded (6 decimals) and decoded as read back, so a consumer parsing the file sees the
exact input the expected detections came from.
"""

from __future__ import annotations

import numpy as np

from runtimes.python.postprocess import decode
from runtimes.python.preprocess import plan_letterbox

FORMAT = 1
CONF, IOU = 0.25, 0.45
# How far a consumer's answer may be from the Python runtime's (float32 arithmetic in a different order).
DECODE_TOLERANCE = {
    "box_atol": 2e-3,
    "score_atol": 1e-5,
    "keypoint_atol": 2e-3,
    "visibility_atol": 1e-5,
    "mask_differing_pixels_max": 2,
}
DECODE_KINDS = (
    "detect",
    "segment",
    "pose",
    "nms_applied",
    "nhwc",
    "coreml_pipeline",
)  # one vector file per output layout
RUNTIMES = ("python", "cpp", "kotlin", "swift")
MASK_RUNTIMES = ("python", "cpp", "kotlin")  # the Swift runtime decodes no masks

INPUT = 32  # model input side: small tensors
STRIDES = (8,)


def _metadata(task: str, names: list[str], outputs: list[dict], layout: dict, *, nhwc=False, extra=None) -> dict:
    """The keys every runtime's metadata reader needs, as exportkit writes them."""
    shape = [1, INPUT, INPUT, 3] if nhwc else [1, 3, INPUT, INPUT]
    meta = {
        "task": task,
        "export_format": "onnx",
        "precision": "fp32",
        "class_names": names,
        "num_classes": len(names),
        "input_shape": [INPUT, INPUT, 3],
        "layout": "NHWC" if nhwc else "NCHW",
        "inputs": [{"name": "images", "shape": shape, "dtype": "float32"}],
        "outputs": outputs,
        "preprocessing": {
            "mean": [0.0, 0.0, 0.0],
            "std": [255.0, 255.0, 255.0],
            "color_space": "RGB",
            "resize_mode": "letterbox",
            "normalize": True,
            "layout": "NHWC" if nhwc else "NCHW",
            "pad_value": 114,
            "letterbox_center": True,
            "scale_up": True,
        },
        "postprocessing": {
            "apply_nms": True,
            "confidence_threshold": CONF,
            "iou_threshold": IOU,
            "coordinate_format": "xyxy",
            "max_detections": 300,
            "agnostic_nms": False,
        },
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


def _raw_predictions(
    rng, nc: int, extra_channels: int, anchors: int, classes_of_objects, extra_of_object
) -> np.ndarray:
    """(channels, anchors) float32: object anchors first-shuffled among noise anchors whose scores stay below CONF - 0.1."""
    channels = 4 + nc + extra_channels
    pred = np.zeros((channels, anchors), np.float32)
    pred[:4] = np.vstack(
        [
            rng.uniform(2, 30, anchors),
            rng.uniform(2, 30, anchors),
            rng.uniform(2, 12, anchors),
            rng.uniform(2, 12, anchors),
        ]
    )
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
    layout = {
        "predictions": {
            "output": "output0",
            "shape_order": "batch, channels, anchors",
            "box": [0, 4],
            "box_format": "cxcywh",
            "box_units": "input_pixels",
            "class_scores": [4, 7],
            "scores_activated": True,
        }
    }
    meta = _metadata("detect", names, [{"name": "output0", "shape": [1, 7, 24], "dtype": "float32"}], layout)
    return _decode_case(
        "detect",
        "raw detect: (batch, channels, anchors), cxcywh input pixels, activated scores",
        meta,
        {"output0": pred[None]},
        (40, 30),
    )


def segment_case(rng) -> dict:
    names = ["circle", "square"]
    coefficients = 4
    protos = np.round(rng.normal(0, 1, (coefficients, 8, 8)), 4).astype(np.float32)

    def coeffs(o, r):  # object 3's mask is empty (zero coefficients): the runtime drops it
        return [0.0] * coefficients if o == 3 else list(r.normal(0, 1.5, coefficients))

    pred = _raw_predictions(rng, 2, coefficients, 20, [0, 1, 0, 1], coeffs)
    layout = {
        "predictions": {
            "output": "output0",
            "shape_order": "batch, channels, anchors",
            "box": [0, 4],
            "box_format": "cxcywh",
            "box_units": "input_pixels",
            "class_scores": [4, 6],
            "scores_activated": True,
            "mask_coefficients": [6, 6 + coefficients],
        },
        "prototypes": {"output": "output1", "shape_order": "batch, coefficients, height, width"},
    }
    outputs = [
        {"name": "output0", "shape": [1, 10, 20], "dtype": "float32"},
        {"name": "output1", "shape": [1, 4, 8, 8], "dtype": "float32"},
    ]
    meta = _metadata("segment", names, outputs, layout, extra={"mask_resolution": [8, 8]})
    return _decode_case(
        "segment",
        "raw segment: mask coefficients and (batch, coefficients, height, width) prototypes; "
        "a detection whose mask is empty is dropped",
        meta,
        {"output0": pred[None], "output1": protos[None]},
        (40, 30),
        runtimes=MASK_RUNTIMES,
    )


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
    layout = {
        "predictions": {
            "output": "output0",
            "shape_order": "batch, anchors, channels",
            "box": [0, 4],
            "box_format": "cxcywh",
            "box_units": "input_pixels",
            "class_scores": [4, 5],
            "scores_activated": True,
            "keypoints": [5, 5 + 3 * k],
            "keypoint_format": "x, y, visibility",
            "keypoint_units": "input_pixels",
        }
    }
    meta = _metadata(
        "pose",
        names,
        [{"name": "output0", "shape": [1, 20, 14], "dtype": "float32"}],
        layout,
        extra={"num_keypoints": k, "keypoint_names": ["head", "left", "right"], "skeleton": [[1, 2], [1, 3]]},
    )
    return _decode_case(
        "pose",
        "raw pose: (batch, anchors, channels), keypoints x, y, visibility in input pixels, clipped",
        meta,
        {"output0": pred.T[None].copy()},
        (24, 36),
    )


def nms_applied_case(rng) -> dict:
    names = ["circle", "square", "triangle"]
    rows = []
    for o, (_, (cx, cy, w, h), score) in enumerate(_objects(rng, 1)):
        rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, [2, 0, 1, 2][o]])
    rows += [
        [3.0, 3.0, 9.0, 9.0, 0.2, 1.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    ]  # below conf, padding
    pred = np.round(np.asarray(rows, np.float32), 4)
    layout = {
        "predictions": {
            "output": "output0",
            "shape_order": "batch, detections, values",
            "box": [0, 4],
            "box_format": "xyxy",
            "box_units": "input_pixels",
            "class_scores": [4, 5],
            "scores_kind": "best_class",
            "class_index": 5,
            "nms_applied": True,
        }
    }
    meta = _metadata("detect", names, [{"name": "output0", "shape": [1, len(rows), 6], "dtype": "float32"}], layout)
    meta["postprocessing"].update(apply_nms=False, nms_in_model=True)
    return _decode_case(
        "nms_applied",
        "NMS already applied in the model (Ultralytics nms=True, CoreML segment/pose): "
        "(batch, detections, values) rows x1 y1 x2 y2 score class; score filter only",
        meta,
        {"output0": pred[None]},
        (30, 40),
    )


def nhwc_case(rng) -> dict:
    names = ["circle", "square"]
    coefficients = 4
    protos = np.round(rng.normal(0, 1, (coefficients, 8, 8)), 4).astype(np.float32)
    pred = _raw_predictions(rng, 2, coefficients, 20, [1, 0, 1, 0], lambda o, r: list(r.normal(0, 1.5, coefficients)))
    pred[4:6] = np.round(_logit(pred[4:6]), 4)  # raw logits: the runtime applies the sigmoid
    pred[:4] = np.round(pred[:4] / INPUT, 5)  # normalized boxes
    layout = {
        "predictions": {
            "output": "output0",
            "shape_order": "batch, anchors, channels",
            "box": [0, 4],
            "box_format": "cxcywh",
            "box_units": "normalized",
            "class_scores": [4, 6],
            "scores_activated": False,
            "mask_coefficients": [6, 6 + coefficients],
        },
        "prototypes": {"output": "output1", "shape_order": "batch, height, width, coefficients"},
    }
    outputs = [
        {"name": "output0", "shape": [1, 20, 10], "dtype": "float32"},
        {"name": "output1", "shape": [1, 8, 8, 4], "dtype": "float32"},
    ]
    meta = _metadata("segment", names, outputs, layout, nhwc=True, extra={"mask_resolution": [8, 8]})
    meta["export_format"] = "tflite"
    return _decode_case(
        "nhwc",
        "channels last everywhere (TFLite-like): NHWC input, (batch, anchors, channels) predictions with "
        "normalized boxes and logit scores, (batch, height, width, coefficients) prototypes",
        meta,
        {"output0": pred.T[None].copy(), "output1": protos.transpose(1, 2, 0)[None].copy()},
        (36, 24),
        runtimes=MASK_RUNTIMES,
    )


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
    confidence[:, len(names) :] = 0.0
    layout = {
        "predictions": {
            "output": "coordinates",
            "shape_order": "detections, values",
            "box": [0, 4],
            "box_format": "cxcywh",
            "box_units": "normalized",
            "class_scores_output": "confidence",
            "class_scores": [0, len(names)],
            "class_scores_padded_to": padded,
            "nms_applied": True,
        }
    }
    outputs = [
        {"name": "confidence", "shape": [-1, padded], "dtype": "float32"},
        {"name": "coordinates", "shape": [-1, 4], "dtype": "float32"},
    ]
    meta = _metadata("detect", names, outputs, layout)
    meta.update(export_format="coreml", precision="fp16")
    meta["inputs"][0]["name"] = "image"
    meta["preprocessing"].update(normalize=False)
    meta["postprocessing"].update(apply_nms=False, nms_in_model=True)
    return _decode_case(
        "coreml_pipeline",
        "the default CoreML export (nms: true, detect): Apple's NMS pipeline, coordinates (detections, 4) "
        "normalized cx cy w h beside confidence (detections, classes padded to 80); best class, score filter, no NMS",
        meta,
        {"confidence": np.round(confidence, 4), "coordinates": np.round(coordinates, 6)},
        (40, 30),
        runtimes=("python", "swift"),
    )


def _decode_case(
    kind: str,
    description: str,
    meta: dict,
    outputs: dict[str, np.ndarray],
    image: tuple[int, int],
    runtimes: tuple[str, ...] = RUNTIMES,
) -> dict:
    width, height = image
    tensors = {name: _tensor(array) for name, array in outputs.items()}
    written = {
        name: np.asarray(t["values"], np.float32).reshape(t["shape"]) for name, t in tensors.items()
    }  # what consumers read
    plan = plan_letterbox((height, width), (INPUT, INPUT))
    (result,) = decode(written, meta, [plan.geometry])
    expected = []
    for i, d in enumerate(result.detections):
        item = {
            "class_id": d.class_id,
            "class_name": d.class_name,
            "score": round(d.confidence, 6),
            "box": [round(v, 4) for v in d.bbox],
        }
        if d.keypoints is not None:
            item["keypoints"] = [[round(k.x, 4), round(k.y, 4), round(k.visibility, 6)] for k in d.keypoints]
        if d.mask is not None:
            item["mask"] = {"size": [height, width], "area": int(d.mask.sum()), "counts": rle(result.masks[i])}
        expected.append(item)
    return {
        "format": FORMAT,
        "kind": "decode",
        "layout": kind,
        "description": description,
        "runtimes": list(runtimes),
        "tolerance": DECODE_TOLERANCE,
        "image": {"width": width, "height": height},
        "metadata": meta,
        "outputs": tensors,
        "expected": expected,
    }


def rle(mask: np.ndarray) -> list[int]:
    """Row-major run lengths, alternating 0-runs and 1-runs, starting with a (possibly empty) 0-run."""
    flat = mask.ravel().astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def decode_vectors(seed: int) -> dict[str, dict]:
    """File name -> content for every layout, each from its own seeded generator."""
    builders = (detect_case, segment_case, pose_case, nms_applied_case, nhwc_case, coreml_pipeline_case)
    return {
        f"decode_{kind}.json": build(np.random.default_rng([seed, i]))
        for i, (kind, build) in enumerate(zip(DECODE_KINDS, builders, strict=True))
    }

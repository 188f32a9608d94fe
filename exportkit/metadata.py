"""Build and write metadata.json: everything a runtime needs, as plain JSON."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

from exportkit import __version__
from exportkit.checkpoint import CheckpointInfo, sha256_file
from exportkit.errors import ExportError
from exportkit.registry import ArtifactIO, ExportFormat, TensorInfo

SCHEMA_PATH = Path(__file__).with_name("schema") / "metadata.schema.json"
SCHEMA_VERSION = 1

COCO_KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
COCO_SKELETON = (
    (16, 14),
    (14, 12),
    (17, 15),
    (15, 13),
    (12, 13),
    (6, 12),
    (7, 13),
    (6, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (2, 3),
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
)
NUM_MASK_COEFFICIENTS = 32
PREPROCESSING = {
    "mean": [0.0, 0.0, 0.0],
    "std": [255.0, 255.0, 255.0],
    "color_space": "RGB",
    "resize_mode": "letterbox",
    "normalize": True,
    "layout": "NCHW",
    "pad_value": 114,
    "letterbox_center": True,
    "scale_up": True,
    "interpolation": "linear",
}
POSTPROCESSING = {
    "apply_nms": True,
    "confidence_threshold": 0.25,
    "iou_threshold": 0.45,
    "coordinate_format": "xyxy",
    "max_detections": 300,
    "agnostic_nms": False,
}


def keypoint_facts(info: CheckpointInfo) -> tuple[list[str], list[list[int]]]:
    """Names and skeleton (1-based pairs) for the checkpoint's keypoints."""
    from exportkit import shapes

    count = info.kpt_shape[0]
    names = info.kpt_names
    if names is None:
        names = list(COCO_KEYPOINTS) if count == len(COCO_KEYPOINTS) else [f"keypoint_{i}" for i in range(count)]
    if tuple(names) == COCO_KEYPOINTS:
        return names, [list(p) for p in COCO_SKELETON]
    if tuple(names) == shapes.KEYPOINT_NAMES:
        return names, [list(p) for p in shapes.SKELETON]
    return names, []


def input_layout(io: ArtifactIO) -> str:
    """NCHW or NHWC, read from the artifact's first input (channels: 1 or 3)."""
    shape = io.inputs[0].shape
    return "NHWC" if len(shape) == 4 and shape[-1] in (1, 3) and shape[1] not in (1, 3) else "NCHW"


LAYOUT_KINDS = ("raw", "nms", "pipeline")
PIPELINE_CLASS_PAD = 80  # Ultralytics pads an NMS pipeline's class scores to a multiple of 80 (an Apple NMS bug)


def output_layout(
    info: CheckpointInfo, io: ArtifactIO, box_units: str = "input_pixels", *, kind: str = "raw", check: bool = True
) -> dict:
    """Where boxes, scores, mask coefficients and keypoints sit in the raw outputs: the one layout builder.

    ``kind``: ``raw`` (batch, channels, anchors: the head as traced), ``nms`` (Ultralytics' in-model NMS:
    batch, detections, x1 y1 x2 y2 score class [extra]) or ``pipeline`` (Apple's NMS pipeline: ``io.outputs``
    are its class scores then its boxes, rows of detections). ``box_units`` is "normalized" where the artifact
    divides box (and keypoint x, y) coordinates by the input width and height, as LiteRT exports do so INT8
    keeps score resolution. ``check``: raise ExportError where the first output's width disagrees with the
    layout (off for the reference, which decodes its own outputs under the artifact's names).
    """
    if kind not in LAYOUT_KINDS:
        raise ValueError(f"output layout kind {kind!r} is not one of {LAYOUT_KINDS}")
    if kind == "pipeline":
        return _pipeline_layout(info, io, box_units)
    nc = len(info.names)
    first = io.outputs[0]
    if kind == "nms":
        predictions: dict = {
            "output": first.name,
            "shape_order": "batch, detections, values",
            "box": [0, 4],
            "box_format": "xyxy",
            "box_units": box_units,
            "class_scores": [4, 5],
            "scores_kind": "best_class",
            "class_index": 5,
            "nms_applied": True,
        }
        start = 6
    else:
        predictions = {
            "output": first.name,
            "shape_order": "batch, channels, anchors",
            "box": [0, 4],
            "box_format": "cxcywh",
            "box_units": box_units,
            "class_scores": [4, 4 + nc],
            "scores_activated": True,
        }
        start = 4 + nc
    layout: dict = {"predictions": predictions}
    width = start
    if info.task == "segment":
        predictions["mask_coefficients"] = [start, start + NUM_MASK_COEFFICIENTS]
        width += NUM_MASK_COEFFICIENTS
        layout["prototypes"] = {"output": io.outputs[1].name, "shape_order": "batch, coefficients, height, width"}
    if info.task == "pose":
        k, dims = info.kpt_shape
        predictions.update(
            keypoints=[start, start + k * dims],
            keypoint_format="x, y, visibility" if dims == 3 else "x, y",
            keypoint_units=box_units,
        )
        width += k * dims
    if check:
        _check_width(first, width, kind, info.task)
    return layout


def _check_width(output: TensorInfo, width: int, kind: str, task: str) -> None:
    found = output.shape[-1] if kind == "nms" else output.shape[1]
    if found in (width, -1):  # -1: not fixed in the graph (an unsimplified dynamic ONNX); checked when run
        return
    if kind == "nms":
        raise ExportError(f"exported NMS output {output.name} has {found} values per detection, expected {width}")
    raise ExportError(f"exported output {output.name} has {found} channels, expected {width} for {task}")


def _pipeline_layout(info: CheckpointInfo, io: ArtifactIO, box_units: str) -> dict:
    scores, boxes = io.outputs[0].name, io.outputs[1].name
    nc = len(info.names)
    return {
        "predictions": {
            "output": boxes,
            "shape_order": "detections, values",
            "box": [0, 4],
            "box_format": "cxcywh",
            "box_units": box_units,
            "class_scores_output": scores,
            "class_scores": [0, nc],
            "class_scores_padded_to": -(-nc // PIPELINE_CLASS_PAD) * PIPELINE_CLASS_PAD,
            "nms_applied": True,
        }
    }


def format_facts(fmt: type[ExportFormat], info: CheckpointInfo, io: ArtifactIO, options: dict, folder: Path) -> dict:
    """What the format knows beyond tensors: its ``ExportFormat.metadata_facts`` hook."""
    return dict(fmt.metadata_facts(info, io, options, Path(folder)))


def task_fields(info: CheckpointInfo, io: ArtifactIO) -> dict:
    fields: dict = {}
    if info.task in ("detect", "segment", "pose"):
        fields["anchor_based"] = False
    if info.task == "segment":
        fields["mask_resolution"] = list(io.outputs[1].shape[2:4])
    if info.task == "pose":
        names, skeleton = keypoint_facts(info)
        fields.update(
            num_keypoints=info.kpt_shape[0], keypoint_dims=info.kpt_shape[1], keypoint_names=names, skeleton=skeleton
        )
    if info.is_world:
        # the vocabulary's text embeddings are baked into the graph: no text input (class_names lists the vocabulary)
        fields.update(
            model_variant="open_vocabulary",
            text_input_enabled=False,
            baked_vocabulary=list(info.names),
            max_text_length=77,
        )
    return fields


def versions() -> dict:
    """The Python version and every export library that is installed (the metadata's record of the toolchain)."""
    from exportkit.versions import installed

    packages = (
        "ultralytics",
        "torch",
        "onnx",
        "onnxruntime",
        "onnxslim",
        "openvino",
        "coremltools",
        "litert-torch",
        "ai-edge-litert",
        "tensorrt",
    )
    found = {"exportkit": __version__, "python": platform.python_version()}
    found.update({name: v for name, v in installed(packages).items() if v is not None})
    return found


def artifact_entries(folder: Path, fmt: type[ExportFormat]) -> list[dict]:
    entries = []
    for path in fmt.artifact_paths(folder):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            entries.append(
                {"path": file.relative_to(folder).as_posix(), "sha256": sha256_file(file), "bytes": file.stat().st_size}
            )
    return entries


def build_metadata(
    info: CheckpointInfo, fmt: type[ExportFormat], options: dict, io: ArtifactIO, folder: Path, imgsz: int
) -> dict:
    first = io.inputs[0]
    batch_dynamic = first.shape[0] == -1
    facts = format_facts(fmt, info, io, options, folder)
    layout = input_layout(io)
    model_name = options.get("model_name") or info.architecture
    metadata = {
        "schema_version": SCHEMA_VERSION,
        "framework": "ultralytics",
        "model_name": model_name,
        "architecture": info.architecture,
        "export_format": fmt.name,
        "precision": fmt.precision_of(options),
        "task_type": info.task_type,
        "task": info.task,
        "input_shape": [imgsz, imgsz, 3],
        "input_dtype": first.dtype,
        "output_shape": [list(o.shape) for o in io.outputs],
        "class_names": info.names,
        "num_classes": len(info.names),
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "export_config": dict(
            sorted({**options, "imgsz": imgsz, "model_name": model_name}.items())
        ),  # effective values
        "preprocessing": {**PREPROCESSING, "layout": layout, **facts.pop("preprocessing", {})},
        "postprocessing": {**POSTPROCESSING, **facts.pop("postprocessing", {})},
        "layout": layout,
        "stride": max(info.strides),
        "strides": info.strides,
        "batch_size": first.shape[0] if not batch_dynamic else options.get("batch", 1),
        "dynamic": {"batch": batch_dynamic, "spatial": any(d == -1 for d in first.shape[2:])},
        "inputs": [t.as_dict() for t in io.inputs],
        "outputs": [t.as_dict() for t in io.outputs],
        "output_layout": facts.pop("output_layout", None) or output_layout(info, io),
        "artifacts": artifact_entries(folder, fmt),
        "checkpoint": {"path": str(info.path), "name": info.path.name, "sha256": info.sha256},
        "versions": versions(),
    }
    metadata.update(task_fields(info, io))
    metadata.update(facts)
    return metadata


def embedded_metadata(info: CheckpointInfo, imgsz: int) -> dict:
    """The plain-JSON subset embedded inside artifacts (no timestamps, so bytes are reproducible)."""
    return {
        "task": info.task,
        "class_names": info.names,
        "imgsz": [imgsz, imgsz],
        "stride": max(info.strides),
        "kpt_shape": info.kpt_shape,
        "exportkit": __version__,
    }


def write_metadata(metadata: dict, folder: Path) -> Path:
    path = Path(folder) / "metadata.json"
    path.write_text(json.dumps(metadata, indent=2) + "\n")
    return path


def read_metadata(folder_or_file: Path) -> dict:
    path = Path(folder_or_file)
    path = path / "metadata.json" if path.is_dir() else path
    return json.loads(path.read_text())


def validate_schema(metadata: dict) -> None:
    """Raise jsonschema.ValidationError if ``metadata`` breaks the committed JSON Schema or its companion checks."""
    import jsonschema

    jsonschema.validate(metadata, json.loads(SCHEMA_PATH.read_text()))
    problems = consistency_problems(metadata)
    if problems:
        raise jsonschema.ValidationError("; ".join(problems))


def consistency_problems(metadata: dict) -> list[str]:
    """What JSON Schema cannot say: num_classes, class_names and the prediction output's width agree."""
    problems = []
    names, count = metadata.get("class_names", []), metadata.get("num_classes")
    if count != len(names):
        problems.append(f"num_classes is {count} but class_names lists {len(names)}")
    pred = metadata.get("output_layout", {}).get("predictions")
    if pred is None:  # a family without a YOLO prediction output (SAM2's masks): nothing more to compare
        return problems
    start, end = pred.get("class_scores", [0, 0])
    if not pred.get("nms_applied") and end - start != len(names):
        problems.append(f"output_layout class_scores span {end - start} channels for {len(names)} class_names")
    shapes = {o["name"]: o["shape"] for o in metadata.get("outputs", [])}
    shape = shapes.get(pred.get("output"))
    ranges = [pred[k] for k in ("box", "class_scores", "mask_coefficients", "keypoints") if k in pred]
    if shape and ranges and pred.get("shape_order") == "batch, channels, anchors":
        width = max(r[1] for r in ranges)
        if len(shape) != 3 or shape[1] not in (width, -1):
            problems.append(f"output {pred['output']} has shape {shape}; its layout needs {width} channels")
    return problems

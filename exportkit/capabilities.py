"""The export guide's capability matrix, as data: model family x format -> status and reason.

`python -m exportkit capabilities` prints it; the README's table is generated from it
(`python -m exportkit capabilities --markdown`); export.py refuses unsupported cells with exit 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from exportkit.registry import FORMAT_MODULES, get_format

FULL, PARTIAL, UNSUPPORTED = "full", "partial", "unsupported"
SYMBOLS = {FULL: "✅", PARTIAL: "⚠️", UNSUPPORTED: "❌"}
FORMAT_ORDER = FORMAT_MODULES  # the guide's order, from the registry


@dataclass(frozen=True)
class Capability:
    status: str
    reason: str = ""


@dataclass(frozen=True)
class ModelFamily:
    key: str
    title: str
    architectures: tuple[str, ...]  # Ultralytics YAML stems that belong to the row
    cells: dict


_ALL_FULL = {fmt: Capability(FULL) for fmt in FORMAT_ORDER}
_WORLD_NO = (
    "YOLO-World-v2's open-vocabulary head (text embeddings contracted with image features) is not supported by "
    "the {fmt} converter; export ONNX, TorchScript or OpenVINO instead"
)
_SAM2_SPLIT = "SAM2-t exports as an image encoder + prompt decoder pair (video memory attention is not exported)"
_SAM2_TRT = (
    "SAM2-t x TensorRT: both parts built from the ONNX pair on an NVIDIA GPU, the decoder with dynamic-shape "
    "profiles for objects N (1-16) and points P (1-16); refused without a GPU"
)
_SAM2_OV = (
    "SAM2-t x OpenVINO: converted from the ONNX pair, FP32 only (no FP16 or INT8 compression); image encoder and "
    "prompt decoder only, no video memory attention"
)
_SAM2_NO = "SAM2-t x {fmt}: the {fmt} converter cannot take SAM2's encoder and prompt decoder (windowed attention, dynamic prompts); export ONNX instead"

FAMILIES = (
    ModelFamily("yolov8n", "YOLOv8n", ("yolov8n",), _ALL_FULL),
    ModelFamily("yolov8s", "YOLOv8s", ("yolov8s",), _ALL_FULL),
    ModelFamily("yolov8m", "YOLOv8m", ("yolov8m",), _ALL_FULL),
    ModelFamily("yolo11n", "YOLO11n", ("yolo11n",), _ALL_FULL),
    ModelFamily("yolo11n-seg", "YOLO11n-seg", ("yolo11n-seg",), _ALL_FULL),
    ModelFamily("yolo11n-pose", "YOLO11n-pose", ("yolo11n-pose",), _ALL_FULL),
    ModelFamily(
        "yolo-world-v2-s",
        "YOLO-World-v2-s",
        ("yolov8s-worldv2",),
        {
            **_ALL_FULL,
            "coreml": Capability(UNSUPPORTED, _WORLD_NO.format(fmt="CoreML")),
            "tflite": Capability(UNSUPPORTED, _WORLD_NO.format(fmt="TFLite")),
        },
    ),
    ModelFamily(
        "sam2-t",
        "SAM2-t",
        ("sam2-t", "sam2_t"),
        {
            "onnx": Capability(FULL, _SAM2_SPLIT),
            "tensorrt": Capability(PARTIAL, _SAM2_TRT),
            "coreml": Capability(UNSUPPORTED, _SAM2_NO.format(fmt="CoreML")),
            "tflite": Capability(UNSUPPORTED, _SAM2_NO.format(fmt="TFLite")),
            "torchscript": Capability(FULL, _SAM2_SPLIT),
            "openvino": Capability(PARTIAL, _SAM2_OV),
        },
    ),
)


def family_for(architecture: str | None) -> ModelFamily | None:
    if architecture and architecture.lower().replace("_", "-").startswith("sam2"):
        architecture = "sam2-t"
    for family in FAMILIES:
        if architecture == family.key or architecture in family.architectures:
            return family
    return None


def capability_reason(architecture: str | None, fmt: str) -> str | None:
    """None when the cell can be exported; otherwise the reason it is refused."""
    family = family_for(architecture)
    if family is None:
        return None  # not in the guide's table: no known restriction
    cell = family.cells[fmt]
    if cell.status == UNSUPPORTED:
        return f"{family.title} x {get_format(fmt).title} is not supported: {cell.reason}"
    return None


def markdown_table() -> str:
    header = "| Model | " + " | ".join(get_format(f).title for f in FORMAT_ORDER) + " |"
    lines = [header, "|" + "---|" * (len(FORMAT_ORDER) + 1)]
    for family in FAMILIES:
        lines.append(f"| {family.title} | " + " | ".join(SYMBOLS[family.cells[f].status] for f in FORMAT_ORDER) + " |")
    notes = sorted({c.reason for fam in FAMILIES for c in fam.cells.values() if c.reason})
    lines += ["", "✅ = Fully supported, ⚠️ = Partially supported, ❌ = Not supported", ""]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    print(markdown_table())
    return 0

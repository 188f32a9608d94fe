"""Export SAM2's image encoder and prompt decoder to each format: two artifacts per format, named by part.

onnx         encoder.onnx, decoder.onnx                 (torch.onnx, dynamo=False, opset 17, onnxslim)
torchscript  encoder.torchscript, decoder.torchscript   (each traced module holds only its own weights)
openvino     encoder.xml/.bin, decoder.xml/.bin         (converted from the ONNX pair, FP32 kept FP32)
tensorrt     encoder.engine, decoder.engine             (from the ONNX pair; dynamic profiles for N and P)
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from exportkit.errors import EnvironmentUnsupported, ExportError

log = logging.getLogger(__name__)

PARTS = ("encoder", "decoder")
SUFFIXES = {
    "onnx": (".onnx",),
    "torchscript": (".torchscript",),
    "openvino": (".xml", ".bin"),
    "tensorrt": (".engine",),
}
OPSET = 17
# TensorRT optimisation profiles for the decoder's dynamic axes: (min, opt, max)
TRT_PROFILES = {"num_objects": (1, 1, 16), "num_points": (1, 2, 16)}
DYNAMIC_AXES = {
    "point_coords": {0: "num_objects", 1: "num_points"},
    "point_labels": {0: "num_objects", 1: "num_points"},
    "mask_input": {0: "num_objects"},
    "has_mask_input": {0: "num_objects"},
    "masks": {0: "num_objects"},
    "iou_predictions": {0: "num_objects"},
}


def artifact_files(format_name: str) -> list[str]:
    return [f"{part}{suffix}" for part in PARTS for suffix in SUFFIXES[format_name]]


def export_parts(
    model, format_name: str, staging: Path, embedded: dict, options: dict | None = None
) -> tuple[list[Path], dict]:
    """Write both parts into ``staging``; return their paths and the seconds each export took. ``options``: the
    ONNX format's ``opset_version`` and ``simplify`` are honoured; N and P are dynamic whatever ``dynamic_axes`` says."""
    options = options or {}
    from exportkit.families.sam2_graph import build_parts

    encoder, decoder = build_parts(model)
    seconds: dict = {}
    if format_name == "torchscript":
        for part, module in zip(PARTS, (encoder, decoder)):
            start = time.perf_counter()
            _torchscript(module, part, staging / f"{part}.torchscript", embedded)
            seconds[part] = round(time.perf_counter() - start, 2)
    else:
        for part, module in zip(PARTS, (encoder, decoder)):
            start = time.perf_counter()
            _onnx(
                module,
                part,
                staging / f"{part}.onnx",
                embedded,
                options.get("opset_version") or OPSET,
                options.get("simplify", True),
            )
            seconds[part] = round(time.perf_counter() - start, 2)
        if format_name == "openvino":
            for part in PARTS:
                start = time.perf_counter()
                _openvino(staging / f"{part}.onnx", staging / f"{part}.xml")
                seconds[part] += round(time.perf_counter() - start, 2)
        elif format_name == "tensorrt":
            for part in PARTS:
                _tensorrt(staging / f"{part}.onnx", staging / f"{part}.engine")
    return [staging / f for f in artifact_files(format_name)], seconds


def _example(part: str):
    from exportkit.families.sam2_graph import example_inputs

    image, decoder_inputs = example_inputs(n=2, p=3)
    return (image,) if part == "encoder" else decoder_inputs


def _names(part: str) -> tuple[list[str], list[str]]:
    from exportkit.families.sam2_graph import DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_OUTPUTS

    return (["image"], list(ENCODER_OUTPUTS)) if part == "encoder" else (list(DECODER_INPUTS), list(DECODER_OUTPUTS))


def _onnx(module, part: str, path: Path, embedded: dict, opset: int = OPSET, simplify: bool = True) -> None:
    import onnx
    import onnxslim
    import torch

    inputs, outputs = _names(part)
    axes = {k: v for k, v in DYNAMIC_AXES.items() if k in inputs + outputs}
    try:
        with torch.no_grad():
            torch.onnx.export(
                module,
                _example(part),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=axes or None,
                do_constant_folding=True,
            )
        graph = onnxslim.slim(onnx.load(str(path))) if simplify else onnx.load(str(path))
    except Exception as exc:
        raise ExportError(
            f"ONNX export of the SAM2 {part} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        ) from None
    prop = graph.metadata_props.add()
    prop.key, prop.value = "exportkit", json.dumps({**embedded, "part": part}, sort_keys=True)
    onnx.save(graph, str(path))


def _torchscript(module, part: str, path: Path, embedded: dict) -> None:
    import torch

    from exportkit.formats.torchscript import _drop_debug_info

    try:
        with torch.no_grad():
            traced = torch.jit.trace(module, _example(part), check_trace=False)
        torch.jit.save(
            traced, str(path), _extra_files={"config.txt": json.dumps({**embedded, "part": part}, sort_keys=True)}
        )
    except Exception as exc:
        raise ExportError(
            f"TorchScript export of the SAM2 {part} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        ) from None
    _drop_debug_info(path)


def _openvino(onnx_path: Path, xml: Path) -> None:
    import openvino as ov

    try:
        ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)  # FP32 stays FP32
    except Exception as exc:
        raise ExportError(
            f"OpenVINO conversion of {onnx_path.name} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        ) from None


def trt_profile_shapes(part: str) -> dict:
    """{input: (min, opt, max) shapes} of the TensorRT optimisation profile for ``part`` (static for the encoder)."""
    if part == "encoder":
        return {}
    (n0, n1, n2), (p0, p1, p2) = TRT_PROFILES["num_objects"], TRT_PROFILES["num_points"]
    return {
        "point_coords": ((n0, p0, 2), (n1, p1, 2), (n2, p2, 2)),
        "point_labels": ((n0, p0), (n1, p1), (n2, p2)),
        "mask_input": tuple((n, 1, 256, 256) for n in (n0, n1, n2)),
        "has_mask_input": ((n0,), (n1,), (n2,)),
    }


def _tensorrt(onnx_path: Path, engine_path: Path) -> None:
    """Build a TensorRT engine from the ONNX part with the decoder's dynamic profiles. Needs an NVIDIA GPU
    (the format's check_environment refuses before torch when there is none); not run on this project's CI."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EnvironmentUnsupported("TensorRT export needs the tensorrt package and an NVIDIA GPU") from None
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        raise ExportError(f"TensorRT could not parse {onnx_path.name}: {parser.get_error(0)}")
    config = builder.create_builder_config()
    shapes = trt_profile_shapes(onnx_path.stem)
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (low, opt, high) in shapes.items():
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise ExportError(f"TensorRT could not build an engine from {onnx_path.name}")
    engine_path.write_bytes(bytes(engine))


def describe_parts() -> dict:
    """Each part's inputs and outputs (name, shape with -1 on dynamic axes, dtype), as every format writes them."""

    def t(name, *shape):
        return {"name": name, "shape": list(shape), "dtype": "float32"}

    feats = [
        t("high_res_feats_0", 1, 32, 256, 256),
        t("high_res_feats_1", 1, 64, 128, 128),
        t("image_embed", 1, 256, 64, 64),
    ]
    return {
        "encoder": {"inputs": [t("image", 1, 3, 1024, 1024)], "outputs": feats},
        "decoder": {
            "inputs": [dict(f) for f in feats]
            + [
                t("point_coords", -1, -1, 2),
                t("point_labels", -1, -1),
                t("mask_input", -1, 1, 256, 256),
                t("has_mask_input", -1),
            ],
            "outputs": [t("masks", -1, 4, 256, 256), t("iou_predictions", -1, 4)],
        },
    }

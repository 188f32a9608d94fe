"""TFLite (LiteRT): Android, embedded systems, Edge TPU.

Ultralytics converts with litert-torch (no TensorFlow) into an FP32 model with NCHW float input whose box
and keypoint x, y outputs are divided by the input size (so INT8 keeps score resolution); metadata.json
says so (``box_units: normalized``). INT8 is static int8 weights and activations with float32 input and
output, calibrated here on local images (``calibration_data``), then optionally compiled for the Edge TPU.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

from exportkit.errors import ConfigError, EnvironmentUnsupported, ExportError
from exportkit.formats._calibration import CALIBRATION_DATA
from exportkit.formats._ultralytics import VOLATILE_KEYS, move, ultralytics_export
from exportkit.options import Option
from exportkit.registry import ArtifactIO, ExportFormat, ExportRequest, TensorInfo, register_format, which

log = logging.getLogger(__name__)

EDGETPU_HELP = "https://coral.ai/docs/edgetpu/compiler/"
METADATA_ENTRY = "metadata.json"  # where Ultralytics' LiteRT backend reads embedded metadata
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # so identical exports give identical bytes


@register_format
class TfliteFormat(ExportFormat):
    name = "tflite"
    title = "TFLite"
    files = ("model.tflite",)
    options = (
        Option("int8", bool, False, "Enable INT8 quantization (calibrated on local images)"),
        Option(
            "tflite_model",
            str,
            "default",
            "'default', or 'edgetpu' for Coral TPU (implies int8)",
            choices=("default", "edgetpu"),
        ),
        CALIBRATION_DATA,
        Option(
            "measure_accuracy",
            bool,
            True,
            "INT8: record box mAP50 of the INT8 and FP32 models on the data YAML's val split in metadata.json",
        ),
    )
    precisions = {"fp32": {"int8": False}, "int8": {"int8": True}}
    packages = {
        "litert_torch": "litert-torch",
        "ai_edge_litert": "ai-edge-litert",
        "ai_edge_quantizer": "ai-edge-quantizer",
    }
    extra = "tflite"
    reproducible = ("fp32",)
    use_case = "Mobile & embedded devices"
    hardware = "CPU, EdgeTPU, GPU"

    # -- facts and checks --------------------------------------------------------------------
    @classmethod
    def resolve(cls, given: dict) -> dict:
        from exportkit.formats._calibration import check_calibration_path

        options = super().resolve(given)
        if options["tflite_model"] == "edgetpu":
            if given.get("int8") is False:
                raise ConfigError(
                    "tflite_model 'edgetpu' needs a full INT8 model; drop \"int8\": false or use tflite_model 'default'"
                )
            options["int8"] = True
        check_calibration_path(options["calibration_data"])
        return options

    @classmethod
    def check_environment(cls, options: dict) -> None:
        super().check_environment(options)
        if options["tflite_model"] == "edgetpu" and which("edgetpu_compiler") is None:
            raise EnvironmentUnsupported(
                f"tflite_model 'edgetpu' needs the Edge TPU compiler, and 'edgetpu_compiler' is not on PATH; install it ({EDGETPU_HELP}, Linux x86-64) or use tflite_model 'default'"
            )

    # -- work --------------------------------------------------------------------------------
    def export(self, request: ExportRequest) -> list[Path]:
        o = request.options
        fp32 = move(ultralytics_export(request, "litert"), request.staging / "model_fp32.tflite")
        ultralytics_meta = strip_metadata(fp32)
        embedded = {**ultralytics_meta, "exportkit": dict(request.embedded_metadata)}
        target = request.staging / "model.tflite"
        if not o["int8"]:
            move(fp32, target)
            write_metadata(target, embedded)
            return [target]

        from exportkit.formats import _calibration

        data = _calibration.resolve_calibration(o["calibration_data"], request.task)
        _calibration.warn_if_few(data, "TFLite:")
        quantize_int8(fp32, target, data, request.imgsz, o["batch"])
        embedded["args"] = {**embedded.get("args", {}), "quantize": 8}
        embedded["exportkit"]["quantization"] = QUANTIZATION
        embedded["exportkit"]["calibration"] = {"source": data.source, "images": len(data.images)}
        if o["tflite_model"] == "edgetpu":
            target = compile_edgetpu(target, request.staging)
        write_metadata(target, embedded)
        if o["measure_accuracy"] and o["tflite_model"] == "default":
            write_metadata(fp32, {**ultralytics_meta})
            accuracy = measure_accuracy(fp32, target, data, request)
            if accuracy:
                embedded["exportkit"]["accuracy"] = accuracy
                write_metadata(target, embedded)
        return [target]

    def describe(self, folder: Path) -> ArtifactIO:
        """Inputs and outputs (predictions first), read from the flatbuffer: no op needs to resolve, so an
        Edge TPU model is described on a machine without its delegate."""
        return flatbuffer_io(Path(folder) / "model.tflite")

    def runner(self, folder: Path):
        """The Python runtime's LiteRT backend, as a deployment loads it: NHWC transposed and integer tensors
        (de)quantized by the backend; box and keypoint x, y stay normalized, as metadata.json's ``box_units`` says.
        An Edge TPU model needs libedgetpu's delegate, which the CPU interpreter lacks: not run here."""
        from exportkit.formats._backend import backend_runner

        metadata = json.loads((Path(folder) / "metadata.json").read_text())
        if metadata.get("export_config", {}).get("tflite_model") == "edgetpu":
            raise EnvironmentUnsupported(
                "cannot run an Edge TPU model.tflite with the LiteRT CPU interpreter: it needs libedgetpu's delegate"
            )
        return backend_runner(folder, self.name)

    @classmethod
    def format_checks(cls, folder: Path, metadata: dict) -> list:
        """LiteRT's interpreter builds the model and allocates every tensor (an Edge TPU model's custom op
        needs libedgetpu's delegate, which this machine may lack: recorded, not gating)."""
        from exportkit.checkers import not_checkable, run_checker

        checker, path = "ai_edge_litert Interpreter.allocate_tensors", Path(folder) / "model.tflite"
        if metadata.get("export_config", {}).get("tflite_model") == "edgetpu":
            return [not_checkable(checker, "an Edge TPU model allocates only with libedgetpu's delegate")]

        def allocate():
            from ai_edge_litert.interpreter import Interpreter

            Interpreter(model_path=str(path)).allocate_tensors()

        return [run_checker(checker, path, allocate)]

    @classmethod
    def metadata_facts(cls, info, io: ArtifactIO, options: dict, folder: Path) -> dict:
        from exportkit.metadata import output_layout

        embedded = read_metadata(Path(folder) / "model.tflite").get("exportkit", {})
        facts: dict = {"output_layout": output_layout(info, io, box_units="normalized")}
        for key in ("quantization", "calibration", "accuracy"):
            if key in embedded:
                facts[key] = embedded[key]
        return facts


QUANTIZATION = "static INT8 weights and activations (ai-edge-quantizer); float32 input, outputs and output ops"
FLOAT_OUTPUT_OPS = "^serving_default_output_"  # litert-torch names each graph output serving_default_output_<i>_output


# -- INT8 --------------------------------------------------------------------------------------
def quantize_int8(source: Path, target: Path, data, imgsz: int, batch: int) -> None:
    """Static int8 weights + int8 activations, graph input/output kept float32 (Ultralytics' LiteRT recipe)."""
    from ai_edge_quantizer import qtyping, quantizer, recipe

    from exportkit.formats._calibration import letterboxed

    signature, io = next(iter(_interpreter(source).get_signature_list().items()))
    samples = [{io["inputs"][0]: x} for x in letterboxed(data.images, imgsz, batch)]
    if not samples:
        raise ExportError(f"INT8 calibration found no readable images in {data.source}")
    qt = quantizer.Quantizer(str(source))
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    for op in (qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT):
        qt.update_quantization_recipe(regex=".*", operation_name=op, algorithm_key=recipe.AlgorithmName.NO_QUANTIZE)
    # The ops writing the graph outputs stay float: the final concatenation of boxes, scores and mask
    # coefficients (or keypoints) would otherwise share one int8 scale, the widest channel's.
    qt.update_quantization_recipe(
        regex=FLOAT_OUTPUT_OPS,
        operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        algorithm_key=recipe.AlgorithmName.NO_QUANTIZE,
    )
    try:
        result = qt.calibrate({signature: samples})
        qt.quantize(calibration_result=result).export_model(str(target), overwrite=True)
    except Exception as exc:
        raise ExportError(f"TFLite INT8 quantization failed: {type(exc).__name__}: {exc}") from exc


def measure_accuracy(fp32: Path, int8: Path, data, request: ExportRequest) -> dict | None:
    """mAP50 of both models on the data YAML's val split (boxes; masks or keypoints too); None (logged)
    where that cannot be measured."""
    from exportkit.formats._calibration import model_dataset_keys, stage_split

    names, task_keys = model_dataset_keys(request.yolo.model)
    if not data.eval_images:
        log.info("TFLite: INT8 accuracy not measured: calibration_data %s is an unlabelled folder", data.source)
        return None
    if data.names != names:
        log.warning("TFLite: INT8 accuracy not measured: the classes of %s are not the model's", data.source)
        return None
    yaml_path = stage_split(data.eval_images, request.staging / "eval", names, "val", {**data.yaml_extra, **task_keys})
    before, after = _map50(fp32, yaml_path, request), _map50(int8, yaml_path, request)
    accuracy = {
        "metric": "box mAP50",
        "data": data.source,
        "split": "val",
        "images": len(data.eval_images),
        **_compared(before["box"], after["box"]),
    }
    for kind in ("mask", "pose"):
        if kind in before:
            accuracy[kind] = {"metric": f"{kind} mAP50", **_compared(before[kind], after[kind])}
    log.info(
        "TFLite: INT8 box mAP50 %.4f vs FP32 %.4f (drop %.4f) on %d val images%s",
        after["box"],
        before["box"],
        accuracy["drop"],
        len(data.eval_images),
        "".join(f"; {k} mAP50 drop {accuracy[k]['drop']:.4f}" for k in ("mask", "pose") if k in accuracy),
    )
    return accuracy


def _compared(fp32: float, int8: float) -> dict:
    return {"fp32_map50": round(fp32, 4), "int8_map50": round(int8, 4), "drop": round(fp32 - int8, 4)}


def _map50(model: Path, data_yaml: Path, request: ExportRequest) -> dict:
    from ultralytics import YOLO

    metrics = YOLO(str(model), task=request.task).val(
        data=str(data_yaml),
        imgsz=request.imgsz,
        batch=request.options["batch"],
        device="cpu",
        plots=False,
        verbose=False,
        save_json=False,
        project=str(request.staging / "runs"),
        name="val",
        exist_ok=True,
    )
    found = {"box": float(metrics.box.map50)}
    if request.task == "segment":
        found["mask"] = float(metrics.seg.map50)
    if request.task == "pose":
        found["pose"] = float(metrics.pose.map50)
    return found


def compile_edgetpu(model: Path, folder: Path) -> Path:
    import subprocess

    compiler = which("edgetpu_compiler")
    if compiler is None:
        raise EnvironmentUnsupported(f"'edgetpu_compiler' is not on PATH; install it ({EDGETPU_HELP})")
    out = folder / "edgetpu"
    out.mkdir(exist_ok=True)
    cmd = [
        compiler,
        "--out_dir",
        str(out),
        "--show_operations",
        "--search_delegate",
        "--delegate_search_step",
        "30",
        "--timeout_sec",
        "180",
        str(model),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    compiled = out / f"{model.stem}_edgetpu.tflite"
    if proc.returncode != 0 or not compiled.exists():
        raise ExportError(f"edgetpu_compiler failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}")
    log.info("TFLite: %s", proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "compiled for the Edge TPU")
    return move(compiled, model)


# -- embedded metadata: a plain-JSON zip entry appended to the flatbuffer ------------------------
def read_metadata(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(METADATA_ENTRY))
    except (zipfile.BadZipFile, KeyError):
        return {}


def strip_metadata(path: Path) -> dict:
    """Remove the appended zip (if any) from ``path``; return its metadata without run-dependent keys."""
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read(METADATA_ENTRY)) if METADATA_ENTRY in archive.namelist() else {}
            start = min(info.header_offset for info in archive.infolist()) if archive.infolist() else None
    except zipfile.BadZipFile:
        return {}
    if start:
        with open(path, "r+b") as handle:
            handle.truncate(start)
    return {k: v for k, v in metadata.items() if k not in VOLATILE_KEYS}


def write_metadata(path: Path, metadata: dict) -> None:
    """Replace the embedded metadata with ``metadata`` as plain JSON (fixed zip timestamp: reproducible bytes)."""
    strip_metadata(path)
    entry = zipfile.ZipInfo(METADATA_ENTRY, date_time=FIXED_ZIP_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(entry, json.dumps(metadata, sort_keys=True))


# -- running -----------------------------------------------------------------------------------
def _interpreter(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:  # an Edge TPU model needs libedgetpu's delegate
        raise EnvironmentUnsupported(f"cannot run {path.name} with the LiteRT CPU interpreter: {exc}") from exc
    return interpreter


def _ordered_outputs(interpreter) -> list[dict]:
    """The ONNX order: predictions (3-D) first, then mask prototypes (4-D); by name within each."""
    return sorted(interpreter.get_output_details(), key=_output_order)


def _output_order(detail: dict) -> tuple:
    return len(detail["shape"]) != 3, detail["name"]


def flatbuffer_io(path: Path) -> ArtifactIO:
    """The main subgraph's inputs and outputs from the .tflite flatbuffer itself (LiteRT's schema)."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
    graph = model.Subgraphs(0)
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    def detail(index: int) -> dict:
        tensor = graph.Tensors(int(index))
        shape = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else tensor.ShapeAsNumpy()
        return {
            "name": tensor.Name().decode(),
            "shape": [int(d) for d in np.atleast_1d(shape)],
            "dtype": types[tensor.Type()],
        }

    inputs = [detail(i) for i in graph.InputsAsNumpy()]
    outputs = sorted((detail(i) for i in graph.OutputsAsNumpy()), key=_output_order)
    return ArtifactIO([TensorInfo(**d) for d in inputs], [TensorInfo(**d) for d in outputs])

"""TensorRT: NVIDIA GPU optimized inference; needs a CUDA GPU and the tensorrt package.

Ultralytics exports ONNX on the GPU and builds the engine (TensorRT 10: builder flags, an INT8 calibrator
over local images). Without a GPU or the package the export stops in ``check_environment`` with one line,
before any checkpoint is loaded or torch imported.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

from exportkit.errors import ConfigError, EnvironmentUnsupported, ExportError
from exportkit.formats._calibration import CALIBRATION_DATA
from exportkit.formats._ultralytics import VOLATILE_KEYS, move, ultralytics_export
from exportkit.options import Option
from exportkit.registry import ArtifactIO, ExportFormat, ExportRequest, TensorInfo, register_format, which

log = logging.getLogger(__name__)

GPU_DEVICE_FILE = Path("/dev/nvidia0")
HEADER_BYTES = 4  # Ultralytics' engine header: 4-byte little-endian JSON length, the JSON, then the engine


@register_format
class TensorRtFormat(ExportFormat):
    name = "tensorrt"
    title = "TensorRT"
    files = ("model.engine",)
    options = (
        Option("fp16", bool, False, "Enable FP16 precision"),
        Option("int8", bool, False, "Enable INT8 quantization (calibrated on local images)"),
        Option("workspace", int, 4, "Workspace size in GB", 1, 1024),
        Option("max_batch_size", int, 1, "Maximum batch size for optimization", 1, 256),
        CALIBRATION_DATA,
    )
    precisions = {"fp32": {"fp16": False, "int8": False}, "fp16": {"fp16": True}, "int8": {"int8": True}}
    packages = {"tensorrt": "tensorrt-cu13", "onnx": "onnx", "onnxslim": "onnxslim"}
    extra = "tensorrt"
    requires_gpu = True
    use_case = "NVIDIA GPU optimized inference"
    hardware = "NVIDIA GPU only"

    @classmethod
    def resolve(cls, given: dict) -> dict:
        from exportkit.formats._calibration import check_calibration_path

        options = super().resolve(given)
        if options["batch"] > options["max_batch_size"]:
            raise ConfigError(
                f"export_config for format 'tensorrt': option 'batch' ({options['batch']}) exceeds max_batch_size "
                f"({options['max_batch_size']}); set max_batch_size instead"
            )
        check_calibration_path(options["calibration_data"])
        return options

    @classmethod
    def check_environment(cls, options: dict) -> None:
        """No torch import: a GPU (nvidia-smi or /dev/nvidia0) and the packages, all named in one line."""
        missing = missing_requirements(cls.packages)
        if missing:
            raise EnvironmentUnsupported(f"TensorRT export needs {' and '.join(missing)}")

    # -- work --------------------------------------------------------------------------------
    def export(self, request: ExportRequest) -> list[Path]:
        calibration = None
        if request.options["int8"]:
            from exportkit.formats import _calibration

            data = _calibration.resolve_calibration(request.options["calibration_data"], request.task)
            _calibration.warn_if_few(data, "TensorRT:")
            names, task_keys = _calibration.model_dataset_keys(request.yolo.model)
            calibration = _calibration.stage_split(
                data.images, request.staging / "calibration", names, "calibration", {**data.yaml_extra, **task_keys}
            )
        path = ultralytics_export(request, "engine", **engine_export_args(request.options, calibration))
        check_source_onnx(Path(path).with_suffix(".onnx"))
        target = move(path, request.staging / "model.engine")
        rewrite_header(target, request.embedded_metadata)
        return [target]

    def describe(self, folder: Path) -> ArtifactIO:
        engine = _engine(Path(folder) / "model.engine")
        import tensorrt as trt

        tensors = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        info = {
            n: TensorInfo(n, [int(d) for d in engine.get_tensor_shape(n)], _dtype(engine.get_tensor_dtype(n)))
            for n in tensors
        }
        inputs = [info[n] for n in tensors if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [info[n] for n in sorted(tensors) if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        return ArtifactIO(inputs=inputs, outputs=outputs)

    def runner(self, folder: Path):
        """NCHW float -> outputs sorted by name (output0, output1), through Ultralytics' TensorRT backend."""
        if not gpu_present():
            raise EnvironmentUnsupported(
                "needs an NVIDIA GPU: TensorRT engines run only on the GPU they were built for"
            )
        import torch
        from ultralytics.nn.autobackend import AutoBackend

        backend = AutoBackend(str(Path(folder) / "model.engine"), device=torch.device("cuda:0"), verbose=False)

        def run(x):
            y = backend(torch.from_numpy(x).to("cuda:0"))
            y = y if isinstance(y, (list, tuple)) else [y]
            return [t.float().cpu().numpy() for t in y]

        return run

    @classmethod
    def format_checks(cls, folder: Path, metadata: dict) -> list:
        """TensorRT's runtime deserializes the engine; only on an NVIDIA GPU with the tensorrt package, so
        elsewhere the row says it was not run (the ONNX it was built from was checked at export)."""
        from exportkit.checkers import not_checkable, run_checker

        checker, path = "tensorrt.Runtime.deserialize_cuda_engine", Path(folder) / "model.engine"
        missing = missing_requirements({"tensorrt": cls.packages["tensorrt"]})
        if missing:
            return [not_checkable(checker, f"needs {' and '.join(missing)}")]
        return [run_checker(checker, path, lambda: _engine(path))]


def check_source_onnx(path: Path) -> None:
    """The ONNX Ultralytics built the engine from passes onnx.checker (full check), or the export fails:
    it is an intermediate file, gone after the export, so this is the one place it can be checked."""
    from exportkit.checkers import check_onnx

    if not path.exists():
        log.info("TensorRT: no intermediate ONNX at %s to check", path)
        return
    check = check_onnx(path)
    if not check.passed:
        raise ExportError(f"TensorRT: the ONNX the engine was built from fails {check.criterion}: {check.detail}")
    log.info("TensorRT: the ONNX the engine was built from passes %s", check.criterion)


def gpu_present() -> bool:
    return which("nvidia-smi") is not None or GPU_DEVICE_FILE.exists()


def missing_requirements(packages: dict[str, str]) -> list[str]:
    """What this machine lacks for a TensorRT export, in words (empty when nothing is missing)."""
    missing = []
    if not gpu_present():
        missing.append(f"an NVIDIA GPU (no nvidia-smi on PATH, no {GPU_DEVICE_FILE})")
    absent = [pip for module, pip in packages.items() if importlib.util.find_spec(module) is None]
    if absent:
        missing.append(
            f"the {'package' if len(absent) == 1 else 'packages'} {', '.join(absent)} (pip install -e '.[tensorrt]')"
        )
    return missing


def engine_export_args(options: dict, calibration_yaml: Path | str | None = None) -> dict:
    """exportkit's TensorRT options as Ultralytics' export arguments (a pure function).

    fp16 -> quantize=16, int8 -> quantize=8 with ``data`` (INT8 wins over FP16; TensorRT still runs
    unquantizable layers in FP16), workspace in GiB, and max_batch_size > 1 -> a dynamic engine whose
    batch goes up to max_batch_size (Ultralytics' profile: min batch 1, opt = max = max_batch_size).
    """
    if options["int8"] and calibration_yaml is None:
        raise ValueError("an INT8 engine needs calibration data")
    batch = options["max_batch_size"]
    args = {
        "device": 0,
        "workspace": float(options["workspace"]),
        "quantize": 8 if options["int8"] else 16 if options["fp16"] else None,
        "batch": batch,
        "dynamic": batch > 1,
        "simplify": True,
    }
    if options["int8"]:
        args["data"] = str(calibration_yaml)
    return args


def read_header(path: Path) -> tuple[int, dict]:
    """(offset of the engine bytes, header JSON); (0, {}) for an engine without a header."""
    data = Path(path).read_bytes()
    n = int.from_bytes(data[:HEADER_BYTES], "little")
    if 0 < n <= len(data) - HEADER_BYTES:
        try:
            return HEADER_BYTES + n, json.loads(data[HEADER_BYTES : HEADER_BYTES + n])
        except (ValueError, UnicodeDecodeError):
            pass
    return 0, {}


def rewrite_header(path: Path, exportkit_metadata: dict) -> None:
    """Ultralytics' header without run-dependent keys, plus exportkit's plain JSON."""
    offset, header = read_header(path)
    data = Path(path).read_bytes()[offset:]
    header = {k: v for k, v in header.items() if k not in VOLATILE_KEYS}
    header["exportkit"] = exportkit_metadata
    text = json.dumps(header, sort_keys=True).encode()
    Path(path).write_bytes(len(text).to_bytes(HEADER_BYTES, "little") + text + data)


def _engine(path: Path):
    if not gpu_present():
        raise EnvironmentUnsupported("needs an NVIDIA GPU to read a TensorRT engine")
    import tensorrt as trt

    offset, _ = read_header(path)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(Path(path).read_bytes()[offset:])
    if engine is None:
        raise ExportError(f"TensorRT could not deserialize {path.name} (built by another TensorRT version or GPU?)")
    return engine


def _dtype(trt_dtype) -> str:
    import numpy as np
    import tensorrt as trt

    return np.dtype(trt.nptype(trt_dtype)).name

"""CoreML: iOS/macOS deployment; writes the model.mlpackage/ folder.

coremltools converts on Linux; only macOS can run a prediction, so elsewhere validation checks the
model's spec (inputs, outputs, deployment target, embedded metadata) and reports numeric parity as
skipped. The input is an RGB image (the model scales pixels by 1/255 itself). With ``nms`` the detect
model is Apple's pipeline (model + NonMaximumSuppression: ``confidence``, ``coordinates``), segment and
pose carry Ultralytics' NMS in the graph; Ultralytics converts NMS models at FP16, so ``nms`` decides the
precision (``precisions``). ML Program needs iOS15+; iOS13/iOS14 targets get a neuralNetwork model.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from exportkit.errors import ConfigError, EnvironmentUnsupported, ExportError
from exportkit.formats._ultralytics import VOLATILE_KEYS, ultralytics_export
from exportkit.options import Option
from exportkit.registry import ArtifactIO, ExportFormat, ExportRequest, TensorInfo, register_format

TARGETS = ("iOS13", "iOS14", "iOS15", "iOS16", "iOS17")
SPEC_VERSIONS = {"iOS13": 4, "iOS14": 5, "iOS15": 6, "iOS16": 7, "iOS17": 8}  # coremltools' AvailableTarget values
LEGACY_TARGETS = ("iOS13", "iOS14")  # before ML Program: neuralNetwork models
NMS_MINIMUM_TARGET = "iOS14"  # an NMS model is Core ML spec version 5; iOS13 reads up to 4 (coremltools refuses it)
PIPELINE_OUTPUTS = ("confidence", "coordinates")  # Apple's NMS stage (detect with nms)
# Keys coremltools or Ultralytics stamp with the date; dropped so identical exports give identical specs.
DATED_KEYS = (*VOLATILE_KEYS, "com.github.apple.coremltools.conversion_date")
_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32", 131080: "int8"}


@register_format
class CoremlFormat(ExportFormat):
    name = "coreml"
    title = "CoreML"
    files = ("model.mlpackage/",)
    options = (
        Option("minimum_deployment_target", str, "iOS15", "Minimum iOS version", choices=TARGETS),
        Option("nms", bool, True, "Include NMS in the CoreML model (converted at FP16)"),
    )
    precisions = {"fp32": {"nms": False}, "fp16": {"nms": True}}
    packages = {"coremltools": "coremltools"}
    extra = "coreml"
    reproducible = ("fp32", "fp16")
    prediction_needs_macos = True
    use_case = "iOS/macOS deployment"
    hardware = "Apple Silicon, ANE"

    @classmethod
    def resolve(cls, given: dict) -> dict:
        options = super().resolve(given)
        if options["batch"] != 1:
            raise ConfigError(
                f"export_config for format 'coreml': option 'batch' must be 1 (CoreML exports a fixed single-image input), got {options['batch']}"
            )
        target = options["minimum_deployment_target"]
        if options["nms"] and SPEC_VERSIONS[target] < SPEC_VERSIONS[NMS_MINIMUM_TARGET]:
            raise ConfigError(
                f"export_config for format 'coreml': nms needs minimum_deployment_target {NMS_MINIMUM_TARGET} or later "
                f"(an NMS model is Core ML spec version {SPEC_VERSIONS[NMS_MINIMUM_TARGET]}), got {target}; "
                'use a later target or "nms": false'
            )
        return options

    # -- work --------------------------------------------------------------------------------
    def export(self, request: ExportRequest) -> list[Path]:
        from exportkit.metadata import POSTPROCESSING

        o = request.options
        target = o["minimum_deployment_target"]
        args = dict(
            nms=o["nms"],
            dynamic=False,
            iou=POSTPROCESSING["iou_threshold"],
            conf=POSTPROCESSING["confidence_threshold"],
        )
        if o["nms"]:
            args["quantize"] = 16  # what Ultralytics picks for ML Program NMS models; explicit for neuralNetwork too
        try:
            with deployment_target(target):
                path = ultralytics_export(request, "mlmodel" if target in LEGACY_TARGETS else "coreml", **args)
        except ExportError as exc:
            if "deployment target" in str(exc):
                hint = "a later minimum_deployment_target" + (" or nms=false" if o["nms"] else "")
                raise ExportError(f"{exc}; {target} is too old for this export, use {hint}") from exc
            raise
        final = request.staging / "model.mlpackage"
        shapes = traced_output_shapes(request) if target in LEGACY_TARGETS else None
        rewrite(Path(path), final, request.embedded_metadata, shapes, deployment=target)
        return [final]

    def describe(self, folder: Path) -> ArtifactIO:
        spec = load_spec(Path(folder) / "model.mlpackage")
        return ArtifactIO(
            inputs=[_info(f) for f in spec.description.input], outputs=[_info(f) for f in spec.description.output]
        )

    def runner(self, folder: Path):
        """macOS only: NCHW float [0, 1] -> the model's outputs (pixels are rounded to the 8-bit image input)."""
        if sys.platform != "darwin":
            raise EnvironmentUnsupported(
                f"needs macOS: CoreML prediction runs only on macOS (coremltools cannot load models on {platform.system()})"
            )
        import coremltools as ct
        import numpy as np
        from PIL import Image

        from exportkit.metadata import read_metadata

        path = Path(folder) / "model.mlpackage"
        spec = load_spec(path)
        if read_metadata(folder)["export_config"].get("nms"):
            raise EnvironmentUnsupported(
                "raw numeric parity needs an export with nms=false (in-model NMS has no raw reference)"
            )
        model = ct.models.MLModel(str(path))
        image, names = spec.description.input[0].name, [o.name for o in spec.description.output]

        def run(x):
            results = []
            for item in x:
                pixels = (item.transpose(1, 2, 0) * 255).round().clip(0, 255).astype(np.uint8)
                found = model.predict({image: Image.fromarray(pixels)})
                results.append([np.asarray(found[n], dtype=np.float32) for n in names])
            return [np.concatenate([r[i] for r in results]) for i in range(len(names))]

        return run

    # -- facts for metadata.json and validation ----------------------------------------------
    @classmethod
    def metadata_facts(cls, info, io: ArtifactIO, options: dict, folder: Path) -> dict:
        from exportkit.metadata import POSTPROCESSING, output_layout

        spec = load_spec(Path(folder) / "model.mlpackage")
        kind = spec.WhichOneof("Type")
        facts: dict = {
            "preprocessing": {"normalize": False, "input_type": "image", "scale_in_model": 1 / 255},
            "coreml": {
                "minimum_deployment_target": options["minimum_deployment_target"],
                "model_type": kind,
                "specification_version": spec.specificationVersion,
                ("weight_precision" if kind == "neuralNetwork" else "compute_precision"): "float16"
                if options["nms"]
                else "float32",
            },
        }
        if not options["nms"]:
            facts["output_layout"] = output_layout(info, io)
            return facts
        facts["postprocessing"] = {
            "apply_nms": False,
            "nms_in_model": True,
            "iou_threshold": POSTPROCESSING["iou_threshold"],
            "confidence_threshold": POSTPROCESSING["confidence_threshold"],
        }
        facts["output_layout"] = (
            output_layout(info, pipeline_io(io), "normalized", kind="pipeline")
            if kind == "pipeline"
            else output_layout(info, io, kind="nms")
        )
        return facts

    @classmethod
    def format_checks(cls, folder: Path, metadata: dict) -> list:
        """coremltools' own load of the package's spec (no prediction: runs on Linux too), then the spec
        against metadata.json; a package coremltools refuses gets that one failed row."""
        from exportkit.checkers import run_checker

        path, loaded = Path(folder) / "model.mlpackage", {}

        def load():
            import coremltools as ct

            if not path.is_dir():
                raise FileNotFoundError(f"{path} is not a package folder")
            loaded["spec"] = ct.models.MLModel(str(path), skip_model_load=True).get_spec()

        checker = run_checker("coremltools.models.MLModel(skip_model_load=True)", path, load)
        return [checker] if not checker.passed else [checker, *spec_checks(loaded["spec"], metadata)]


def spec_checks(spec, metadata: dict) -> list:
    """The spec against metadata.json: inputs, outputs, image size, deployment target, NMS, embedded JSON."""
    from exportkit.checkers import Check

    def check(criterion: str, ok: bool, detail: str = "") -> Check:
        return Check("spec", criterion, float(ok), 1.0, bool(ok), detail)

    io = ArtifactIO([_info(f) for f in spec.description.input], [_info(f) for f in spec.description.output])
    image = spec.description.input[0].type
    h, w, _ = metadata["input_shape"]
    embedded = _embedded(spec)
    target = metadata["export_config"].get("minimum_deployment_target", "iOS15")
    want_pipeline = metadata["export_config"].get("nms") and metadata["task"] == "detect"
    return [
        check(
            "inputs", [t.as_dict() for t in io.inputs] == metadata["inputs"], f"spec {[t.as_dict() for t in io.inputs]}"
        ),
        check(
            "outputs",
            [t.as_dict() for t in io.outputs] == metadata["outputs"],
            f"spec {[t.as_dict() for t in io.outputs]}",
        ),
        check(
            "image_input",
            image.WhichOneof("Type") == "imageType" and (image.imageType.height, image.imageType.width) == (h, w),
            f"{image.WhichOneof('Type')} {image.imageType.height}x{image.imageType.width}, metadata {h}x{w}",
        ),
        check(
            "deployment_target",
            spec.specificationVersion == SPEC_VERSIONS[target],
            f"specification version {spec.specificationVersion}, {target} is {SPEC_VERSIONS[target]}",
        ),
        check("nms_pipeline", (spec.WhichOneof("Type") == "pipeline") == bool(want_pipeline), spec.WhichOneof("Type")),
        check(
            "embedded_metadata",
            embedded.get("class_names") == metadata["class_names"] and embedded.get("imgsz") == [h, w],
            "user-defined 'exportkit' JSON: class names and image size",
        ),
    ]


def pipeline_io(io: ArtifactIO) -> ArtifactIO:
    """Apple's NMS stage's outputs in ``PIPELINE_OUTPUTS`` order (class scores, then boxes), as the layout reads them."""
    found = {t.name: t for t in io.outputs}
    return ArtifactIO(io.inputs, [found.get(name, TensorInfo(name, [-1], "float32")) for name in PIPELINE_OUTPUTS])


@contextmanager
def deployment_target(name: str):
    """Make Ultralytics' ``ct.convert`` call target ``name`` (it does not pass a deployment target itself)."""
    import coremltools as ct

    original = ct.convert

    def convert(*args, **kwargs):
        kwargs["minimum_deployment_target"] = getattr(ct.target, name)
        return original(*args, **kwargs)

    ct.convert = convert
    try:
        yield
    finally:
        ct.convert = original


def traced_output_shapes(request: ExportRequest) -> list[list[int]]:
    """Output shapes for neuralNetwork models, whose spec does not record them: from the PyTorch model
    (in-graph NMS: batch, max detections, 6 + mask coefficients or keypoints)."""
    import numpy as np

    from exportkit.reference import reference_runner

    raw = [
        list(y.shape)
        for y in reference_runner(request.yolo)(np.zeros((1, 3, request.imgsz, request.imgsz), np.float32))
    ]
    if request.options["nms"] and request.task != "detect":
        extra = raw[0][1] - 4 - len(request.yolo.model.names)
        raw[0] = [1, min(300, raw[0][2]), 6 + extra]  # Ultralytics' max_det, clamped to the anchors
    return raw


def rewrite(
    source: Path, target: Path, exportkit_metadata: dict, shapes: list | None = None, deployment: str | None = None
) -> None:
    """Save ``source`` as ``target`` (.mlpackage) with output names output0/output1 (raw and in-graph NMS
    models; the pipeline keeps confidence/coordinates), no dated keys, exportkit's JSON, ``shapes`` written onto
    outputs whose spec has none (neuralNetwork), and the specification version of the ``deployment`` target."""
    import coremltools as ct

    model = ct.models.MLModel(str(source), skip_model_load=True)
    spec = model.get_spec()
    if deployment is not None:  # a neuralNetwork model comes out at the oldest version its layers need (iOS13's 4
        # for an iOS14 export without NMS); the artifact declares the target asked for, which is what it was built for
        spec.specificationVersion = max(spec.specificationVersion, SPEC_VERSIONS[deployment])
    if spec.WhichOneof("Type") != "pipeline":
        for i, name in enumerate([o.name for o in spec.description.output]):
            ct.utils.rename_feature(spec, name, f"output{i}", rename_inputs=False)
            array = spec.description.output[i].type.multiArrayType
            if shapes and not array.shape and not array.shapeRange.sizeRanges:
                array.shape[:] = shapes[i]
    for described in (spec, *(spec.pipeline.models if spec.WhichOneof("Type") == "pipeline" else ())):
        for key in DATED_KEYS:
            described.description.metadata.userDefined.pop(key, None)
    meta = spec.description.metadata.userDefined
    meta["exportkit"] = json.dumps(exportkit_metadata, sort_keys=True)
    weights = model.weights_dir if spec.WhichOneof("Type") in ("mlProgram", "pipeline") else None
    scratch = target.with_name("rewritten-" + target.name)
    try:
        ct.models.MLModel(spec, weights_dir=weights, skip_model_load=True).save(str(scratch))
    except Exception as exc:
        raise ExportError(f"CoreML: could not save {target.name}: {type(exc).__name__}: {exc}") from exc
    make_reproducible(scratch)
    if source.exists():
        shutil.rmtree(source) if source.is_dir() else source.unlink()
    scratch.rename(target)


def make_reproducible(package: Path) -> None:
    """Same inputs, same bytes: coremltools names the package's items with random UUIDs (Manifest.json) and
    serialises the spec's maps (user-defined metadata) in no fixed order. Name each item by a UUID derived
    from its path, and re-serialise the spec deterministically (map entries sorted); CoreML reads both alike."""
    import uuid

    from coremltools.proto import Model_pb2

    manifest_path = package / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    renamed = {
        old: str(uuid.uuid5(uuid.NAMESPACE_URL, "exportkit:" + item["path"])).upper()
        for old, item in manifest["itemInfoEntries"].items()
    }
    manifest["itemInfoEntries"] = {renamed[old]: item for old, item in manifest["itemInfoEntries"].items()}
    manifest["rootModelIdentifier"] = renamed.get(manifest["rootModelIdentifier"], manifest["rootModelIdentifier"])
    manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True))
    for item in manifest["itemInfoEntries"].values():
        path = package / "Data" / item["path"]
        if path.suffix == ".mlmodel":
            spec = Model_pb2.Model.FromString(path.read_bytes())
            path.write_bytes(spec.SerializeToString(deterministic=True))


def load_spec(path: Path):
    """The protobuf spec of a .mlpackage, read without loading the model (works on Linux)."""
    import coremltools as ct

    if not Path(path).exists():
        raise ExportError(f"CoreML package {path} does not exist")
    return ct.utils.load_spec(str(path))


def _embedded(spec) -> dict:
    try:
        return json.loads(spec.description.metadata.userDefined.get("exportkit", "{}"))
    except json.JSONDecodeError:
        return {}


def _info(feature) -> TensorInfo:
    kind = feature.type.WhichOneof("Type")
    if kind == "imageType":
        image = feature.type.imageType
        channels = 1 if image.colorSpace == 10 else 3  # 10: GRAYSCALE
        return TensorInfo(feature.name, [1, channels, int(image.height), int(image.width)], "uint8")
    if kind == "multiArrayType":
        array = feature.type.multiArrayType
        shape = [int(d) for d in array.shape]
        if not shape and array.shapeRange.sizeRanges:
            shape = [int(r.lowerBound) if r.lowerBound == r.upperBound else -1 for r in array.shapeRange.sizeRanges]
        return TensorInfo(feature.name, shape or [-1], _DTYPES.get(array.dataType, "float32"))
    if kind == "doubleType":
        return TensorInfo(feature.name, [1], "float64")
    return TensorInfo(feature.name, [-1], kind or "unknown")

"""YOLOInference: an exported artifact plus its metadata.json -> detections, masks, keypoints.

    from .inference import YOLOInference
    model = YOLOInference(model_path="model.onnx", metadata_path="metadata.json")
    result = model.predict("image.jpg", conf_threshold=0.25, iou_threshold=0.45)
    for det in result.detections:
        print(det.class_name, det.confidence, det.bbox)

``predict`` on one image returns one ``Result``; on a list (a batch) it returns a list of ``Result``, one per
image, in order. Run as ``python -m runtimes.python.inference MODEL IMAGE`` for the command line.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backends import Backend, backend_for, engine_backend
from .errors import MetadataMismatch, ModelLoadError
from .images import load_image
from .postprocess import Thresholds, decode_batch
from .preprocess import Normalizer
from .results import Result
from .spec import ModelSpec, load_spec

METADATA_FILE = "metadata.json"


class YOLOInference:
    """Load once, predict many times. Not thread-safe: use one instance per thread."""

    def __init__(
        self,
        model_path: str | Path,
        metadata_path: str | Path | None = None,
        *,
        device: str = "auto",
        threads: int | None = None,
        backend: str | None = None,
        **backend_options: Any,
    ):
        """``model_path``: the artifact (model.onnx, model.xml, model.tflite) or the export folder holding it;
        ``metadata_path``: defaults to metadata.json beside the model; ``device``: auto, cpu, cuda (ONNX
        Runtime) or an OpenVINO device; ``threads``: inference threads; ``backend``: the engine, by default
        the export format's own (ONNX Runtime for ONNX); ``"openvino"`` runs an ONNX artifact on OpenVINO's
        runtime; ``backend_options``: passed to the backend (``providers`` and ``spin`` for ONNX Runtime,
        ``precision_hint`` and ``config`` for OpenVINO).
        """
        model_path = Path(model_path)
        if not model_path.exists():
            raise ModelLoadError(f"model file {model_path} does not exist")
        folder = model_path if model_path.is_dir() else model_path.parent
        self.metadata_path = Path(metadata_path) if metadata_path is not None else folder / METADATA_FILE
        self.spec: ModelSpec = load_spec(self.metadata_path)
        backend_class = engine_backend(backend) if backend else backend_for(self.spec.export_format)
        # the format's own file, or with another engine any file that engine reads
        suffixes = backend_class.suffixes if backend else backend_class.suffixes[:1]
        self.model_path = resolve_model(model_path, suffixes, self.spec, backend)
        self.backend: Backend = backend_class(
            self.model_path, self.spec, device=device, threads=threads, **backend_options
        )
        self.backend.check()
        self.normalizer = Normalizer(self.spec.preprocessing, self.backend.input_dtype)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    def __repr__(self) -> str:
        h, w = self.spec.input_size
        return f"YOLOInference({self.model_path}, task={self.task}, input={h}x{w}, backend={self.backend.device})"

    def predict(
        self,
        source: Any,
        conf_threshold: float | None = None,
        iou_threshold: float | None = None,
        max_detections: int | None = None,
        agnostic_nms: bool | None = None,
        classes: Sequence[int] | None = None,
        channel_order: str = "BGR",
    ) -> Result | list[Result]:
        """Detect in one image (-> Result) or a list of images (-> list of Result, one per image).

        An image is a path, a numpy array (h, w, 3) uint8 in ``channel_order`` (BGR, OpenCV's, by default),
        a PIL image or encoded bytes; a 4-D array (n, h, w, 3) is a batch. Thresholds default to metadata.json.
        """
        single = not isinstance(source, (list, tuple)) and not (isinstance(source, np.ndarray) and source.ndim == 4)
        images = [load_image(item, channel_order) for item in ([source] if single else source)]
        limits = Thresholds.resolve(self.spec, conf_threshold, iou_threshold, max_detections, agnostic_nms, classes)
        results = self.predict_arrays(images, limits)
        return results[0] if single else results

    def predict_arrays(self, images: Sequence[np.ndarray], limits: Thresholds) -> list[Result]:
        """BGR uint8 arrays -> results, one model call per batch the model accepts."""
        results: list[Result] = []
        for start in range(0, len(images), self.batch_limit(len(images))):
            chunk = images[start : start + self.batch_limit(len(images))]
            tensor, geometries = self.normalizer.letterbox_batch(chunk)
            results += decode_batch(self.run(tensor), self.spec, geometries, limits)
        return results

    def batch_limit(self, count: int) -> int:
        return self.backend.fixed_batch or max(count, 1)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs for a preprocessed batch; a fixed-batch model gets it in pieces (the last zero-padded)."""
        return self.backend.run_any(batch)


def resolve_model(path: Path, suffixes: tuple[str, ...], spec: ModelSpec, engine: str | None = None) -> Path:
    """The artifact file: ``path`` itself, or the file in folder ``path`` with one of ``suffixes``."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in suffixes)
        if not found:
            raise ModelLoadError(
                f"folder {path} holds no {'/'.join(suffixes)} file for its {spec.export_format} metadata"
            )
        return found[0]
    if engine and path.suffix not in suffixes:
        raise ModelLoadError(f"backend {engine!r} reads {'/'.join(suffixes)} files, not {path.name}")
    if path.suffix not in suffixes:
        raise MetadataMismatch(
            f"model file {path.name} does not fit metadata.json's export_format {spec.export_format!r} "
            f"(expected {'/'.join(suffixes)}): the metadata belongs to another artifact"
        )
    return path


if __name__ == "__main__":
    from .cli import main

    sys.exit(main())

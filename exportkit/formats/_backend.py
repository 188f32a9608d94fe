"""One runner per engine: formats a deployment runs through the Python runtime (ONNX Runtime, OpenVINO, LiteRT)
are validated and timed through that runtime's backend, not through a second copy of it.

``backend_runner(folder, export_format)`` is a format's ``runner``: it loads ``folder``'s artifact the way
``YOLOInference`` does (metadata.json read and checked by the runtime, the backend's output matching, its
input dtype, fixed-batch pieces) and adapts the harness's contract: an NCHW float batch in, the raw outputs in
metadata.json's order out. Formats with no deployable Python backend (TorchScript, CoreML, TensorRT) keep
their own runner behind the same contract.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from exportkit.errors import EnvironmentUnsupported, RuntimeRefused


class BackendRunner:
    """NCHW float batch -> list of raw outputs in metadata.json's order, through ``backend``."""

    def __init__(self, backend):
        self.backend = backend
        self.nhwc = backend.spec.preprocessing.layout == "NHWC"

    def __call__(self, batch):
        import numpy as np

        batch = batch.transpose(0, 2, 3, 1) if self.nhwc else batch
        outputs = self.backend.run_any(np.ascontiguousarray(batch, dtype=self.backend.input_dtype))
        return [outputs[name] for name in self.backend.spec.output_names]


def backend_runner(folder: Path, export_format: str, **backend_options) -> Callable:
    """The runtime's backend for ``export_format`` on ``folder`` (its metadata.json and artifact file).

    Raises EnvironmentUnsupported where the backend's package is missing and RuntimeRefused where the runtime
    refuses the artifact or its metadata.json (what a deployment would hit: validation fails on it).
    """
    from exportkit.runtime_import import runtime_module

    backends, errors = runtime_module("backends"), runtime_module("errors")
    load_spec, resolve_model = runtime_module("spec").load_spec, runtime_module("inference").resolve_model
    folder = Path(folder)
    try:
        spec = load_spec(folder / "metadata.json")
        backend_class = backends.backend_for(export_format)
        backend = backend_class(
            resolve_model(folder, backend_class.suffixes[:1], spec), spec, device="cpu", **backend_options
        )
    except errors.BackendUnavailable as exc:
        raise EnvironmentUnsupported(exc.one_line()) from exc
    except errors.InferenceError as exc:
        raise RuntimeRefused(f"the Python runtime refuses {folder.name}: {exc.one_line()}") from exc
    return BackendRunner(backend)

"""One runner per engine for SAM2's two parts: feeds by input name in, outputs in the artifact's order out.

The same code runs a part in ``SAM2Inference`` and in exportkit's validation, so parity tests what ships.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backends.base import import_package
from .errors import ModelLoadError

PART_FILES = {"onnx": "{part}.onnx", "openvino": "{part}.xml", "torchscript": "{part}.torchscript"}


class PartRunner:
    """Loads ``{part}`` of an export folder for its export format; ``run(feeds)`` returns a list of arrays."""

    def __init__(self, folder: Path, part: str, export_format: str, threads: int | None = None):
        if export_format not in PART_FILES:
            raise ModelLoadError(
                f"SAM2 {part}: export_format {export_format!r}; this runtime runs {', '.join(PART_FILES)}"
            )
        self.path = Path(folder) / PART_FILES[export_format].format(part=part)
        if not self.path.is_file():
            raise ModelLoadError(f"SAM2 {part} artifact {self.path} does not exist")
        self.export_format = export_format
        try:
            self._run = getattr(self, f"_load_{export_format}")(threads)
        except ModelLoadError:
            raise
        except Exception as exc:  # a damaged artifact: the engine's own refusal, as one line
            raise ModelLoadError(
                f"{self.path.name} could not be loaded: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            ) from None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._run(feeds)

    def _load_onnx(self, threads):
        ort = import_package("onnxruntime", "onnxruntime", "onnx")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return lambda feeds: session.run(None, {n: feeds[n] for n in names})

    def _load_openvino(self, threads):
        ov = import_package("openvino", "openvino", "openvino")
        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": "f32", **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
        compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)
        names = [sorted(p.get_names())[0] for p in compiled.inputs]
        outputs = list(compiled.outputs)

        def run(feeds):
            result = compiled([feeds[n] for n in names])
            return [np.asarray(result[o]) for o in outputs]

        return run

    def _load_torchscript(self, threads):
        torch = import_package("torch", "torch", "torchscript")
        if threads:
            torch.set_num_threads(threads)
        module = torch.jit.load(str(self.path), map_location="cpu").eval()
        names = [a.name for a in module.forward.schema.arguments[1:]]

        def run(feeds):
            with torch.inference_mode():
                out = module(*[torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names])
            return [t.numpy() for t in (out if isinstance(out, (list, tuple)) else [out])]

        return run

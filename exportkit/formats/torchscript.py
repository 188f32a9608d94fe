"""TorchScript: PyTorch-native deployment and C++ (libtorch) integration."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from exportkit.formats._ultralytics import move, plain_metadata, ultralytics_export
from exportkit.options import Option
from exportkit.registry import ArtifactIO, ExportFormat, ExportRequest, TensorInfo, register_format

# torch.jit.trace/load/save warn that TorchScript is deprecated on every call; the format is what users asked for.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")


@register_format
class TorchScriptFormat(ExportFormat):
    name = "torchscript"
    title = "TorchScript"
    files = ("model.torchscript",)
    options = (Option("optimize", bool, True, "Freeze the module and apply torch.jit inference optimisations"),)
    packages = {"torch": "torch"}
    extra = "torchscript"
    reproducible = ("fp32",)
    use_case = "PyTorch deployment, C++ integration"
    hardware = "CPU, GPU (CUDA)"

    def export(self, request: ExportRequest) -> list[Path]:
        import torch

        path = ultralytics_export(request, "torchscript", dynamic=False)
        extra_files = {"config.txt": ""}
        module = torch.jit.load(str(path), _extra_files=extra_files)
        if request.options["optimize"]:
            module = torch.jit.freeze(module.eval())
        metadata = plain_metadata(json.loads(extra_files["config.txt"] or "{}"))
        files = {"config.txt": json.dumps(metadata), "exportkit.json": json.dumps(request.extras.get("embedded_metadata", {}), sort_keys=True)}
        target = request.staging / "model.torchscript"
        torch.jit.save(module, str(path), _extra_files=files)
        return [move(path, target)]

    def describe(self, folder: Path) -> ArtifactIO:
        import numpy as np

        run = self.runner(folder)
        meta = _embedded(Path(folder) / "model.torchscript")
        imgsz = meta.get("imgsz", [640, 640])
        batch = int(meta.get("batch", 1))
        outputs = run(np.zeros((batch, 3, *imgsz), dtype=np.float32))
        return ArtifactIO(
            inputs=[TensorInfo("images", [batch, 3, *imgsz], "float32")],
            outputs=[TensorInfo(f"output{i}", list(o.shape), str(o.dtype)) for i, o in enumerate(outputs)],
        )

    def runner(self, folder: Path):
        import torch

        module = torch.jit.load(str(Path(folder) / "model.torchscript"), map_location="cpu").eval()

        def run(x):
            with torch.inference_mode():
                y = module(torch.from_numpy(x))
            y = y if isinstance(y, (list, tuple)) else [y]
            return [t.float().numpy() for t in y]

        return run

    @classmethod
    def format_checks(cls, folder: Path, metadata: dict) -> list:
        from exportkit.checkers import run_checker

        def load():
            import torch

            torch.jit.load(str(path), map_location="cpu")

        path = Path(folder) / "model.torchscript"
        return [run_checker("torch.jit.load", path, load)]


def _embedded(path: Path) -> dict:
    import torch

    files = {"config.txt": ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    return json.loads(files["config.txt"] or "{}")

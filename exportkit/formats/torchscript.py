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
        files = {
            "config.txt": json.dumps(metadata),
            "exportkit.json": json.dumps(request.embedded_metadata, sort_keys=True),
        }
        target = request.staging / "model.torchscript"
        torch.jit.save(module, str(path), _extra_files=files)
        _drop_debug_info(path)
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


def _drop_debug_info(path: Path) -> None:
    """Rewrite the archive without its ``*.debug_pkl`` records: they hold source ranges with the absolute paths
    of the Python files that traced the model (site-packages, exportkit), so the bytes would depend on where the
    interpreter and the checkout live. torch.jit.load does not need them; error messages lose source lines."""
    import hashlib
    import zipfile

    tmp = path.with_suffix(".nodebug")
    with zipfile.ZipFile(path) as source:
        records = [
            (i.filename, source.read(i.filename)) for i in source.infolist() if not i.filename.endswith(".debug_pkl")
        ]
    kept = [(n, d) for n, d in records if not n.endswith(".data/serialization_id")]
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + data for name, data in kept)).hexdigest()
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as target:
        for name, data in records:
            if name.endswith(".data/serialization_id"):  # torch derives it from every record written, debug ones too
                data = str(int(digest, 16))[:40].encode()
            target.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    tmp.replace(path)


def _embedded(path: Path) -> dict:
    import torch

    files = {"config.txt": ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    return json.loads(files["config.txt"] or "{}")

"""ONNX: cross-platform deployment, cloud inference (runs on ONNX Runtime)."""

from __future__ import annotations

import json
from pathlib import Path

from exportkit.formats._ultralytics import VOLATILE_KEYS, move, ultralytics_export
from exportkit.options import Option
from exportkit.registry import ArtifactIO, ExportFormat, ExportRequest, TensorInfo, register_format

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
}


@register_format
class OnnxFormat(ExportFormat):
    name = "onnx"
    title = "ONNX"
    files = ("model.onnx",)
    options = (
        Option("opset_version", int, 17, "ONNX opset version", 13, 18),
        Option("dynamic_axes", bool, False, "Enable dynamic batch/height/width"),
        Option("simplify", bool, True, "Simplify the ONNX graph (onnxslim)"),
        Option("half", bool, False, "Export as FP16 (float16 weights, float32 inputs and outputs)"),
    )
    precisions = {"fp32": {"half": False}, "fp16": {"half": True}}
    packages = {"onnx": "onnx", "onnxruntime": "onnxruntime", "onnxslim": "onnxslim"}
    extra = "onnx"
    reproducible = ("fp32", "fp16")
    use_case = "Cross-platform deployment, cloud inference"
    hardware = "CPU, GPU (CUDA, OpenCL)"

    def export(self, request: ExportRequest) -> list[Path]:
        o = request.options
        path = ultralytics_export(
            request,
            "onnx",
            opset=o["opset_version"],
            dynamic=o["dynamic_axes"],
            simplify=o["simplify"],
            quantize=16 if o["half"] else None,
        )
        target = move(path, request.staging / "model.onnx")
        _rewrite_metadata_props(target, request.embedded_metadata)
        return [target]

    def describe(self, folder: Path) -> ArtifactIO:
        session = _session(Path(folder) / "model.onnx")
        return ArtifactIO(
            inputs=[_info(t) for t in session.get_inputs()], outputs=[_info(t) for t in session.get_outputs()]
        )

    def runner(self, folder: Path):
        """The Python runtime's ONNX Runtime backend, as a deployment loads it (exportkit.formats._backend)."""
        from exportkit.formats._backend import backend_runner

        return backend_runner(folder, self.name)

    @classmethod
    def format_checks(cls, folder: Path, metadata: dict) -> list:
        from exportkit.checkers import check_onnx

        return [check_onnx(Path(folder) / "model.onnx")]


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _info(arg) -> TensorInfo:
    shape = [d if isinstance(d, int) else -1 for d in arg.shape]
    return TensorInfo(arg.name, shape, _ORT_TYPES.get(arg.type, arg.type))


def _rewrite_metadata_props(path: Path, extra: dict) -> None:
    """Drop run-dependent keys (so identical inputs give identical bytes), add exportkit's JSON, and put the
    nodes in topological order (the FP16 conversion appends its input/output Casts last, which ONNX forbids)."""
    import onnx

    model = onnx.load(str(path))
    topologically_sort(model.graph)
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in VOLATILE_KEYS]
    del model.metadata_props[:]
    for key, value in kept + [("exportkit", json.dumps(extra, sort_keys=True))]:
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))


def topologically_sort(graph) -> None:
    """Reorder ``graph.node`` so each node follows the producers of its inputs; the existing order is kept
    wherever it is already valid (Kahn's algorithm, lowest original index first: deterministic)."""
    import heapq

    nodes = list(graph.node)
    producer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    needs = [
        {producer[name] for name in node.input if name in producer and producer[name] != i}
        for i, node in enumerate(nodes)
    ]
    users: dict[int, list[int]] = {}
    for i, deps in enumerate(needs):
        for dep in deps:
            users.setdefault(dep, []).append(i)
    waiting = [len(deps) for deps in needs]
    ready = [i for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for user in users.get(i, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(order) != len(nodes):  # a cycle: leave the graph as it is, onnx.checker will say so
        return
    if order != list(range(len(nodes))):
        del graph.node[:]
        graph.node.extend(nodes[i] for i in order)

"""The PyTorch reference: a checkpoint's model in export mode, giving the raw outputs the exporter traced.

Core, so a format can read the traced shapes (CoreML's neuralNetwork outputs) and validation can compare
against it; torch is imported when a runner is built.
"""

from __future__ import annotations

import numpy as np


def reference_runner(yolo):
    """The PyTorch model in export mode: the same raw outputs the exporter traced."""
    import copy

    import torch
    from ultralytics.nn.modules import Detect

    model = copy.deepcopy(yolo.model).float().eval().fuse()
    for module in model.modules():
        if isinstance(module, Detect):
            module.export, module.format, module.dynamic = True, "onnx", False
            module.shape = None

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            y = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        y = y if isinstance(y, (list, tuple)) else [y]
        return [t.float().numpy() for t in y]

    return run

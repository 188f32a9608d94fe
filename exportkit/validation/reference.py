"""What the PyTorch side of a comparison sees: Ultralytics' own preprocessing and metadata.json as it should be.

The runner itself (the model in export mode) is core, ``exportkit.reference``, since a format reads traced
shapes from it too.
"""

from __future__ import annotations

import json

import numpy as np

from exportkit.reference import reference_runner

__all__ = ["reference_metadata", "reference_runner", "reference_tensor"]


def reference_tensor(image_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Ultralytics' own preprocessing (LetterBox, BGR->RGB, /255), independent of metadata.json."""
    from ultralytics.data.augment import LetterBox

    boxed = LetterBox(new_shape=size, auto=False, scaleup=True, center=True)(image=image_bgr)
    return np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def reference_metadata(metadata: dict, info, size: tuple[int, int]) -> dict:
    """metadata.json as it should be for this checkpoint (what the reference decodes with)."""
    from exportkit.metadata import POSTPROCESSING, PREPROCESSING, keypoint_facts, output_layout
    from exportkit.registry import ArtifactIO, TensorInfo

    ref = json.loads(json.dumps(metadata))
    ref.update(
        class_names=info.names,
        num_classes=len(info.names),
        task=info.task,
        input_shape=[size[0], size[1], 3],
        preprocessing=dict(PREPROCESSING),
        postprocessing=dict(POSTPROCESSING),
    )
    ref["dynamic"] = {"batch": True, "spatial": False}
    outputs = [TensorInfo(o["name"], o["shape"], o.get("dtype", "float32")) for o in metadata["outputs"]]
    layout = output_layout(
        info, ArtifactIO([], outputs), check=False
    )  # the reference's own raw head, the artifact's names
    if info.task == "pose":
        ref["keypoint_names"], ref["skeleton"] = keypoint_facts(info)
        ref["num_keypoints"] = info.kpt_shape[0]
    ref["output_layout"] = layout
    ref["outputs"] = [{**o, "shape": [-1, *o["shape"][1:]]} for o in metadata["outputs"]]
    ref["inputs"] = [{**metadata["inputs"][0], "shape": [-1, 3, size[0], size[1]], "dtype": "float32"}]
    return ref

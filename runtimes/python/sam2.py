"""SAM2 inference on an exportkit export folder: set an image once, prompt it many times.

    from runtimes.python.sam2 import SAM2Inference
    sam = SAM2Inference("exports/sam2-t-onnx")
    sam.set_image("photo.jpg")                       # runs the image encoder once
    result = sam.predict(points=[[320, 240]])        # runs the prompt decoder (tens of ms)
    result.masks, result.scores                      # (N, M, h, w) bool at the image's resolution, (N, M)

    python -m runtimes.python.sam2 MODEL_DIR IMAGE --point X,Y [--box X1,Y1,X2,Y2] [--multimask] [--save out.jpg]

Errors are the runtime's typed errors (runtimes.python.errors), as for YOLOInference: ModelLoadError (exit 3),
RuntimeInputError (exit 2), BackendUnavailable (exit 4).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InferenceError, ModelLoadError, RuntimeInputError
from .images import load_image
from .sam2_parts import PartRunner
from .sam2_process import encode_prompts, letterbox_image, select_masks, upscale_masks

FEATURES = ("high_res_feats_0", "high_res_feats_1", "image_embed")
MASK_INPUT_SHAPE = (1, 256, 256)


@dataclass
class SAM2Result:
    masks: np.ndarray  # (N, M, h, w) bool at the original resolution (logits > mask_threshold)
    scores: np.ndarray  # (N, M) predicted IoU
    low_res_logits: np.ndarray  # (N, M, 256, 256): feed one back as mask_input to refine


def read_sam2_metadata(folder: Path) -> dict:
    path = Path(folder) / "metadata.json"
    if not path.is_file():
        raise ModelLoadError(f"{path} does not exist; pass an exportkit SAM2 export folder")
    try:
        metadata = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(metadata, dict) or metadata.get("model_family") != "sam2":
        raise ModelLoadError(f"{path} does not describe a SAM2 export (model_family is not 'sam2')")
    pre, post = metadata.get("preprocessing"), metadata.get("postprocessing")
    try:
        ok = (
            len(pre["mean"]) == 3
            and len(pre["std"]) == 3
            and all(float(s) > 0 for s in pre["std"])
            and 0 <= int(pre["pad_value"]) <= 255
            and pre["color_space"] in ("RGB", "BGR")
            and isinstance(float(post["mask_threshold"]), float)
            and len(post["multimask_tokens"]) >= 1
        )
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ModelLoadError(f"{path}: preprocessing/postprocessing are missing or malformed")
    return metadata


class SAM2Inference:
    """Load once; ``set_image`` per image, ``predict`` per prompt. Not thread-safe: one instance per thread."""

    def __init__(self, model_dir: str | Path, *, threads: int | None = None):
        folder = Path(model_dir)
        if not folder.is_dir():
            raise ModelLoadError(f"model folder {folder} does not exist")
        self.metadata = read_sam2_metadata(folder)
        fmt = self.metadata.get("export_format")
        self.encoder = PartRunner(folder, "encoder", fmt, threads)
        self.decoder = PartRunner(folder, "decoder", fmt, threads)
        self.features: dict | None = None
        self.letterbox = None

    def set_image(self, image) -> None:
        """Run the image encoder on ``image`` (path, BGR uint8 array, PIL image or bytes)."""
        tensor, self.letterbox = letterbox_image(load_image(image), self.metadata["preprocessing"])
        self.features = dict(zip(FEATURES, self.encoder.run({"image": tensor})))

    def decode(self, point_coords: np.ndarray, point_labels: np.ndarray, mask_input: np.ndarray | None = None):
        """The raw decoder: (N,P,2) coords in 1024-pixel units, (N,P) labels -> all tokens' logits and IoU."""
        if self.features is None:
            raise RuntimeInputError("call set_image(image) before predict()")
        n = len(point_coords)
        has = np.ones(n, np.float32) if mask_input is not None else np.zeros(n, np.float32)
        if mask_input is None:
            mask_input = np.zeros((n, *MASK_INPUT_SHAPE), np.float32)
        mask_input = np.asarray(mask_input, np.float32)
        if mask_input.shape != (n, *MASK_INPUT_SHAPE):
            raise RuntimeInputError(f"mask_input must have shape ({n}, 1, 256, 256), got {list(mask_input.shape)}")
        feeds = {
            **self.features,
            "point_coords": point_coords,
            "point_labels": point_labels,
            "mask_input": np.ascontiguousarray(mask_input),
            "has_mask_input": has,
        }
        return self.decoder.run(feeds)

    def predict(self, points=None, labels=None, boxes=None, multimask: bool = False, mask_input=None) -> SAM2Result:
        """Masks at the original resolution with their predicted IoU; prompts in original image pixels."""
        if self.letterbox is None:
            raise RuntimeInputError("call set_image(image) before predict()")
        coords, tags = encode_prompts(self.letterbox, points, labels, boxes)
        masks, iou = self.decode(coords, tags, mask_input)
        post = self.metadata["postprocessing"]
        low, scores = select_masks(masks, iou, multimask, post)
        full = upscale_masks(low, self.letterbox)
        return SAM2Result(full > float(post["mask_threshold"]), scores, low)


def _pair(text: str, count: int, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise RuntimeInputError(f"{what} must be {count} comma-separated numbers, got {text!r}")
    return values


def draw(image_bgr: np.ndarray, masks: np.ndarray) -> np.ndarray:
    colours = np.array([[56, 56, 255], [151, 157, 255], [31, 112, 255], [29, 178, 255], [49, 210, 207]], np.uint8)
    out = image_bgr.copy()
    for i, mask in enumerate(masks.reshape(-1, *masks.shape[-2:])):
        out[mask] = (0.5 * out[mask] + 0.5 * colours[i % len(colours)]).astype(np.uint8)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m runtimes.python.sam2", description="Segment an image with a SAM2 export"
    )
    parser.add_argument("model_dir")
    parser.add_argument("image")
    parser.add_argument(
        "--point", action="append", default=[], metavar="X,Y", help="a foreground point (repeatable: one object)"
    )
    parser.add_argument("--box", metavar="X1,Y1,X2,Y2")
    parser.add_argument("--multimask", action="store_true", help="return the three candidate masks")
    parser.add_argument("--save", metavar="OUT.jpg", help="draw the masks on the image")
    args = parser.parse_args(argv)
    try:
        points = [[_pair(p, 2, "--point") for p in args.point]] if args.point else None
        box = [_pair(args.box, 4, "--box")] if args.box else None
        sam = SAM2Inference(args.model_dir)
        image = load_image(args.image)
        sam.set_image(image)
        result = sam.predict(points=points, boxes=box, multimask=args.multimask)
        for j, (mask, score) in enumerate(zip(result.masks[0], result.scores[0])):
            print(f"mask {j}: score {score:.4f}, {int(mask.sum())} pixels of {mask.size}")
        if args.save:
            import cv2

            if not cv2.imwrite(args.save, draw(image, result.masks[0])):
                raise RuntimeInputError(f"cannot write {args.save}")
            print(f"saved {args.save}")
    except InferenceError as exc:
        print(exc.one_line(), file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Latency of a SAM2 export through runtimes/python/sam2.py: the image encoder once per image, the prompt decoder
per prompt (the interactive part), medians of wall-clock milliseconds.

    encoder        SAM2Inference.set_image(image array): letterbox, normalise, run the encoder
    decoder        the raw decoder call for one object with one point (decode)
    predict        SAM2Inference.predict(points=one point): encode prompts, decoder, choose the mask, upscale
    predict x3     three objects at once (one point each) in one decoder call
    predict box    one box prompt

    python benchmarks/sam2_latency.py                              # exports sam2-t to .cache/benchmarks (once)
    python benchmarks/sam2_latency.py --formats onnx openvino --rounds 20
    python benchmarks/sam2_latency.py --model-dir exports/sam2    # an existing export folder
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGE = ROOT / "models" / "samples" / "shapes_3_480x320.jpg"


def export_folder(fmt: str) -> Path:
    from exportkit.zoo import build_architecture

    folder = ROOT / ".cache" / "benchmarks" / f"sam2-t-{fmt}"
    if not (folder / "metadata.json").exists():
        cmd = [
            sys.executable,
            str(ROOT / "export.py"),
            "--checkpoint_path",
            str(build_architecture("sam2-t")),
            "--export_format",
            fmt,
            "--output_dir",
            str(folder),
        ]
        subprocess.run(cmd, check=True, cwd=ROOT)
    return folder


def median_ms(call, rounds: int) -> float:
    call()  # warm-up, untimed
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(folder: Path, rounds: int, encoder_rounds: int) -> dict:
    import cv2
    import numpy as np

    from runtimes.python.sam2 import SAM2Inference

    image = cv2.imread(str(IMAGE))
    h, w = image.shape[:2]
    sam = SAM2Inference(folder)
    row = {"encoder": median_ms(lambda: sam.set_image(image), encoder_rounds)}
    coords, labels = np.array([[[w / 2, h / 2]]], np.float32) * sam.letterbox.gain, np.ones((1, 1), np.float32)
    row["decoder"] = median_ms(lambda: sam.decode(coords, labels), rounds)
    row["predict"] = median_ms(lambda: sam.predict(points=[[w / 2, h / 2]]), rounds)
    row["predict x3"] = median_ms(
        lambda: sam.predict(points=[[w * 0.2, h * 0.3], [w / 2, h / 2], [w * 0.8, h * 0.7]]), rounds
    )
    row["predict box"] = median_ms(lambda: sam.predict(boxes=[[w * 0.2, h * 0.2, w * 0.7, h * 0.8]]), rounds)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--formats", nargs="+", default=["onnx", "openvino", "torchscript"])
    parser.add_argument("--model-dir", nargs="+", type=Path, help="existing SAM2 export folders instead of --formats")
    parser.add_argument("--rounds", type=int, default=10, help="timed decoder calls per column")
    parser.add_argument("--encoder-rounds", type=int, default=3)
    args = parser.parse_args(argv)
    folders = args.model_dir or [export_folder(fmt) for fmt in args.formats]
    columns = ["encoder", "decoder", "predict", "predict x3", "predict box"]
    print(
        f"SAM2 latency, median ms ({args.rounds} decoder calls, {args.encoder_rounds} encoder calls), image {IMAGE.name}"
    )
    print("| export | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for folder in folders:
        row = measure(folder, args.rounds, args.encoder_rounds)
        print(f"| {folder.name} | " + " | ".join(f"{row[c]:.1f}" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

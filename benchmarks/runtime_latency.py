"""Latency of the Python runtime, side by side with ONNX Runtime alone and with Ultralytics' own predict.

For each model: export it to ONNX (once, cached under .cache/benchmarks), then time, round by
round in a random order, on the same artifact and the same image so a busy machine slows every column alike:

  session.run    ONNX Runtime alone on the already preprocessed tensor: a session with ORT's defaults (what
                 Ultralytics uses) and the runtime's own session (the floor for its end-to-end time; it turns
                 ORT's thread spinning off unless --spin)
  runtime        YOLOInference.predict(image array) end to end: letterbox, run, decode
  runtime path   the same from the image path (adds JPEG decoding)
  ultralytics    YOLO(model.onnx).predict(image array) end to end, same thresholds, retina masks
  pre+post       the runtime's letterbox, normalisation and decoding alone (short, so steady under load)

and print one table of medians, wall-clock and process CPU time (the latter barely moves when other jobs load
the machine), with the ratios. Goals: runtime / session.run <= 1.10, ultralytics / runtime
>= 1.3.

    python benchmarks/runtime_latency.py                       # yolo11n at 640 + the bundled models present
    python benchmarks/runtime_latency.py --runs 50 --image models/samples/shapes_3_480x320.jpg
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "benchmarks"
SAMPLES = ROOT / "models" / "samples"
ENV = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False", "PYTHONPATH": str(ROOT)}


@dataclass(frozen=True)
class Case:
    name: str
    task: str
    checkpoint: Path
    config: dict


def cases(names: list[str]) -> list[Case]:
    known = {
        "yolo11n-640": Case("yolo11n-640 (untrained)", "detect", ROOT / ".cache/zoo/yolo11n-640.pt", {"imgsz": 640}),
        "shapes-det": Case("shapes-det", "detect", ROOT / "models/shapes-det.pt", {}),
        "shapes-seg": Case("shapes-seg", "segment", ROOT / "models/shapes-seg.pt", {}),
        "shapes-pose": Case("shapes-pose", "pose", ROOT / "models/shapes-pose.pt", {}),
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"unknown model {unknown}; choose from {', '.join(known)}")
    return [known[n] for n in names]


def ensure_checkpoint(case: Case) -> bool:
    if case.checkpoint.exists():
        return True
    if case.name.startswith("yolo11n-640"):
        subprocess.run([sys.executable, "-m", "exportkit.zoo", "yolo11n"], env=ENV, cwd=ROOT, check=True)
        return True
    print(f"skipping {case.name}: {case.checkpoint} not found", file=sys.stderr)
    return False


def export(case: Case) -> Path:
    """ONNX export of the case (static batch), made once and reused."""
    out = CACHE / f"{case.checkpoint.stem}-{case.config.get('imgsz', 'default')}-onnx"
    if (out / "metadata.json").exists() and (out / "model.onnx").exists():
        return out
    cmd = [sys.executable, str(ROOT / "export.py"), "--checkpoint_path", str(case.checkpoint), "--export_format",
           "onnx", "--output_dir", str(out), "--export_config", json.dumps(case.config)]
    subprocess.run(cmd, env=ENV, cwd=ROOT, check=True, capture_output=True)
    return out


def interleaved(methods: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """Wall-clock and process CPU milliseconds per call. Each round calls every method once, in a fresh random
    order, so load spikes and whatever one method leaves behind (warm caches, spinning threads) spread evenly."""
    for _ in range(warmup):
        for call in methods.values():
            call()
    order = random.Random(0)
    names = list(methods)
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in methods}
    for _ in range(runs):
        order.shuffle(names)
        for name in names:
            wall, cpu = time.perf_counter(), time.process_time()
            methods[name]()
            times[name]["cpu"].append((time.process_time() - cpu) * 1000)
            times[name]["wall"].append((time.perf_counter() - wall) * 1000)
    return times


def measure(case: Case, folder: Path, image_path: Path, runs: int, warmup: int, spin: bool) -> dict:
    import onnxruntime as ort
    from ultralytics import YOLO

    from runtimes.python.images import load_image
    from runtimes.python.inference import YOLOInference
    from runtimes.python.postprocess import Thresholds, decode_batch
    from runtimes.python.preprocess import letterbox, letterbox_image

    metadata = json.loads((folder / "metadata.json").read_text())
    post, (h, w) = metadata["postprocessing"], metadata["input_shape"][:2]
    conf, iou = post["confidence_threshold"], post["iou_threshold"]
    image = load_image(image_path)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: letterbox(image, metadata).tensor}
    runtime = YOLOInference(folder / "model.onnx", spin=spin)
    ultralytics = YOLO(str(folder / "model.onnx"), task=case.task)
    options = dict(imgsz=(h, w), device="cpu", verbose=False, conf=conf, iou=iou, retina_masks=True)
    outputs, limits = runtime.run(feed[session.get_inputs()[0].name]), Thresholds.resolve(runtime.spec, conf, iou)

    def pre_post():  # everything predict does but the inference itself
        boxed, geometry = letterbox_image(image, runtime.spec.preprocessing)
        runtime.normalizer.batch([boxed])
        decode_batch(outputs, runtime.spec, [geometry], limits)

    times = interleaved({
        "session.run": lambda: session.run(None, feed),
        "runtime session.run": lambda: runtime.backend.session.run(None, feed),
        "runtime": lambda: runtime.predict(image, conf, iou),
        "runtime path": lambda: runtime.predict(image_path, conf, iou),
        "ultralytics": lambda: ultralytics.predict(image, **options),
        "pre+post": pre_post,
    }, runs, warmup)
    found = len(runtime.predict(image, conf, iou))
    medians = {name: {kind: statistics.median(v) for kind, v in t.items()} for name, t in times.items()}
    return {"case": case, "input": f"{h}x{w}", "detections": found, **medians}


COLUMNS = ("session.run", "runtime session.run", "runtime", "runtime path", "ultralytics", "pre+post")
RATIOS = (("runtime", "runtime session.run"), ("runtime", "session.run"), ("ultralytics", "runtime"))


def table(rows: list[dict]) -> str:
    """Cells are "wall ms (process CPU ms)"; ratios likewise."""
    head = ("| model | task | input | dets | session.run, ORT defaults | session.run, runtime's session | runtime "
            "| runtime (path) | ultralytics | runtime pre+post alone | runtime / its session.run | runtime / session.run "
            "| ultralytics / runtime |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [f"{r[k]['wall']:.1f} ({r[k]['cpu']:.1f})" for k in COLUMNS]
        cells += [f"{r[a]['wall'] / r[b]['wall']:.2f}x ({r[a]['cpu'] / r[b]['cpu']:.2f}x)" for a, b in RATIOS]
        lines.append(f"| {r['case'].name} | {r['case'].task} | {r['input']} | {r['detections']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["yolo11n-640", "shapes-det", "shapes-seg", "shapes-pose"])
    p.add_argument("--image", type=Path, default=SAMPLES / "shapes_3_480x320.jpg")
    p.add_argument("--runs", type=int, default=40, help="timed calls per method (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--spin", action="store_true", help="run the runtime with ORT's default thread spinning, "
                   "so its session is configured exactly like Ultralytics'")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="False")

    rows = []
    for case in cases(args.models):
        if ensure_checkpoint(case):
            rows.append(measure(case, export(case), args.image, args.runs, args.warmup, args.spin))
    load = os.getloadavg()
    print(f"image {args.image.name}; median of {args.runs} interleaved calls per method; milliseconds wall-clock "
          f"(process CPU); {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    if load[0] > (os.cpu_count() or 1):
        print("the machine is busy: wall-clock times include waiting for a CPU; the CPU-time ratios are the steadier ones")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Latency of the Python runtime, side by side with ONNX Runtime alone and with Ultralytics' own predict.

For each model: export it to ONNX (once, cached under .cache/benchmarks), then time on the same artifact and
the same image, in one process:

  session.run    ONNX Runtime alone on the already preprocessed tensor: a session with ORT's defaults (what
                 Ultralytics uses: the floor), and the runtime's own session
  runtime        YOLOInference.predict(image array) end to end: letterbox, normalise, run, decode
  runtime path   the same from the image file (adds JPEG decoding)
  ultralytics    YOLO(model.onnx).predict(...) end to end on the array and on the file, same thresholds,
                 retina masks
  pre+post       the runtime's letterbox, normalisation and decoding alone

Timing runs in rounds of blocks: each round calls every method `--block` times in a row (the first call of a
block untimed), in a fresh random order per round. Blocks, not single interleaved calls: every ONNX Runtime
session owns a thread pool whose threads keep spinning for a while after a run, so calling session A right
after session B measures A competing with B's spinning threads rather than A. Medians over all timed calls;
wall-clock, and process CPU time in brackets.

Ratios: runtime / its own session.run (goal <= 1.10; the same session object, so the ratio is the cost of
pre- and post-processing alone), ultralytics / runtime (goal >= 1.3), and ultralytics / the faster of the two
session.run columns: Ultralytics' whole overhead over the same inference, the most that any runtime on an
ONNX Runtime session could gain over it.

    python benchmarks/runtime_latency.py                       # yolo11n at 640 + the bundled models present
    python benchmarks/runtime_latency.py --rounds 12 --image models/samples/shapes_0_320x240.jpg
    python benchmarks/runtime_latency.py --no-spin             # the runtime's session with spin=False
    python benchmarks/runtime_latency.py --engines             # + OpenVINO's CPU plugin on the same model.onnx
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
    cmd = [
        sys.executable,
        str(ROOT / "export.py"),
        "--checkpoint_path",
        str(case.checkpoint),
        "--export_format",
        "onnx",
        "--output_dir",
        str(out),
        "--export_config",
        json.dumps(case.config),
    ]
    subprocess.run(cmd, env=ENV, cwd=ROOT, check=True, capture_output=True)
    return out


def blocks(methods: dict[str, Callable[[], object]], rounds: int, block: int) -> dict[str, dict[str, list[float]]]:
    """Wall-clock and process CPU milliseconds per call, gathered in rounds of blocks (see the module's text)."""
    order = random.Random(0)
    names = list(methods)
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in methods}
    for _ in range(rounds):
        order.shuffle(names)
        for name in names:
            call = methods[name]
            call()  # untimed: the switch from another method's session
            for _ in range(block):
                wall, cpu = time.perf_counter(), time.process_time()
                call()
                times[name]["cpu"].append((time.process_time() - cpu) * 1000)
                times[name]["wall"].append((time.perf_counter() - wall) * 1000)
    return times


def openvino_methods(folder: Path, tensor) -> dict[str, Callable[[], object]]:
    """OpenVINO's CPU plugin on the same model.onnx and tensor: at f32, and at the plugin's default precision
    (bf16 on CPUs with AMX: a different numeric precision, so not the same artifact's results)."""
    import openvino as ov

    core = ov.Core()
    methods = {}
    for label, hint in (("openvino f32", {"INFERENCE_PRECISION_HINT": "f32"}), ("openvino default", {})):
        request = core.compile_model(
            str(folder / "model.onnx"), "CPU", {"PERFORMANCE_HINT": "LATENCY", **hint}
        ).create_infer_request()
        methods[label] = lambda request=request: request.infer({0: tensor})
    return methods


def measure(
    case: Case, folder: Path, image_path: Path, rounds: int, block: int, spin: bool, engines: bool = False
) -> dict:
    import onnxruntime as ort
    from ultralytics import YOLO

    from runtimes.python.images import load_image
    from runtimes.python.inference import YOLOInference
    from runtimes.python.postprocess import Thresholds, decode_batch
    from runtimes.python.preprocess import letterbox

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
        _, geometries = runtime.normalizer.letterbox_batch([image])
        decode_batch(outputs, runtime.spec, geometries, limits)

    times = blocks(
        {
            "session.run": lambda: session.run(None, feed),
            "runtime session.run": lambda: runtime.backend.session.run(None, feed),
            "runtime": lambda: runtime.predict(image, conf, iou),
            "runtime path": lambda: runtime.predict(image_path, conf, iou),
            "ultralytics": lambda: ultralytics.predict(image, **options),
            "ultralytics path": lambda: ultralytics.predict(str(image_path), **options),
            "pre+post": pre_post,
        },
        rounds,
        block,
    )
    if engines:  # timed apart: OpenVINO's worker threads must not run beside the main table's sessions
        tensor = feed[session.get_inputs()[0].name]
        on_openvino = YOLOInference(folder / "model.onnx", backend="openvino")  # f32, the same precision
        times |= blocks(
            {
                "engines ort": lambda: session.run(None, feed),
                **openvino_methods(folder, tensor),
                "engines runtime openvino": lambda: on_openvino.predict(image, conf, iou),
                "engines ultralytics": lambda: ultralytics.predict(image, **options),
            },
            rounds,
            block,
        )
    found = len(runtime.predict(image, conf, iou))
    medians = {name: {kind: statistics.median(v) for kind, v in t.items()} for name, t in times.items()}
    medians["floor"] = min(medians["session.run"], medians["runtime session.run"], key=lambda m: m["wall"])
    return {"case": case, "input": f"{h}x{w}", "detections": found, **medians}


COLUMNS = (
    ("session.run", "session.run, ORT defaults"),
    ("runtime session.run", "session.run, runtime's session"),
    ("runtime", "runtime"),
    ("ultralytics", "ultralytics"),
    ("runtime path", "runtime (file)"),
    ("ultralytics path", "ultralytics (file)"),
    ("pre+post", "runtime pre+post alone"),
)
RATIOS = (
    ("runtime", "runtime session.run", "runtime / its session.run (goal <= 1.10)"),
    ("ultralytics", "runtime", "ultralytics / runtime (goal >= 1.3)"),
    ("ultralytics path", "runtime path", "the same from the file"),
    ("ultralytics", "floor", "ultralytics / faster session.run (the most any runtime can gain)"),
)


def table(rows: list[dict]) -> str:
    """Cells are "wall ms (process CPU ms)"; ratios likewise."""
    head = "| model | task | input | dets | " + " | ".join([c for _, c in COLUMNS] + [r for *_, r in RATIOS]) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [f"{r[k]['wall']:.1f} ({r[k]['cpu']:.1f})" for k, _ in COLUMNS]
        cells += [f"{r[a]['wall'] / r[b]['wall']:.2f}x ({r[a]['cpu'] / r[b]['cpu']:.2f}x)" for a, b, _ in RATIOS]
        lines.append(
            f"| {r['case'].name} | {r['case'].task} | {r['input']} | {r['detections']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def engines_table(rows: list[dict]) -> str:
    """Inference alone on the same model.onnx and tensor: ONNX Runtime vs OpenVINO's CPU plugin."""
    head = (
        "| model | input | ORT session.run (ORT defaults) | OpenVINO f32 | OpenVINO default precision "
        "| ORT / OpenVINO f32 | ORT / OpenVINO default | runtime predict, backend='openvino' (f32) | ultralytics "
        "| ultralytics / runtime on OpenVINO |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    keys = ("engines ort", "openvino f32", "openvino default", "engines runtime openvino", "engines ultralytics")
    for r in rows:
        floor, f32, default, runtime, ultralytics = (r[k]["wall"] for k in keys)
        lines.append(
            f"| {r['case'].name} | {r['input']} | {floor:.1f} | {f32:.1f} | {default:.1f} | {floor / f32:.2f}x "
            f"| {floor / default:.2f}x | {runtime:.1f} | {ultralytics:.1f} | {ultralytics / runtime:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["yolo11n-640", "shapes-det", "shapes-seg", "shapes-pose"])
    p.add_argument("--image", type=Path, default=SAMPLES / "shapes_3_480x320.jpg")
    p.add_argument("--rounds", type=int, default=6, help="rounds; each calls every method in a block")
    p.add_argument("--block", type=int, default=8, help="timed calls per method and round (median of all reported)")
    p.add_argument(
        "--no-spin",
        dest="spin",
        action="store_false",
        help="run the runtime's session with spin=False (no busy-waiting intra-op threads, for shared hosts)",
    )
    p.add_argument(
        "--engines",
        action="store_true",
        help="also time OpenVINO's CPU plugin on the same model.onnx "
        "(f32 and its default precision) and print a second table",
    )
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="False")

    rows = []
    for case in cases(args.models):
        if ensure_checkpoint(case):
            rows.append(measure(case, export(case), args.image, args.rounds, args.block, args.spin, args.engines))
    load = os.getloadavg()
    print(
        f"image {args.image.name}; median of {args.rounds} rounds x {args.block} calls per method; milliseconds wall-clock "
        f"(process CPU); {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    if load[0] > (os.cpu_count() or 1):
        print(
            "the machine is busy: wall-clock times include waiting for a CPU; the CPU-time ratios are the steadier ones"
        )
    print(table(rows))
    if args.engines:
        print("\nother engines on the same model.onnx and tensor, timed apart (ms wall-clock)")
        print(engines_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

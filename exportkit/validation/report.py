"""`python -m exportkit report FOLDER`: every artifact under FOLDER in one view, with parity against PyTorch.

Per artifact: model, task, format, precision, size, export time, parity (status, worst box IoU and
confidence difference, max raw difference), box mAP50 on the generated shapes validation split for the
artifact and for its .pt (so INT8 damage shows), and latency / FPS on this machine through the same
runners validation uses. Written as report.md and as one self-contained report.html with a chart.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
LATENCY_RUNS = 20


@dataclass
class Row:
    folder: Path
    model: str
    task: str
    format: str
    precision: str
    size_mb: float
    export_s: float | None
    parity: str
    worst_iou: float | None
    worst_conf: float | None
    worst_raw: float | None  # max |exported - reference| / max |reference| over every raw output (relative)
    map50: float | None
    map50_pt: float | None
    latency_ms: float | None
    note: str = ""
    path: str = ""  # the artifact folder, relative to the report's folder: two exports of one model differ here
    map50_95: float | None = None
    accuracy_on: str = "shapes val"

    @property
    def fps(self) -> float | None:
        return 1000.0 / self.latency_ms if self.latency_ms else None


def find_exports(folder: Path) -> list[Path]:
    return sorted(p.parent for p in Path(folder).rglob("metadata.json") if ".exportkit-staging-" not in str(p))


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def export_seconds(folder: Path, metadata: dict) -> float | None:
    status = folder / "status.json"
    if status.exists():
        return json.loads(status.read_text()).get("seconds")
    return metadata.get("export_seconds")


def measure_latency(run, tensor: np.ndarray, runs: int = LATENCY_RUNS) -> float:
    run(tensor)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(tensor)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


class _PtCache:
    """The PyTorch side is shared by every artifact of one checkpoint: load and evaluate it once."""

    def __init__(self):
        self.models: dict = {}
        self.scores: dict = {}

    def model(self, path: str):
        if path not in self.models:
            from exportkit.checkpoint import load_checkpoint

            self.models[path] = load_checkpoint(Path(path))
        return self.models[path]

    def map50(self, metadata: dict, size) -> float:
        from exportkit.validation import reference_metadata, reference_runner
        from exportkit.validation.accuracy import evaluate

        key = (metadata["checkpoint"]["sha256"], tuple(size))
        if key not in self.scores:
            yolo, info = self.model(metadata["checkpoint"]["path"])
            self.scores[key] = evaluate(reference_runner(yolo), reference_metadata(metadata, info, size))
        return self.scores[key]


def build_row(folder: Path, cache: _PtCache, accuracy: bool = True) -> Row:
    from exportkit.registry import get_format
    from exportkit.validation import artifact_input_size, sample_input
    from exportkit.validation.accuracy import applies_to, evaluate

    metadata = json.loads((folder / "metadata.json").read_text())
    validation = json.loads((folder / "validation.json").read_text()) if (folder / "validation.json").exists() else None
    worst = (validation or {}).get("worst", {})
    row = Row(
        folder,
        metadata["model_name"],
        metadata["task"],
        metadata["export_format"],
        metadata.get("precision", "fp32"),
        sum(a["bytes"] for a in metadata["artifacts"]) / 1e6,
        export_seconds(folder, metadata),
        (validation or {}).get("status", "not validated"),
        worst.get("box_iou"),
        worst.get("confidence_diff"),
        worst_relative_raw(validation),
        None,
        None,
        None,
    )
    if (
        metadata.get("model_family", "yolo") != "yolo"
    ):  # parts run together through the family's runtime, not one runner
        row.note = (
            f"{metadata['model_family']} export: latency per part in benchmarks/{metadata['model_family']}_latency.py"
        )
        return row
    fmt = get_format(row.format)()
    try:
        run = fmt.runner(folder)
    except Exception as exc:  # e.g. CoreML off macOS, TensorRT without a GPU
        row.note = " ".join(str(exc).split())[:120]
        return row
    row.latency_ms = measure_latency(run, sample_input(metadata))
    measured = (validation or {}).get("accuracy")  # validation.data: mAP on the user's own val split
    if accuracy and measured:
        row.map50, row.map50_pt, row.map50_95 = measured["map50"], measured["map50_pt"], measured.get("map50_95")
        row.accuracy_on = Path(measured["data"]).name
        row.note = (
            f"mAP on {measured['data']} val split ({measured['images']} images): mAP50 {measured['map50']:.3f} "
            f"(.pt {measured['map50_pt']:.3f}), mAP50-95 {measured['map50_95']:.3f} (.pt {measured['map50_95_pt']:.3f})"
        )
    elif accuracy and applies_to(metadata):
        row.map50 = evaluate(run, metadata)
        row.map50_pt = cache.map50(metadata, artifact_input_size(fmt.describe(folder), metadata))
    return row


def worst_relative_raw(validation: dict | None) -> float | None:
    """The largest raw-output difference relative to the reference's largest value (`raw_rel_max_diff`)."""
    values = [
        c["value"]
        for c in (validation or {}).get("checks", [])
        if str(c.get("criterion", "")).endswith("rel_max_abs_diff") and isinstance(c.get("value"), (int, float))
    ]
    return max(values) if values else None


HEADER = (
    "model",
    "task",
    "format",
    "precision",
    "artifact",
    "size (MB)",
    "export (s)",
    "parity",
    "worst IoU",
    "worst conf diff",
    "max raw diff (rel.)",
    "mAP50",
    "mAP50 (.pt)",
    "latency (ms)",
    "FPS",
)
PARITY_COLUMN = HEADER.index("parity")
EXPLANATION = (
    "Parity: the artifact against its PyTorch model (validation.json); worst IoU and confidence difference over every "
    "matched detection; max raw diff: the largest difference of the raw outputs divided by the reference's largest "
    "value (FP16 and INT8 record it without gating on it). mAP50: box mAP50 on the generated shapes validation split "
    "(64 images), artifact and .pt through the same letterbox and decoding. Latency: median inference time per image "
    f"through the validation runners on this machine ({LATENCY_RUNS} runs after a warm-up, one sample image). "
    "artifact: the folder, relative to this report."
)


def _sci(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2e}"


def row_cells(row: Row) -> list[str]:
    return [
        row.model,
        row.task,
        row.format,
        row.precision,
        row.path or str(row.folder),
        _fmt(row.size_mb, 1),
        _fmt(row.export_s, 1),
        row.parity,
        _fmt(row.worst_iou, 4),
        _fmt(row.worst_conf, 4),
        _sci(row.worst_raw),
        _fmt(row.map50),
        _fmt(row.map50_pt),
        _fmt(row.latency_ms, 1),
        _fmt(row.fps, 1),
    ]


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    notes = [f"- {r.model} {r.format} {r.precision}: {r.note}" for r in rows if r.note]
    intro = f"# exportkit report\n\n{EXPLANATION}\n\n"
    return intro + "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def chart_png(rows: list[Row]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.model}\n{r.format} {r.precision}" for r in rows]
    fig, (left, right, trade) = plt.subplots(1, 3, figsize=(max(12, 1.1 * len(rows) + 8), 4.5))
    accuracy_against_latency(trade, rows)
    x = np.arange(len(rows))
    left.bar(x, [r.latency_ms or 0 for r in rows], color="#4c72b0")
    left.set_title("latency (ms per image, lower is better)")
    right.bar(x - 0.2, [r.map50 or 0 for r in rows], 0.4, label="artifact", color="#55a868")
    right.bar(x + 0.2, [r.map50_pt or 0 for r in rows], 0.4, label=".pt", color="#c44e52")
    right.set_title("box mAP50 (shapes val split)")
    right.set_ylim(0, 1)
    right.legend()
    for axis in (left, right):
        axis.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def accuracy_against_latency(axis, rows: list[Row]) -> None:
    """One point per artifact: latency on x, the artifact's box mAP50 on y (what to ship: up and to the left)."""
    points = [r for r in rows if r.latency_ms is not None and r.map50 is not None]
    for row in points:
        axis.scatter(row.latency_ms, row.map50, s=36)
        axis.annotate(
            f"{row.model} {row.format} {row.precision}",
            (row.latency_ms, row.map50),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    axis.set_xlabel("latency (ms per image)")
    axis.set_ylabel("box mAP50 (artifact)")
    axis.set_title("accuracy against latency" + ("" if points else " (no artifact with both)"))
    axis.set_ylim(0, 1.05)


def html_page(rows: list[Row], png: bytes) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = ""
    for row in rows:
        cls = {"passed": "ok", "failed": "bad"}.get(row.parity, "")
        body += (
            "<tr>"
            + "".join(
                f'<td class="{cls if i == PARITY_COLUMN else ""}">{html.escape(c)}</td>'
                for i, c in enumerate(row_cells(row))
            )
            + "</tr>\n"
        )
    image = base64.b64encode(png).decode()
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>exportkit report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
.ok{{background:#dfd}}.bad{{background:#fdd}}</style></head><body>
<h1>exportkit report</h1><p>{html.escape(EXPLANATION)}</p>
<table><tr>{head}</tr>
{body}</table>
<h2>Latency and accuracy per artifact</h2><img alt="latency and accuracy chart" src="data:image/png;base64,{image}">
</body></html>
"""


def write_report(folder: str | Path, accuracy: bool = True) -> list[Path]:
    from exportkit.errors import ConfigError

    folder = Path(folder)
    exports = find_exports(folder)
    if not exports:
        raise ConfigError(f"no exports (metadata.json) found under {folder}")
    from tqdm import tqdm

    cache = _PtCache()
    rows = [build_row(f, cache, accuracy) for f in tqdm(exports, desc="report", unit="artifact")]
    for row in rows:
        row.path = row.folder.relative_to(folder).as_posix() if row.folder.is_relative_to(folder) else str(row.folder)
    md, page = folder / "report.md", folder / "report.html"
    md.write_text(markdown(rows))
    page.write_text(html_page(rows, chart_png(rows)))
    return [md, page]

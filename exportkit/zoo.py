"""Untrained architecture checkpoints built from Ultralytics' bundled model YAMLs, on demand.

Nothing is downloaded: the YAMLs ship inside the ultralytics package. Checkpoints are cached under
the project's ``.cache/zoo`` (not committed) and used to test the export guide's capability matrix.

    python -m exportkit.zoo yolov8n yolo11n-seg      # build into .cache/zoo
    python -m exportkit.zoo sam2-t                   # .cache/zoo/sam2-t/sam2_t.pt, a seeded SAM2 state dict
"""

from __future__ import annotations

import sys
from pathlib import Path

ARCHITECTURES = {
    "yolov8n": "yolov8n.yaml",
    "yolov8s": "yolov8s.yaml",
    "yolov8m": "yolov8m.yaml",
    "yolo11n": "yolo11n.yaml",
    "yolo11n-seg": "yolo11n-seg.yaml",
    "yolo11n-pose": "yolo11n-pose.yaml",
    "yolov8s-worldv2": "yolov8s-worldv2.yaml",
}
STATE_DICTS = {"sam2-t": "sam2_t.pt"}  # plain state-dict checkpoints ({"model": state_dict}), built by their family


def __getattr__(name: str):
    if name == "DEFAULT_CACHE":  # the old constant's name, now the project's (exportkit/project.py)
        return zoo_cache()
    raise AttributeError(f"module 'exportkit.zoo' has no attribute {name!r}")


def zoo_cache() -> Path:
    """``.cache/zoo`` under the project (or EXPORTKIT_CACHE/zoo)."""
    from exportkit.project import cache_dir

    return cache_dir() / "zoo"


def zoo_path(name: str, cache: Path | None = None, imgsz: int = 640) -> Path:
    """Where ``build_architecture(name, cache, imgsz)`` writes its checkpoint."""
    cache = Path(cache if cache is not None else zoo_cache())
    if name in STATE_DICTS:
        return cache / name / STATE_DICTS[name]
    return cache / f"{name}-{imgsz}.pt"


def build_architecture(name: str, cache: Path | None = None, imgsz: int = 640) -> Path:
    """Return the path of an untrained ``name`` checkpoint, building it once (seeded, deterministic)."""
    if name in STATE_DICTS:
        from exportkit.families.sam2_load import build_seeded_checkpoint

        return build_seeded_checkpoint(zoo_path(name, cache))
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {name!r}; expected one of {', '.join(ARCHITECTURES)}")
    path = zoo_path(name, cache, imgsz)
    if path.exists():
        return path
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    yolo = YOLO(ARCHITECTURES[name])
    checkpoint = {
        "model": yolo.model.half(),
        "train_args": {"imgsz": imgsz, "task": yolo.task, "model": ARCHITECTURES[name]},
        "version": "exportkit-zoo",
        "date": None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(checkpoint, partial)
    partial.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m exportkit.zoo", description=__doc__.strip().splitlines()[0])
    known = [*ARCHITECTURES, *STATE_DICTS]
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"architectures to build (default: all YOLO ones): {', '.join(known)}"
    )
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(
            f"exportkit: error: unknown architecture {unknown[0]!r}; choose from: {', '.join(known)}", file=sys.stderr
        )
        return 3
    for name in args.names or list(ARCHITECTURES):
        print(build_architecture(name, imgsz=args.imgsz))
    return 0


if __name__ == "__main__":
    sys.exit(main())

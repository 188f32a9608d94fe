"""Export a checkpoint to ONNX for the C++ parity tests, through `python export.py`; skip when already up to date.

Up to date means: DIR/model.onnx and DIR/metadata.json exist, the metadata names the checkpoint's sha256, and the
metadata's input size is the one asked for.

    python runtimes/cpp/tests/export_artifact.py --checkpoint models/shapes-det.pt --output-dir build/artifacts/detect
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_up_to_date(checkpoint: Path, output_dir: Path, imgsz: int) -> bool:
    metadata_path = output_dir / "metadata.json"
    if not (output_dir / "model.onnx").is_file() or not metadata_path.is_file():
        return False
    metadata = json.loads(metadata_path.read_text())
    same_checkpoint = metadata.get("checkpoint", {}).get("sha256") == sha256_file(checkpoint)
    return same_checkpoint and metadata.get("input_shape", [])[:2] == [imgsz, imgsz]


def export_onnx(checkpoint: Path, output_dir: Path, imgsz: int) -> int:
    config = json.dumps({"imgsz": imgsz, "include_validation": False})
    cmd = [
        sys.executable,
        str(REPO_ROOT / "export.py"),
        "--checkpoint_path",
        str(checkpoint),
        "--export_format",
        "onnx",
        "--output_dir",
        str(output_dir),
        "--export_config",
        config,
        "--quiet",
    ]
    return subprocess.run(cmd, cwd=REPO_ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="the .pt checkpoint to export")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for model.onnx + metadata.json")
    parser.add_argument("--imgsz", type=int, default=192, help="input size to export at (default 192)")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        print(
            f"export_artifact: error: checkpoint {args.checkpoint} not found; the bundled models come with the repo "
            "(or retrain them with `make models`)",
            file=sys.stderr,
        )
        return 3
    if is_up_to_date(args.checkpoint, args.output_dir, args.imgsz):
        print(f"{args.output_dir}: up to date with {args.checkpoint.name}")
        return 0
    code = export_onnx(args.checkpoint, args.output_dir, args.imgsz)
    if code == 0:
        print(f"exported {args.checkpoint.name} to {args.output_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())

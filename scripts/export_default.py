"""The main job: export the bundled detect model to every format of the default matrix, with validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("onnx", "torchscript", "openvino")


def main() -> int:
    failed = 0
    for fmt in FORMATS:
        out = ROOT / "exports" / "shapes-det" / fmt
        cmd = [sys.executable, str(ROOT / "export.py"), "--checkpoint_path", str(ROOT / "models" / "shapes-det.pt"),
               "--export_format", fmt, "--output_dir", str(out), "--export_config", '{"include_validation": true}', "-q"]
        code = subprocess.call(cmd, cwd=ROOT)
        failed += code != 0
    print(f"artifacts: {ROOT / 'exports' / 'shapes-det'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The Kotlin (TFLite) runtime (runtimes/kotlin): JUnit unit tests of its core, and parity of its JVM backend
(LiteRT's C API through JNA) with the Python runtime on a fresh TFLite export of the bundled detect model.

`make -C runtimes/kotlin test` exports the model, writes the Python runtime's detections, compiles and runs JUnit.
It installs nothing: `make -C runtimes/kotlin deps` (apt: kotlin, libjna-java, junit4) must have run first.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import ENV, ROOT

KOTLIN = ROOT / "runtimes" / "kotlin"


@pytest.mark.slow
def test_kotlin_runtime_unit_and_parity():
    if shutil.which("kotlinc") is None:
        pytest.fail("kotlinc not found: run `make -C runtimes/kotlin deps` (apt: kotlin, libjna-java, junit4) first")
    proc = subprocess.run(["make", "-C", str(KOTLIN), "test"], capture_output=True, text=True, env=ENV, timeout=1800)
    output = proc.stdout + proc.stderr
    summary = re.findall(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.MULTILINE)
    assert proc.returncode == 0, output[-4000:]
    assert summary and int(summary[-1][1]) == 0 and int(summary[-1][0]) > 0, output[-4000:]

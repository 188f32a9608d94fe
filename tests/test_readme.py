"""Every fenced shell command and Python snippet of README.md and runtimes/*/README.md runs as written.

The READMEs run top to bottom, in this order, in one scratch copy of the repository (state is shared: what
`make export` builds, the later blocks use), with `.venv` active as the README says and `PYTHONPATH` on the copy
(what an editable install of that checkout gives). The copy shares `.venv` and links `runtimes/cpp` and
`runtimes/kotlin` to the checkout: their build folders (ignored, what `make test` builds right after pytest) are
reused when present, and what the README builds there `make test` reuses. `EXPORTKIT_CONF` (documented in the README)
points at a copy of conf/ whose release matrix is cut down to shapes-det, so the release lines build nothing the
earlier lines did not.

A block is skipped only where an HTML comment right before it says so, with its reason:
``<!-- readme-test: skip: needs a Swift toolchain -->``; the test prints every skipped block and its reason.
Only ``bash``/``sh``/``shell`` and ``python`` blocks are commands; ``text``, ``cpp``, ``kotlin``, ``swift`` are not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

READMES = [
    "README.md",
    "runtimes/python/README.md",
    "runtimes/cpp/README.md",
    "runtimes/kotlin/README.md",
    "runtimes/swift/README.md",
    "runtimes/conformance/README.md",
]
SHELL = {"bash", "sh", "shell"}
PYTHON = {"python", "py"}
MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>[a-z-]+)\s*(?::\s*(?P<reason>.*?))?\s*-->$")
LINKED = ("runtimes/cpp", "runtimes/kotlin")  # their build folders are shared with the checkout
NOT_COPIED = {
    ".venv",
    ".cache",
    "exports",
    "exports.lock",
    "build",
    ".git",
    ".pytest_cache",
    "__pycache__",
    "runs",
    "outputs",
    "multirun",
}
BLOCK_TIMEOUT = 1200
# Long steps say what they are doing: a block with a line starting with the command must print the fragment.
PROGRESS = {
    "make export": "shapes-det-onnx-fp32: validation passed: passed ",  # its `doit validate`
    "doit verify --rebuild": "[1/3] shapes-det-onnx-fp32: rebuilding in a scratch folder ...",
    "python benchmarks/noop_build.py": "run 1/2: doit list ",
}


@dataclass
class Block:
    readme: str
    line: int
    lang: str
    code: str
    skip: str | None = None

    @property
    def runnable(self) -> bool:
        return self.lang in SHELL | PYTHON

    def __str__(self) -> str:
        return f"{self.readme}:{self.line} ({self.lang}) {self.code.strip().splitlines()[0][:90]}"


def parse(readme: str, root: Path = ROOT) -> tuple[list[Block], list[str]]:
    """The fenced blocks of one README with their skip markers, and the problems found (dangling or unknown markers)."""
    blocks, problems, pending, fence = [], [], None, None
    for number, line in enumerate((root / readme).read_text().splitlines(), 1):
        stripped = line.strip()
        if fence is not None:
            if stripped == "```":
                blocks.append(fence)
                fence = None
            else:
                fence.code += line + "\n"
            continue
        marker = MARKER.match(stripped)
        if marker:
            if marker["kind"] != "skip" or not marker["reason"]:
                problems.append(f"{readme}:{number}: a marker is `<!-- readme-test: skip: REASON -->`, got {stripped}")
            pending = (number, marker["reason"])
        elif stripped.startswith("```"):
            fence = Block(readme, number + 1, stripped[3:].strip().lower(), "", pending[1] if pending else None)
            pending = None
        elif stripped and pending:
            problems.append(f"{readme}:{pending[0]}: marker not right before a fenced block")
            pending = None
    if fence is not None:
        problems.append(f"{readme}:{fence.line - 1}: unclosed fence")
    return blocks, problems


def all_blocks() -> list[Block]:
    return [block for readme in READMES for block in parse(readme)[0]]


def test_every_runtime_readme_is_covered_and_markers_are_well_formed():
    assert set(READMES[1:]) == {p.relative_to(ROOT).as_posix() for p in ROOT.glob("runtimes/*/README.md")}
    problems = [problem for readme in READMES for problem in parse(readme)[1]]
    assert not problems, problems
    runnable = [b for b in all_blocks() if b.runnable]
    assert len(runnable) >= 15 and all(b.code.strip() for b in runnable)
    assert any(b.skip and "make test" in b.code for b in runnable)  # `make test` cannot run inside make test


def test_the_parser_sees_markers_and_blocks(tmp_path):
    (tmp_path / "R.md").write_text(
        "text\n<!-- readme-test: skip: no GPU -->\n\n```bash\nnvidia-smi\n```\n```python\nprint(1)\n```\n"
        "<!-- readme-test: skip: dangling -->\nprose\n"
    )
    blocks, problems = parse("R.md", tmp_path)
    assert [(b.lang, b.skip, b.code) for b in blocks] == [
        ("bash", "no GPU", "nvidia-smi\n"),
        ("python", None, "print(1)\n"),
    ]
    assert problems == ["R.md:10: marker not right before a fenced block"]


# -- running them ---------------------------------------------------------------------------------------------
def scratch_copy(tmp: Path) -> Path:
    repo = tmp / "repo"

    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(ROOT)
        skipped = {n for n in names if n in NOT_COPIED or n.endswith(".egg-info")}
        return skipped | {n for n in names if (rel / n).as_posix() in LINKED}

    shutil.copytree(ROOT, repo, ignore=ignore, symlinks=True)
    (repo / ".venv").symlink_to((ROOT / ".venv").resolve())
    for folder in LINKED:
        (repo / folder).symlink_to(ROOT / folder)
    stamp = ROOT / ".venv" / ".installed"
    if not stamp.exists():
        pytest.fail(".venv/.installed missing: run `make venv` first (the README's `make export` must not reinstall)")
    # `make export` depends on the venv stamp, which depends on pyproject.toml: a fresh copy would look newer and
    # reinstall exportkit (pointing the shared venv at the copy). Keep the copy's pyproject.toml older than the stamp.
    old = stamp.stat().st_mtime - 60
    os.utime(repo / "pyproject.toml", (old, old))
    conf = repo / ".cache" / "readme-conf"
    shutil.copytree(repo / "conf", conf)
    release = conf / "matrix" / "release.yaml"
    text = release.read_text()
    assert text.count("models: [shapes-det, shapes-seg, shapes-pose]") >= 1, text
    release.write_text(text.replace("models: [shapes-det, shapes-seg, shapes-pose]", "models: [shapes-det]"))
    return repo


def block_env(repo: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env.update(
        YOLO_OFFLINE="1",
        YOLO_AUTOINSTALL="False",
        PYTHONPATH=str(repo),
        YOLO_CONFIG_DIR=str(repo / ".cache/ultralytics"),
        EXPORTKIT_CONF=str(repo / ".cache" / "readme-conf"),
    )
    # The copy's .venv is a link, so `make`'s .venv/bin/python and the activated `doit` would run one interpreter
    # under two paths, and TorchScript artifacts record the interpreter's path (their debug info): point make at the
    # path the activated .venv uses, as a real (unlinked) .venv has it.
    env["MAKEFLAGS"] = f"PY={(ROOT / '.venv').resolve() / 'bin' / 'python'}"
    return env


def run_block(block: Block, repo: Path, env: dict) -> subprocess.CompletedProcess:
    if block.lang in PYTHON:
        command, stdin = (
            [str((repo / ".venv").resolve() / "bin" / "python"), "-"],
            block.code,
        )  # the activated .venv's python
    else:
        preamble = "set -P; source .venv/bin/activate\n"  # -P: cd resolves links (runtimes/cpp is one)
        command, stdin = ["bash", "-e", "-o", "pipefail", "-c", preamble + block.code], None
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, cwd=repo, env=env, timeout=BLOCK_TIMEOUT
    )


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path, capsys):
    repo = scratch_copy(tmp_path)
    env = block_env(repo)
    stamp = (ROOT / ".venv" / ".installed").stat().st_mtime
    results, failures, skipped = [], [], []
    start = time.perf_counter()
    for block in all_blocks():
        if not block.runnable:
            continue
        if block.skip:
            skipped.append(f"{block}  -- {block.skip}")
            continue
        began = time.perf_counter()
        proc = run_block(block, repo, env)
        results.append(f"{time.perf_counter() - began:6.1f}s  {block}")
        commands = [line.strip() for line in block.code.splitlines()]
        missing = [
            fragment
            for command, fragment in PROGRESS.items()
            if any(c.startswith(command) for c in commands) and fragment not in proc.stdout + proc.stderr
        ]
        if missing:
            failures.append(f"{block}: no progress line {missing} in its output:\n{proc.stdout[-2500:]}")
        if proc.returncode != 0:
            failures.append(
                f"{block} exited {proc.returncode}:\n{block.code}\n--- stdout ---\n{proc.stdout[-2500:]}"
                f"\n--- stderr ---\n{proc.stderr[-2500:]}"
            )
    assert (ROOT / ".venv" / ".installed").stat().st_mtime == stamp, "a README command reinstalled the venv"
    with capsys.disabled():
        print(f"\nREADME blocks run in {time.perf_counter() - start:.0f}s:\n  " + "\n  ".join(results))
        print("skipped (marked in the README):\n  " + "\n  ".join(skipped))
    assert not failures, "\n\n".join(failures)

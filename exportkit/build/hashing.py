"""sha256 with a (size, mtime) cache, so an up-to-date build does not re-read big files (doit issue 22)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from exportkit.checkpoint import sha256_file

HASHES_FILE = ".hashes.json"


def hash_cache_file(output_root: str | Path) -> Path:
    """Where a matrix's hash cache lives: one file per output root, shared by its cells."""
    return Path(output_root) / HASHES_FILE


class HashCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict = {}
        self.dirty = False
        if self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self.entries = {}

    def sha256(self, file: Path) -> str:
        file = Path(file).resolve()
        stat = file.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = self.entries.get(str(file))
        if entry and entry[:2] == stamp:
            return entry[2]
        digest = sha256_file(file)
        self.entries[str(file)] = stamp + [digest]
        self.dirty = True
        return digest

    def save(self) -> None:
        """Atomic write; concurrent writers may lose entries, never corrupt the file."""
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".hashes-")
        with os.fdopen(fd, "w") as handle:
            json.dump(self.entries, handle)
        os.replace(tmp, self.path)
        self.dirty = False

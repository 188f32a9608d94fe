"""Progress for long steps (INT8 calibration, mAP over a data set): a tqdm bar when tqdm is installed, else a
log line at every quarter. Either goes to the step's log (stderr is the log while an export runs)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator

log = logging.getLogger("exportkit.progress")


def progress(items: Iterable, total: int, label: str) -> Iterator:
    try:
        from tqdm import tqdm
    except ImportError:
        return _quarters(items, total, label)
    return iter(tqdm(items, total=total, desc=label, unit="image", leave=False, mininterval=1.0))


def _quarters(items: Iterable, total: int, label: str) -> Iterator:
    marks = {max(1, round(total * q / 4)) for q in (1, 2, 3, 4)}
    for done, item in enumerate(items, 1):
        yield item
        if done in marks:
            log.info("%s: %d/%d images", label, done, total)


def say(line: str, stream=None) -> None:
    """One whole line in one write, flushed. Cells building in parallel (doit -n) share the terminal with doit's own
    reporter; `print` writes the text and its newline separately, so another process's line could land between them."""
    stream = stream or sys.stdout
    stream.write(line + "\n")
    stream.flush()

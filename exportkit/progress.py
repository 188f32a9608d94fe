"""Progress for long steps (INT8 calibration, mAP over a data set): a tqdm bar when tqdm is installed, else a
log line at every quarter. Either goes to the step's log (stderr is the log while an export runs)."""

from __future__ import annotations

import logging
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

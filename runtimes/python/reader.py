"""Typed, bounded access to an untrusted metadata.json: every failure is a ModelLoadError naming the key."""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from typing import Any

from .errors import ModelLoadError

# metadata.json is untrusted input: sizes past these are refused before anything is allocated from them
MAX_INPUT_SIZE = 8192  # input height and width, pixels
MAX_DIM = 1 << 20  # any tensor dimension, channel index or count in metadata.json
MAX_ELEMENTS = 1 << 31  # the product of a tensor's known dimensions


def refuse_constant(token: str):
    raise ValueError(f"{token} is not a JSON number")


def short(value: Any) -> str:
    """``repr(value)``, cut to a length that fits an error line (a hostile value may be megabytes)."""
    text = reprlib.repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class Reader:
    """Typed access to nested metadata keys; every failure names the key and the file."""

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str = ""):
        self.data, self.source, self.prefix = data, source, prefix

    def fail(self, key: str, problem: str) -> ModelLoadError:
        return ModelLoadError(f"{self.source}: {self.prefix}{key} {problem}; re-export the model with exportkit")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is missing")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise self.fail(key, f"is {short(value)}, expected {_kind_name(kind)}")
        return value

    def number(self, key: str, low: float, high: float, default: Any = ...) -> float:
        """A finite int or float in [low, high]."""
        value = self.get(key, (int, float), default)
        if not (isinstance(value, int) or math.isfinite(value)) or not low <= value <= high:
            raise self.fail(key, f"is {short(value)}, expected a number in [{low}, {high}]")
        return value

    def integer(self, key: str, low: int, high: int, default: Any = ...) -> int:
        value = self.get(key, int, default)
        if not low <= value <= high:
            raise self.fail(key, f"is {short(value)}, expected an integer in [{low}, {high}]")
        return value

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, default)
        if not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"is {short(value)}, expected a list of strings")
        return tuple(value)

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.fail(key, f"is {short(value)}, this runtime supports {', '.join(choices)}")
        return value

    def span(self, key: str, default: Any = ...) -> tuple[int, int] | None:
        value = self.get(key, list, default)
        if value is None:
            return None
        if len(value) != 2 or not all(is_int(v) for v in value) or not 0 <= value[0] < value[1] <= MAX_DIM:
            raise self.fail(key, f"is {short(value)}, expected [start, end) channel indices")
        return value[0], value[1]

    def child(self, key: str) -> Reader:
        return Reader(self.get(key, dict), self.source, f"{self.prefix}{key}.")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))

"""Typed options: the facts each format declares, and the one place values are checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exportkit.errors import ConfigError

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    nullable: bool = False

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.type] + (" | null" if self.nullable else "")

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum}-{self.maximum}"
        return ""

    def check(self, value: Any, where: str) -> Any:
        """Return ``value`` if it is valid for this option, else raise ConfigError naming it."""
        if value is None and self.nullable:
            return None
        if not _is_type(value, self.type):
            raise ConfigError(
                f"{where}: option {self.name!r} must be {self.type_name}, got {value!r} ({type(value).__name__})"
            )
        if self.type is float:
            value = float(value)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{where}: option {self.name!r} must be {self.describe_range()}, got {value!r}")
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{where}: option {self.name!r} must be in {low}-{high}, got {value!r}")
        return value


def _is_type(value: Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, expected)


def resolve_options(options: tuple[Option, ...], given: dict, where: str) -> dict:
    """Defaults merged with ``given``; unknown keys and bad values raise ConfigError."""
    known = {o.name: o for o in options}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r}; accepted keys: {', '.join(sorted(known))}")
    return {name: opt.check(given[name], where) if name in given else opt.default for name, opt in known.items()}

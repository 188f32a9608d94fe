"""Installed versions of the libraries an export depends on: what metadata.json records and what a cell key holds."""

from __future__ import annotations

from importlib import metadata

from exportkit import __version__


def installed(packages) -> dict[str, str | None]:
    """``{package: version}``, None for a package that is not installed; exportkit's own version first."""
    found: dict[str, str | None] = {"exportkit": __version__}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found

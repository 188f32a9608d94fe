"""The project: the folder exportkit works in, found the way git and DVC find theirs.

The project is the nearest folder upward from the working directory holding ``exportkit.yaml`` (what
``exportkit init`` writes) or a ``conf/config.yaml`` (the exportkit checkout itself is such a project);
``--project DIR`` or ``EXPORTKIT_PROJECT`` names it outright; with neither, the working directory is the
project. Outputs, caches (``.cache/`` or ``EXPORTKIT_CACHE``), ``exports.lock``, the doit database and
every relative path in a config resolve against it.

Configs come from two places on Hydra's search path: the project's ``conf/`` (or ``EXPORTKIT_CONF``)
first, then the package's own groups (format/, precision/, validation/, model/, matrix/); on a name
clash the project's file wins. Only this module and the package-data helpers look at the package's
location, and only through importlib.resources.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

MARKER = "exportkit.yaml"
GROUPS = ("model", "format", "precision", "validation", "matrix")


def find_project(start: Path | None = None) -> Path:
    """EXPORTKIT_PROJECT, else the nearest folder upward from ``start`` (cwd) with a marker, else ``start``."""
    named = os.environ.get("EXPORTKIT_PROJECT")
    if named:
        return Path(named).expanduser().resolve()
    here = Path(start or Path.cwd()).resolve()
    package = package_path().resolve()  # holds conf/config.yaml as package data, but is no project
    for folder in (here, *here.parents):
        if folder == package:
            continue
        if (folder / MARKER).is_file() or (folder / "conf" / "config.yaml").is_file():
            return folder
    return here


def set_project(path: str | Path) -> Path:
    """``--project DIR``: recorded in the environment so every subprocess (doit cells) sees the same project."""
    from exportkit.errors import ConfigError

    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"--project {path}: no such folder")
    os.environ["EXPORTKIT_PROJECT"] = str(folder)
    return folder


def root() -> Path:
    return find_project()


def resolve(path: str | Path) -> Path:
    """A path from a config or a flag: absolute as given, relative ones against the project."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else root() / path


def shown(path: str | Path) -> str:
    """A path as recorded in metadata and locks: relative to the project when inside it (same on every clone)."""
    path = Path(path).resolve()
    base = root()
    return path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path)


def cache_dir() -> Path:
    """EXPORTKIT_CACHE, else ``.cache`` under the project; never inside the installed package."""
    named = os.environ.get("EXPORTKIT_CACHE")
    return resolve(named) if named else root() / ".cache"


# -- package data ---------------------------------------------------------------------------------
def package_path(*parts: str) -> Path:
    return Path(str(files("exportkit").joinpath(*parts)))


def package_conf() -> Path:
    return package_path("conf").resolve()


def samples_dir() -> Path:
    """The sample images shipped inside the package (the checkout's models/samples)."""
    return package_path("samples").resolve()


def user_conf() -> Path | None:
    """EXPORTKIT_CONF, else the project's conf/ when it exists."""
    named = os.environ.get("EXPORTKIT_CONF")
    if named:
        return Path(named).expanduser().resolve()
    conf = root() / "conf"
    return conf.resolve() if conf.is_dir() else None


def search_path() -> list[Path]:
    """Config folders in priority order: the project's, then the package's (one entry when they are the same)."""
    folders = [p for p in (user_conf(), package_conf()) if p is not None]
    return list(dict.fromkeys(folders))


def hydra_setup(conf_dir: Path | None = None) -> tuple[Path, list[str]]:
    """(primary config folder, overrides) for Hydra: the first folder with a config.yaml is primary, the rest
    go on ``hydra.searchpath`` in order. Without any root config.yaml in the project, the package's root
    config (alone in its folder) is primary, so the project's groups still come before the package's."""
    folders = [Path(conf_dir).resolve()] if conf_dir is not None else search_path()
    if package_conf() not in folders:
        folders.append(package_conf())
    if (folders[0] / "config.yaml").is_file():
        primary, rest = folders[0], folders[1:]
    else:
        primary, rest = package_path("hydra_root").resolve(), folders
    return primary, ([f"hydra.searchpath=[{','.join('file://' + str(p) for p in rest)}]"] if rest else [])


def config_sources() -> dict[str, dict[str, Path]]:
    """Every group option and the file it comes from (the project's file wins on a name clash)."""
    found: dict[str, dict[str, Path]] = {group: {} for group in GROUPS}
    for folder in reversed(search_path()):
        for group in GROUPS:
            for path in sorted((folder / group).glob("*.yaml")):
                found[group][path.stem] = path
    return found


def where_main(argv: list[str]) -> int:
    """`exportkit where`: the project, its caches and, per config group, which file each option comes from."""
    from exportkit.cli import _Parser, run_guarded

    parser = _Parser(prog="exportkit where", description="Show the project folder and where each config comes from.")
    parser.add_argument("group", nargs="?", choices=GROUPS, help="only this config group")

    def body() -> int:
        args = parser.parse_args(argv)
        print(f"project: {root()}")
        print(f"cache:   {cache_dir()}")
        print("configs: " + " > ".join(str(p) for p in search_path()) + "  (first wins)")
        for group, options in config_sources().items():
            if args.group and group != args.group:
                continue
            for name, path in sorted(options.items()):
                print(f"{group}={name}: {path}")
        return 0

    return run_guarded(body)

"""A named matrix (conf/matrix/<name>.yaml) composed into cells, through Hydra; cached on the content of the
config folders and of the code that composes them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from exportkit import __version__, project
from exportkit.build.cell import Cell, as_dict, canonical
from exportkit.build.config import compose, compose_many
from exportkit.registry import get_format


def cell_from_config(cfg, output_root: Path) -> Cell:
    from omegaconf import OmegaConf

    from exportkit.capabilities import capability_reason

    model = OmegaConf.to_container(cfg.model, resolve=True)
    fmt_cfg = OmegaConf.to_container(cfg.format, resolve=True)
    precision = cfg.precision.name
    fmt = get_format(fmt_cfg["name"])
    name = f"{model['name']}-{fmt.name}-{precision}"
    cell = Cell(
        name,
        model,
        fmt_cfg,
        precision,
        OmegaConf.to_container(cfg.validation, resolve=True),
        str(Path(output_root) / model["name"] / f"{fmt.name}-{precision}"),
        output_root=str(output_root),
    )
    if precision not in fmt.precisions:
        cell.skip_reason = f"format {fmt.name} has no {precision} precision (it has: {', '.join(fmt.precisions)})"
    else:
        cell.skip_reason = capability_reason(model.get("capability"), fmt.name)
    options = {k: v for k, v in fmt_cfg.items() if k != "name"}
    options.update(fmt.precisions.get(precision, {}))
    options.update(imgsz=model.get("imgsz"), model_name=model["name"], include_validation=False)
    if precision == "int8":  # the validation group's data set calibrates too, unless calibration_data is set
        from exportkit.userdata import calibration_from_data

        options = calibration_from_data(options, {o.name for o in fmt.options}, cell.validation)
    cell.export_config = dict(sorted(options.items()))
    return cell


def matrix_cells(
    matrix: str = "default", output_root: Path | None = None, extra: list[str] | None = None
) -> list[Cell]:
    """Expand a named matrix into cells; cached on the content of conf/ and of the code that composes it."""
    key = _cells_cache_key(matrix, output_root, extra)
    cache = project.cache_dir() / "exportkit" / f"cells-{key[:24]}.json"
    if cache.exists():
        try:
            return [Cell(**c) for c in json.loads(cache.read_text())]
        except (ValueError, TypeError):
            pass
    cells = _compose_cells(matrix, output_root, extra)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps([as_dict(c) for c in cells]))
    os.replace(tmp, cache)
    return cells


def _cells_cache_key(matrix: str, output_root: Path | None, extra: list[str] | None) -> str:
    """Hydra composes in about 0.4 s a cell; an unchanged conf/ tree must not pay that on every `doit list`."""
    import hashlib

    folders = project.search_path()
    digest = hashlib.sha256(
        canonical([matrix, str(output_root), extra or [], [str(f) for f in folders], __version__]).encode()
    )
    package = project.package_path()
    sources = [p for f in folders for p in sorted(f.rglob("*.yaml"))] + sorted(package.rglob("*.py"))
    for path in sources:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _compose_cells(matrix: str, output_root: Path | None, extra: list[str] | None) -> list[Cell]:
    base = compose([f"matrix={matrix}", *(extra or [])])
    root = project.resolve(output_root or base.output_root)
    combos = []
    for block in base.matrix.blocks:
        for model in block.models:
            for fmt in block.formats:
                for precision in block.precisions:
                    if (model, fmt, precision) not in combos:
                        combos.append((model, fmt, precision))
    overrides = [[f"model={m}", f"format={f}", f"precision={p}", *(extra or [])] for m, f, p in combos]
    return [cell_from_config(cfg, root) for cfg in compose_many(overrides)]

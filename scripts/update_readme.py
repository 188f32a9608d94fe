"""Regenerate the README's format and capability tables from the registry (the single source of facts).

python scripts/update_readme.py          # rewrite README.md
python scripts/update_readme.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exportkit.capabilities import markdown_table  # noqa: E402
from exportkit.registry import get_format, list_formats  # noqa: E402


def formats_table() -> str:
    lines = [
        "| Format | `--export_format` | Files | Options (type, default) | Precisions | Needs |",
        "|---|---|---|---|---|---|",
    ]
    for name in list_formats():
        fmt = get_format(name)
        options = "<br>".join(
            f"`{o.name}` ({o.type_name}, `{o.default!r}`{', ' + o.describe_range() if o.describe_range() else ''})"
            for o in fmt.options
        )
        needs = ", ".join(f"`{p}`" for p in fmt.packages.values()) + f" (`.[{fmt.extra}]`)"
        if fmt.requires_gpu:
            needs += "; an NVIDIA GPU"
        if fmt.prediction_needs_macos:
            needs += "; macOS to run predictions"
        files = " + ".join(f"`{f}`" for f in fmt.files)
        lines.append(f"| {fmt.title} | `{name}` | {files} | {options} | {', '.join(fmt.precisions)} | {needs} |")
    return "\n".join(lines)


SECTIONS = {"formats": formats_table, "capabilities": markdown_table}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} .*?-->\n).*?(<!-- END {name} -->)", re.S)
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main() -> int:
    readme = ROOT / "README.md"
    current = readme.read_text()
    fresh = render(current)
    if "--check" in sys.argv:
        if fresh != current:
            print("README.md is out of date: run python scripts/update_readme.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())

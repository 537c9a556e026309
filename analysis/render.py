"""Renderings of results: the one JSON writer with its NaN → None rule, and the one text-table renderer.

JSON has no NaN or infinity: a quantity that is undefined for a run (a Delta guide's entropy) or
not finite is written as ``null``. Everything a command writes as JSON goes through :func:`write_json`
(or :func:`json_text`); every printed table of diagnose, compare and sweep through :func:`text_table`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bayesvae.inference.files import atomic_write_text


def json_safe(value):
    """``value`` with every non-finite float (NaN, ±inf) replaced by None, in nested dicts/lists/tuples."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def json_text(value, indent: int = 1) -> str:
    return json.dumps(json_safe(value), indent=indent, ensure_ascii=False, default=str) + "\n"


def write_json(path: str | Path, value, indent: int = 1) -> None:
    """``value`` as JSON (NaN → null), written atomically."""
    atomic_write_text(Path(path), json_text(value, indent))


def cell(value, fmt: str = "{}", missing: str = "—") -> str:
    """One table cell: ``fmt`` applied to ``value``, ``missing`` for None or NaN (not defined)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return fmt.format(value)


def text_table(rows: list[dict], columns, left: tuple[str, ...] = (), missing: str = "—") -> str:
    """Rows as aligned text: ``columns`` are (key, title, format) triples; the first column and those in
    ``left`` are left-aligned, the others right-aligned; a rule under the header."""
    cells = [[title for _, title, _ in columns]] + [[cell(row.get(key), fmt, missing) for key, _, fmt in columns]
                                                     for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for n, r in enumerate(cells):
        line = "  ".join(c.ljust(w) if i == 0 or columns[i][0] in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths)))
        lines.append(line.rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)

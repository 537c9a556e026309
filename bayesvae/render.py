"""Renderings of results: the one JSON writer and its NaN → None rule.

JSON has no NaN or infinity: a quantity that is undefined for a run (a Delta guide's entropy) or
not finite is written as ``null``. Everything a command writes as JSON goes through :func:`write_json`.
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

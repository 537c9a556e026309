"""Declared options: one statement per setting (help, kind, allowed range) beside its dataclass field.

    latent_dim: int = declare(16, "dimensions of z", kind="whole", low=1)

The dataclass validates itself with :func:`check_declared` (so a config.json edited by hand is refused
too), and the application layer (``bayesvae.options``) reads the same declarations to build the
command line's flags and to check the Python API's keyword arguments: a setting, its range and its
help text are written once. Every refusal is a :class:`~.errors.BadInput` naming the command-line flag.

Written by hand (not jsonargparse/pydantic): the layer is ~100 lines, keeps the one-line error contract
(``--x must be ...``) and needs no new dependency in the model layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Sequence

from .errors import BadInput

KINDS = ("text", "whole", "number", "whole_list", "choice", "switch")


def flag(name: str) -> str:
    """``latent_dim`` → ``--latent-dim``: the command line's spelling of a keyword argument."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Declared:
    """What a setting accepts. ``low``: smallest allowed value (inclusive); ``above``/``below``: exclusive bounds;
    ``choices``: the allowed names (a callable returning them, for registries filled at import);
    ``optional``: None is allowed (the default is resolved from other settings)."""

    help: str
    kind: str = "text"
    low: float | None = None
    above: float | None = None
    below: float | None = None
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    optional: bool = False
    metavar: str | None = None

    def allowed(self) -> tuple[str, ...]:
        return tuple(self.choices() if callable(self.choices) else self.choices or ())

    def check(self, name: str, value: Any) -> Any:
        """``value`` if it is allowed (a whole-number list comes back as a tuple), else BadInput."""
        if value is None and self.optional:
            return None
        if self.kind == "whole":
            return whole_number(value, flag(name), self.low, self.below)
        if self.kind == "number":
            return finite_number(value, flag(name), self.low, self.above, self.below)
        if self.kind == "whole_list":
            values = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(values, (list, tuple)) or not values:
                raise BadInput(f"{flag(name)} needs one or more whole numbers, got {value!r}")
            return tuple(whole_number(v, flag(name), self.low) for v in values)
        if self.kind == "choice":
            if value not in self.allowed():
                raise BadInput(f"unknown {flag(name)} {value!r}; choose one of: {', '.join(self.allowed())}")
            return value
        if self.kind == "switch":
            if not isinstance(value, bool):
                raise BadInput(f"{flag(name)} must be True or False, got {value!r}")
            return value
        if not isinstance(value, str) or not value:
            raise BadInput(f"{flag(name)} must be a non-empty text, got {value!r}")
        return value

    def describe_range(self) -> str:
        """``≥ 1``, ``> 0``, ... for help texts (empty when unbounded)."""
        if self.low is not None:
            return f"≥ {self.low:g}"
        return f"> {self.above:g}" if self.above is not None else ""


def declare(default: Any, help: str, **how) -> Any:
    """A dataclass field carrying its :class:`Declared` (see the module docstring)."""
    return field(default=default, metadata={"declared": Declared(help, **how)})


def declared(cls) -> dict[str, tuple[Declared, Any]]:
    """``name → (declaration, default)`` of every declared field of the dataclass ``cls``."""
    return {f.name: (f.metadata["declared"], f.default) for f in fields(cls) if "declared" in f.metadata}


def check_declared(obj) -> None:
    """Validate (and normalize, e.g. lists to tuples) every declared field of a frozen dataclass in place."""
    for name, (declaration, _) in declared(type(obj)).items():
        object.__setattr__(obj, name, declaration.check(name, getattr(obj, name)))


def whole_number(value: Any, option: str, low: float | None = None, below: int | None = None) -> int:
    """``value`` if it is an int (not a bool) of at least ``low`` and under ``below``; else BadInput naming ``option``."""
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low) \
            or (below is not None and value >= below):
        bound = f" ≥ {low:g}" if low is not None else ""
        bound = f" from {low:g} to {below - 1}" if low is not None and below is not None else bound
        raise BadInput(f"{option} must be a whole number{bound}, got {value!r}")
    return value


def finite_number(value: Any, option: str, low: float | None = None, above: float | None = None,
                  below: float | None = None) -> float:
    """``value`` if it is a finite real number ≥ ``low`` (or > ``above``) and < ``below``; else BadInput."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (low is None or value >= low) and (above is None or value > above) and (below is None or value < below)
    if not ok:
        bound = f" ≥ {low:g}" if low is not None else f" > {above:g}" if above is not None else ""
        bound = f" in ({above:g}, {below:g})" if above is not None and below is not None else bound
        raise BadInput(f"{option} must be a finite number{bound}, got {value!r}")
    return value

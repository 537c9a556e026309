"""Command-line flags and keyword arguments from the declared option sets (:mod:`bayesvae.models.checks`).

An option set is a dataclass whose fields carry their declaration (help, kind, range): ``ModelSpec``
(model/guide), ``TrainOptions`` (SVI), ``PosteriorOptions`` (diagnose part 2), ... . From one set,
:func:`add_flags` makes the argparse flags (every flag defaults to None = "not given", so defaults
that depend on other settings can be resolved later, in :mod:`bayesvae.settings`) and
:func:`check_keywords` refuses an unknown keyword of the Python API with a suggestion.
"""

from __future__ import annotations

import argparse
import difflib
from typing import Iterable

from bayesvae.models.checks import Declared, declared, flag
from bayesvae.models.errors import BadInput


def parse_whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def parse_number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def parse_whole_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


PARSERS = {"whole": parse_whole, "number": parse_number, "whole_list": parse_whole_list}


def _shown(default) -> str:
    if isinstance(default, (tuple, list)):
        return ",".join(map(str, default))
    return f"{default:g}" if isinstance(default, float) else str(default)


def help_text(declaration: Declared, default) -> str:
    """The declaration's help, its choices and its default, as ``--help`` prints them."""
    text = declaration.help
    if default is not None and "default:" not in text:
        text += f" (default: {_shown(default)})"
    return text


def add_flags(group, option_set, names: Iterable[str] | None = None, **defaults) -> None:
    """One flag per declared field of ``option_set`` (or of ``names`` only); ``defaults`` set argparse
    defaults (for commands whose options are not resolved later); all others default to None."""
    table = declared(option_set)
    for name in names or table:
        declaration, default = table[name]
        if declaration.kind == "switch":
            group.add_argument(flag(name), action="store_true", help=help_text(declaration, None))
            continue
        metavar = declaration.metavar
        if declaration.kind == "choice":
            metavar = "{" + ",".join(declaration.allowed()) + "}"
        group.add_argument(flag(name), type=PARSERS.get(declaration.kind, str), default=defaults.get(name),
                           metavar=metavar, help=help_text(declaration, default))


def given(args: argparse.Namespace, names: Iterable[str]) -> dict:
    """The options among ``names`` set on the command line (None: not given)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def suggestion(name: str, known: Iterable[str]) -> str:
    """``; did you mean 'latent_dim'?`` for a near miss (difflib), else empty."""
    close = difflib.get_close_matches(name.replace("-", "_"), [k.replace("-", "_") for k in known], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_keywords(given_names: Iterable[str], known: Iterable[str], what: str = "option") -> None:
    """Refuse keyword arguments that are not among ``known``, suggesting the nearest one."""
    known = sorted(known)
    unknown = sorted(set(given_names) - set(known))
    if unknown:
        raise BadInput(f"unknown {what} {unknown[0]!r}{suggestion(unknown[0], known)} (known: {', '.join(known)})")

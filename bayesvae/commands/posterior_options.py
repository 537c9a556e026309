"""The command line of ``bayesvae diagnose``, part 2: flags from :class:`bayesvae.posterior.PosteriorOptions`.

The pipeline itself (NUTS on p(z|x), ArviZ diagnostics, amortization gap) is :mod:`bayesvae.posterior`,
shared with ``bayesvae.diagnose``; this module only turns flags into its options.
"""

from __future__ import annotations

import argparse

from bayesvae.models.checks import declared
from bayesvae.options import add_flags
from bayesvae.posterior import PosteriorOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Part-2 flags of ``bayesvae diagnose`` (their defaults are PosteriorOptions')."""
    group = parser.add_argument_group("part 2: true posterior p(z|x) by MCMC (NUTS) vs the guide q(z|x)")
    add_flags(group, PosteriorOptions)
    group.add_argument("--no-mcmc", action="store_true", help="skip part 2 (MCMC, PSIS, amortization gap)")


def from_args(args: argparse.Namespace) -> PosteriorOptions | None:
    """The part-2 options given on the command line (None with --no-mcmc)."""
    if getattr(args, "no_mcmc", False):
        return None
    return PosteriorOptions(**{name: getattr(args, name) for name in declared(PosteriorOptions)
                               if getattr(args, name) is not None})

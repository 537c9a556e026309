"""Settings that follow from other settings, resolved in one place for the command line and ``bayesvae.fit``.

* ``binarize`` (when not given) follows the support of the model's observed site ``x``: pixels drawn
  x ~ Bernoulli(grey level) (``dynamic``) when p(x|z) is a distribution over {0, 1} (Bernoulli), the
  grey levels themselves (``none``) otherwise (Gaussian, continuous Bernoulli, a user's Student-t, ...).
  For the built-in model that is its ``--likelihood``; for a user's model it is read from the model
  itself, traced once, never from the built-in ``--likelihood`` default it ignores.
* ``latent_dim`` of a user's model is the size of its latent site ``z`` in that trace (config.json and
  the default run name record what the model really uses).

The trace runs in a throwaway parameter store with Pyro's RNG state restored afterwards, so resolving
changes no initial weight and no random draw of the run.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.distributions import constraints

from pyro import poutine
from pyro.util import get_rng_state, set_rng_state

from bayesvae.inference.options import TrainOptions
from bayesvae.models.build import ModelSpec
from bayesvae.models.likelihoods import make_likelihood
from bayesvae.models.pair import Pair
from bayesvae.models.protocol import check_pair
from bayesvae.models.sites import LATENT, OBSERVED


def _base_support(constraint: constraints.Constraint) -> constraints.Constraint:
    while isinstance(constraint, constraints.independent):
        constraint = constraint.base_constraint
    return constraint


def trace_model(pair: Pair, x: torch.Tensor) -> poutine.Trace:
    """The model run once on four images (z from the guide), leaving no parameter and no RNG draw behind."""
    rng = get_rng_state()
    try:
        with torch.no_grad():
            # 0/1 pixels lie in every likelihood's support; a Pair of the same callables has its own (throwaway)
            # parameter store, so the run's pair is left as it was
            return check_pair(Pair(pair.model, pair.guide), x[:4].round())[1]
    finally:
        set_rng_state(rng)


def binary_pixels(trace: poutine.Trace) -> bool:
    """True when the observed site's distribution lives on {0, 1}."""
    site = trace.nodes.get(OBSERVED)
    return site is not None and _base_support(site["fn"].support) is constraints.boolean


def default_binarize(binary: bool) -> str:
    """``dynamic`` for a likelihood over {0, 1} pixels, ``none`` (the grey levels) otherwise."""
    return "dynamic" if binary else "none"


def builtin_binarize(spec: ModelSpec) -> str | None:
    """The binarization the built-in model's likelihood implies, without building a pair (None for a user's
    model: only its trace tells). Agrees with :func:`resolve` by construction: both read the support."""
    if not spec.builtin_model:
        return None
    likelihood = make_likelihood(spec.likelihood, spec.likelihood_scale)(torch.zeros(1, 1, 1, 1))
    return default_binarize(_base_support(likelihood.support) is constraints.boolean)


def latent_size(trace: poutine.Trace) -> int | None:
    """Number of latent dimensions per image at the model's site ``z`` (None when there is none)."""
    site = trace.nodes.get(LATENT)
    return None if site is None else math.prod(site["fn"].event_shape) or 1


def resolve(spec: ModelSpec, training: dict, pair: Pair, x: torch.Tensor) -> tuple[ModelSpec, TrainOptions]:
    """The run's settings with the derived defaults filled in (see the module docstring).

    ``training`` holds the training options the user gave; ``x`` are some training images on the pair's device.
    """
    trace = trace_model(pair, x)
    if "binarize" not in training:
        training = {**training, "binarize": default_binarize(binary_pixels(trace))}
    if not spec.builtin_model and latent_size(trace) is not None:
        spec = replace(spec, latent_dim=latent_size(trace))
    return spec, TrainOptions(**training)


def default_run_dir(dataset: str, spec: ModelSpec, root: str | Path = "runs") -> Path:
    """``runs/<dataset>-<guide>-z<latent size>-<time>`` (a suffix _2, _3, ... when that folder exists)."""
    guide = Path(spec.guide.split(":")[0]).stem
    out = Path(root) / f"{Path(dataset).stem}-{guide}-z{spec.latent_dim}-{time.strftime('%Y%m%d-%H%M%S')}"
    base, suffix = out.name, 2
    while out.exists():
        out = out.with_name(f"{base}_{suffix}")
        suffix += 1
    return out

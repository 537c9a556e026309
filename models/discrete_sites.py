"""Discrete latents in the protocol: a class site summed out exactly by enumeration, never sampled.

A pair may have, besides the continuous latent ``z`` and the data ``x``, one discrete latent site inside
the data plate — the mixture VAE's cluster :data:`CLUSTER` ("c"), M2's label :data:`LABEL` ("y"), or any
name in a user's script — whose distribution has a finite support (``Categorical``, ``Bernoulli``). The
rule (checked by :func:`check_discrete_sites`):

* guide-side: the guide samples the site too (q(c | x)) and marks it for parallel enumeration
  (``infer={"enumerate": "parallel"}`` or ``pyro.infer.config_enumerate``); z may then depend on it,
  q(z | x, c). Every term of the ELBO is then a sum over the K values of c weighted by q(c | x);
* model-side: only the model has the site, marked the same way; the ELBO sums p(c, z, x) over c
  exactly and the guide is q(z | x).

A discrete site that is not marked would be *sampled* by Pyro's ELBOs, a score-function estimator that
none of bayesvae's objectives and estimators support: training refuses it with one line.
"""

from __future__ import annotations

import torch
from pyro import poutine

from .errors import BadInput
from .sites import LATENT, OBSERVED

CLUSTER = "c"
"""The mixture VAE's cluster: c ~ Cat(π) in the model, q(c | x) in the guide."""

LABEL = "y"
"""M2's class label: y ~ Cat(1/K) in the model (observed for labelled images), q(y | x) in the guide."""


def discrete_site(model_trace: poutine.Trace) -> str | None:
    """The name of the model's discrete latent site (finite support, not the data), or None."""
    names = [name for name, site in model_trace.nodes.items()
             if site["type"] == "sample" and name not in (LATENT, OBSERVED) and not site["is_observed"]
             and getattr(site["fn"], "has_enumerate_support", False)]
    if len(names) > 1:
        raise BadInput(f"the model has {len(names)} discrete latent sites ({', '.join(names)}); bayesvae "
                       f"enumerates one discrete site per image")
    return names[0] if names else None


def enumerated(site: dict) -> bool:
    return site["infer"].get("enumerate") == "parallel"


def check_discrete_sites(guide_trace: poutine.Trace, model_trace: poutine.Trace) -> str | None:
    """Raise :class:`BadInput` unless the model's discrete site (if any) is marked for enumeration where
    it is sampled (see the module docstring); returns its name or None."""
    name = discrete_site(model_trace)
    if name is None:
        return None
    fn = model_trace.nodes[name]["fn"]
    if tuple(fn.event_shape) != ():
        raise BadInput(f"the discrete site {name!r} has event shape {tuple(fn.event_shape)}: use a Categorical "
                       f"over class indices (event shape ()), not a one-hot distribution")
    if name in guide_trace.nodes and guide_trace.nodes[name]["type"] == "sample":
        where, site = "guide", guide_trace.nodes[name]
    else:
        where, site = "model", model_trace.nodes[name]
    if not enumerated(site):
        raise BadInput(f"the discrete site {name!r} ({type(fn).__name__}) is sampled in the {where} without "
                       f"enumeration support: mark it infer={{'enumerate': 'parallel'}} (or decorate the {where} "
                       f"with pyro.infer.config_enumerate) so that it is summed out exactly")
    return name


def class_values(fn) -> torch.Tensor:
    """The K values of a discrete site's support, shape ``(K,)``."""
    return fn.enumerate_support(expand=False).reshape(-1)


def with_class(features: torch.Tensor, c: torch.Tensor, classes: int) -> torch.Tensor:
    """``[features, one_hot(c)]`` on the last axis, broadcasting the leading axes: under enumeration c has
    shape ``(K, 1, ..., 1)`` against features ``(..., N, F)``, giving ``(K, ..., N, F + K)``."""
    one_hot = torch.nn.functional.one_hot(c.long(), classes).to(features.dtype)
    shape = torch.broadcast_shapes(features.shape[:-1], one_hot.shape[:-1])
    return torch.cat([features.expand(*shape, features.shape[-1]), one_hot.expand(*shape, classes)], -1)

"""The ELBO's terms per image, read from Pyro traces of the pair (no second copy of any density).

For z ~ q(z | x) (``S`` samples per image, vectorized in a particle plate left of the data plate):

    log p(x | z)   likelihood, summed over pixels          site OBSERVED in the model trace
    log p(z)       prior, summed over latent dimensions    site LATENT in the model trace
    log q(z | x)   approximate posterior                   site LATENT in the guide trace

All in nats, one number per (sample, image): tensors of shape ``(S, N)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import Distribution, kl_divergence

import pyro
from pyro import poutine

from bayesvae.models.families import is_point_mass
from bayesvae.models.pair import Pair
from bayesvae.models.sites import LATENT, MAX_PLATE_NESTING, OBSERVED

PARTICLE_PLATE = "particles"


def in_particle_plate(fn, num_samples: int):
    """``fn(x)`` run inside a plate of ``num_samples`` draws, left of the data plate."""
    def wrapped(*args, **kwargs):
        with pyro.plate(PARTICLE_PLATE, num_samples, dim=-(MAX_PLATE_NESTING + 1)):
            return fn(*args, **kwargs)
    return wrapped


@dataclass
class Terms:
    """Per-sample, per-image log-densities at z ~ q(z | x), nats, shape ``(S, N)``."""

    z: torch.Tensor                  # (S, N, d) draws from q(z | x)
    log_likelihood: torch.Tensor     # log p(x | z)
    log_prior: torch.Tensor          # log p(z)
    log_q: torch.Tensor | None       # log q(z | x); None for a point-mass guide (no density)
    q: Distribution                  # the guide's distribution at LATENT (batch shape (S, N))
    p_z: Distribution                # the prior at LATENT
    likelihood: Distribution         # p(x | z) at OBSERVED (batch shape (S, N))

    @property
    def point_mass(self) -> bool:
        return self.log_q is None

    @property
    def log_weight(self) -> torch.Tensor:
        """log p(x, z) − log q(z | x): the importance weight of each draw (needs a density q)."""
        if self.log_q is None:
            raise ValueError("a point-mass guide has no importance weights")
        return self.log_likelihood + self.log_prior - self.log_q

    def analytic_kl(self) -> torch.Tensor | None:
        """KL(q(z|x) ‖ p(z)) per image in closed form, shape ``(N,)``, or None where torch has none."""
        if self.log_q is None:
            return None
        try:
            kl = kl_divergence(self.q, self.p_z)
        except NotImplementedError:
            return None
        return kl.expand(self.log_likelihood.shape)[0]


def traces(pair: Pair, x: torch.Tensor, num_samples: int = 1) -> tuple[poutine.Trace, poutine.Trace]:
    """(guide trace, model trace replayed on its draws), with the log-densities of LATENT and OBSERVED
    computed; ``pair``'s parameters must be active (:meth:`Pair.active`)."""
    guide_trace = poutine.trace(in_particle_plate(pair.guide, num_samples)).get_trace(x)
    model_trace = poutine.trace(
        poutine.replay(in_particle_plate(pair.model, num_samples), trace=guide_trace)).get_trace(x)
    guide_trace.compute_log_prob(site_filter=lambda name, site: name == LATENT)
    model_trace.compute_log_prob(site_filter=lambda name, site: name in (LATENT, OBSERVED))
    return guide_trace, model_trace


def log_weight(guide_trace: poutine.Trace, model_trace: poutine.Trace, shape: tuple[int, int]) -> torch.Tensor:
    """log p(x | z) + log p(z) − log q(z | x) of :func:`traces`: the importance weights, ``shape`` = (S, N)."""
    nodes = model_trace.nodes
    return (nodes[OBSERVED]["unscaled_log_prob"] + nodes[LATENT]["unscaled_log_prob"]
            - guide_trace.nodes[LATENT]["unscaled_log_prob"]).expand(shape)


def trace_terms(pair: Pair, x: torch.Tensor, num_samples: int = 1) -> Terms:
    """Sample z ~ q(z | x) ``num_samples`` times per image and score it under the model.

    Densities are read unscaled (β = 1, no subsampling scale): they are the model's own log-densities.
    """
    with pair.active():
        guide_trace, model_trace = traces(pair, x, num_samples)
    q_site, p_site, x_site = guide_trace.nodes[LATENT], model_trace.nodes[LATENT], model_trace.nodes[OBSERVED]
    shape = (num_samples, x.shape[0])
    point = is_point_mass(q_site["fn"])
    return Terms(
        z=q_site["value"].expand(*shape, *q_site["fn"].event_shape),
        log_likelihood=x_site["unscaled_log_prob"].expand(shape),
        log_prior=p_site["unscaled_log_prob"].expand(shape),
        log_q=None if point else q_site["unscaled_log_prob"].expand(shape),
        q=q_site["fn"],
        p_z=p_site["fn"],
        likelihood=x_site["fn"],
    )

"""The quantities several commands print (diagnose, compare, the sweep summary), one function each.

Each function reseeds Pyro's RNG with ``seed`` before it draws, so a quantity's value depends only on
the pair, the images and the seed — not on which other quantities were computed before it. Given the
same run, images and seed, ``diagnose``, ``compare`` and the ``sweep`` summary print the same I_q,
marginal KL, log p(x), ELBO terms and spread of posterior means (tests/test_shared_quantities.py).
All values in nats per image.
"""

from __future__ import annotations

import pyro
import torch

from bayesvae.inference.distributed import SINGLE_PROCESS, SingleProcess
from bayesvae.inference.evidence import EvidenceEstimate, estimate_log_evidence
from bayesvae.models.pair import Pair

from .aggregate import elbo_surgery
from .anatomy import elbo_anatomy
from .latent_stats import PosteriorMoments, latent_statistics, posterior_moments
from .rate_distortion import RatePoint

ANATOMY_SAMPLES = 64   # draws of q(z|x) per image for the ELBO's terms (and rate/distortion)


def evidence(pair: Pair, x: torch.Tensor, k: int, seed: int, progress: bool | None = False,
             runtime: SingleProcess = SINGLE_PROCESS) -> EvidenceEstimate:
    """Importance-sampled log p(x), the ELBO from the same K draws and their gap, per image; with a
    data-parallel ``runtime`` sharded over its ranks, with the same numbers (``diagnose --devices N``)."""
    pyro.set_rng_seed(seed)
    return estimate_log_evidence(pair, x, k=k, progress=progress, runtime=runtime)


def anatomy(pair: Pair, x: torch.Tensor, seed: int, num_samples: int = ANATOMY_SAMPLES,
            progress: bool | None = False) -> dict:
    """The ELBO's terms E_q[log p(x|z)], E_q[log p(z)], H[q], KL(q ‖ p(z)), ELBO (see analysis.anatomy)."""
    pyro.set_rng_seed(seed)
    return elbo_anatomy(pair, x, num_samples=num_samples, progress=progress)


def rate_point(anatomy_terms: dict) -> RatePoint:
    """Rate R = KL(q ‖ p(z)) and distortion D = −E_q[log p(x|z)] of an :func:`anatomy` (no new draws)."""
    return RatePoint.from_anatomy(anatomy_terms)


def surgery(pair: Pair, x: torch.Tensor, seed: int, progress: bool | None = False,
            return_samples: bool = False) -> dict:
    """ELBO surgery: average KL = I_q(x; z) + KL(q(z) ‖ p(z)) (see analysis.aggregate)."""
    pyro.set_rng_seed(seed)
    return elbo_surgery(pair, x, progress=progress, return_samples=return_samples)


def moments(pair: Pair, x: torch.Tensor, seed: int) -> PosteriorMoments:
    """Mean and std of q(z|x) per image and dimension (Monte Carlo only for families without them)."""
    pyro.set_rng_seed(seed)
    return posterior_moments(pair, x)


def latent(pair: Pair, x: torch.Tensor, seed: int, moments_: PosteriorMoments | None = None) -> dict:
    """Per-dimension statistics of q(z|x): KL_u, active units, spread of the posterior means (latent_stats)."""
    return latent_statistics(pair, x, moments=moments_ if moments_ is not None else moments(pair, x, seed))


def spread_of_means(latent_stats: dict) -> float:
    """Std_x(E_q[z_u|x]) averaged over the active dimensions (over all, when none is active): how far apart
    the codes of different images sit; the number ``diagnose`` prints for that group of dimensions."""
    summary = latent_stats["summary"]
    return (summary["active"] or summary["inactive"])["std_of_means"]

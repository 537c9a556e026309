"""Per-epoch test metrics: the ELBO and its two terms, averaged over images (nats per image).

    ELBO = E_q[log p(x | z)] − KL(q(z | x) ‖ p(z))

The KL is taken in closed form where torch has it (one z-sample for the likelihood term), otherwise
as log q(z|x) − log p(z) at that sample. A point-mass (Delta) guide has no density, so its ELBO
and KL are reported as NaN ("not defined"), and ``log_prior`` = log p(z) at the code is reported instead.
"""

from __future__ import annotations

import math

import torch

from bayesvae.models.pair import Pair

from .enumerated_terms import discrete_elbo_means, discrete_site_of
from .terms import trace_terms


@torch.no_grad()
def elbo_means(pair: Pair, x, chunk: int = 1000) -> dict[str, float]:
    """``{"elbo", "log_likelihood", "kl", "log_prior"}`` averaged over the images ``x`` (one draw each).

    ``x``: a tensor, or a streamed test source (``n``, ``chunks(size)``: the same images read in order by a
    DataLoader, :mod:`.image_source`); the chunks are scored alike, so both give the same sums."""
    if isinstance(x, torch.Tensor):
        site = discrete_site_of(pair, x)
        if site is not None:  # the class summed exactly, its KL(q(c|x) ‖ p(c)) a term of its own
            return discrete_elbo_means(pair, x, site)
        n, batches = x.shape[0], x.split(chunk)
    else:  # streamed: pairs with a discrete site are refused before training (check_training_setup)
        n, batches = x.n, x.chunks(chunk)
    totals = {"elbo": 0.0, "log_likelihood": 0.0, "kl": 0.0, "log_prior": 0.0}
    for xb in batches:
        terms = trace_terms(pair, xb, num_samples=1)
        log_lik, log_prior = terms.log_likelihood[0], terms.log_prior[0]
        totals["log_likelihood"] += float(log_lik.sum())
        totals["log_prior"] += float(log_prior.sum())
        if terms.point_mass:
            totals["kl"] = totals["elbo"] = math.nan
            continue
        kl = terms.analytic_kl()
        if kl is None:
            kl = terms.log_q[0] - log_prior
        totals["kl"] += float(kl.sum())
        totals["elbo"] += float((log_lik - kl).sum())
    return {name: value / n for name, value in totals.items()}

"""The latent space as pictures: posterior means in two dimensions, and images decoded along a grid of z.

* Posterior means E_q[z | x] (:func:`~.latent_stats.posterior_moments`) projected to 2-D: directly when
  d = 2, by PCA otherwise (fitted on the means; prior draws go through the same projection), or by
  t-SNE on request (a non-linear neighbourhood map: distances between far clusters mean little).
* A 2-D manifold grid (d = 2): E[x | z] for z on a regular grid spanning the 2nd–98th percentiles of the
  posterior means, so the AE's wide codes and the VAE's prior-sized codes are both covered.
* A traversal (d > 2): one row per most-active dimension, z_u swept over the same percentile range
  with the other coordinates at the centre of the codes.

Images are the likelihood's mean E[x | z], read from a trace of the model conditioned on z.
"""

from __future__ import annotations

import numpy as np
import torch

from pyro import poutine

from bayesvae.models.pair import Pair
from bayesvae.models.sites import LATENT

from .samples import likelihood_mean, prior_trace


@torch.no_grad()
def decode(pair: Pair, z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """E[x | z] for each row of ``z`` (n, d): images shaped like ``like[0]``."""
    x = like[:1].expand(z.shape[0], *like.shape[1:])
    with pair.active():
        trace = poutine.trace(poutine.condition(pair.model, data={LATENT: z})).get_trace(x)
    return likelihood_mean(trace)


def prior_draws(pair: Pair, like: torch.Tensor, n: int = 2000) -> torch.Tensor:
    """z ~ p(z), shape (n, d): the model's latent site, run unconditioned (learned priors included)."""
    return prior_trace(pair, like, n).nodes[LATENT]["value"]


def project(means: torch.Tensor, method: str = "pca", extra: torch.Tensor | None = None,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(2-D coordinates of ``means``, of ``extra`` points (same map; None for t-SNE), axis description).

    d = 1 gets a zero second axis; d = 2 is shown as is; d > 2 goes through PCA (or t-SNE).
    """
    data = means.detach().double().cpu().numpy()
    other = None if extra is None else extra.detach().double().cpu().numpy()
    d = data.shape[1]
    if d <= 2 and method == "pca":
        pad = (lambda a: np.hstack([a, np.zeros((a.shape[0], 1))]) if d == 1 else a)
        return pad(data), None if other is None else pad(other), "z₁, z₂ (the latent itself)" if d == 2 else "z₁"
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(data)
        share = pca.explained_variance_ratio_.sum()
        return (pca.transform(data), None if other is None else pca.transform(other),
                f"PCA of the {d}-D means ({share:.0%} of their variance)")
    if method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        perplexity = float(min(30, max(2, (data.shape[0] - 1) // 3)))
        # one OpenMP thread: on a busy 2-core machine Barnes-Hut t-SNE's threads spin-wait (measured 1.2 s
        # with one thread against 16–35 s CPU with the default for 360 points)
        with threadpool_limits(limits=1):
            xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(data)
        return xy, None, f"t-SNE of the {d}-D means (perplexity {perplexity:g})"
    raise ValueError(f"unknown projection {method!r}")


def code_range(means: torch.Tensor, low: float = 0.02, high: float = 0.98) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension 2nd and 98th percentiles of the posterior means: where the codes actually lie."""
    q = torch.tensor([low, high], dtype=means.dtype, device=means.device)
    lo, hi = torch.quantile(means, q, dim=0)
    return lo, hi


def manifold_grid(pair: Pair, means: torch.Tensor, like: torch.Tensor, steps: int = 15) -> torch.Tensor:
    """E[x | z] on a steps × steps grid over the codes' range (d = 2); rows: z₂ from high to low, columns: z₁."""
    lo, hi = code_range(means)
    z1 = torch.linspace(float(lo[0]), float(hi[0]), steps)
    z2 = torch.linspace(float(hi[1]), float(lo[1]), steps)
    grid = torch.stack(torch.meshgrid(z2, z1, indexing="ij")[::-1], -1).reshape(-1, 2)
    return decode(pair, grid.to(means.device, means.dtype), like)


def traversal(pair: Pair, means: torch.Tensor, like: torch.Tensor, dims: list[int],
              steps: int = 11) -> torch.Tensor:
    """One row per dimension in ``dims``: z_u swept over the codes' range, others at the median code."""
    lo, hi = code_range(means)
    centre = means.median(0).values
    rows = []
    for u in dims:
        z = centre.repeat(steps, 1)
        z[:, u] = torch.linspace(float(lo[u]), float(hi[u]), steps)
        rows.append(z)
    return decode(pair, torch.cat(rows), like)

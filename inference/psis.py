"""PSIS k̂ (Vehtari et al. 2015/2024; Yao et al. 2018) of importance weights, by ArviZ's ``psislw``.

k̂ is the shape of the generalized Pareto distribution fitted to the largest weights w = p(x,z)/q(z|x):
k̂ < 0.5 the weights have a finite variance (the error bar of log p̂ means what it says); 0.5–0.7 the
variance is infinite but the estimate still converges usefully; k̂ > 0.7 the estimate cannot be trusted
(q is too narrow or misplaced). Dimensionless, one per image.

Why not ``bayesvae.analysis.arviz_io.psis_khat``: imports flow models <- inference <- analysis, so
inference may not import analysis; this is the same ArviZ computation, for the evidence estimate.

The evidence fits one k̂ per image. ArviZ 0.23's ``psislw`` fits the images one at a time in a Python
loop (about 0.24 ms each at K = 1000: 5 % of the evidence's time on MNIST), so :func:`pareto_khat` does
ArviZ's arithmetic (the tail of the ``ceil(min(K/5, 3√K))`` largest weights, Zhang & Stephens' empirical
Bayes fit with ArviZ's priors) for all images at once, array by array (written here because ArviZ has no
vectorized form of it before 1.x); images whose tail it cannot take the same way (ties at the cutoff,
weights below ``log(tiny)``, fewer than 5 tail draws, a fit that is not finite) go to ``psislw`` itself.
Agreement with ``psislw`` to 10⁻¹² is checked in tests/test_psis.py.
"""

from __future__ import annotations

import numpy as np
import torch

from .arviz_import import az

KHAT_UNRELIABLE = 0.7
"""Above this k̂ the importance-sampled estimate is not to be trusted (Vehtari et al.)."""


def pareto_khat(log_weights: torch.Tensor) -> torch.Tensor:
    """k̂ per image of log-weights ``(K, N)`` (draws first, as the evidence estimator holds them), shape ``(N,)``.

    NaN where ArviZ cannot fit a tail: fewer than 5 weights above the tail cutoff (K below about 25, or
    weights that are all equal, as with the exact posterior as proposal, where no tail exists).
    """
    rows = log_weights.detach().to("cpu", torch.float64).T.contiguous().numpy()
    khat, by_arviz = _vectorized_khat(rows)
    if by_arviz.any():
        _, fitted = az.psislw(rows[by_arviz].copy())   # psislw modifies its input in place
        khat[by_arviz] = np.atleast_1d(np.asarray(fitted, dtype=np.float64))
    khat[~np.isfinite(khat)] = np.nan
    return torch.from_numpy(khat)


def _vectorized_khat(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ArviZ's ``_psislw`` k̂ (reff = 1) for every row of ``rows`` ``(N, K)`` at once, and the mask of the
    rows to leave to ArviZ (see the module docstring)."""
    n_rows, k = rows.shape
    tail = int(np.ceil(min(k / 5.0, 3 * k ** 0.5)))
    khat = np.full(n_rows, np.nan)
    if tail <= 4 or n_rows == 0:
        return khat, np.ones(n_rows, dtype=bool)
    x = rows - rows.max(axis=1, keepdims=True)
    x = np.sort(np.partition(x, k - tail - 1, axis=1)[:, k - tail - 1:], axis=1)   # the tail + 1 largest
    cutoff = np.maximum(x[:, -tail - 1], np.log(np.finfo(float).tiny))
    by_arviz = (x > cutoff[:, None]).sum(axis=1) != tail
    ary = np.exp(x[:, -tail:]) - np.exp(cutoff)[:, None]                 # the tail above the cutoff, ascending
    with np.errstate(all="ignore"):
        khat = _gpd_shape(ary)
    by_arviz |= ~np.isfinite(khat)
    return khat, by_arviz


def _gpd_shape(ary: np.ndarray, prior_bs: float = 3, prior_k: float = 10) -> np.ndarray:
    """The shape k of ArviZ's ``_gpdfit`` for each row of sorted exceedances ``ary`` ``(N, n)``."""
    n = ary.shape[1]
    m_est = 30 + int(n ** 0.5)
    b_ary = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))          # (m,)
    b_ary = b_ary / (prior_bs * ary[:, int(n / 4 + 0.5) - 1:int(n / 4 + 0.5)]) + 1 / ary[:, -1:]   # (N, m)
    # the one large array, (N, m, n): torch's vectorized log1p, about 3 times numpy's on it
    k_ary = torch.from_numpy(-b_ary[:, :, None] * ary[:, None, :]).log1p_().mean(2).numpy()
    len_scale = n * (np.log(-(b_ary / k_ary)) - k_ary - 1)
    weights = 1 / np.exp(len_scale[:, None, :] - len_scale[:, :, None]).sum(axis=2)
    weights = np.where(weights >= 10 * np.finfo(float).eps, weights, 0.0)   # ArviZ drops negligible weights
    weights /= weights.sum(axis=1, keepdims=True)
    b_post = (b_ary * weights).sum(axis=1)
    k_post = np.log1p(-b_post[:, None] * ary).mean(axis=1)
    return (n * k_post + prior_k * 0.5) / (n + prior_k)

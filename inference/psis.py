"""PSIS k̂ (Vehtari et al. 2015/2024; Yao et al. 2018) of importance weights, by ArviZ's ``psislw``.

k̂ is the shape of the generalized Pareto distribution fitted to the largest weights w = p(x,z)/q(z|x):
k̂ < 0.5 the weights have a finite variance (the error bar of log p̂ means what it says); 0.5–0.7 the
variance is infinite but the estimate still converges usefully; k̂ > 0.7 the estimate cannot be trusted
(q is too narrow or misplaced). Dimensionless, one per image.

Why not ``bayesvae.analysis.arviz_io.psis_khat``: imports flow models <- inference <- analysis, so
inference may not import analysis; this is the same ArviZ call, for the evidence estimate.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

with warnings.catch_warnings():  # arviz 0.23 announces its 1.x refactor at import
    warnings.filterwarnings("ignore", message="ArviZ is undergoing a major refactor", category=FutureWarning)
    import arviz as az

KHAT_UNRELIABLE = 0.7
"""Above this k̂ the importance-sampled estimate is not to be trusted (Vehtari et al.)."""


def pareto_khat(log_weights: torch.Tensor) -> torch.Tensor:
    """k̂ per image of log-weights ``(K, N)`` (draws first, as the evidence estimator holds them), shape ``(N,)``.

    NaN where ArviZ cannot fit a tail: fewer than 5 weights above the tail cutoff (K below about 25, or
    weights that are all equal, as with the exact posterior as proposal, where no tail exists).
    """
    rows = log_weights.detach().to("cpu", torch.float64).T.contiguous().numpy()
    _, khat = az.psislw(rows.copy())   # psislw modifies its input in place
    khat = np.atleast_1d(np.asarray(khat, dtype=np.float64))
    khat[~np.isfinite(khat)] = np.nan
    return torch.from_numpy(khat)

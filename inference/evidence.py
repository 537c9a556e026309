"""The evidence log p(x) by importance sampling with the guide as proposal (the IWAE_K estimate).

For each image x, with K draws z_k ~ q(z | x) and importance weights w_k = p(x, z_k) / q(z_k | x):

    log p̂(x) = log (1/K) Σ_k w_k          IWAE_K bound: E[log p̂(x)] ≤ log p(x), increasing in K
    ELBO     ≈ (1/K) Σ_k log w_k          the same draws, averaged in log space
    log p̂(x) − ELBO  estimates  KL(q(z|x) ‖ p(z|x)), the gap to the true posterior

(Burda et al. 2015). Standard error of log p̂(x), by the delta method:
Var[log p̂] ≈ Var[w] / (K E[w]²), estimated with the sample variance of the K weights, so

    se = sqrt( (K/(K−1)) (K Σ w_k² / (Σ w_k)² − 1) / K ).

It measures Monte Carlo spread only: the downward bias of log p̂ (≈ Var[w] / (2 K E[w]²)) and heavy-
tailed weights (a guide narrower than the posterior; see the PSIS k̂ of ``bayesvae diagnose``) are not in it.

The weights are streamed: ``chunk`` draws for ``batch_size`` images at a time, folded into running
log-sum-exps, so memory is O(batch_size × chunk) whatever K and N are. Densities come from Pyro
traces (:func:`~bayesvae.inference.terms.trace_terms`) at β = 1. All values in nats per image.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import pyro
import pyro.distributions
import torch
from tqdm.auto import tqdm

from bayesvae.models.errors import BadInput
from bayesvae.models.pair import Pair

from .terms import trace_terms

POINT_MASS_MESSAGE = ("the guide is a point mass (Delta): it has no density q(z|x), so there are no importance "
                      "weights p(x,z)/q(z|x) and log p(x) cannot be estimated with it as proposal")


@dataclass
class EvidenceEstimate:
    """Per-image importance-sampling estimates from K draws of q(z | x), nats, shape ``(N,)``.

    ``se`` is the delta-method standard error of ``log_px`` (see the module docstring);
    ``elbo_se`` the standard error of ``elbo`` (sample std of log w_k over √K).
    """

    log_px: torch.Tensor
    elbo: torch.Tensor
    se: torch.Tensor
    elbo_se: torch.Tensor
    k: int
    seconds: float = math.nan

    @property
    def n(self) -> int:
        return self.log_px.shape[0]

    @property
    def mean_log_px(self) -> float:
        """(1/N) Σ_n log p̂(x_n): the evidence per image, averaged over the images."""
        return float(self.log_px.mean())

    @property
    def mean_elbo(self) -> float:
        return float(self.elbo.mean())

    @property
    def gap(self) -> torch.Tensor:
        """log p̂(x) − ELBO per image: the estimate of KL(q(z|x) ‖ p(z|x))."""
        return self.log_px - self.elbo

    @property
    def mean_gap(self) -> float:
        return float(self.gap.mean())

    @property
    def se_mean(self) -> float:
        """Standard error of :attr:`mean_log_px` (independent draws per image): sqrt(Σ se_n²) / N."""
        return float(self.se.square().sum().sqrt() / self.n)

    @property
    def elbo_se_mean(self) -> float:
        return float(self.elbo_se.square().sum().sqrt() / self.n)


class WeightAccumulator:
    """Running sums over chunks of log-weights ``(chunk, B)`` for B images: after all K draws,
    log Σ w, log Σ w², Σ log w and Σ (log w)² give the estimate, the ELBO and both standard errors.

    Folding chunks with ``logaddexp`` is exact (no approximation from chunking): see the test that
    compares it with one log-sum-exp over all draws.
    """

    def __init__(self, batch: int, device: torch.device | str = "cpu"):
        zeros = torch.zeros(batch, dtype=torch.float64, device=device)
        self.log_sum_w = torch.full_like(zeros, -math.inf)
        self.log_sum_w2 = torch.full_like(zeros, -math.inf)
        self.sum_log_w = zeros.clone()
        self.sum_log_w_sq = zeros.clone()
        self.k = 0

    def add(self, log_w: torch.Tensor) -> None:
        log_w = log_w.to(torch.float64)
        self.log_sum_w = torch.logaddexp(self.log_sum_w, log_w.logsumexp(0))
        self.log_sum_w2 = torch.logaddexp(self.log_sum_w2, (2 * log_w).logsumexp(0))
        self.sum_log_w += log_w.sum(0)
        self.sum_log_w_sq += log_w.square().sum(0)
        self.k += log_w.shape[0]

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log p̂, ELBO, se of log p̂, se of ELBO), each ``(B,)`` float32; the se's are NaN for K = 1."""
        k = self.k
        log_px = self.log_sum_w - math.log(k)
        elbo = self.sum_log_w / k
        if k < 2:
            nan = torch.full_like(elbo, math.nan)
            return log_px.float(), elbo.float(), nan.float(), nan.float()
        # K Σw²/(Σw)² − 1 ∈ [0, K − 1]: the relative variance of w, computed in log space (no overflow)
        ratio = torch.exp(self.log_sum_w2 - 2 * self.log_sum_w + math.log(k)) - 1
        rel_var = ratio.clamp(min=0) * k / (k - 1)
        se = (rel_var / k).sqrt()
        var_log_w = ((self.sum_log_w_sq - k * elbo.square()) / (k - 1)).clamp(min=0)
        elbo_se = (var_log_w / k).sqrt()
        return log_px.float(), elbo.float(), se.float(), elbo_se.float()


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise BadInput(f"--k must be a whole number ≥ 2 (importance samples per image; the standard error "
                       f"needs two), got {k!r}")
    return k


def draw_counts(k: int, chunk: int) -> Iterator[int]:
    """Chunk sizes that add up to ``k``: ``chunk, chunk, ..., remainder``."""
    for start in range(0, k, chunk):
        yield min(chunk, k - start)


@torch.no_grad()
def estimate_log_evidence(pair: Pair, x: torch.Tensor, k: int = 1000, chunk: int = 25, batch_size: int = 100,
                          progress: bool | None = False) -> EvidenceEstimate:
    """Importance-sampled log p(x) for every image of ``x`` with K draws of the guide (see module docstring).

    ``chunk`` draws × ``batch_size`` images are traced at a time (vectorized in a particle plate);
    peak memory is that block's model trace, independent of K and N. ``progress``: True shows a tqdm
    bar over the N × K draws, None shows it only on a terminal. Raises :class:`BadInput` for a
    point-mass guide (no importance weights) and for K < 2.
    """
    k = check_k(k)
    if x.shape[0] == 0:
        raise BadInput("no images to estimate log p(x) on")
    if chunk < 1 or batch_size < 1:
        raise BadInput(f"chunk and batch_size must be ≥ 1, got {chunk} and {batch_size}")
    started = time.perf_counter()
    parts: list[tuple[torch.Tensor, ...]] = []
    validate = pyro.distributions.is_validation_enabled()
    with tqdm(total=x.shape[0] * k, desc=f"evidence log p(x), K={k}", unit="draw", unit_scale=True,
              disable=None if progress is None else not progress, leave=False) as bar:
        for xb in x.split(batch_size):
            acc = WeightAccumulator(xb.shape[0], xb.device)
            for i, count in enumerate(draw_counts(k, chunk)):
                # argument checks (pixels in the likelihood's support, ...) once per batch of images, not per chunk
                with pyro.validation_enabled(validate and i == 0):
                    terms = trace_terms(pair, xb, num_samples=count)
                if terms.point_mass:
                    raise BadInput(POINT_MASS_MESSAGE)
                acc.add(terms.log_weight)
                bar.update(count * xb.shape[0])
            parts.append(acc.result())
    log_px, elbo, se, elbo_se = (torch.cat(column) for column in zip(*parts))
    return EvidenceEstimate(log_px, elbo, se, elbo_se, k, time.perf_counter() - started)

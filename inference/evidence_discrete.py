"""log p(x) for a pair with an enumerated discrete latent: the class summed exactly, only z importance-sampled.

    p(x) = Σ_c p(x, c),   p(x, c) = ∫ p(c) p(z | c) p(x | z, c) dz ≈ p̂_c = (1/K) Σ_k w_{c,k},
    w_{c,k} = p(c) p(z_k | c) p(x | z_k, c) / q(z_k | x, c),   z_k ~ q(z | x, c)

    log p̂(x) = log Σ_c p̂_c,        p̂(c | x) = p̂_c / Σ_c' p̂_c'   (the posterior over the class)

The draws of different classes are independent (guide-side enumeration), so by the delta method
Var[p̂] = Σ_c Var[p̂_c] and se(log p̂) = sqrt(Σ_c p̂_c² se_c²) / p̂ with se_c the relative standard error of
p̂_c (the same formula as :mod:`.evidence`, per class). With model-side enumeration the guide is q(z | x):
one z per draw serves every class, the marginal weight Σ_c w_{c,k} is accumulated instead and the
standard error is that of :mod:`.evidence` on it. E[log p̂] ≤ log p(x) as for IWAE_K; the ELBO reported is
the exactly enumerated one (:mod:`.enumerated_terms`). Nats per image.

Why not :func:`.evidence.estimate_log_evidence`: it samples one class per draw from q(c | x), a noisier
estimate of a sum that can be taken exactly, and it has no per-class posterior to report.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from bayesvae.models.errors import BadInput
from bayesvae.models.pair import Pair

from .enumerated_terms import class_terms, discrete_site_of
from .evidence import EvidenceEstimate, check_k, draw_counts


class WeightAccumulator:
    """Running sums (delta method; the class-summed estimate's per-class s.e.) over chunks of log-weights ``(chunk, B)`` for B images: after all K draws,
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


@dataclass
class DiscreteEvidenceEstimate(EvidenceEstimate):
    """:class:`.evidence.EvidenceEstimate` plus, per image, the class posteriors ``(N, K)``:
    ``posterior`` p̂(c | x) from the importance weights and ``q_class`` q(c | x) (None model-side)."""

    se_method = "delta method, per class"

    site: str = ""
    values: torch.Tensor | None = None
    posterior: torch.Tensor | None = None
    q_class: torch.Tensor | None = None


@torch.no_grad()
def estimate_log_evidence_discrete(pair: Pair, x: torch.Tensor, k: int = 1000, chunk: int = 25,
                                   batch_size: int = 100) -> DiscreteEvidenceEstimate:
    """Importance-sampled log p(x) with the discrete site summed exactly: K draws of z per class and image."""
    k = check_k(k)
    if x.shape[0] == 0:
        raise BadInput("no images to estimate log p(x) on")
    site = discrete_site_of(pair, x)
    if site is None:
        raise BadInput("the model has no enumerated discrete site: use the plain evidence estimator")
    started = time.perf_counter()
    columns: dict[str, list[torch.Tensor]] = {name: [] for name in
                                              ("log_px", "elbo", "se", "elbo_se", "posterior", "q_class")}
    values = None
    for xb in x.split(batch_size):
        per_class = marginal = None
        elbo_sum = elbo_sq = None
        q_class = None
        for count in draw_counts(k, chunk):
            terms = class_terms(pair, xb, site, count)
            values, q_class = terms.values, terms.q_class
            if per_class is None:
                per_class = [WeightAccumulator(xb.shape[0], xb.device) for _ in values]
                marginal = WeightAccumulator(xb.shape[0], xb.device)
                elbo_sum = torch.zeros(xb.shape[0], dtype=torch.float64)
                elbo_sq = torch.zeros_like(elbo_sum)
            for acc, log_w in zip(per_class, terms.log_weight):
                acc.add(log_w)
            marginal.add(terms.log_weight.logsumexp(0))
            elbo = terms.elbo().double()
            elbo_sum += elbo.sum(0)
            elbo_sq += elbo.square().sum(0)
        log_pc, _, se_c, _ = (torch.stack(c) for c in zip(*(acc.result() for acc in per_class)))
        log_px = log_pc.logsumexp(0)
        posterior = (log_pc - log_px).exp()
        if q_class is not None:   # independent draws per class
            se = (posterior.square() * se_c.square()).sum(0).sqrt()
        else:                     # shared draws: the marginal weights' own spread
            log_px, _, se, _ = marginal.result()
        mean_elbo = elbo_sum / k
        elbo_se = ((elbo_sq - k * mean_elbo.square()).clamp(min=0) / (k - 1) / k).sqrt()
        for name, value in (("log_px", log_px), ("elbo", mean_elbo.float()), ("se", se),
                            ("elbo_se", elbo_se.float()), ("posterior", posterior.T),
                            ("q_class", None if q_class is None else q_class.T)):
            columns[name].append(value)
    cat = {name: None if any(v is None for v in vs) else torch.cat(vs) for name, vs in columns.items()}
    return DiscreteEvidenceEstimate(cat["log_px"], cat["elbo"], cat["se"], cat["elbo_se"], k,
                                    time.perf_counter() - started, site=site, values=values,
                                    posterior=cat["posterior"], q_class=cat["q_class"])


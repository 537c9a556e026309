"""Where the ELBO loses to the evidence: approximation gap and amortization gap (Cremer et al. 2018).

For an image x, with q(z | x) the amortized guide and q*(z | x) the best member of the guide's
family for this image alone (:func:`bayesvae.inference.local_posterior.fit_local_posterior`):

    log p(x) − ELBO[q]  =  (log p(x) − ELBO[q*])  +  (ELBO[q*] − ELBO[q])
      total gap             approximation gap         amortization gap
      = KL(q ‖ p(z|x))      = KL(q* ‖ p(z|x)): the     what one shared encoder costs
                            family cannot do better    against per-image optimization

All in nats per image. Estimators (from :func:`bayesvae.inference.evidence.estimate_log_evidence`,
K draws per image):

* ELBO[q] and ELBO[q*]: (1/K) Σ_k log w_k, w_k = p(x, z_k) / q(z_k | x), z_k ~ q (resp. q*); standard
  error = sample std of log w / √K. The log-weight form has zero variance when q equals p(z|x),
  so the gap near the optimum is measured with small error.
* log p(x): log (1/K) Σ_k w_k with q* as the proposal (closer to p(z|x) than q, hence less biased
  and with lighter-tailed weights; its PSIS k̂ is reported too); delta-method standard error.
  An IWAE_K estimate is a stochastic lower bound: E[log p̂(x)] ≤ log p(x), so the approximation gap
  is, if anything, underestimated.
* Standard errors of the gaps: √(se₁² + se₂²). Exact for the amortization gap (q and q* are sampled
  independently); conservative for the approximation gap, whose two terms come from the same draws
  and are positively correlated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from bayesvae.inference.evidence import estimate_log_evidence
from bayesvae.inference.local_posterior import LocalPosterior
from bayesvae.inference.mcmc import torch_threads
from bayesvae.models.pair import Pair

from .posterior_check import psis_khat


@dataclass
class Gaps:
    """Per-image evidence, ELBOs and gaps with standard errors, nats, arrays of shape (N,)."""

    log_px: np.ndarray
    log_px_se: np.ndarray
    elbo_local: np.ndarray
    elbo_local_se: np.ndarray
    elbo_amortized: np.ndarray
    elbo_amortized_se: np.ndarray
    khat_local: np.ndarray
    k: int

    @property
    def approximation_gap(self) -> np.ndarray:
        """log p(x) − ELBO[q*] = KL(q* ‖ p(z|x))."""
        return self.log_px - self.elbo_local

    @property
    def amortization_gap(self) -> np.ndarray:
        """ELBO[q*] − ELBO[q]: the price of one encoder for all images (≥ 0 when q* is optimal)."""
        return self.elbo_local - self.elbo_amortized

    @property
    def amortization_gap_se(self) -> np.ndarray:
        return np.hypot(self.elbo_local_se, self.elbo_amortized_se)

    @property
    def approximation_gap_se(self) -> np.ndarray:
        return np.hypot(self.log_px_se, self.elbo_local_se)


def measure_gaps(pair: Pair, local: LocalPosterior, x: torch.Tensor, k: int = 1000, progress: bool | None = False,
                 threads: int = 1) -> Gaps:
    """log p(x), ELBO[q*], ELBO[q] for the images ``x`` that ``local`` was fitted on (see module docstring).

    Runs with ``threads`` torch threads: a few images give tiny tensors (see :mod:`bayesvae.inference.mcmc`).
    """
    with torch_threads(threads), torch.no_grad():
        amortized = estimate_log_evidence(pair, x, k=k, progress=progress)
        best = estimate_log_evidence(local.pair, x, k=k, progress=progress)
        khat = psis_khat(local.pair, x, num_samples=k)
    return Gaps(best.log_px.double().numpy(), best.se.double().numpy(), best.elbo.double().numpy(),
                best.elbo_se.double().numpy(), amortized.elbo.double().numpy(), amortized.elbo_se.double().numpy(),
                khat, k)


def gap_rows(gaps: Gaps, image_ids: list[int]) -> list[dict]:
    """One JSON-ready row per image."""
    rows = []
    for n, image in enumerate(image_ids):
        rows.append({
            "image": int(image),
            "log_px": float(gaps.log_px[n]), "log_px_se": float(gaps.log_px_se[n]),
            "elbo_local": float(gaps.elbo_local[n]), "elbo_local_se": float(gaps.elbo_local_se[n]),
            "elbo_amortized": float(gaps.elbo_amortized[n]), "elbo_amortized_se": float(gaps.elbo_amortized_se[n]),
            "approximation_gap": float(gaps.approximation_gap[n]),
            "approximation_gap_se": float(gaps.approximation_gap_se[n]),
            "amortization_gap": float(gaps.amortization_gap[n]),
            "amortization_gap_se": float(gaps.amortization_gap_se[n]),
            "khat_local": float(gaps.khat_local[n]),
        })
    return rows


def format_gap_table(rows: list[dict]) -> str:
    """log p(x), ELBO[q*], ELBO[q] and the two gaps per image (± one standard error), plus the means."""
    head = (f"{'image':>6} {'log p(x)':>16} {'ELBO[q*]':>16} {'ELBO[q]':>16} {'approx. gap':>13} "
            f"{'amort. gap':>13} {'k̂(q*)':>6}")
    lines = [head, "-" * len(head)]

    def pm(value, se, width):
        return f"{value:.2f} ± {se:.2f}".rjust(width)

    for r in rows:
        lines.append(f"{r['image']:>6} {pm(r['log_px'], r['log_px_se'], 16)} "
                     f"{pm(r['elbo_local'], r['elbo_local_se'], 16)} "
                     f"{pm(r['elbo_amortized'], r['elbo_amortized_se'], 16)} "
                     f"{pm(r['approximation_gap'], r['approximation_gap_se'], 13)} "
                     f"{pm(r['amortization_gap'], r['amortization_gap_se'], 13)} {r['khat_local']:>6.2f}")
    n = len(rows)
    mean = {key: sum(r[key] for r in rows) / n for key in ("log_px", "elbo_local", "elbo_amortized",
                                                             "approximation_gap", "amortization_gap")}
    se = {key: math.sqrt(sum(r[key + "_se"] ** 2 for r in rows)) / n
          for key in ("log_px", "elbo_local", "elbo_amortized", "approximation_gap", "amortization_gap")}
    lines.append("-" * len(head))
    lines.append(f"{'mean':>6} {pm(mean['log_px'], se['log_px'], 16)} {pm(mean['elbo_local'], se['elbo_local'], 16)} "
                 f"{pm(mean['elbo_amortized'], se['elbo_amortized'], 16)} "
                 f"{pm(mean['approximation_gap'], se['approximation_gap'], 13)} "
                 f"{pm(mean['amortization_gap'], se['amortization_gap'], 13)}")
    return "\n".join(lines)

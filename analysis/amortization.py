"""Where the ELBO loses to the evidence: approximation gap and amortization gap (Cremer et al. 2018).

For an image x, with q(z | x) the amortized guide and q*(z | x) the best member of the guide's
family for this image alone (:func:`bayesvae.inference.local_posterior.fit_local_posterior`):

    log p(x) − ELBO[q]  =  (log p(x) − ELBO[q*])  +  (ELBO[q*] − ELBO[q])
      total gap             approximation gap         amortization gap
      = KL(q ‖ p(z|x))      = KL(q* ‖ p(z|x)): the     what one shared encoder costs
                            family cannot do better    against per-image optimization

At β ≠ 1 the encoder was trained for the tempered target p(x|z)^(1/β) p(z), not for p(z|x). A second
per-image fit q*_β of that target (``fit_local_posterior(..., beta=β)``) splits the amortization gap:

    ELBO[q*] − ELBO[q]  =  (ELBO[q*] − ELBO[q*_β])  +  (ELBO[q*_β] − ELBO[q])
                            β part: what the β target     amortization part: one encoder against the
                            costs even per image          best per-image fit of the target it was trained for

(:func:`beta_split`; the amortization part can be slightly negative when the encoder's error leans
toward p(z|x)). All ELBOs here are at β = 1, so the parts add up to the total gap.

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


def beta_split(gaps: Gaps, elbo_beta: np.ndarray, elbo_beta_se: np.ndarray, beta: float, image_ids: list[int]) -> dict:
    """The gap at β ≠ 1 split into approximation, β and amortization parts (module docstring), nats per image.

    ``elbo_beta``: ELBO[q*_β] (β = 1 ELBO of the per-image fit of the β target), shape (N,).
    Returns ``{"beta", "labels", "rows", "mean"}``; each row and the mean hold ``total_gap``,
    ``approximation_gap``, ``beta_part``, ``amortization_part`` (and ``*_se`` in the rows)."""
    total = gaps.log_px - gaps.elbo_amortized
    beta_part = gaps.elbo_local - elbo_beta
    amortization_part = elbo_beta - gaps.elbo_amortized
    rows = [{"image": int(image), "elbo_local_beta": float(elbo_beta[n]), "elbo_local_beta_se": float(elbo_beta_se[n]),
             "total_gap": float(total[n]), "approximation_gap": float(gaps.approximation_gap[n]),
             "beta_part": float(beta_part[n]), "beta_part_se": float(np.hypot(gaps.elbo_local_se[n], elbo_beta_se[n])),
             "amortization_part": float(amortization_part[n]),
             "amortization_part_se": float(np.hypot(elbo_beta_se[n], gaps.elbo_amortized_se[n]))}
            for n, image in enumerate(image_ids)]
    keys = ("total_gap", "approximation_gap", "beta_part", "amortization_part")
    return {"beta": beta, "rows": rows, "mean": {key: float(np.mean([r[key] for r in rows])) for key in keys},
            "labels": {"approximation_gap": "log p(x) − ELBO[q*]: the family's limit",
                       "beta_part": f"ELBO[q*] − ELBO[q*_β]: what training for β = {beta:g} costs even per image",
                       "amortization_part": "ELBO[q*_β] − ELBO[q]: one encoder against per-image fits of its own target"}}


def measure_beta_split(gaps: Gaps, local_beta: LocalPosterior, x: torch.Tensor, beta: float, image_ids: list[int],
                       k: int = 1000, threads: int = 1) -> dict:
    """ELBO[q*_β] from K draws of the per-image β fit ``local_beta``, then :func:`beta_split`."""
    with torch_threads(threads), torch.no_grad():
        estimate = estimate_log_evidence(local_beta.pair, x, k=k, progress=False)
    return beta_split(gaps, estimate.elbo.double().numpy(), estimate.elbo_se.double().numpy(), beta, image_ids)


def format_beta_split(split: dict) -> str:
    """The mean split, one labelled line per part (nats per image)."""
    mean, labels = split["mean"], split["labels"]
    lines = [f"at β = {split['beta']:g} the gap log p(x) − ELBO[q] = {mean['total_gap']:.2f} nats splits into:"]
    for key in ("approximation_gap", "beta_part", "amortization_part"):
        lines.append(f"  {mean[key]:8.2f}  {labels[key]}")
    return "\n".join(lines)


def fit_beta_split(pair: Pair, gaps: Gaps, x: torch.Tensor, beta: float, image_ids: list[int], k: int = 1000,
                   **fit_options) -> dict | None:
    """At β ≠ 1: fit q*_β (``fit_local_posterior(..., beta=β)``, same settings as q*) and return
    :func:`measure_beta_split`; None at β = 1 (there is nothing to split)."""
    from bayesvae.inference.local_posterior import fit_local_posterior

    if beta == 1.0:
        return None
    local_beta = fit_local_posterior(pair, x, beta=beta, **fit_options)
    return measure_beta_split(gaps, local_beta, x, beta, image_ids, k=k)

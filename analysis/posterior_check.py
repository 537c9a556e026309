"""The approximate posterior q(z | x) set beside the true posterior p(z | x), image by image.

For each image the table reports (all densities in nats):

* MCMC health (ArviZ, rank-normalized split R-hat and ESS, Vehtari et al. 2021): max over latent
  dimensions of R-hat (flag > 1.01), min of bulk and tail ESS (flag < 400), divergent transitions
  of the NUTS state the image was sampled in, and ESS per second (min bulk ESS / wall time).
* Moments: E[z_u | x] and Std[z_u | x] from the MCMC draws (p) and from q (exact for a Gaussian q,
  else from its draws); shown as the largest standardized shift
  max_u |E_q z_u − E_p z_u| / Std_p z_u and the range of Std_q / Std_p over dimensions.
* KL between them, estimator stated: p̂ = N(mean, covariance) fitted to the pooled MCMC draws, then
  KL(q ‖ p̂) (exclusive, the direction the ELBO minimizes) and KL(p̂ ‖ q) (inclusive, large when q
  misses posterior mass), in closed form for a Gaussian q, else by Monte Carlo (q's draws for
  KL(q ‖ p̂), draws of p̂ for KL(p̂ ‖ q)). A Gaussian fit sees the first two moments only: for a skewed
  or multimodal p(z|x) it understates the difference, and with few effective draws its covariance
  error biases KL upward by about d(d+1)/(4 ESS). The exact KL(q ‖ p(z|x)) is log p(x) − ELBO[q],
  reported with the amortization gap (:mod:`.amortization`).
* PSIS k̂ (Yao et al. 2018): the Pareto shape of the importance weights w = p(x, z) / q(z | x),
  z ~ q, i.e. log w = log p(x, z) − log q(z | x) from the pair's traces. See :data:`KHAT_NOTE`.

A Delta (point-mass) guide has no density: KL and k̂ are not defined and are reported as such;
its "moments" are its code and 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import Distribution, MultivariateNormal, kl_divergence

from bayesvae.inference.mcmc import PosteriorDraws
from bayesvae.inference.terms import trace_terms
from bayesvae.models.families import gaussian_view, is_point_mass
from bayesvae.models.pair import Pair

from . import arviz_io
from .findings.thresholds import ESS_MIN, KHAT_BAD, KHAT_GOOD, R_HAT_MAX  # one place for every threshold


KHAT_NOTE = (
    "PSIS k̂ of w = p(x,z)/q(z|x), z ~ q (Yao et al. 2018): k̂ < 0.5 q covers p(z|x), importance sampling "
    "(log p(x)) is reliable; 0.5-0.7 usable, slower convergence; > 0.7 the weights' variance is (nearly) "
    "infinite: q is too narrow or misplaced and importance-sampled estimates cannot be trusted.")
MCMC_NOTE = (f"flags: R-hat > {R_HAT_MAX} or ESS < {ESS_MIN}: the chains have not converged (the findings name the "
             f"probable cause and its option: tree depth at the cap, divergences, or too few --draws); divergences: the "
             f"NUTS state (all chains of these images) hit a region it could not integrate, draws may be biased.")
KL_NOTE = ("KL(q‖p̂), KL(p̂‖q): p̂ = Gaussian fitted to the MCMC draws (first two moments of p(z|x) only); "
           "closed form for a Gaussian q, else Monte Carlo.")


def guide_draws(pair: Pair, x: torch.Tensor, chains: int, draws: int) -> torch.Tensor:
    """z ~ q(z | x), shaped like the MCMC draws: (chains, draws, N, d) (independent draws throughout)."""
    with torch.no_grad():
        z = trace_terms(pair, x, chains * draws).z
    return z.reshape(chains, draws, *z.shape[1:])


def importance_log_weights(pair: Pair, x: torch.Tensor, num_samples: int = 1000,
                           chunk: int = 250) -> torch.Tensor | None:
    """log w = log p(x, z) − log q(z | x) for z ~ q, shape (N, S) (nats); None for a point-mass guide."""
    parts = []
    with torch.no_grad():
        for start in range(0, num_samples, chunk):
            terms = trace_terms(pair, x, min(chunk, num_samples - start))
            if terms.point_mass:
                return None
            parts.append(terms.log_weight)
    return torch.cat(parts).T


def psis_khat(pair: Pair, x: torch.Tensor, num_samples: int = 1000) -> np.ndarray | None:
    """Pareto k̂ per image (N,) of the guide's importance weights (see :data:`KHAT_NOTE`); None for Delta."""
    log_w = importance_log_weights(pair, x, num_samples)
    return None if log_w is None else arviz_io.psis_khat(log_w.double().numpy())


def gaussian_fit(z: torch.Tensor) -> MultivariateNormal:
    """p̂ = N(mean, cov) per image from MCMC draws (chains, draws, N, d), all chains pooled; batch shape (N,)."""
    flat = z.reshape(-1, *z.shape[2:]).double()                     # (S, N, d)
    mean = flat.mean(0)
    centred = flat - mean
    cov = torch.einsum("sni,snj->nij", centred, centred) / (flat.shape[0] - 1)
    cov = cov + 1e-9 * torch.eye(cov.shape[-1], dtype=cov.dtype)
    return MultivariateNormal(mean, covariance_matrix=cov)


def as_gaussian(q: Distribution) -> MultivariateNormal | None:
    """q as a MultivariateNormal when it is one (mean-field Normal, full or low-rank Gaussian), else None:
    the family registry's Gaussian view (models/families.py)."""
    return gaussian_view(q)


def kl_to_gaussian_fit(q: Distribution, p_hat: MultivariateNormal, q_z: torch.Tensor,
                       num_samples: int = 4000) -> tuple[np.ndarray, np.ndarray, str]:
    """(KL(q ‖ p̂), KL(p̂ ‖ q)) per image (N,), nats, and how they were computed.

    ``q_z`` are draws of q, shape (chains, draws, N, d), used when q is not Gaussian.
    """
    with torch.no_grad():
        gauss = as_gaussian(q)
        if gauss is not None:
            return (kl_divergence(gauss, p_hat).numpy(), kl_divergence(p_hat, gauss).numpy(),
                    "closed form (Gaussian q vs Gaussian fit p̂)")
        z_q = q_z.reshape(-1, *q_z.shape[2:])
        z_p = p_hat.sample((num_samples,))
        kl_qp = (q.log_prob(z_q).double() - p_hat.log_prob(z_q.double())).mean(0)
        kl_pq = (p_hat.log_prob(z_p) - q.log_prob(z_p.to(q_z.dtype)).double()).mean(0)
    return kl_qp.numpy(), kl_pq.numpy(), f"Monte Carlo ({z_q.shape[0]} draws of q, {num_samples} of p̂)"


def q_mean_covariance(q: Distribution, q_z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean (N, d) and covariance (N, d, d) of q per image: its own when Gaussian, its draws' otherwise;
    a point mass has its code as mean and no covariance (None)."""
    if is_point_mass(q):
        return q.mean.detach(), None
    gauss = as_gaussian(q)
    fit = gauss if gauss is not None else gaussian_fit(q_z)
    return fit.mean.detach().float(), fit.covariance_matrix.detach().float()


def posterior_rows(draws: PosteriorDraws, mcmc_idata, q: Distribution, q_z: torch.Tensor, khat: np.ndarray | None,
                   image_ids: list[int], labels: list | None = None) -> tuple[list[dict], dict]:
    """One row per image comparing p(z | x) (MCMC) with q(z | x); returns (rows, notes on the estimators)."""
    health = arviz_io.convergence(mcmc_idata)
    z = draws.z
    flat = z.reshape(-1, *z.shape[2:])
    mean_p, sd_p = flat.mean(0), flat.std(0)
    mean_q, cov_q = q_mean_covariance(q, q_z)
    sd_q = torch.zeros_like(mean_q) if cov_q is None else cov_q.diagonal(dim1=-2, dim2=-1).sqrt()
    point = is_point_mass(q)
    if point:
        kl_qp = kl_pq = None
        kl_method = "not defined: the guide is a point mass (Delta), it has no density"
    else:
        kl_qp, kl_pq, kl_method = kl_to_gaussian_fit(q, gaussian_fit(z), q_z)
    seconds, divergences = draws.image_seconds(), draws.image_divergences()
    rows = []
    for n, image in enumerate(image_ids):
        ess_bulk = float(np.min(health["ess_bulk"][n]))
        row = {
            "image": int(image),
            "label": None if labels is None else int(labels[n]),
            "r_hat": float(np.max(health["r_hat"][n])),
            "ess_bulk": ess_bulk,
            "ess_tail": float(np.min(health["ess_tail"][n])),
            "divergences": int(divergences[n]),
            "seconds": float(seconds[n]),
            "ess_per_second": ess_bulk / float(seconds[n]),
            "mean_mcmc": mean_p[n].tolist(), "sd_mcmc": sd_p[n].tolist(),
            "mean_q": mean_q[n].tolist(), "sd_q": sd_q[n].tolist(),
            "max_mean_shift": float(((mean_q[n] - mean_p[n]).abs() / sd_p[n]).max()),
            "sd_ratio_min": float((sd_q[n] / sd_p[n]).min()),
            "sd_ratio_max": float((sd_q[n] / sd_p[n]).max()),
            "kl_q_phat": None if kl_qp is None else float(kl_qp[n]),
            "kl_phat_q": None if kl_pq is None else float(kl_pq[n]),
            "khat": None if khat is None else float(khat[n]),
        }
        row["flags"] = flags(row)
        rows.append(row)
    notes = {"kl_method": kl_method, "khat": KHAT_NOTE if not point else
             "PSIS k̂: not defined, the guide is a point mass (no importance weights)",
             "mcmc": MCMC_NOTE, "kl": KL_NOTE}
    return rows, notes


def flags(row: dict) -> list[str]:
    """Warnings for one row: MCMC not converged, divergences, a guide that does not cover p(z|x)."""
    out = []
    if not row["r_hat"] <= R_HAT_MAX:
        out.append(f"R-hat>{R_HAT_MAX}")
    if not min(row["ess_bulk"], row["ess_tail"]) >= ESS_MIN:
        out.append(f"ESS<{ESS_MIN}")
    if row["divergences"]:
        out.append("divergent")
    if row["khat"] is not None and row["khat"] > KHAT_BAD:
        out.append(f"k̂>{KHAT_BAD}")
    elif row["khat"] is not None and row["khat"] > KHAT_GOOD:
        out.append(f"k̂>{KHAT_GOOD}")
    return out


def _cell(value, fmt: str, width: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f"{'n/a':>{width}}"
    return f"{value:{width}{fmt}}"


def format_posterior_table(rows: list[dict]) -> str:
    """The per-image comparison of p(z|x) (MCMC) and q(z|x) as fixed-width text."""
    head = (f"{'image':>6} {'label':>5} {'R-hat':>6} {'ESSbulk':>8} {'ESStail':>8} {'div':>4} {'ESS/s':>7} "
            f"{'Δmean/sd':>9} {'sd q/p':>11} {'KL(q‖p̂)':>9} {'KL(p̂‖q)':>9} {'k̂':>6}  flags")
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r['sd_ratio_min']:.2f}-{r['sd_ratio_max']:.2f}"
        lines.append(
            f"{r['image']:>6} {'' if r['label'] is None else r['label']:>5} {_cell(r['r_hat'], '.3f', 6)} "
            f"{_cell(r['ess_bulk'], '.0f', 8)} {_cell(r['ess_tail'], '.0f', 8)} {r['divergences']:>4} "
            f"{_cell(r['ess_per_second'], '.1f', 7)} {_cell(r['max_mean_shift'], '.2f', 9)} {ratio:>11} "
            f"{_cell(r['kl_q_phat'], '.3f', 9)} {_cell(r['kl_phat_q'], '.3f', 9)} {_cell(r['khat'], '.2f', 6)}  "
            f"{' '.join(r['flags'])}")
    return "\n".join(lines)

"""``bayesvae compare`` columns for a run with an enumerated discrete latent c (mixture VAE, M2).

The plain columns would be wrong for such a run (they would score z alone and miss log p(c) − log q(c|x)),
so they are measured with c summed exactly:

    rate R        KL(q(c|x) ‖ p(c)) + Σ_c q(c|x) KL(q(z|x,c) ‖ p(z|c))  (model-side: KL(q(z|x) ‖ Σ_c p(c) p(z|c)))
    distortion D  −Σ_c q(c|x) E log p(x|z,c);  ELBO = −(D + R), nats per image
    log p(x)      :mod:`bayesvae.inference.evidence_discrete` (c summed, z importance-sampled per class)
    class         accuracy of q(y|x) (M2) or Hungarian cluster accuracy (mixture), with the chance level
    z columns     (active units, probes on posterior means) on z given the most probable class for a guide
                  q(c|x) q(z|x,c), on q(z|x) itself when c is summed in the model
    I_q, marginal KL  not measured (the aggregate posterior of (c, z) is not a density of z): None, with a note
"""

from __future__ import annotations

import torch

from bayesvae.inference.enumerated_terms import class_terms, most_probable_class_pair
from bayesvae.inference.evidence_discrete import estimate_log_evidence_discrete
from bayesvae.models.discrete_sites import LABEL
from bayesvae.models.pair import Pair

from .clusters import class_agreement
from .rate_distortion import RatePoint


def z_pair_of(pair: Pair, site: str, x: torch.Tensor) -> Pair:
    """The pair whose only latent is z: given the most probable class, or the pair itself (model-side)."""
    try:
        return most_probable_class_pair(pair, site, x)
    except ValueError:
        return pair


@torch.no_grad()
def discrete_rate_distortion(pair: Pair, x: torch.Tensor, site: str, num_samples: int = 16,
                             batch_size: int = 100) -> RatePoint:
    """R and D with c summed exactly (module docstring); standard errors over images (per-image MC means)."""
    rates, distortions = [], []
    for xb in x.split(batch_size):
        parts = class_terms(pair, xb, site, num_samples).anatomy()
        kl_class = parts["kl_class"].nan_to_num(0.0)   # model-side: no q(c|x), no class KL of its own
        rates.append(parts["kl_code"] + kl_class)
        distortions.append(-parts["log_likelihood"])
    rate, distortion = torch.cat(rates).double(), torch.cat(distortions).double()
    n = x.shape[0]
    return RatePoint(rate=float(rate.mean()), rate_se=float(rate.std() / n ** 0.5) if n > 1 else None,
                     distortion=float(distortion.mean()),
                     distortion_se=float(distortion.std() / n ** 0.5) if n > 1 else 0.0,
                     rate_method=f"{site!r} summed exactly; z Monte Carlo", num_samples=num_samples, n_images=n)


def discrete_columns(pair: Pair, x: torch.Tensor, labels: torch.Tensor | None, site: str, k: int) -> tuple[dict, str]:
    """log p(x) ± se, the gap, the class-agreement columns; and the note on what is not measured."""
    estimate = estimate_log_evidence_discrete(pair, x, k=k)
    probs = estimate.q_class if estimate.q_class is not None else estimate.posterior
    agreement = class_agreement(probs, labels, classifier=site == LABEL)
    columns = {"discrete_site": site, "log_px": estimate.mean_log_px, "log_px_se": estimate.se_mean,
               "gap": estimate.mean_gap, "class_entropy": agreement["mean_entropy_nats"]}
    for key in ("accuracy", "cluster_accuracy", "purity"):
        if key in agreement:
            columns[f"class_{key}"], columns[f"class_{key}_chance"] = agreement[key], agreement[key + "_chance"]
    scores = [f"{key.replace('_', ' ')} {agreement[key]:.3f} (chance {agreement[key + '_chance']:.3f})"
              for key in ("accuracy", "cluster_accuracy", "purity") if key in agreement]
    note = (f"{'; '.join(scores) + ' of the top class; ' if scores else ''}"
            f"discrete site {site!r} summed exactly: rate, distortion and log p(x) include it; I_q and the marginal "
            f"KL are not measured; z columns are for z given the most probable class"
            + ("" if estimate.q_class is not None else " (here q(z|x): the model sums the class)"))
    return columns, note

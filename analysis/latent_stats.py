"""The latent space dimension by dimension: KL per dimension, active units, and how q(z | x) spreads.

For a factorized guide q(z | x) = Π_u q_u(z_u | x) and a factorized prior p(z) = Π_u p_u(z_u):

    KL(q(z|x) ‖ p(z)) = Σ_u KL(q_u(z_u|x) ‖ p_u(z_u))        nats per image, averaged over images per u

Active units (Burda et al. 2015): dimension u is active when A_u = Var_x(E_q[z_u | x]) > 0.01, the
variance over images of the posterior mean (unbiased, N − 1). An inactive dimension has a posterior
mean that does not depend on x: the decoder does not use it, and (for a VAE) KL_u ≈ 0 because
q_u(z_u | x) ≈ p_u(z_u) for every image ("posterior collapse" in that dimension).

The per-dimension moments answer "does the KL force every q(z | x) to N(0, 1)?": per image it pulls
q_u toward the prior, but in active dimensions the means spread over images (std of E_q[z_u] ≈ 1) while
each posterior std is ≪ 1; only inactive dimensions sit at the prior for every image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import Independent, kl_divergence

from bayesvae.inference.terms import Terms, trace_terms
from bayesvae.models.errors import BadInput
from bayesvae.models.families import base_distribution, family_name
from bayesvae.models.pair import Pair

ACTIVE_THRESHOLD = 0.01


def active_units(means: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> tuple[int, torch.Tensor]:
    """(number of active dimensions, A_u per dimension) for posterior means ``(N, d)``: A_u = Var_n(means[n, u])."""
    if means.ndim != 2:
        raise ValueError(f"posterior means must be (images, dimensions), got shape {tuple(means.shape)}")
    activity = means.var(0) if means.shape[0] > 1 else torch.zeros(means.shape[1], dtype=means.dtype)
    return int((activity > threshold).sum()), activity


def is_factorized(fn: torch.distributions.Distribution) -> bool:
    """True when ``fn`` over a vector z is a product of univariate distributions, one per dimension
    (``Independent`` of a univariate family with the dimensions as its last batch axis, e.g. ``Normal(...).to_event(1)``)."""
    base = base_distribution(fn)
    return (isinstance(fn, Independent) and len(fn.event_shape) == 1 and base.event_shape == ()
            and len(base.batch_shape) >= 1 and base.batch_shape[-1] == fn.event_shape[-1])


def kl_per_dimension(terms: Terms) -> tuple[torch.Tensor | None, str]:
    """KL(q_u(z_u|x) ‖ p_u(z_u)) per image and dimension, ``(B, d)`` from a one-draw :class:`Terms`, or
    (None, reason) when guide or prior is not a product of univariate distributions torch can compare."""
    q, p = terms.q, terms.p_z
    if terms.point_mass:
        return None, "not defined for a point-mass guide (no density)"
    if not (is_factorized(q) and is_factorized(p)):
        return None, (f"needs a factorized guide and prior (found {family_name(q)} guide, {family_name(p)} prior "
                      f"with event shapes {tuple(q.event_shape)}, {tuple(p.event_shape)})")
    d = q.event_shape[-1]
    try:
        kl = kl_divergence(base_distribution(q), base_distribution(p))
    except NotImplementedError:
        return None, f"torch has no closed-form KL({family_name(q)} ‖ {family_name(p)})"
    return kl.expand(*terms.log_likelihood.shape, d)[0], "analytic, per dimension"


@dataclass
class PosteriorMoments:
    """Per image and dimension: E_q[z_u | x], Std_q[z_u | x], KL_u (nats), each ``(N, d)``; how each was obtained."""

    means: torch.Tensor
    stds: torch.Tensor
    kl: torch.Tensor | None
    moments_method: str
    kl_method: str
    point_mass: bool = False


def _moments(terms: Terms, num_samples: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """E_q[z|x], Std_q[z|x] per image ``(B, d)`` from the guide's distribution (draws of it when it has no moments)."""
    try:
        return terms.q.mean[0], terms.q.stddev[0], "analytic (q.mean, q.stddev)"
    except NotImplementedError:
        z = terms.q.sample((num_samples,))[:, 0]
        return z.mean(0), z.std(0), f"monte carlo ({num_samples} draws of q)"


@torch.no_grad()
def posterior_moments(pair: Pair, x: torch.Tensor, batch_size: int = 1000, num_samples: int = 256) -> PosteriorMoments:
    """Mean and standard deviation of q(z | x) per image and dimension, and KL per dimension when available.

    Reads the guide's distribution from a trace (``.mean``/``.stddev``; Monte Carlo with ``num_samples``
    draws when the family has none). A Delta guide gives its code as mean and 0 as std.
    """
    if x.shape[0] == 0:
        raise BadInput("no images to compute posterior moments on")
    means, stds, kls, method, kl_method, point_mass = [], [], [], "", "", False
    for xb in x.split(batch_size):
        terms = trace_terms(pair, xb, 1)
        if len(terms.q.event_shape) != 1:
            raise BadInput(f"the latent z must be a vector (event shape (d,)), the guide's has "
                           f"{tuple(terms.q.event_shape)}")
        mean, std, method = _moments(terms, num_samples)
        kl, kl_method = kl_per_dimension(terms)
        point_mass = terms.point_mass
        means.append(mean)
        stds.append(std)
        kls.append(kl)
    kl = None if any(k is None for k in kls) else torch.cat(kls)
    return PosteriorMoments(torch.cat(means), torch.cat(stds), kl, method, kl_method, point_mass)


def latent_statistics(pair: Pair, x: torch.Tensor, threshold: float = ACTIVE_THRESHOLD,
                      moments: PosteriorMoments | None = None) -> dict:
    """Per-dimension statistics of q(z | x) over the images ``x`` (JSON-ready).

    Keys: ``latent_dim``, ``n_images``, ``threshold``, ``active_units`` (count), ``active_dims`` (most active
    first), ``kl_total`` (Σ_u of the per-dimension KLs, nats per image, or None), ``kl_method``,
    ``moments_method``, ``point_mass`` and ``per_dimension``: one row per u with ``kl`` (mean over images of
    KL_u), ``activity`` (A_u), ``active``, ``mean_of_means``/``std_of_means`` (spread of E_q[z_u|x] over
    images), ``mean_std``/``std_of_stds``/``min_std``/``max_std`` (spread of Std_q[z_u|x] over images).
    ``summary`` averages the posterior std and the spread of the means over active and inactive dimensions.
    """
    moments = moments if moments is not None else posterior_moments(pair, x)
    means, stds = moments.means.double(), moments.stds.double()
    count, activity = active_units(means, threshold)
    kl = moments.kl.double().mean(0) if moments.kl is not None else None
    n, d = means.shape
    std_of_means, std_of_stds = ((t.std(0) if n > 1 else torch.zeros(d, dtype=t.dtype)) for t in (means, stds))
    rows = []
    for u in range(d):
        rows.append({
            "dim": u, "kl": None if kl is None else float(kl[u]), "activity": float(activity[u]),
            "active": bool(activity[u] > threshold),
            "mean_of_means": float(means[:, u].mean()), "std_of_means": float(std_of_means[u]),
            "mean_std": float(stds[:, u].mean()), "std_of_stds": float(std_of_stds[u]),
            "min_std": float(stds[:, u].min()), "max_std": float(stds[:, u].max()),
        })
    order = sorted(range(d), key=lambda u: -float(activity[u]))
    return {
        "latent_dim": d, "n_images": n, "threshold": threshold, "active_units": count,
        "active_dims": [u for u in order if rows[u]["active"]], "dims_by_activity": order,
        "kl_total": None if kl is None else float(kl.sum()), "kl_method": moments.kl_method,
        "moments_method": moments.moments_method, "point_mass": moments.point_mass,
        "per_dimension": rows, "summary": _summary(rows),
    }


def _summary(rows: list[dict]) -> dict:
    """Averages over active and over inactive dimensions of the posterior std and of the means' spread."""
    out = {}
    for label, group in (("active", [r for r in rows if r["active"]]), ("inactive", [r for r in rows if not r["active"]])):
        if not group:
            out[label] = None
            continue
        average = (lambda key: sum(r[key] for r in group) / len(group))
        kls = [r["kl"] for r in group]
        out[label] = {"dims": len(group), "mean_std": average("mean_std"), "std_of_means": average("std_of_means"),
                      "kl": None if None in kls else sum(kls)}
    return out

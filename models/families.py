"""What kind of distribution sits at a site, and how the diagnostics treat each family: one registry.

:data:`FAMILIES` says, per distribution family at the latent site (guide or prior), whether it has a
density (a point mass does not: no entropy, no KL, no importance weights), whether it is univariate
(so ``Independent(family, 1)`` over z is factorized: per-dimension KL, exact prior marginals in the
plots), its exact Gaussian view (for the KL between q and a Gaussian fit of the MCMC draws), and how the
aggregate posterior evaluates log q(z_m | x_n) for all pairs. A new guide or prior family is added
here, in one place; a family not registered still works through its own ``log_prob`` and the
diagnostics say what they do without it (:func:`unregistered_note`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pyro.distributions as dist
import torch
from torch import distributions as td
from torch.distributions import Distribution, Independent, MultivariateNormal


def base_distribution(fn: Distribution) -> Distribution:
    """Strip ``to_event``/``expand``/``mask`` wrappers: the distribution family underneath."""
    while True:
        if isinstance(fn, Independent):
            fn = fn.base_dist
        elif isinstance(fn, (dist.ExpandedDistribution, dist.MaskedDistribution)):
            fn = fn.base_dist
        else:
            return fn


def family_name(fn: Distribution) -> str:
    """``"Normal"``, ``"Delta"``, ... for the site's distribution."""
    return type(base_distribution(fn)).__name__


def _diagonal_gaussian(q: Distribution) -> MultivariateNormal | None:
    if isinstance(q, Independent) and isinstance(q.base_dist, td.Normal) and q.reinterpreted_batch_ndims == 1:
        return MultivariateNormal(q.mean.double(), covariance_matrix=torch.diag_embed(q.variance.double()))
    return None


def _full_gaussian(q: Distribution) -> MultivariateNormal | None:
    if isinstance(q, (td.MultivariateNormal, td.LowRankMultivariateNormal)):
        return MultivariateNormal(q.mean.double(), covariance_matrix=q.covariance_matrix.double())
    return None


@dataclass(frozen=True)
class Family:
    """How the diagnostics treat one distribution family at the latent site."""

    density: bool = True                         # False: a point mass (Delta)
    univariate: bool = False                     # a product over dimensions when wrapped by .to_event(1)
    gaussian: Callable[[Distribution], MultivariateNormal | None] | None = None   # exact Gaussian view
    pairwise: str = "generic"                    # aggregate posterior: "diagonal-normal" or "generic" (log_prob)


FAMILIES: dict[type, Family] = {   # torch's classes: Pyro's distributions subclass them
    td.Normal: Family(univariate=True, gaussian=_diagonal_gaussian, pairwise="diagonal-normal"),
    td.MultivariateNormal: Family(gaussian=_full_gaussian),
    td.LowRankMultivariateNormal: Family(gaussian=_full_gaussian),
    dist.Delta: Family(density=False),
    td.StudentT: Family(univariate=True),
    td.Laplace: Family(univariate=True),
    td.MixtureSameFamily: Family(),              # mixture priors (MoG, VampPrior)
    td.TransformedDistribution: Family(),        # normalizing-flow guides (IAF)
}


def family_of(fn: Distribution) -> Family | None:
    """The registry entry of the site's family (its class or nearest registered base class), or None."""
    for cls in type(base_distribution(fn)).__mro__:
        if cls in FAMILIES:
            return FAMILIES[cls]
    return None


def is_point_mass(fn: Distribution) -> bool:
    """True for a Delta guide: no density over z, so no entropy and no KL (the autoencoder)."""
    family = family_of(fn)
    return family is not None and not family.density


def gaussian_view(q: Distribution) -> MultivariateNormal | None:
    """q as a MultivariateNormal (float64) when it is one (mean-field Normal, full or low-rank Gaussian), else None."""
    family = family_of(q)
    return None if family is None or family.gaussian is None else family.gaussian(q)


def pairwise_kind(q: Distribution) -> str:
    """How the aggregate posterior evaluates log q(z_m | x_n) for this family (see analysis.aggregate)."""
    family = family_of(q)
    return "generic" if family is None else family.pairwise


def unregistered_note(fn: Distribution, role: str) -> str | None:
    """What the diagnostics do for a family missing from :data:`FAMILIES` (None when it is registered)."""
    if family_of(fn) is not None:
        return None
    return (f"the {role}'s {family_name(fn)} family is not in bayesvae's registry (models/families.py): the "
            f"aggregate posterior uses its own log_prob, its KL to the MCMC fit is estimated by Monte Carlo, "
            f"per-dimension KLs and prior marginals are computed only if it is a product over dimensions")

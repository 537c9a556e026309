"""What kind of distribution sits at a site, seen through Pyro's wrappers (Independent, expand, mask)."""

from __future__ import annotations

import pyro.distributions as dist
from torch.distributions import Distribution, Independent


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


def is_point_mass(fn: Distribution) -> bool:
    """True for a Delta guide: no density over z, so no entropy and no KL (the autoencoder)."""
    return isinstance(base_distribution(fn), dist.Delta)

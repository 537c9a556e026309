"""Rate and distortion of a trained pair: the two halves of the ELBO (Alemi et al. 2018, "Fixing a Broken ELBO").

    rate        R = (1/N) Σ_n KL(q(z|x_n) ‖ p(z))        nats per image: what the codes cost, measured
                                                          against the prior
    distortion  D = −(1/N) Σ_n E_q[log p(x_n|z)]         nats per image (summed over pixels): how badly
                                                          the codes reconstruct the images
    ELBO = −(D + R)

Every point of the (R, D) plane on a line D + R = const has the same ELBO; a β-VAE minimizes D + β R,
so β picks where on the achievable frontier a run lands: β < 1 buys low distortion with rate,
β > 1 the reverse. For discrete data D ≥ 0 and the rate is an upper bound on the information the
codes carry about the images (R = I_q(x; z) + KL(q(z) ‖ p(z)), see :mod:`.aggregate`).

Both are read from :func:`~.anatomy.elbo_anatomy` at β = 1 (the KL in closed form where torch has
it). A point-mass (Delta) guide has no density: its "rate" is not a KL (it would be +∞), so it is
reported as not defined; its distortion is still measured at the code z = f(x).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from bayesvae.models.pair import Pair

from .anatomy import elbo_anatomy

POINT_MASS_RATE_NOTE = ("rate not defined for a point-mass guide (an autoencoder): q(z|x) has no density, "
                        "KL(q‖p(z)) = +∞; its β·log p(z) training term is not a rate")


@dataclass
class RatePoint:
    """One run in the rate–distortion plane, nats per image; ``rate`` is None for a point-mass guide."""

    rate: float | None
    rate_se: float | None
    distortion: float
    distortion_se: float
    rate_method: str | None          # "analytic" or "monte carlo"
    num_samples: int
    n_images: int

    @property
    def elbo(self) -> float | None:
        """ELBO = −(D + R), or None when the rate is not defined."""
        return None if self.rate is None else -(self.distortion + self.rate)

    def to_dict(self) -> dict:
        return {**asdict(self), "elbo": self.elbo}

    @classmethod
    def from_anatomy(cls, anatomy: dict) -> "RatePoint":
        """R = the anatomy's KL term, D = −its likelihood term (the same draws)."""
        kl, log_likelihood = anatomy["kl"], anatomy["log_likelihood"]
        return cls(rate=kl["value"], rate_se=kl["se"], distortion=-log_likelihood["value"],
                   distortion_se=log_likelihood["se"], rate_method=kl["method"], num_samples=anatomy["num_samples"],
                   n_images=anatomy["n_images"])


@torch.no_grad()
def rate_distortion(pair: Pair, x: torch.Tensor, num_samples: int = 16) -> RatePoint:
    """R and D over the images ``x`` with ``num_samples`` draws of q(z | x) per image (standard errors: MC)."""
    return RatePoint.from_anatomy(elbo_anatomy(pair, x, num_samples=num_samples))


def constant_elbo_levels(points: list[RatePoint], count: int = 5) -> list[float]:
    """ELBO values for the guide lines D + R = −ELBO of a plot: spread over the points' range."""
    sums = [p.distortion + p.rate for p in points if p.rate is not None]
    if not sums:
        return []
    low, high = min(sums), max(sums)
    if math.isclose(low, high):
        return [-low]
    step = (high - low) / (count - 1)
    return [-(low + i * step) for i in range(count)]

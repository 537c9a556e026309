"""Priors p(z): modules whose call returns the distribution of one image's latent (event shape ``(d,)``).

The model samples them inside the data plate, which broadcasts the batch shape ``()`` to one
latent per image.

    normal   N(0, I)                                       fixed; KL to a Normal guide in closed form
    mog      Σ_k π_k N(μ_k, diag σ_k²), K = 10, all learned  a multi-modal prior the data can shape
    vamp     (1/K) Σ_k q(z | u_k), K = 50 learned pseudo-images u_k (Tomczak & Welling 2018):
             the prior is the guide's own mixture, an approximation of the aggregate posterior

The learned priors have no closed-form KL(q ‖ p): ``--elbo analytic`` says so and estimates the KL
by Monte Carlo (see ``bayesvae.inference.objectives.analytic_kl_note``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

import pyro.distributions as dist

from .errors import BadInput


class StandardNormalPrior(nn.Module):
    """p(z) = N(z; 0, I_d), log-density in nats: −½‖z‖² − (d/2) log 2π."""

    def __init__(self, latent_dim: int, image_shape: Sequence[int] | None = None):
        super().__init__()
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))

    def forward(self) -> dist.Distribution:
        return dist.Normal(self.loc, self.scale).to_event(1)


class Mixture(dist.MixtureSameFamily):
    """Σ_k π_k p_k(z) for components of one family (batch shape ``(..., K)``), log-density in nats:
    log Σ_k exp(log π_k + log p_k(z)).

    The support is the components' (R^d), not torch's mixture-specific constraint, which the protocol's
    support check and NUTS's ``biject_to`` do not know: a mixture prior is a prior over R^d like any other.
    """

    @property
    def support(self):
        return self.component_distribution.support


class GaussianMixturePrior(nn.Module):
    """p(z) = Σ_k π_k N(z; μ_k, diag σ_k²) with learned weights (softmax of logits), means and
    scales (softplus + 10⁻³), K = 10. Starts at means ~ N(0, I), σ = 1, equal weights."""

    def __init__(self, latent_dim: int, image_shape: Sequence[int] | None = None, components: int = 10):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(components))
        self.locs = nn.Parameter(torch.randn(components, latent_dim))
        self.raw_scales = nn.Parameter(torch.full((components, latent_dim), math.log(math.expm1(1.0 - 1e-3))))

    def forward(self) -> dist.Distribution:
        components = dist.Normal(self.locs, F.softplus(self.raw_scales) + 1e-3).to_event(1)
        return Mixture(dist.Categorical(logits=self.logits), components)


class VampPrior(nn.Module):
    """p(z) = (1/K) Σ_k q(z | u_k): the guide evaluated at K = 50 learned pseudo-images u_k = sigmoid(ρ_k).

    The one prior that couples model and guide: it reads q through the guide's ``posterior`` (no Pyro
    effects), so the encoder's weights stay registered once, by the guide, and get gradients from
    both the prior term and the guide. Call :meth:`use_guide` after building the guide.

    Cost: log p(z) scores every z under all K components. With the IAF guide that needs the flow's
    inverse, d sequential passes per layer: on digits (d = 16) an epoch took ~25 s against ~0.3 s
    with the Normal guide (measured).
    """

    def __init__(self, latent_dim: int, image_shape: Sequence[int], components: int = 50):
        super().__init__()
        self.pseudo_inputs = nn.Parameter(torch.randn(components, *image_shape))
        self._guide = None

    def use_guide(self, guide: nn.Module) -> None:
        # Not a submodule: pyro.module("model", ...) would register the encoder a second time as
        # model$$$prior.guide.* (one tensor, two names, in the store and in every checkpoint).
        object.__setattr__(self, "_guide", guide)

    def forward(self) -> dist.Distribution:
        if self._guide is None:
            raise RuntimeError("VampPrior.use_guide(guide) was not called")
        components = self._guide.posterior(torch.sigmoid(self.pseudo_inputs))
        return Mixture(dist.Categorical(logits=self.pseudo_inputs.new_zeros(self.pseudo_inputs.shape[0])), components)


PRIORS = {"normal": StandardNormalPrior, "mog": GaussianMixturePrior, "vamp": VampPrior}
"""Built-in prior names (``--prior``) → constructor ``(latent_dim, image_shape)``."""

PRIORS_NEEDING_GUIDE = ("vamp",)
"""Priors built from the guide's q(z | x): they need a built-in guide with a density."""


def make_prior(name: str, latent_dim: int, image_shape: Sequence[int] | None = None) -> nn.Module:
    """The prior called ``name`` (one of :data:`PRIORS`) over ``latent_dim`` dimensions."""
    if name not in PRIORS:
        raise BadInput(f"unknown --prior {name!r}; choose one of: {', '.join(PRIORS)}")
    return PRIORS[name](latent_dim, image_shape)

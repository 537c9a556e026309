"""Guides q(z | x): amortized approximate posteriors, one encoder call per image.

Every built-in guide is the same Pyro program (:class:`AmortizedGuide`: register the networks, open
the data plate, sample z from ``posterior(x)``); the guides differ only in ``posterior``, the family
q(z | x) belongs to:

    normal    N(μ(x), diag σ(x)²)                     the VAE (mean field)
    lowrank   N(μ(x), W(x) W(x)ᵀ + diag δ(x)), W: d×2   correlated latents at O(d) cost
    fullcov   the same with W: d×d                    any covariance
    iaf       N(μ(x), diag σ(x)²) pushed through inverse autoregressive flows conditioned on x
    delta     δ(z − f(x))                             the autoencoder: a point, no density

The model is untouched by the choice, so ``bayesvae show --against guide=delta`` is the whole
difference between a VAE and an autoencoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist
from pyro.distributions.transforms import conditional_affine_autoregressive

from .errors import BadInput
from .sites import DATA_PLATE, LATENT


class AmortizedGuide(nn.Module):
    """The guide program shared by every built-in family: q(z | x) = ``posterior(x)``, one per image."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def posterior(self, x: torch.Tensor) -> dist.Distribution:
        """q(z | x) for a batch ``(..., C, H, W)``: batch shape ``(...)``, event shape ``(d,)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            pyro.sample(LATENT, self.posterior(x))  # approximate posterior q(z | x)


class NormalGuide(AmortizedGuide):
    """q(z | x) = N(z; μ(x), diag σ(x)²), σ = softplus(·) + 10⁻⁴: the VAE's mean-field posterior.

    Entropy per image: Σ_u log σ_u(x) + (d/2) log(2πe) nats.
    """

    def __init__(self, encoder: nn.Module, latent_dim: int):
        super().__init__(encoder)
        self.loc = nn.Linear(encoder.out_features, latent_dim)
        self.scale = nn.Linear(encoder.out_features, latent_dim)

    def posterior(self, x: torch.Tensor) -> dist.Distribution:
        h = self.encoder(x)
        return dist.Normal(self.loc(h), F.softplus(self.scale(h)) + 1e-4).to_event(1)


class LowRankNormalGuide(AmortizedGuide):
    """q(z | x) = N(z; μ(x), W(x) W(x)ᵀ + diag δ(x)), W of shape d×r, δ = softplus(·) + 10⁻⁴.

    Rank r < d correlates the latents at O(d r) cost; r = d gives any covariance (``fullcov``).
    Entropy per image: ½ log det(2πe Σ(x)) nats.
    """

    def __init__(self, encoder: nn.Module, latent_dim: int, rank: int):
        super().__init__(encoder)
        self.rank = rank
        self.loc = nn.Linear(encoder.out_features, latent_dim)
        self.factor = nn.Linear(encoder.out_features, latent_dim * rank)
        self.diag = nn.Linear(encoder.out_features, latent_dim)

    def posterior(self, x: torch.Tensor) -> dist.Distribution:
        h = self.encoder(x)
        factor = self.factor(h).unflatten(-1, (-1, self.rank))
        return dist.LowRankMultivariateNormal(self.loc(h), factor, F.softplus(self.diag(h)) + 1e-4)


class ConditionedFlow(dist.TransformedDistribution):
    """A base distribution pushed through flow layers conditioned on one context per batch entry.

    ``log_prob`` expands z to the full batch shape first: a conditioned layer pairs each z with its own
    context row and cannot broadcast a size-1 dimension against it, as scoring one z under every
    image's q(z | x) (aggregate posterior, VampPrior mixture) needs. An unexpanded z keeps Pyro's
    cache of the sampled pair, so scoring a draw from this q never inverts the flow.
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        shape = torch.broadcast_shapes(value.shape, self.batch_shape + self.event_shape)
        return super().log_prob(value if value.shape == shape else value.expand(shape))


class IAF(nn.Module):
    """Inverse autoregressive flow layers (Kingma et al. 2016), each conditioned on a context c:

        z_k = m_k(z_{k−1}, c) + s_k(z_{k−1}, c) ⊙ z_{k−1},   u-th outputs depend on z_{k−1,<u} only,

    so the Jacobian is triangular: log q(z_K) = log q(z_0) − Σ_k Σ_u log s_k,u (nats). Pyro's
    ``ConditionalAffineAutoregressive`` layers (random order per layer) do the work.
    """

    def __init__(self, latent_dim: int, context_dim: int, num_flows: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(conditional_affine_autoregressive(latent_dim, context_dim)
                                    for _ in range(num_flows))

    def forward(self, base: dist.Distribution, context: torch.Tensor) -> dist.Distribution:
        """``base`` pushed through every layer at ``context`` (shape ``(..., context_dim)``, matching base's batch)."""
        return ConditionedFlow(base, [layer.condition(context) for layer in self.layers])


class IAFGuide(NormalGuide):
    """q(z | x): z_0 ~ N(μ(x), diag σ(x)²), then two IAF layers conditioned on the encoder's features h(x).

    A richer family than the Normal (skewed, correlated, curved), still with an exact log q(z | x).
    """

    def __init__(self, encoder: nn.Module, latent_dim: int, num_flows: int = 2):
        super().__init__(encoder, latent_dim)
        self.flow = IAF(latent_dim, encoder.out_features, num_flows)

    def posterior(self, x: torch.Tensor) -> dist.Distribution:
        h = self.encoder(x)
        base = dist.Normal(self.loc(h), F.softplus(self.scale(h)) + 1e-4).to_event(1)
        return self.flow(base, h)  # z_0 ~ base, then the flow layers


class DeltaGuide(AmortizedGuide):
    """q(z | x) = δ(z − f(x)): the autoencoder. The ELBO's entropy term is −∞ for a point mass;
    Pyro scores ``log q = 0``, so training maximizes log p(x | f(x)) + β log p(f(x)) (MAP codes)."""

    def __init__(self, encoder: nn.Module, latent_dim: int):
        super().__init__(encoder)
        self.code = nn.Linear(encoder.out_features, latent_dim)

    def posterior(self, x: torch.Tensor) -> dist.Distribution:
        h = self.encoder(x)
        return dist.Delta(self.code(h)).to_event(1)  # point "posterior"


GUIDES = {
    "normal": NormalGuide,
    "lowrank": lambda encoder, latent_dim: LowRankNormalGuide(encoder, latent_dim, rank=min(2, latent_dim)),
    "fullcov": lambda encoder, latent_dim: LowRankNormalGuide(encoder, latent_dim, rank=latent_dim),
    "iaf": IAFGuide,
    "delta": DeltaGuide,
}
"""Built-in guide names (``--guide``) → constructor ``(encoder, latent_dim)``."""


def make_guide(name: str, encoder: nn.Module, latent_dim: int) -> nn.Module:
    """The guide called ``name`` (one of :data:`GUIDES`) on top of ``encoder``."""
    if name not in GUIDES:
        raise BadInput(
            f"unknown --guide {name!r}; choose one of: {', '.join(GUIDES)} or a script, e.g. my_vae.py:guide"
        )
    return GUIDES[name](encoder, latent_dim)

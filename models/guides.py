"""Guides q(z | x): amortized approximate posteriors, one encoder call per image.

The VAE and the autoencoder differ only here: the same model, with a Normal guide (a distribution
over z for each image) or a Delta guide (all mass on one point per image, hence no entropy term).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist

from .errors import BadInput
from .sites import DATA_PLATE, LATENT


class NormalGuide(nn.Module):
    """q(z | x) = N(z; μ(x), diag σ(x)²), σ = softplus(·) + 10⁻⁴: the VAE's mean-field posterior.

    Entropy per image: Σ_u log σ_u(x) + (d/2) log(2πe) nats.
    """

    def __init__(self, encoder: nn.Module, latent_dim: int):
        super().__init__()
        self.encoder = encoder
        self.loc = nn.Linear(encoder.out_features, latent_dim)
        self.scale = nn.Linear(encoder.out_features, latent_dim)

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            h = self.encoder(x)
            q = dist.Normal(self.loc(h), F.softplus(self.scale(h)) + 1e-4).to_event(1)
            pyro.sample(LATENT, q)  # approximate posterior q(z | x)


class DeltaGuide(nn.Module):
    """q(z | x) = δ(z − f(x)): the autoencoder. The ELBO's entropy term is −∞ for a point mass;
    Pyro scores ``log q = 0``, so training maximizes log p(x | f(x)) + β log p(f(x)) (MAP codes)."""

    def __init__(self, encoder: nn.Module, latent_dim: int):
        super().__init__()
        self.encoder = encoder
        self.code = nn.Linear(encoder.out_features, latent_dim)

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            z = self.code(self.encoder(x))
            pyro.sample(LATENT, dist.Delta(z).to_event(1))  # point "posterior"


GUIDES = {"normal": NormalGuide, "delta": DeltaGuide}


def make_guide(name: str, encoder: nn.Module, latent_dim: int) -> nn.Module:
    """The guide called ``name`` (one of :data:`GUIDES`) on top of ``encoder``."""
    if name not in GUIDES:
        raise BadInput(
            f"unknown --guide {name!r}; choose one of: {', '.join(GUIDES)} or a script, e.g. my_vae.py:guide"
        )
    return GUIDES[name](encoder, latent_dim)

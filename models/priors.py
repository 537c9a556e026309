"""Priors p(z): modules whose call returns the distribution of one image's latent (event shape ``(d,)``).

The model samples them inside the data plate, which broadcasts the batch shape ``()`` to one
latent per image.
"""

from __future__ import annotations

import torch
from torch import nn

import pyro.distributions as dist

from .errors import BadInput


class StandardNormalPrior(nn.Module):
    """p(z) = N(z; 0, I_d), log-density in nats: −½‖z‖² − (d/2) log 2π."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.register_buffer("loc", torch.zeros(latent_dim))
        self.register_buffer("scale", torch.ones(latent_dim))

    def forward(self) -> dist.Distribution:
        return dist.Normal(self.loc, self.scale).to_event(1)


PRIORS = {"normal": StandardNormalPrior}


def make_prior(name: str, latent_dim: int) -> nn.Module:
    """The prior called ``name`` (one of :data:`PRIORS`) over ``latent_dim`` dimensions."""
    if name not in PRIORS:
        raise BadInput(f"unknown --prior {name!r}; choose one of: {', '.join(PRIORS)}")
    return PRIORS[name](latent_dim)

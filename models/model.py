"""The generative model p(x, z) = p(z) · p(x | z): the prior and the likelihood of Bayes' theorem."""

from __future__ import annotations

import torch
from torch import nn

import pyro

from .sites import DATA_PLATE, LATENT, OBSERVED


class Model(nn.Module):
    """p(x, z) = p(z) p(x | z) for a batch of images; call it with ``x`` of shape ``(N, C, H, W)``.

    ``log p(x, z)`` per image, in nats = ``log p(z)`` (prior, summed over latent dimensions)
    + ``log p(x | z)`` (likelihood, summed over pixels).
    """

    def __init__(self, prior: nn.Module, decoder: nn.Module, likelihood: nn.Module):
        super().__init__()
        self.prior = prior
        self.decoder = decoder
        self.likelihood = likelihood

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("model", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            z = pyro.sample(LATENT, self.prior())  # prior p(z)
            pyro.sample(OBSERVED, self.likelihood(self.decoder(z)), obs=x)  # likelihood p(x | z)

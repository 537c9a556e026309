"""Kingma et al. (2014)'s semi-supervised M2: the class label y is a latent variable that some images observe.

    prior        p(y) = Cat(y; 1/K),   p(z) = N(z; 0, I)
    likelihood   p(x | y, z)   (a decoder of [z, one_hot(y)])
    guide        q(y | x) q(z | x, y): a classifier and a Normal code given the label

A labelled image (x, y) scores  L(x, y) = E_q(z|x,y)[log p(x|y,z) + log p(y) + log p(z) − log q(z|x,y)];
an unlabelled one enumerates y:  U(x) = Σ_y q(y|x) L(x, y) + H(q(y|x)). The classifier q(y|x) only enters
U, so the training objective adds α · log q(y|x) on the labelled images (the paper's J^α, eq. 9;
:mod:`bayesvae.inference.semi_supervised`). All in nats per image.

``model(x, y=None)`` and ``guide(x, y=None)``: with ``y`` (class indices, shape ``(N,)``) the label is
observed and the guide samples only z; without, the guide marks y for parallel enumeration (Pyro's
``examples/vae/ss_vae_M2.py`` does the same with one-hot labels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist

from .discrete_sites import LABEL, with_class
from .sites import DATA_PLATE, LATENT, OBSERVED


class M2Model(nn.Module):
    """p(x, y, z) = p(y) p(z) p(x | y, z); ``decoder`` maps ``(..., d + K)`` to image-shaped logits."""

    def __init__(self, classes: int, latent_dim: int, decoder: nn.Module, likelihood: nn.Module):
        super().__init__()
        self.classes = classes
        self.latent_dim = latent_dim
        self.decoder = decoder
        self.likelihood = likelihood

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        pyro.module("model", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            y = pyro.sample(LABEL, dist.Categorical(logits=x.new_zeros(self.classes)), obs=y)     # prior p(y)
            z = pyro.sample(LATENT, dist.Normal(x.new_zeros(self.latent_dim), 1.0).to_event(1))  # prior p(z)
            logits = self.decoder(with_class(z, y, self.classes))
            pyro.sample(OBSERVED, self.likelihood(logits), obs=x)                                  # p(x | y, z)


class M2Guide(nn.Module):
    """q(y | x) q(z | x, y): ``classifier_encoder`` feeds q(y|x), ``encoder`` feeds q(z|x,y)."""

    def __init__(self, encoder: nn.Module, classifier_encoder: nn.Module, classes: int, latent_dim: int):
        super().__init__()
        self.classes = classes
        self.encoder = encoder
        self.classifier_encoder = classifier_encoder
        self.class_logits = nn.Linear(classifier_encoder.out_features, classes)
        self.loc = nn.Linear(encoder.out_features + classes, latent_dim)
        self.scale = nn.Linear(encoder.out_features + classes, latent_dim)

    def class_posterior(self, x: torch.Tensor) -> dist.Categorical:
        """q(y | x), batch shape ``(N,)``: the classifier."""
        return dist.Categorical(logits=self.class_logits(self.classifier_encoder(x)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            if y is None:
                y = pyro.sample(LABEL, self.class_posterior(x), infer={"enumerate": "parallel"})  # q(y | x)
            hy = with_class(self.encoder(x), y, self.classes)
            pyro.sample(LATENT, dist.Normal(self.loc(hy), F.softplus(self.scale(hy)) + 1e-4).to_event(1))  # q(z|x,y)

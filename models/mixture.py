"""The mixture-latent VAE: a discrete cluster c above the continuous code z, c summed out exactly.

    prior        p(c)        = Cat(c; π),  π = 1/K fixed (a uniform π keeps every cluster in use)
                 p(z | c)    = N(z; μ_c, diag σ_c²),  μ_c, σ_c learned
    likelihood   p(x | z)    (any built-in likelihood on a decoder of z)
    guide        either  q(z | x)                                    (--guide normal, the default, or any
                                                                       built-in guide with a density)
                 or      q(c | x) q(z | x, c) = Cat(c; softmax g(x)) · N(z; μ(x, c), diag σ(x, c)²)
                                                                      (--guide cluster, :class:`MixtureGuide`)

The ELBO sums over the K values of c (Pyro's ``TraceEnum_ELBO``), so no score-function gradient is needed.
With q(z|x) the model enumerates c itself and the posterior over the cluster is exact given z:

    ELBO(x) = E_q(z|x)[log Σ_c p(c) p(z|c) p(x|z) − log q(z|x)],  p(c | z) = p(c) p(z|c) / Σ_c' p(c') p(z|c')

With q(c|x) q(z|x,c) the guide enumerates it:

    ELBO(x) = Σ_c q(c|x) { E_q(z|x,c)[log p(x|z)] − KL(q(z|x,c) ‖ p(z|c)) } − KL(q(c|x) ‖ p(c))   nats/image

Measured on digits (README): the cluster guide tends to put every image in one cluster and pay
log K nats of KL(q(c|x) ‖ p(c)) — q(z|x,c) can fit any image under any c — while q(z|x) with the exact
p(c|z) spreads the images over the clusters.

With K = 1 it is the VAE with a learned Gaussian prior. The classes of the data are never seen: which
cluster an image falls into is measured against the labels only afterwards
(:mod:`bayesvae.analysis.clusters`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist

from .discrete_sites import CLUSTER, with_class
from .sites import DATA_PLATE, LATENT, OBSERVED


class MixtureModel(nn.Module):
    """p(x, c, z) = p(c) p(z | c) p(x | z) for a batch ``x`` of shape ``(N, C, H, W)``."""

    def __init__(self, clusters: int, latent_dim: int, decoder: nn.Module, likelihood: nn.Module):
        super().__init__()
        self.clusters = clusters
        self.decoder = decoder
        self.likelihood = likelihood
        self.register_buffer("logits", torch.zeros(clusters))
        self.locs = nn.Parameter(torch.randn(clusters, latent_dim))
        self.raw_scales = nn.Parameter(torch.full((clusters, latent_dim), math.log(math.expm1(1.0 - 1e-3))))

    def cluster_prior(self) -> dist.Categorical:
        return dist.Categorical(logits=self.logits)

    def code_prior(self, c: torch.Tensor) -> dist.Distribution:
        """p(z | c) = N(μ_c, diag σ_c²), σ = softplus(·) + 10⁻³; batch shape ``c.shape``."""
        return dist.Normal(self.locs[c], F.softplus(self.raw_scales[c]) + 1e-3).to_event(1)

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("model", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            c = pyro.sample(CLUSTER, self.cluster_prior(), infer={"enumerate": "parallel"})  # prior p(c)
            z = pyro.sample(LATENT, self.code_prior(c))                         # prior p(z | c)
            pyro.sample(OBSERVED, self.likelihood(self.decoder(z)), obs=x)     # likelihood p(x | z)


class MixtureGuide(nn.Module):
    """q(c | x) q(z | x, c): a cluster classifier and a Normal code given the cluster, one encoder."""

    def __init__(self, encoder: nn.Module, clusters: int, latent_dim: int):
        super().__init__()
        self.clusters = clusters
        self.encoder = encoder
        self.cluster_logits = nn.Linear(encoder.out_features, clusters)
        self.loc = nn.Linear(encoder.out_features + clusters, latent_dim)
        self.scale = nn.Linear(encoder.out_features + clusters, latent_dim)

    def class_posterior(self, x: torch.Tensor) -> dist.Categorical:
        """q(c | x), batch shape ``(N,)``."""
        return dist.Categorical(logits=self.cluster_logits(self.encoder(x)))

    def code_posterior(self, h: torch.Tensor, c: torch.Tensor) -> dist.Distribution:
        hc = with_class(h, c, self.clusters)
        return dist.Normal(self.loc(hc), F.softplus(self.scale(hc)) + 1e-4).to_event(1)

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            h = self.encoder(x)
            c = pyro.sample(CLUSTER, dist.Categorical(logits=self.cluster_logits(h)),
                            infer={"enumerate": "parallel"})                    # q(c | x), summed out
            pyro.sample(LATENT, self.code_posterior(h, c))                      # q(z | x, c)

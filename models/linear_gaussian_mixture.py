"""The oracle for discrete latents: a mixture VAE with a linear-Gaussian decoder, every term closed-form.

    prior        p(c) = π_c,   p(z | c) = N(z; μ_c, S_c),  S_c = diag s_c²
    likelihood   p(x | z) = N(x; W z + b, σ² I_D)
    evidence     p(x | c) = N(x; W μ_c + b, W S_c Wᵀ + σ² I_D),   p(x) = Σ_c π_c p(x | c)
    posterior    p(c | x) = π_c p(x | c) / p(x)
                 p(z | x, c) = N(z; Λ_c⁻¹ (S_c⁻¹ μ_c + Wᵀ (x − b) / σ²), Λ_c⁻¹),  Λ_c = S_c⁻¹ + Wᵀ W / σ²

The same sites as :class:`~.mixture.MixtureModel` (``c``, ``z``, ``x``; c enumerated in the guide), so the
enumerated ELBO and the class-summing evidence estimator can be checked against exact answers. Images
are vectors of D pixels shaped ``(1, 1, D)``; densities in nats per image.
"""

from __future__ import annotations

import torch
from torch import nn

import pyro
import pyro.distributions as dist

from .discrete_sites import CLUSTER
from .pair import Pair
from .sites import DATA_PLATE, LATENT, OBSERVED


class LinearGaussianMixtureModel(nn.Module):
    """p(x, c, z) with π (K,), μ (K, d), s (K, d), W (D, d), b (D,), σ, all fixed at construction."""

    def __init__(self, weights, locs, scales, weight, bias, sigma: float):
        super().__init__()
        self.register_buffer("log_weights", torch.as_tensor(weights).log())
        self.locs = nn.Parameter(torch.as_tensor(locs).clone())
        self.log_scales = nn.Parameter(torch.as_tensor(scales).log())
        self.weight = nn.Parameter(torch.as_tensor(weight).clone())
        self.bias = nn.Parameter(torch.as_tensor(bias).clone())
        self.log_sigma = nn.Parameter(torch.tensor(float(sigma)).log())

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 1, self.weight.shape[0])

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("model", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            c = pyro.sample(CLUSTER, dist.Categorical(logits=self.log_weights))
            z = pyro.sample(LATENT, dist.Normal(self.locs[c], self.log_scales.exp()[c]).to_event(1))
            mean = (z @ self.weight.T + self.bias).unflatten(-1, self.image_shape)
            pyro.sample(OBSERVED, dist.Normal(mean, self.log_sigma.exp()).to_event(3), obs=x)

    def class_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x, c) = log π_c + log p(x | c), shape (K, N)."""
        eye = torch.eye(self.weight.shape[0])
        covs = torch.stack([self.weight @ torch.diag(s2) @ self.weight.T for s2 in self.log_scales.exp() ** 2])
        covs = covs + self.log_sigma.exp() ** 2 * eye
        means = self.locs @ self.weight.T + self.bias
        x = x.flatten(1)
        return torch.stack([dist.MultivariateNormal(m, cv).log_prob(x) for m, cv in zip(means, covs)]) \
            + self.log_weights[:, None]

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x), shape (N,)."""
        return self.class_evidence(x).logsumexp(0)

    def class_posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(c | x), shape (N, K)."""
        joint = self.class_evidence(x)
        return (joint - joint.logsumexp(0)).T

    def code_posterior(self, x: torch.Tensor, c: torch.Tensor) -> dist.MultivariateNormal:
        """Exact p(z | x, c); ``c`` broadcasts against the images (batch shape ``broadcast(c, (N,))``)."""
        sigma2 = self.log_sigma.exp() ** 2
        prior_precision = torch.diag_embed(self.log_scales.exp() ** -2)                 # (K, d, d)
        cov = torch.linalg.inv(prior_precision + self.weight.T @ self.weight / sigma2)   # (K, d, d)
        data_term = (x.flatten(-3) - self.bias) @ self.weight / sigma2                  # (N, d)
        prior_term = self.locs * self.log_scales.exp() ** -2                            # (K, d)
        mean = ((prior_term[c] + data_term)[..., None, :] @ cov[c].transpose(-1, -2)).squeeze(-2)
        return dist.MultivariateNormal(mean, covariance_matrix=cov[c].expand(*mean.shape, mean.shape[-1]))

    def sample_images(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images from p(x), shape (n, 1, 1, D)."""
        c = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        z = self.locs[c] + self.log_scales.exp()[c] * torch.randn(n, self.locs.shape[1], generator=generator)
        x = z @ self.weight.T + self.bias + self.log_sigma.exp() * torch.randn(n, self.weight.shape[0],
                                                                                 generator=generator)
        return x.detach().reshape(n, *self.image_shape)


class MixtureOracleGuide(nn.Module):
    """q(c | x) q(z | x, c) built from the exact posterior of ``model``: with ``temperature = 1``,
    ``shift = 0``, ``scale_factor = 1`` it *is* p(c | x) p(z | x, c); other values give wrong guides
    (class logits × temperature, code means + shift, code spread × scale_factor)."""

    def __init__(self, model: LinearGaussianMixtureModel, temperature: float = 1.0, shift: float = 0.0,
                 scale_factor: float = 1.0):
        super().__init__()
        object.__setattr__(self, "model", model)  # not a submodule: its parameters are the model's
        self.temperature = nn.Parameter(torch.tensor(float(temperature)))
        self.shift = nn.Parameter(torch.tensor(float(shift)))
        self.scale_factor = nn.Parameter(torch.tensor(float(scale_factor)))

    def class_posterior(self, x: torch.Tensor) -> dist.Categorical:
        return dist.Categorical(logits=self.temperature * self.model.class_posterior_logits(x))

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            c = pyro.sample(CLUSTER, self.class_posterior(x), infer={"enumerate": "parallel"})
            exact = self.model.code_posterior(x, c)
            pyro.sample(LATENT, dist.MultivariateNormal(exact.loc + self.shift,
                                                        scale_tril=exact.scale_tril * self.scale_factor))


def random_linear_gaussian_mixture(K: int = 3, D: int = 5, d: int = 2, sigma: float = 0.4,
                                   seed: int = 0) -> LinearGaussianMixtureModel:
    """Well-separated random clusters (means ×3) with unequal weights."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.softmax(torch.randn(K, generator=g), 0)
    locs = 3.0 * torch.randn(K, d, generator=g)
    scales = 0.5 + torch.rand(K, d, generator=g)
    weight = torch.randn(D, d, generator=g)
    bias = 0.5 * torch.randn(D, generator=g)
    return LinearGaussianMixtureModel(weights, locs, scales, weight, bias, sigma)


def oracle_mixture_pair(model: LinearGaussianMixtureModel, guide: MixtureOracleGuide) -> Pair:
    return Pair(model, guide, modules=[model, guide])

"""The linear-Gaussian VAE (probabilistic PCA): the one VAE whose Bayes terms are all closed-form.

    prior        p(z)     = N(z; 0, I_d)
    likelihood   p(x | z) = N(x; W z + b, σ² I_D)
    evidence     p(x)     = N(x; b, W Wᵀ + σ² I_D)
    posterior    p(z | x) = N(z; Λ⁻¹ Wᵀ (x − b) / σ², Λ⁻¹),   Λ = I_d + Wᵀ W / σ²

It follows the same protocol as every other pair, so estimators of log p(x), the ELBO gap
KL(q ‖ p(z | x)), MCMC on p(z | x) and PSIS can be checked against exact answers. Images are
vectors of D pixels shaped ``(1, 1, D)``; densities are in nats per image.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import pyro
import pyro.distributions as dist

from .pair import Pair
from .sites import DATA_PLATE, LATENT, OBSERVED


class LinearGaussianModel(nn.Module):
    """p(x, z) = N(z; 0, I) N(x; W z + b, σ² I) with W (D, d), b (D,), σ > 0 as parameters."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, sigma: float):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 1, self.weight.shape[0])

    @property
    def latent_dim(self) -> int:
        return self.weight.shape[1]

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("model", self)
        d = self.latent_dim
        with pyro.plate(DATA_PLATE, x.shape[0]):
            z = pyro.sample(LATENT, dist.Normal(x.new_zeros(d), 1.0).to_event(1))                  # prior p(z)
            mean = (z @ self.weight.T + self.bias).unflatten(-1, self.image_shape)
            pyro.sample(OBSERVED, dist.Normal(mean, self.log_sigma.exp()).to_event(3), obs=x)      # likelihood

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) per image, nats, shape (N,)."""
        cov = self.weight @ self.weight.T + self.log_sigma.exp() ** 2 * torch.eye(self.weight.shape[0])
        return dist.MultivariateNormal(self.bias, cov).log_prob(x.flatten(1))

    def posterior(self, x: torch.Tensor) -> dist.MultivariateNormal:
        """Exact p(z | x), batch shape (N,), event shape (d,)."""
        sigma2 = self.log_sigma.exp() ** 2
        precision = torch.eye(self.latent_dim) + self.weight.T @ self.weight / sigma2
        cov = torch.linalg.inv(precision)
        mean = (x.flatten(1) - self.bias) @ (cov @ self.weight.T / sigma2).T
        return dist.MultivariateNormal(mean, covariance_matrix=cov)

    def sample_images(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images from p(x), shape (n, 1, 1, D)."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        eps = torch.randn(n, self.weight.shape[0], generator=generator)
        x = z @ self.weight.T + self.bias + self.log_sigma.exp() * eps
        return x.detach().reshape(n, *self.image_shape)


class LinearGaussianGuide(nn.Module):
    """q(z | x) = N(z; A x + c, L Lᵀ), an amortized Gaussian guide that is linear in x.

    With ``diagonal=True`` it is a mean-field Normal (``L`` diagonal), otherwise a full-covariance
    MultivariateNormal; :func:`exact_guide` sets it to the exact posterior.
    """

    def __init__(self, A: torch.Tensor, c: torch.Tensor, scale_tril: torch.Tensor, diagonal: bool = False):
        super().__init__()
        self.A = nn.Parameter(A.clone())
        self.c = nn.Parameter(c.clone())
        self.diagonal = diagonal
        self.log_diag = nn.Parameter(scale_tril.diagonal().log())
        self.lower = None if diagonal else nn.Parameter(torch.tril(scale_tril, -1))

    def scale_tril(self) -> torch.Tensor:
        """L with a positive diagonal (exp of a free parameter) and a free strictly lower part."""
        tril = torch.diag_embed(self.log_diag.exp())
        return tril if self.lower is None else tril + torch.tril(self.lower, -1)

    def distribution(self, x: torch.Tensor) -> dist.Distribution:
        loc = x.flatten(-3) @ self.A.T + self.c
        if self.diagonal:
            return dist.Normal(loc, self.log_diag.exp()).to_event(1)
        return dist.MultivariateNormal(loc, scale_tril=self.scale_tril())

    def forward(self, x: torch.Tensor) -> None:
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            pyro.sample(LATENT, self.distribution(x))                                              # q(z | x)


def exact_guide(model: LinearGaussianModel, diagonal: bool = False, shift: float = 0.0,
                scale_factor: float = 1.0) -> LinearGaussianGuide:
    """The guide equal to p(z | x) (``shift`` moves its mean, ``scale_factor`` scales its spread, for wrong guides).

    ``diagonal=True`` keeps only the posterior's marginal standard deviations (exact only when Wᵀ W is diagonal).
    """
    with torch.no_grad():
        sigma2 = model.log_sigma.exp() ** 2
        precision = torch.eye(model.latent_dim) + model.weight.T @ model.weight / sigma2
        cov = torch.linalg.inv(precision)
        A = cov @ model.weight.T / sigma2
        c = -A @ model.bias + shift
        tril = torch.linalg.cholesky(cov) * scale_factor
        if diagonal:
            tril = torch.diag(cov.diagonal().sqrt() * scale_factor)
    return LinearGaussianGuide(A, c, tril, diagonal=diagonal)


def random_linear_gaussian(D: int = 6, d: int = 2, sigma: float = 0.5, orthogonal: bool = False,
                           seed: int = 0) -> LinearGaussianModel:
    """A random pPCA model; ``orthogonal=True`` gives W with orthogonal columns (then p(z | x) is mean-field)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(D, d, generator=generator)
    if orthogonal:
        q, _ = torch.linalg.qr(weight)
        weight = q * torch.linspace(2.0, 1.0, d)
    bias = torch.randn(D, generator=generator) * 0.5
    return LinearGaussianModel(weight, bias, sigma)


def linear_gaussian_pair(model: LinearGaussianModel, guide: LinearGaussianGuide) -> Pair:
    """The oracle as a protocol pair."""
    return Pair(model, guide, modules=[model, guide])

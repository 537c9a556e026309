"""The baseline: the same VAE as a plain PyTorch training loop, no Pyro.

Same networks as bayesvae's built-in pair (the encoder and decoder of ``bayesvae.models.networks``, two
linear heads for μ and σ = softplus(·) + 10⁻⁴ as in the Normal guide), the same per-image objective,
summed over the batch as Pyro's loss is (nats):

    mc        −[log p(x | z) + log p(z) − log q(z | x)],   z = μ + σ ε,  ε ~ N(0, I)   (Trace_ELBO)
    analytic  −[log p(x | z) − KL(N(μ, σ²) ‖ N(0, I))]                               (TraceMeanField_ELBO)
    iwae      −log (1/K) Σ_k p(x, z_k) / q(z_k | x),  K draws z_k = μ + σ ε_k          (RenyiELBO, α = 0)

with a Bernoulli likelihood on the decoder's logits and ``torch.optim.Adam`` at the same learning rate, fused
(one kernel for all tensors) as bayesvae's ``CheckedAdam`` uses it: the same optimizer on both sides.
This is what a careful PyTorch user writes: closed-form densities, one fused BCE-with-logits kernel.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bayesvae.models.networks import make_decoder, make_encoder

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class HandWrittenVAE(nn.Module):
    def __init__(self, net: str, image_shape: Sequence[int], hidden: Sequence[int], latent_dim: int):
        super().__init__()
        self.encoder = make_encoder(net, image_shape, hidden)
        self.loc = nn.Linear(self.encoder.out_features, latent_dim)
        self.scale = nn.Linear(self.encoder.out_features, latent_dim)
        self.decoder = make_decoder(net, latent_dim, image_shape, hidden)

    def loss(self, x: torch.Tensor, objective: str, particles: int = 1) -> torch.Tensor:
        """−ELBO (or −IWAE_K) summed over the batch, one z-draw per image (K for iwae)."""
        h = self.encoder(x)
        loc, scale = self.loc(h), F.softplus(self.scale(h)) + 1e-4
        if objective == "iwae":
            return self._iwae_loss(x, loc, scale, particles)
        eps = torch.randn_like(loc)
        z = loc + scale * eps
        minus_log_likelihood = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum")
        if objective == "mc":
            log_prior = -0.5 * z.square().sum() - HALF_LOG_2PI * z.numel()
            log_q = -0.5 * eps.square().sum() - scale.log().sum() - HALF_LOG_2PI * z.numel()
            return minus_log_likelihood - log_prior + log_q
        kl = 0.5 * (loc.square() + scale.square() - 1).sum() - scale.log().sum()
        return minus_log_likelihood + kl

    def _iwae_loss(self, x, loc, scale, particles: int) -> torch.Tensor:
        eps = torch.randn((particles, *loc.shape), dtype=loc.dtype, device=loc.device)
        z = loc + scale * eps                                                        # (K, B, d)
        logits = self.decoder(z)
        log_likelihood = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        log_w = (log_likelihood.flatten(2).sum(-1) - 0.5 * z.square().sum(-1)
                 + 0.5 * eps.square().sum(-1) + scale.log().sum(-1))                 # the 2π terms cancel
        return -(log_w.logsumexp(0) - math.log(particles)).sum()


class HandWrittenStep:
    """One Adam step on a batch; returns the loss as a float (as ``SVI.step`` does)."""

    def __init__(self, vae: HandWrittenVAE, objective: str, lr: float = 1e-3, particles: int = 1):
        if objective not in ("mc", "analytic", "iwae"):
            raise ValueError(f"the hand-written baseline has no {objective!r} objective")
        self.vae, self.objective, self.particles = vae, objective, particles
        self.adam = torch.optim.Adam(vae.parameters(), lr=lr, fused=True)

    def __call__(self, x: torch.Tensor) -> float:
        loss = self.vae.loss(x, self.objective, self.particles)
        self.adam.zero_grad()
        loss.backward()
        self.adam.step()
        return loss.item()

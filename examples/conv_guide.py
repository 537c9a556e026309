"""A guide that shares nothing with the built-in one: a small convolutional encoder of its own.

Pair it with the built-in model (prior N(0, I), MLP decoder, Bernoulli likelihood):

    bayesvae train --guide examples/conv_guide.py:guide --latent-dim 16

Only the guide comes from this file; the latent size must match the model's (16, the default).
Written for 8×8 images.
"""

from torch import nn

import pyro
import pyro.distributions as dist

LATENT_DIM = 16


class ConvEncoder(nn.Module):
    """8×8 image → (μ, log σ) through two 3×3 convolutions with GELU and a LayerNorm'd dense layer."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GELU(),  # 8×8 → 4×4
            nn.Flatten(), nn.Linear(32 * 4 * 4, 128), nn.LayerNorm(128), nn.GELU(),
        )
        self.out = nn.Linear(128, 2 * LATENT_DIM)

    def forward(self, x):
        loc, log_scale = self.out(self.features(x)).chunk(2, dim=-1)
        return loc, log_scale.clamp(-8, 4).exp()


encoder = ConvEncoder()


def guide(x):
    """q(z | x) = N(μ(x), diag σ(x)²) from the convolutional encoder."""
    pyro.module("conv_encoder", encoder)
    with pyro.plate("data", x.shape[0]):
        loc, scale = encoder(x)
        pyro.sample("z", dist.Normal(loc, scale).to_event(1))  # approximate posterior q(z | x)

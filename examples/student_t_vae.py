"""A heavier-tailed VAE: Student-t prior p(z) and a Student-t guide q(z | x) to match.

    bayesvae train --model examples/student_t_vae.py:model --guide examples/student_t_vae.py:guide

A Student-t prior (ν = 3) lets a few images sit far from the origin without a large KL penalty,
where the Normal prior pulls every code towards N(0, I). torch has no closed-form KL between
Student-t distributions, so ``--elbo analytic`` says so and Pyro estimates the KL by Monte Carlo.
Written for the 8×8 digits; change IMAGE_SHAPE for other data.
"""

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist

IMAGE_SHAPE = (1, 8, 8)
LATENT_DIM = 8
HIDDEN = 256
PRIOR_DF = 3.0

decoder = nn.Sequential(nn.Linear(LATENT_DIM, HIDDEN), nn.Softplus(), nn.Linear(HIDDEN, 64))
encoder = nn.Sequential(nn.Linear(64, HIDDEN), nn.Softplus(), nn.Linear(HIDDEN, 3 * LATENT_DIM))


def model(x):
    """p(z) = Π_u StudentT(z_u; ν=3, 0, 1);  p(x | z) = Bernoulli(decoder logits)."""
    pyro.module("decoder", decoder)
    with pyro.plate("data", x.shape[0]):
        prior = dist.StudentT(PRIOR_DF, x.new_zeros(LATENT_DIM), 1.0).to_event(1)
        z = pyro.sample("z", prior)  # prior p(z)
        pyro.sample("x", dist.Bernoulli(logits=decoder(z).unflatten(-1, IMAGE_SHAPE)).to_event(3), obs=x)


def guide(x):
    """q(z | x) = Π_u StudentT(z_u; ν(x), μ(x), σ(x)) with ν > 2 (finite variance)."""
    pyro.module("encoder", encoder)
    with pyro.plate("data", x.shape[0]):
        raw_df, loc, raw_scale = encoder(x.flatten(-3)).chunk(3, dim=-1)
        df = 2.0 + F.softplus(raw_df)
        q = dist.StudentT(df, loc, F.softplus(raw_scale) + 1e-4).to_event(1)
        pyro.sample("z", q)  # approximate posterior q(z | x)


def posterior_mean(x: torch.Tensor) -> torch.Tensor:
    """E_q[z | x] (defined since ν > 1): the location."""
    return encoder(x.flatten(-3)).chunk(3, dim=-1)[1]

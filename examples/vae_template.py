"""The built-in VAE written as a user script: copy this file to start your own model and guide.

    bayesvae train --model examples/vae_template.py:model --guide examples/vae_template.py:guide

The protocol (checked on one batch before training starts):
  * ``model(x)`` and ``guide(x)`` take a batch ``x`` of images in [0, 1], shape (N, C, H, W);
  * the latent site is called "z" and the observed site "x" (``obs=x``), both inside
    ``pyro.plate("data", len(x))``, with one latent vector and one image per plate entry
    (declare the rest with ``.to_event``);
  * parameters are registered with ``pyro.module`` / ``pyro.param`` (or live in a PyroModule).

Written for scikit-learn's 8×8 digits (the default data set) with a 16-D latent; change IMAGE_SHAPE
for other data. With the same seed it trains to exactly the parameters of the built-in default
(the networks are built in the same order as bayesvae's own: decoder first, then encoder).
"""

import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist

IMAGE_SHAPE = (1, 8, 8)
PIXELS = 64
LATENT_DIM = 16
HIDDEN = 400

decoder = nn.Sequential(nn.Linear(LATENT_DIM, HIDDEN), nn.Softplus(), nn.Linear(HIDDEN, PIXELS))
encoder = nn.Sequential(nn.Linear(PIXELS, HIDDEN), nn.Softplus())
loc_head = nn.Linear(HIDDEN, LATENT_DIM)
scale_head = nn.Linear(HIDDEN, LATENT_DIM)


def model(x):
    """p(x, z) = p(z) p(x | z): standard Normal prior, Bernoulli likelihood with decoder logits."""
    pyro.module("decoder", decoder)
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Normal(x.new_zeros(LATENT_DIM), 1.0).to_event(1))  # prior p(z)
        logits = decoder(z).unflatten(-1, IMAGE_SHAPE)
        pyro.sample("x", dist.Bernoulli(logits=logits).to_event(3), obs=x)  # likelihood p(x | z)


def guide(x):
    """q(z | x) = N(μ(x), diag σ(x)²): the amortized mean-field posterior."""
    pyro.module("encoder", encoder)
    pyro.module("loc_head", loc_head)
    pyro.module("scale_head", scale_head)
    with pyro.plate("data", x.shape[0]):
        h = encoder(x.flatten(-3))
        pyro.sample("z", dist.Normal(loc_head(h), F.softplus(scale_head(h)) + 1e-4).to_event(1))  # q(z | x)

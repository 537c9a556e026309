"""A user script with a discrete latent: a mixture-latent VAE whose cluster c is summed out exactly.

    bayesvae train --model examples/cluster_vae.py:model --guide examples/cluster_vae.py:guide

The protocol of examples/vae_template.py, plus one rule for a discrete site (here "c", any name works):
its distribution has a finite support (Categorical over class indices), it sits inside the data plate,
and where it is sampled it is marked for enumeration — ``infer={"enumerate": "parallel"}`` or
``pyro.infer.config_enumerate`` on the program. bayesvae then trains with Pyro's TraceEnum_ELBO (the
K values of c summed, z sampled) and its evidence estimate sums c exactly. A discrete site without
the mark is refused before training (it would need a score-function estimator).

Under enumeration c arrives with shape (K, 1, 1) instead of (N,): write the code after it so that it
broadcasts (index parameters with c, concatenate with expanded tensors as below).

    model  p(c) = 1/K,  p(z | c) = N(μ_c, diag σ_c²),  p(x | z) Bernoulli(decoder(z))
    guide  q(c | x) q(z | x, c)
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

import pyro
import pyro.distributions as dist
from pyro.infer import config_enumerate

IMAGE_SHAPE = (1, 8, 8)
PIXELS, LATENT_DIM, HIDDEN, CLUSTERS = 64, 8, 256, 10

decoder = nn.Sequential(nn.Linear(LATENT_DIM, HIDDEN), nn.Softplus(), nn.Linear(HIDDEN, PIXELS))
encoder = nn.Sequential(nn.Linear(PIXELS, HIDDEN), nn.Softplus())
cluster_head = nn.Linear(HIDDEN, CLUSTERS)
loc_head = nn.Linear(HIDDEN + CLUSTERS, LATENT_DIM)
scale_head = nn.Linear(HIDDEN + CLUSTERS, LATENT_DIM)
cluster_locs = nn.Parameter(torch.randn(CLUSTERS, LATENT_DIM))
cluster_raw_scales = nn.Parameter(torch.full((CLUSTERS, LATENT_DIM), math.log(math.expm1(1.0))))


def model(x):
    """p(x, c, z) = p(c) p(z | c) p(x | z)."""
    pyro.module("decoder", decoder)
    locs = pyro.param("cluster_locs", cluster_locs)
    scales = F.softplus(pyro.param("cluster_raw_scales", cluster_raw_scales)) + 1e-3
    with pyro.plate("data", x.shape[0]):
        c = pyro.sample("c", dist.Categorical(logits=x.new_zeros(CLUSTERS)))               # prior p(c)
        z = pyro.sample("z", dist.Normal(locs[c], scales[c]).to_event(1))                 # prior p(z | c)
        pyro.sample("x", dist.Bernoulli(logits=decoder(z).unflatten(-1, IMAGE_SHAPE)).to_event(3), obs=x)


@config_enumerate  # marks the guide's discrete site "c" for parallel enumeration
def guide(x):
    """q(c | x) q(z | x, c)."""
    for name, module in (("encoder", encoder), ("cluster_head", cluster_head), ("loc_head", loc_head),
                         ("scale_head", scale_head)):
        pyro.module(name, module)
    with pyro.plate("data", x.shape[0]):
        h = encoder(x.flatten(-3))
        c = pyro.sample("c", dist.Categorical(logits=cluster_head(h)))                      # q(c | x)
        one_hot = F.one_hot(c, CLUSTERS).to(h.dtype)
        shape = torch.broadcast_shapes(h.shape[:-1], one_hot.shape[:-1])
        hc = torch.cat([h.expand(*shape, HIDDEN), one_hot.expand(*shape, CLUSTERS)], -1)
        pyro.sample("z", dist.Normal(loc_head(hc), F.softplus(scale_head(hc)) + 1e-4).to_event(1))  # q(z|x,c)

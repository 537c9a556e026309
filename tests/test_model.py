"""The built-in model is the generative story it claims: log p(x, z) = log p(z) + log p(x | z)."""

import math

import pytest
import torch

from pyro import poutine

from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.errors import BadInput
from bayesvae.models.sites import LATENT, OBSERVED


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous-bernoulli", "gaussian", "gaussian-learned"])
def test_log_joint_matches_hand_computation(likelihood):
    torch.manual_seed(0)
    pair = build_pair(ModelSpec(likelihood=likelihood, latent_dim=3, hidden=(16,)), (1, 4, 4))
    x = torch.rand(5, 1, 4, 4)
    if likelihood == "bernoulli":
        x = x.round()
    z = torch.randn(5, 3)
    with pair.active():
        trace = poutine.trace(poutine.condition(pair.model, data={LATENT: z})).get_trace(x)
    trace.compute_log_prob()
    pyro_log_joint = trace.nodes[LATENT]["log_prob"] + trace.nodes[OBSERVED]["log_prob"]

    # by hand: standard normal prior, then the likelihood's density pixel by pixel
    log_prior = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    out = pair.model.decoder(z).flatten(1)
    xf = x.flatten(1)
    if likelihood == "bernoulli":
        p = torch.sigmoid(out)
        log_lik = (xf * torch.log(p) + (1 - xf) * torch.log1p(-p)).sum(-1)
    elif likelihood == "continuous-bernoulli":
        lam = torch.sigmoid(out).double()
        log_norm = torch.log(2 * torch.atanh(1 - 2 * lam) / (1 - 2 * lam))  # C(λ), λ ≠ ½ here
        log_lik = (xf.double() * torch.log(lam) + (1 - xf.double()) * torch.log1p(-lam) + log_norm).sum(-1).float()
    else:
        s = 0.1 if likelihood == "gaussian" else 1e-3 + torch.nn.functional.softplus(pair.model.likelihood.raw_scale)
        mean = torch.sigmoid(out)
        log_lik = (-0.5 * ((xf - mean) / s) ** 2 - torch.log(torch.as_tensor(s)) - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert torch.allclose(pyro_log_joint, log_prior + log_lik, atol=1e-3, rtol=1e-5)


def test_learned_gaussian_scale_starts_at_requested_value():
    pair = build_pair(ModelSpec(likelihood="gaussian-learned", likelihood_scale=0.2), (1, 4, 4))
    s = 1e-3 + torch.nn.functional.softplus(pair.model.likelihood.raw_scale)
    assert abs(float(s.detach()) - 0.2) < 1e-6


def test_autoencoder_differs_from_vae_only_in_the_guide():
    vae = build_pair(ModelSpec(guide="normal"), (1, 8, 8))
    ae = build_pair(ModelSpec(guide="delta"), (1, 8, 8))
    assert type(vae.model) is type(ae.model)
    assert type(vae.guide).__name__ == "NormalGuide" and type(ae.guide).__name__ == "DeltaGuide"


def test_conv_net_shapes_and_refusal():
    pair = build_pair(ModelSpec(net="conv", hidden=(64,), latent_dim=4), (1, 28, 28))
    z = torch.randn(3, 7, 4)  # particles × images × latent
    assert pair.model.decoder(z).shape == (3, 7, 1, 28, 28)
    assert pair.guide.encoder(torch.rand(3, 7, 1, 28, 28)).shape == (3, 7, 64)
    with pytest.raises(BadInput, match="divisible by 4"):
        build_pair(ModelSpec(net="conv"), (1, 30, 30))

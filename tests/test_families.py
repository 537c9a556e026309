"""The per-family registry (models/families.py): one place that says how the diagnostics treat a family,
and a family missing from it is diagnosed through its own log_prob with a note saying so."""

import math
import textwrap

import pyro.distributions as dist
import pytest
import torch

import bayesvae
from bayesvae.models.families import (FAMILIES, family_of, gaussian_view, is_point_mass, pairwise_kind,
                                      unregistered_note)


def test_gaussian_views_are_exact():
    loc, scale = torch.randn(3, 2), torch.rand(3, 2) + 0.5
    view = gaussian_view(dist.Normal(loc, scale).to_event(1))
    assert torch.allclose(view.covariance_matrix, torch.diag_embed(scale.double() ** 2)) and torch.allclose(view.mean, loc.double())
    cov = torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    full = gaussian_view(dist.MultivariateNormal(loc, covariance_matrix=cov))
    assert torch.allclose(full.covariance_matrix, cov.double().expand(3, 2, 2))
    assert gaussian_view(dist.StudentT(3.0, loc, scale).to_event(1)) is None        # registered, not Gaussian


def test_the_registry_knows_the_builtin_families():
    assert is_point_mass(dist.Delta(torch.zeros(3, 2)).to_event(1))
    assert not is_point_mass(dist.Normal(torch.zeros(3, 2), 1.0).to_event(1))
    assert pairwise_kind(dist.Normal(torch.zeros(3, 2), 1.0).to_event(1)) == "diagonal-normal"
    assert pairwise_kind(dist.LowRankMultivariateNormal(torch.zeros(3, 2), torch.ones(3, 2, 1), torch.ones(3, 2))) \
        == "generic"
    for name in ("normal", "lowrank", "fullcov", "iaf", "delta"):      # every built-in guide's family is registered
        run = bayesvae.fit(guide=name, latent_dim=2, hidden=(8,), epochs=1, device="cpu", progress=False,
                           log=lambda _: None)
        x, _ = run.images("test", 2)
        assert family_of(run.encode(x)) is not None, name
    assert len(FAMILIES) >= 8


UNREGISTERED_GUIDE = '''
import torch
import pyro
import pyro.distributions as dist
from torch import nn

encoder = nn.Linear(64, 4)
decoder = nn.Linear(2, 64)


def model(x):
    pyro.module("decoder", decoder)
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
        pyro.sample("x", dist.Bernoulli(logits=decoder(z).unflatten(-1, (1, 8, 8))).to_event(3), obs=x)


def guide(x):
    pyro.module("encoder", encoder)
    with pyro.plate("data", x.shape[0]):
        loc, raw = encoder(x.flatten(-3)).chunk(2, dim=-1)
        pyro.sample("z", dist.SoftLaplace(loc, torch.nn.functional.softplus(raw) + 1e-3).to_event(1))
'''


def test_an_unregistered_guide_family_is_diagnosed_and_the_diagnostics_say_so(tmp_path):
    script = tmp_path / "soft.py"
    script.write_text(UNREGISTERED_GUIDE)
    run = bayesvae.fit(f"{script}:model", f"{script}:guide", epochs=2, device="cpu", progress=False,
                       log=lambda _: None)
    x, _ = run.images("test", 2)
    assert "SoftLaplace" in unregistered_note(run.encode(x), "guide")
    lines = []
    result = bayesvae.diagnose(run, k=20, max_images=40, mcmc=False, progress=False, log=lines.append)
    assert any("SoftLaplace" in note and "registry" in note for note in result["notes"])
    assert "SoftLaplace family is not in bayesvae's registry" in "\n".join(lines)
    assert math.isfinite(result["surgery"]["mutual_information"])    # computed through the guide's own log_prob
    assert "generic" in result["surgery"]["evaluator"] or "log_prob" in result["surgery"]["evaluator"]

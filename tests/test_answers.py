"""The diagnose "answer" sentence on the edge cases: every clause must agree with the numbers it is built from."""

from __future__ import annotations

import math

import pytest
import torch
import pyro.distributions as dist

from bayesvae.analysis.answers import kl_answer, prior_scale, prior_std_hint

from test_findings import latent


def with_prior(results, std=1.0, family="Independent"):
    d = results["latent"]["latent_dim"]
    return {**results, "prior": {"std": std, "std_per_dim": [std] * d, "family": family, "method": "analytic"}}


def test_prior_std_is_read_from_the_prior_itself():
    laplace = prior_scale(dist.Laplace(torch.zeros(4), torch.ones(4)).to_event(1))
    assert laplace["std"] == pytest.approx(math.sqrt(2))           # 1.41, not the N(0, 1) value
    assert laplace["family"] == "Laplace"
    assert prior_scale(dist.Normal(torch.zeros(3), 2 * torch.ones(3)).to_event(1))["std"] == pytest.approx(2.0)
    mixture = dist.MixtureSameFamily(dist.Categorical(torch.ones(2)),
                                     dist.Normal(torch.tensor([[-3.0], [3.0]]), torch.ones(2, 1)).to_event(1))
    assert prior_scale(mixture)["std"] == pytest.approx(math.sqrt(10), rel=1e-4)   # total variance 1 + 9


def test_zero_active_units_with_zero_kl_says_collapse_not_far_from_the_prior():
    text = kl_answer(with_prior(latent(0, kl=0.0, mi=0.0)))
    assert "No latent dimension is active" in text and "posterior collapse" in text
    assert "far from" not in text and "mostly information" not in text


def test_zero_active_units_with_a_large_kl_says_it_is_not_at_the_prior():
    text = kl_answer(with_prior(latent(0, kl=120.0, mi=0.0, inactive_std=0.08)))
    assert "not the prior" in text and "sit at the prior" not in text
    assert "only I_q = 0.00 (0%)" in text and "does not match p(z)" in text


def test_all_active_compares_the_posterior_std_with_the_prior_std_in_words_that_hold():
    results = with_prior(latent(16, kl=4.3, mi=3.7))
    results["latent"]["summary"]["active"]["mean_std"] = 0.80
    text = kl_answer(results)
    assert "inactive" not in text and "posterior std 0.80, about the prior's 1.00" in text
    assert "I_q = 3.70 (86%) is information about x" in text
    laplace = with_prior(results, std=math.sqrt(2), family="Laplace")
    assert "narrower than the prior's 1.41" in kl_answer(laplace)
    assert "1.41, Laplace" in prior_std_hint(laplace)


def test_i_q_at_its_bound_says_the_split_is_limited_by_n_instead_of_an_inequality():
    text = kl_answer(with_prior(latent(16, kl=30.77, mi=7.63, log_n=7.60)))
    assert "reached its bound log N = 7.60" in text and "limited by N" in text and "≤" not in text


def test_point_mass_and_exploded_kl():
    point = with_prior(latent(16))
    point["latent"]["point_mass"] = True
    assert "point mass" in kl_answer(point)
    exploded = with_prior(latent(0, kl=7.7e7, mi=0.0))
    text = kl_answer(exploded)
    assert "diverged" in text and "77,000,000" in text and "far from" not in text and "sit at" not in text


def test_beta_zero_never_says_the_kl_pulled_anything():
    healthy = with_prior(latent(16, kl=4.3, mi=3.7))
    text = kl_answer(healthy, beta=0.0)
    assert "β = 0" in text and "not in its objective" in text and "the KL pulls" not in text
    weighted = kl_answer(healthy, beta=4.0)
    assert "the KL (weighted by β = 4) pulls q(z|x) toward p(z)" in weighted
    assert "weighted by" not in kl_answer(healthy, beta=1.0)
    collapsed = kl_answer(with_prior(latent(0, kl=0.0, mi=0.0)), beta=0.0)
    assert "did pull" not in collapsed and "nothing in the objective pulled it there" in collapsed
    point = with_prior(latent(16))
    point["latent"]["point_mass"] = True
    assert "not in the objective at all" in kl_answer(point, beta=0.0)
    assert "β·log p(z) at the code (β = 2)" in kl_answer(point, beta=2.0)

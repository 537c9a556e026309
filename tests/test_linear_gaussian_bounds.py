"""Pyro's objectives on the linear-Gaussian VAE, where log p(x) and p(z | x) are exact.

ELBO ≤ IWAE_K ≤ log p(x); the analytic-KL ELBO equals the Monte Carlo ELBO in expectation; with the
exact posterior as guide the ELBO is log p(x); the gap log p(x) − ELBO is KL(q ‖ p(z | x)).
"""

import math

import pytest
import torch

from bayesvae.inference.objectives import make_elbo
from bayesvae.inference.terms import trace_terms
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():  # estimators only
        yield


@pytest.fixture
def oracle():
    torch.manual_seed(0)
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, orthogonal=True, seed=1)
    x = model.sample_images(8, torch.Generator().manual_seed(2))
    return model, x


def objective(kind, pair, x, particles):
    """Pyro's objective (−loss) summed over the batch, nats."""
    with pair.active():
        return -make_elbo(kind, particles).loss(pair.model, pair.guide, x)


def test_analytic_kl_elbo_equals_mc_elbo_in_expectation(oracle):
    model, x = oracle
    pair = linear_gaussian_pair(model, exact_guide(model, diagonal=True, shift=0.8, scale_factor=0.7))
    # both estimate E_q[log p(x|z)] − KL; the analytic one only removes the KL's noise
    analytic = objective("analytic", pair, x, 20000)
    mc = objective("mc", pair, x, 20000)
    terms = trace_terms(pair, x, 20000)
    se = float(terms.log_weight.sum(1).std() / math.sqrt(20000))
    assert abs(analytic - mc) < 4 * se + 1e-3, (analytic, mc, se)
    # and the analytic KL Pyro used is torch's closed form for these Normals
    exact_elbo = float((terms.log_likelihood.mean(0) - terms.analytic_kl()).sum())
    assert abs(analytic - exact_elbo) < 4 * se


def _mean_and_se(values):
    values = torch.tensor(values)
    return float(values.mean()), float(values.std() / math.sqrt(len(values)))


def test_bounds_are_ordered_elbo_iwae_log_evidence(oracle):
    model, x = oracle
    pair = linear_gaussian_pair(model, exact_guide(model, diagonal=True, shift=0.8, scale_factor=0.7))
    log_px = float(model.log_evidence(x).sum())
    torch.manual_seed(1)
    elbo, elbo_se = _mean_and_se([objective("mc", pair, x, 100) for _ in range(100)])
    iwae_10, iwae_10_se = _mean_and_se([objective("iwae", pair, x, 10) for _ in range(200)])
    iwae_1000, iwae_1000_se = _mean_and_se([objective("iwae", pair, x, 1000) for _ in range(20)])
    # ELBO < IWAE_10 < IWAE_1000 ≤ log p(x), each step by more than 4 standard errors
    assert iwae_10 - elbo > 4 * math.hypot(elbo_se, iwae_10_se), (elbo, iwae_10)
    assert iwae_1000 - iwae_10 > 4 * math.hypot(iwae_10_se, iwae_1000_se), (iwae_10, iwae_1000)
    assert iwae_1000 < log_px + 4 * iwae_1000_se, (iwae_1000, log_px)


def test_exact_posterior_guide_makes_elbo_equal_log_evidence(oracle):
    model, x = oracle
    pair = linear_gaussian_pair(model, exact_guide(model))  # full-covariance q = p(z|x)
    terms = trace_terms(pair, x, 50)
    # every importance weight equals p(x): log p(x, z) − log q(z|x) = log p(x) for all z
    assert torch.allclose(terms.log_weight, model.log_evidence(x).expand(50, -1), atol=1e-4)
    assert abs(objective("mc", pair, x, 10) - float(model.log_evidence(x).sum())) < 1e-3


def test_gap_is_kl_to_true_posterior(oracle):
    model, x = oracle
    guide = exact_guide(model, shift=0.6, scale_factor=0.5)
    pair = linear_gaussian_pair(model, guide)
    terms = trace_terms(pair, x, 40000)
    gap = model.log_evidence(x) - terms.log_weight.mean(0)
    kl = torch.distributions.kl_divergence(guide.distribution(x), model.posterior(x))
    se = terms.log_weight.std(0) / math.sqrt(40000)
    assert torch.all((gap - kl).abs() < 4 * se + 1e-4), (gap, kl)
    assert torch.all(kl > 0.1)

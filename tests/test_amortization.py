"""The per-image q* and the two gaps, against closed forms on the linear-Gaussian model and on a digits VAE.

Linear-Gaussian (pPCA), full-covariance Gaussian guide family: it contains p(z|x), so q* = p(z|x),
the approximation gap log p(x) − ELBO[q*] is 0 and the amortization gap ELBO[q*] − ELBO[q] equals
KL(q ‖ p(z|x)) exactly (0 when the encoder is already the exact posterior map). Mean-field family:
the best mean-field Gaussian for N(μ, Λ⁻¹) has precisions Λ_uu, so the approximation gap is
½ (Σ_u log Λ_uu − log det Λ).
"""

import math

import numpy as np
import pytest
import torch
from torch.distributions import kl_divergence

import pyro
import pyro.distributions as dist

from bayesvae.analysis.amortization import measure_gaps
from bayesvae.inference.local_posterior import (FAMILIES, LocalFamily, UnsupportedGuide, amortized_posterior,
                                                fit_local_posterior)
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian

K = 4000


@pytest.fixture(scope="module")
def oracle():
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, orthogonal=False, seed=2)
    x = model.sample_images(4, torch.Generator().manual_seed(3))
    return model, x


def gaps_for(model, x, steps=150, **guide):
    pyro.set_rng_seed(0)
    pair = linear_gaussian_pair(model, exact_guide(model, **guide))
    local = fit_local_posterior(pair, x, steps=steps, particles=16, lr=0.02)
    return pair, local, measure_gaps(pair, local, x, k=K)


def test_amortization_gap_is_zero_for_the_exact_posterior_map(oracle):
    model, x = oracle
    _, local, gaps = gaps_for(model, x)
    exact = model.log_evidence(x).detach().double().numpy()
    assert local.family == "MultivariateNormal"
    assert np.abs(gaps.elbo_amortized - exact).max() < 1e-3          # ELBO[q] = log p(x) when q = p(z|x)
    assert np.abs(gaps.amortization_gap).max() < 0.01, gaps.amortization_gap
    assert np.abs(gaps.approximation_gap).max() < 0.01


def test_amortization_gap_of_a_perturbed_encoder_is_its_kl_to_the_posterior(oracle):
    model, x = oracle
    pair, local, gaps = gaps_for(model, x, steps=300, shift=0.8, scale_factor=0.7)
    kl = kl_divergence(amortized_posterior(pair, x), model.posterior(x)).detach().double().numpy()
    assert (kl > 1).all()
    assert (gaps.amortization_gap > 10 * gaps.amortization_gap_se).all()
    tolerance = 0.02 + 4 * gaps.amortization_gap_se.max()
    assert np.abs(gaps.amortization_gap - kl).max() < tolerance, (gaps.amortization_gap, kl)
    # q* found the exact posterior: its mean and covariance
    q_star = amortized_posterior(local.pair, x)
    exact = model.posterior(x)
    assert torch.allclose(q_star.mean, exact.mean, atol=0.02)
    assert torch.allclose(q_star.covariance_matrix, exact.covariance_matrix, atol=0.01)
    assert np.abs(gaps.approximation_gap).max() < 0.02


def test_mean_field_family_has_the_exact_approximation_gap(oracle):
    model, x = oracle
    _, local, gaps = gaps_for(model, x, diagonal=True, shift=0.3)
    assert local.family == "Normal"
    sigma2 = model.log_sigma.exp() ** 2
    precision = (torch.eye(2) + model.weight.T @ model.weight / sigma2).detach().double()
    exact = 0.5 * (precision.diagonal().log().sum() - torch.logdet(precision))
    assert exact > 0.05
    assert np.abs(gaps.approximation_gap - float(exact)).max() < 0.02 + 4 * gaps.approximation_gap_se.max(), \
        (gaps.approximation_gap, float(exact))
    assert (gaps.amortization_gap > 0).all()


def _example(kind, n=3, d=3):
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(n, d, generator=g)
    if kind is dist.Normal:
        return dist.Normal(loc, torch.rand(n, d, generator=g) + 0.5).to_event(1)
    if kind is dist.Laplace:
        return dist.Laplace(loc, torch.rand(n, d, generator=g) + 0.5).to_event(1)
    if kind is dist.StudentT:
        return dist.StudentT(4.0, loc, torch.rand(n, d, generator=g) + 0.5).to_event(1)
    if kind is dist.MultivariateNormal:
        a = torch.randn(d, d, generator=g)
        return dist.MultivariateNormal(loc, scale_tril=torch.linalg.cholesky(a @ a.T + torch.eye(d)))
    return dist.LowRankMultivariateNormal(loc, torch.randn(n, d, 2, generator=g), torch.rand(n, d, generator=g) + 0.1)


@pytest.mark.parametrize("kind", list(FAMILIES), ids=lambda k: k.__name__)
def test_local_family_starts_at_the_amortized_distribution(kind):
    """λ_n initialised from q(z|x_n) rebuild q(z|x_n) itself: same log-density everywhere, per image."""
    q = _example(kind)
    local = LocalFamily.from_distribution(q).distribution()
    assert type(local) is type(q) and local.batch_shape == q.batch_shape and local.event_shape == q.event_shape
    z = q.sample((5,))
    assert torch.allclose(local.log_prob(z), q.log_prob(z), atol=1e-4)
    assert all(p.shape[0] == 3 for p in LocalFamily.from_distribution(q).parameters())   # free per image


def test_unsupported_guides_are_refused_with_a_reason():
    with pytest.raises(UnsupportedGuide, match="point mass"):
        LocalFamily.from_distribution(dist.Delta(torch.zeros(3, 2)).to_event(1))
    flow = dist.TransformedDistribution(dist.Normal(torch.zeros(3, 2), 1.0).to_event(1),
                                        [dist.transforms.ExpTransform()])
    with pytest.raises(UnsupportedGuide, match="TransformedDistribution"):
        LocalFamily.from_distribution(flow)


def test_local_q_star_beats_the_amortized_guide_on_a_trained_vae(trained_run):
    """ELBO[q*] ≥ ELBO[q] for every chosen image, up to Monte Carlo error (K = 4000 draws each)."""
    x, _ = trained_run.images("test")
    x = x[:8]
    pyro.set_rng_seed(0)
    local = fit_local_posterior(trained_run.pair, x, steps=300)
    gaps = measure_gaps(trained_run.pair, local, x, k=K)
    assert (gaps.amortization_gap > -3 * gaps.amortization_gap_se).all(), gaps.amortization_gap
    mean_se = math.sqrt((gaps.amortization_gap_se ** 2).sum()) / len(x)
    assert gaps.amortization_gap.mean() > 3 * mean_se         # and on average it is a real, positive gap
    assert (gaps.approximation_gap > -3 * gaps.approximation_gap_se).all()   # log p(x) ≥ ELBO[q*]


def test_beta_split_on_the_oracle_gives_the_tempered_posteriors_kl_as_the_beta_part(oracle):
    """A perfect β = 3 encoder (q = the tempered posterior, precision I + WᵀW/(βσ²)): the amortization part is 0
    and the β part is KL(q_β ‖ p(z|x)) in closed form; the parts add up to the total gap."""
    from bayesvae.analysis.amortization import format_beta_split, measure_beta_split
    from bayesvae.models.linear_gaussian import LinearGaussianGuide

    model, x = oracle
    beta = 3.0
    with torch.no_grad():
        sigma2 = model.log_sigma.exp() ** 2
        cov = torch.linalg.inv(torch.eye(2) + model.weight.T @ model.weight / (beta * sigma2))
        A = cov @ model.weight.T / (beta * sigma2)
        guide = LinearGaussianGuide(A, -A @ model.bias, torch.linalg.cholesky(cov))
    pyro.set_rng_seed(0)
    pair = linear_gaussian_pair(model, guide)
    local = fit_local_posterior(pair, x, steps=300, particles=16, lr=0.02)
    local_beta = fit_local_posterior(pair, x, steps=300, particles=16, lr=0.02, beta=beta)
    gaps = measure_gaps(pair, local, x, k=K)
    split = measure_beta_split(gaps, local_beta, x, beta, list(range(x.shape[0])), k=K)
    exact = kl_divergence(amortized_posterior(pair, x), model.posterior(x)).detach().double().numpy()
    assert (exact > 0.3).all()
    for n, r in enumerate(split["rows"]):
        assert r["beta_part"] == pytest.approx(exact[n], abs=0.03 + 4 * r["beta_part_se"])
        assert abs(r["amortization_part"]) < 0.03 + 4 * r["amortization_part_se"]
        assert r["approximation_gap"] + r["beta_part"] + r["amortization_part"] == pytest.approx(r["total_gap"])
    assert "β part" not in format_beta_split(split) and "what training for β = 3 costs" in format_beta_split(split)

"""Importance-sampled evidence log p(x) (IWAE_K) against exact answers on the linear-Gaussian model.

log p̂(x) is within 3 standard errors of the exact log p(x); log p(x) − ELBO is the exact KL(q ‖ p(z|x));
with the exact posterior as proposal the gap vanishes; chunking is exact and bounds memory;
on a trained digits VAE ELBO ≤ IWAE_10 ≤ IWAE_1000 in expectation.
"""

import math

import pyro
import pytest
import torch
from torch.distributions import kl_divergence

from bayesvae.inference import evidence
from bayesvae.inference.evidence import block_jackknife_se, estimate_log_evidence, summarize_log_weights
from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.errors import BadInput
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian


@pytest.fixture
def oracle():
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, seed=1)
    x = model.sample_images(20, torch.Generator().manual_seed(2))
    return model, x


def exact_kl_to_posterior(model, guide, x):
    """KL(q(z|x) ‖ p(z|x)) per image, closed form (both Gaussian)."""
    with torch.no_grad():
        return kl_divergence(guide.distribution(x), model.posterior(x))


def test_weight_summary_matches_direct_formulas():
    log_w = torch.randn(37, 5, dtype=torch.float64) * 3 - 50   # 37 draws, 5 images, far from 0
    log_px, elbo, se, delta_se, elbo_se, khat = summarize_log_weights(log_w)
    k = log_w.shape[0]
    w = (log_w - log_w.max(0).values).exp()                      # weights up to a per-image factor
    assert torch.allclose(log_px.double(), log_w.logsumexp(0) - math.log(k), atol=1e-5)
    assert torch.allclose(elbo.double(), log_w.mean(0), atol=1e-5)
    assert torch.allclose(delta_se.double(), w.std(0) / math.sqrt(k) / w.mean(0), rtol=1e-4)   # delta method
    assert torch.allclose(elbo_se.double(), log_w.std(0) / math.sqrt(k), rtol=1e-4)
    assert khat.shape == (5,) and bool(torch.isfinite(khat).all())


def test_block_jackknife_is_the_leave_one_block_out_formula():
    log_w = torch.randn(43, 3, dtype=torch.float64) * 4
    parts = [list(p.tolist()) for p in torch.arange(43).tensor_split(7)]
    theta = torch.stack([log_w[[i for i in range(43) if i not in part]].logsumexp(0) - math.log(43 - len(part))
                         for part in parts])
    expected = (6 / 7 * (theta - theta.mean(0)).square().sum(0)).sqrt()
    assert torch.allclose(block_jackknife_se(log_w, blocks=7), expected, rtol=1e-10)
    # one block holding nearly all the weight: still finite, and large
    log_w[0] = 500.0
    se = block_jackknife_se(log_w, blocks=7)
    assert bool(torch.isfinite(se).all()) and bool((se > 10).all())


def test_draws_are_streamed_in_chunks(oracle, monkeypatch):
    model, x = oracle
    pair = linear_gaussian_pair(model, exact_guide(model, shift=0.3))
    calls = []
    real = evidence.trace_terms

    def spy(pair, xb, num_samples):
        calls.append((xb.shape[0], num_samples))
        return real(pair, xb, num_samples)

    monkeypatch.setattr(evidence, "trace_terms", spy)
    estimate = estimate_log_evidence(pair, x, k=150, chunk=64, batch_size=8, compiled=False)  # Pyro's traces only
    assert max(b for b, _ in calls) <= 8 and max(s for _, s in calls) <= 64     # no block is N × K
    assert sum(b * s for b, s in calls) == 150 * x.shape[0]                     # yet every draw is used
    assert estimate.k == 150 and estimate.log_px.shape == (x.shape[0],)


def test_importance_sampled_evidence_within_three_standard_errors(oracle):
    model, x = oracle
    pair = linear_gaussian_pair(model, exact_guide(model, shift=0.2, scale_factor=1.3))   # wrong, wider q
    pyro.set_rng_seed(0)
    estimate = estimate_log_evidence(pair, x, k=1000, chunk=128)
    exact = model.log_evidence(x).detach()
    assert abs(estimate.mean_log_px - float(exact.mean())) < 3 * estimate.se_mean
    z = (estimate.log_px - exact) / estimate.se
    assert float((z.abs() < 3).float().mean()) >= 0.9, z
    assert estimate.se_mean > 0.005   # the proposal is wrong: the estimate is not exact by construction


def test_gap_is_the_kl_to_the_true_posterior_for_a_wrong_guide(oracle):
    model, x = oracle
    guide = exact_guide(model, shift=0.3, scale_factor=1.5)
    pyro.set_rng_seed(1)
    estimate = estimate_log_evidence(linear_gaussian_pair(model, guide), x, k=1000)
    kl = float(exact_kl_to_posterior(model, guide, x).mean())
    assert kl > 1.0
    exact_gap = float((model.log_evidence(x).detach() - estimate.elbo).mean())     # log p(x) − ELBO
    assert abs(exact_gap - kl) < 3 * estimate.elbo_se_mean
    gap_se = math.hypot(estimate.se_mean, estimate.elbo_se_mean)
    assert abs(estimate.mean_gap - kl) < 3 * gap_se                                 # both sides estimated


def test_exact_posterior_as_guide_has_no_gap(oracle):
    model, x = oracle
    estimate = estimate_log_evidence(linear_gaussian_pair(model, exact_guide(model)), x, k=50)
    exact = model.log_evidence(x).detach()
    assert torch.allclose(estimate.log_px, exact, atol=1e-4)      # every weight is p(x): no variance
    assert float(estimate.gap.abs().max()) < 1e-4
    assert float(estimate.se.max()) < 1e-4


def test_point_mass_guide_has_no_importance_weights():
    pair = build_pair(ModelSpec(guide="delta", latent_dim=2, hidden=(8,)), (1, 8, 8))
    x = torch.bernoulli(torch.full((4, 1, 8, 8), 0.5), generator=torch.Generator().manual_seed(0))
    pair.initialize(x)
    with pytest.raises(BadInput, match="point mass"):
        estimate_log_evidence(pair, x, k=10)


@pytest.mark.parametrize("k", [0, 1, -3, 2.5, True])
def test_bad_k_is_refused(oracle, k):
    model, x = oracle
    with pytest.raises(BadInput, match="--k"):
        estimate_log_evidence(linear_gaussian_pair(model, exact_guide(model)), x, k=k)


def test_elbo_below_iwae_k_below_iwae_larger_k_on_trained_digits(trained_run):
    x, _ = trained_run.images("test", max_images=200)
    pair = trained_run.pair
    pyro.set_rng_seed(3)
    elbo = estimate_log_evidence(pair, x, k=100)           # its ELBO: mean log w over 100 draws
    iwae_5 = estimate_log_evidence(pair, x, k=5)
    iwae_200 = estimate_log_evidence(pair, x, k=200)       # draws independent of the ELBO's
    se = (lambda a, b: 3 * math.hypot(a, b))
    assert elbo.mean_elbo <= iwae_5.mean_log_px + se(elbo.elbo_se_mean, iwae_5.se_mean)
    assert iwae_5.mean_log_px <= iwae_200.mean_log_px + se(iwae_5.se_mean, iwae_200.se_mean)
    # and the bound really tightens: IWAE_200 − ELBO (≈ 0.1 nats here) is far outside the Monte Carlo error
    assert iwae_200.mean_log_px - elbo.mean_elbo > 2 * se(elbo.elbo_se_mean, iwae_200.se_mean)

"""Coverage of the evidence error bar over Monte Carlo seeds, against the exact log p(x) of the
linear-Gaussian model (and, slow, against a K = 50,000 reference on a trained digits VAE).

Measured here (100 seeds × 20 images, K = 1000, ±2 se, nominal 95 %; shrinking q by s gives weights
with Pareto tail k = 1 − s²):

    guide                 k̂ (max of 20)   jackknife   delta method
    wider, s = 1.3          < 0             0.944        0.960   (0.949, 0.964 before the draws were keyed per block)
    s = 0.7 (k ≈ 0.5)       0.77            0.894        0.905
    s = 0.6 (k ≈ 0.64)      ~0.9            0.803        –
    s = 0.5 (k ≈ 0.75)      1.02            0.663        0.655

Every miss is on the same side: the truth above log p̂ + 2 se, the large weights not drawn — what
k̂ > 0.7 flags. The jackknife bar is wider than the delta method's where the tail is heavy.
"""

import pyro
import pytest
import torch

from bayesvae.inference.evidence import estimate_log_evidence
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian


@pytest.fixture(scope="module")
def oracle():
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, seed=1)
    x = model.sample_images(20, torch.Generator().manual_seed(2))
    return model, x, model.log_evidence(x).detach()


def over_seeds(pair, x, seeds=50, k=1000):
    estimates = []
    for seed in range(seeds):
        pyro.set_rng_seed(seed)
        estimates.append(estimate_log_evidence(pair, x, k=k, chunk=k, batch_size=x.shape[0]))
    stack = (lambda name: torch.stack([getattr(e, name) for e in estimates]).double())
    return stack("log_px"), stack("se"), stack("delta_se"), torch.stack([e.khat for e in estimates])


def test_light_tailed_weights_are_covered_at_the_nominal_rate(oracle):
    model, x, exact = oracle
    log_px, se, _, khat = over_seeds(linear_gaussian_pair(model, exact_guide(model, shift=0.2, scale_factor=1.3)), x)
    assert float(khat.max()) < 0.5
    coverage = float(((log_px - exact).abs() <= 2 * se).double().mean())     # 1000 intervals
    assert 0.92 <= coverage <= 0.98, coverage
    # the error bar is the spread over seeds, not a bound: per image, se ≈ sd over seeds
    ratio = (log_px.std(0) / se.mean(0)).median()
    assert 0.8 < float(ratio) < 1.25, ratio


def test_heavy_tailed_weights_miss_only_above_and_less_than_the_delta_method(oracle):
    model, x, exact = oracle
    log_px, se, delta_se, khat = over_seeds(linear_gaussian_pair(model, exact_guide(model, shift=0.3, scale_factor=0.5)), x)
    assert float(khat.nanmean()) > 0.7                              # flagged as unreliable
    error = exact - log_px                                          # > 0: the estimate is below the truth
    assert float((error >= -2 * se).double().mean()) >= 0.99        # never (almost) above the truth by 2 se
    assert float((error <= 2 * se).double().mean()) < 0.8           # and the misses are real: below
    assert float(se.mean()) > 1.1 * float(delta_se.mean())          # wider than the delta method


def test_moderately_heavy_tails_are_mostly_covered(oracle):
    model, x, exact = oracle
    log_px, se, _, khat = over_seeds(linear_gaussian_pair(model, exact_guide(model, scale_factor=0.7)), x)
    coverage = float(((log_px - exact).abs() <= 2 * se).double().mean())
    assert coverage >= 0.85, coverage


@pytest.mark.slow
def test_coverage_on_a_trained_digits_vae_against_a_long_reference(tmp_path):
    import bayesvae

    run = bayesvae.fit(out=tmp_path / "vae", latent_dim=16, epochs=60, hidden=(128,), device="cpu",
                       progress=False, log=lambda _: None)
    x, _ = run.images("test", max_images=200)
    pyro.set_rng_seed(12345)
    reference = estimate_log_evidence(run.pair, x, k=50_000, chunk=1000)     # se ≈ 0.03 of the K=1000 one
    log_px, se, _, _ = over_seeds(run.pair, x, seeds=30)
    coverage = float(((log_px - reference.log_px.double()).abs() <= 2 * se).double().mean())
    assert coverage >= 0.9, coverage                                          # measured 0.93
    spread = float(log_px.mean(1).std())                                      # of the mean over images
    se_mean = float(se.square().sum(1).sqrt().mean() / x.shape[0])
    assert 0.7 < spread / se_mean < 1.4, (spread, se_mean)                   # measured 0.89

"""PSIS k̂ of the guide's importance weights on the linear-Gaussian model, where q can be made exact.

With q(z|x) = p(z|x) every weight p(x,z)/q(z|x) equals p(x): no tail at all, k̂ < 0.5. With q the
posterior shrunk by a factor s (same mean, covariance s² Σ), log w = ½ (1 − s²) χ²_d + const, whose
tail is Pareto with shape k = 1 − s²: for s = 0.2, k = 0.96, far above the 0.7 threshold; a q wider
than the posterior (s > 1) has bounded weights (k < 0).
"""

import numpy as np
import pytest
import torch

import pyro

from bayesvae.analysis.posterior_check import importance_log_weights, psis_khat
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian


@pytest.fixture(scope="module")
def oracle():
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, orthogonal=False, seed=1)
    x = model.sample_images(4, torch.Generator().manual_seed(2))
    return model, x


def khat(model, x, samples=4000, **guide):
    pyro.set_rng_seed(0)
    return psis_khat(linear_gaussian_pair(model, exact_guide(model, **guide)), x, num_samples=samples)


def test_exact_posterior_as_guide_has_small_khat(oracle):
    model, x = oracle
    pair = linear_gaussian_pair(model, exact_guide(model))
    log_w = importance_log_weights(pair, x, 1000)
    exact = model.log_evidence(x).detach()
    assert torch.allclose(log_w, exact[:, None].expand_as(log_w), atol=1e-4)   # every weight is p(x)
    assert (khat(model, x) < 0.5).all()


def test_far_too_narrow_guide_has_khat_above_0_7(oracle):
    model, x = oracle
    assert (khat(model, x, scale_factor=0.2) > 0.7).all()


def test_wider_guide_has_light_tailed_weights(oracle):
    model, x = oracle
    assert (khat(model, x, scale_factor=1.5) < 0.5).all()


def test_khat_orders_guides_by_narrowness(oracle):
    """k̂ grows as q shrinks (k = 1 − s² in theory): averaged over images, s = 0.5 < s = 0.2."""
    model, x = oracle
    assert khat(model, x, scale_factor=0.5).mean() < khat(model, x, scale_factor=0.2).mean()


def test_point_mass_guide_has_no_khat(trained_delta_pair):
    pair, x = trained_delta_pair
    assert importance_log_weights(pair, x, 10) is None and psis_khat(pair, x, 10) is None


@pytest.fixture
def trained_delta_pair():
    """A Delta (autoencoder) guide on the digits model, untrained: only its point-mass nature matters."""
    from bayesvae.data import load_dataset
    from bayesvae.models.build import ModelSpec, build_pair

    data = load_dataset("digits")
    pair = build_pair(ModelSpec(guide="delta", latent_dim=2, hidden=(16,)), data.image_shape)
    x = (data.test_x[:3] > 0.5).float()
    pair.initialize(x)
    return pair, x


@pytest.mark.parametrize("kind", ["normal", "heavy", "ties", "below tiny", "pareto"])
@pytest.mark.parametrize("k", [25, 26, 999, 1000])
def test_the_evidences_khat_is_arviz_psislw_for_all_images_at_once(kind, k):
    """``inference.psis.pareto_khat`` (vectorized over images, ArviZ for the rows it cannot take the same
    way) gives ArviZ's own k̂ per image, NaN where ArviZ has none."""
    import arviz as az

    from bayesvae.inference.psis import _vectorized_khat, pareto_khat
    rng = np.random.default_rng(k)
    shape = (k, 23)
    log_w = {"normal": lambda: rng.normal(0, 2, shape), "heavy": lambda: 3 * rng.standard_t(2, shape),
             "ties": lambda: np.round(rng.normal(0, 1, shape), 1),
             "below tiny": lambda: rng.normal(-1000, 300, shape),
             "pareto": lambda: np.log(rng.pareto(0.8, shape) + 1e-300)}[kind]()
    _, expected = az.psislw(log_w.T.copy())
    expected = np.where(np.isfinite(expected), expected, np.nan)
    np.testing.assert_allclose(pareto_khat(torch.from_numpy(log_w)).numpy(), expected, rtol=0, atol=1e-12)
    _, by_arviz = _vectorized_khat(log_w.T.copy())
    if kind in ("normal", "heavy", "pareto"):   # distinct weights well above log(tiny): no row left to ArviZ
        assert not by_arviz.any()

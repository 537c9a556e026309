"""NUTS on p(z | x) checked against the exact posterior of the linear-Gaussian model (probabilistic PCA).

p(z | x) = N(Λ⁻¹ Wᵀ (x − b) / σ², Λ⁻¹) is known in closed form, so the MCMC mean and covariance of
every image must match it within Monte Carlo error: |estimate − exact| < 4 MCSE, with the MCSE of
each moment from ArviZ (ESS-based, so autocorrelation is accounted for).
"""

import numpy as np
import pytest
import torch

from bayesvae.analysis import arviz_io
from bayesvae.inference.mcmc import NUTSOptions, sample_posterior
from bayesvae.models.errors import BadInput
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian

OPTIONS = NUTSOptions(chains=8, warmup=150, draws=250, progress=False)  # 8 chains cost about what 4 do (one batch)


@pytest.fixture(scope="module")
def oracle():
    """A pPCA model with a correlated (non-diagonal) posterior, 3 images, and NUTS draws for them."""
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, orthogonal=False, seed=2)
    x = model.sample_images(3, torch.Generator().manual_seed(2))
    pair = linear_gaussian_pair(model, exact_guide(model))
    pair.initialize(x)
    before = {name: value.detach().clone() for name, value in pair.unconstrained_parameters().items()}
    draws = sample_posterior(pair, x, OPTIONS, seed=0)
    return model, pair, x, draws, before


def _within_mcse(values: np.ndarray, exact: np.ndarray, ids) -> None:
    """values (chain, draw, N, m) are draws whose mean should be ``exact`` (N, m): within 4 MCSE."""
    health = arviz_io.convergence(arviz_io.posterior_idata(values, ids))
    error = np.abs(values.mean(axis=(0, 1)) - exact)
    assert (error < 4 * health["mcse_mean"]).all(), (error, health["mcse_mean"])


def test_mcmc_mean_matches_the_exact_posterior(oracle):
    model, _, x, draws, _ = oracle
    exact = model.posterior(x)
    z = draws.z.double().numpy()
    assert z.shape == (8, 250, 3, 2)
    _within_mcse(z, exact.mean.detach().double().numpy(), [0, 1, 2])


def test_mcmc_covariance_matches_the_exact_posterior(oracle):
    model, _, x, draws, _ = oracle
    exact = model.posterior(x)
    mean = exact.mean.detach().double()
    cov = exact.covariance_matrix.detach().double()                        # (N, 2, 2), off-diagonal ≠ 0
    correlation = cov[:, 0, 1] / (cov[:, 0, 0] * cov[:, 1, 1]).sqrt()
    assert correlation.abs().min() > 0.3, "the test needs a correlated posterior"
    centred = draws.z.double() - mean                                       # (R, S, N, 2)
    products = (centred.unsqueeze(-1) * centred.unsqueeze(-2)).flatten(-2)  # E[(z−μ)(z−μ)ᵀ] = Σ, entry-wise
    _within_mcse(products.numpy(), cov.flatten(-2).numpy(), [0, 1, 2])


def test_r_hat_below_1_01_and_enough_effective_draws(oracle):
    _, _, _, draws, _ = oracle
    health = arviz_io.convergence(arviz_io.posterior_idata(draws.z.numpy(), [0, 1, 2]))
    assert (health["r_hat"] < 1.01).all(), health["r_hat"]
    assert (health["ess_bulk"] > 400).all() and (health["ess_tail"] > 400).all()


def test_chains_are_distinct_and_start_overdispersed(oracle):
    """The R copies are separate chains (not one chain repeated): their draws differ."""
    _, _, _, draws, _ = oracle
    z = draws.z
    assert not torch.allclose(z[0], z[1])
    assert draws.diverging[0].shape == (250,) and draws.n_leapfrog[0].min() >= 1
    assert (draws.tree_depth[0] >= 1).all() and (draws.tree_depth[0] <= OPTIONS.max_tree_depth + 1).all()


def test_model_parameters_stay_frozen(oracle):
    _, pair, _, _, before = oracle
    after = pair.unconstrained_parameters()
    for name, value in before.items():
        assert torch.equal(value, after[name]), name


@pytest.mark.slow
def test_groups_of_images_give_the_same_posterior():
    """Splitting the images over several NUTS states (group_size) samples the same posteriors."""
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, orthogonal=False, seed=3)
    x = model.sample_images(2, torch.Generator().manual_seed(4))
    pair = linear_gaussian_pair(model, exact_guide(model))
    draws = sample_posterior(pair, x, NUTSOptions(chains=2, warmup=200, draws=300, group_size=1, progress=False),
                             seed=1)
    assert draws.group == [0, 1] and len(draws.seconds) == 2
    _within_mcse(draws.z.double().numpy(), model.posterior(x).mean.detach().double().numpy(), [0, 1])


@pytest.mark.parametrize("field, value", [("chains", 0), ("draws", 0), ("warmup", -1), ("group_size", 0),
                                          ("target_accept", 1.0), ("max_tree_depth", 0)])
def test_bad_nuts_options_are_refused(field, value):
    with pytest.raises(BadInput):
        NUTSOptions(**{field: value}).check()


@pytest.mark.slow
def test_nuts_agrees_with_importance_sampling_on_a_trained_vae(trained_run):
    """Two independent estimators of E[z | x] on a real, non-Gaussian posterior must agree: NUTS with the
    default settings, and self-normalized importance sampling with q(z|x) as proposal (K = 20000 draws),
    within 4 combined standard errors (ArviZ MCSE; delta-method SE of the ratio estimator)."""
    from bayesvae.inference.terms import trace_terms

    x, _ = trained_run.images("test")
    x = x[:4]
    draws = sample_posterior(trained_run.pair, x, NUTSOptions(progress=False), seed=0)
    health = arviz_io.convergence(arviz_io.posterior_idata(draws.z.numpy(), range(4)))
    assert (health["r_hat"] < 1.01).all() and (health["ess_bulk"] > 400).all()
    with torch.no_grad():
        terms = trace_terms(trained_run.pair, x, 20000)
    w = torch.softmax(terms.log_weight.double(), dim=0).unsqueeze(-1)            # (S, N, 1) normalized weights
    z = terms.z.double()
    snis = (w * z).sum(0)
    snis_se = (w.square() * (z - snis).square()).sum(0).sqrt()
    mcmc = draws.z.double().mean((0, 1))
    tolerance = 4 * (torch.from_numpy(health["mcse_mean"]).square() + snis_se.square()).sqrt()
    assert ((mcmc - snis).abs() < tolerance).all(), (mcmc, snis, tolerance)

"""The ELBO term by term and per latent dimension, against closed forms on the linear-Gaussian model.

For q(z|x) = N(μ, Σ), p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I):
    E_q[log p(x|z)] = log N(x; Wμ + b, σ²I) − tr(W Σ Wᵀ) / (2σ²)
    E_q[log p(z)]   = −½ (‖μ‖² + tr Σ) − (d/2) log 2π
    H[q]            = ½ log det(2πe Σ)
    KL(q ‖ p(z))    = ½ (tr Σ + ‖μ‖² − d − log det Σ)
"""

import math

import pyro
import pytest
import torch

from bayesvae.analysis.anatomy import elbo_anatomy
from bayesvae.analysis.latent_stats import active_units, latent_statistics, posterior_moments
from bayesvae.inference.terms import trace_terms
from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian


@pytest.fixture
def oracle():
    model = random_linear_gaussian(D=6, d=3, sigma=0.5, seed=4)
    x = model.sample_images(40, torch.Generator().manual_seed(5))
    return model, x


def closed_forms(model, guide, x):
    """Per-image averages of the four terms above, nats."""
    with torch.no_grad():
        q = guide.distribution(x)
        mu, cov = q.mean, q.covariance_matrix if hasattr(q, "covariance_matrix") else torch.diag_embed(q.variance)
        W, b, sigma2 = model.weight, model.bias, model.log_sigma.exp() ** 2
        d = mu.shape[-1]
        likelihood = torch.distributions.Normal(mu @ W.T + b, sigma2.sqrt()).log_prob(x.flatten(1)).sum(-1) \
            - torch.einsum("ij,njk,ik->n", W, cov, W) / (2 * sigma2)
        prior = -0.5 * (mu.square().sum(-1) + cov.diagonal(dim1=-2, dim2=-1).sum(-1)) - d / 2 * math.log(2 * math.pi)
        entropy = 0.5 * torch.logdet(2 * math.pi * math.e * cov)
        kl = 0.5 * (cov.diagonal(dim1=-2, dim2=-1).sum(-1) + mu.square().sum(-1) - d - torch.logdet(cov))
        elbo = model.log_evidence(x) - torch.distributions.kl_divergence(q, model.posterior(x))
    return {"log_likelihood": likelihood.mean(), "log_prior": prior.mean(), "entropy": entropy.mean(),
            "kl": kl.mean(), "elbo": elbo.mean()}


@pytest.mark.parametrize("diagonal", [True, False], ids=["mean-field guide", "full-covariance guide"])
def test_terms_match_closed_forms(oracle, diagonal):
    model, x = oracle
    guide = exact_guide(model, diagonal=diagonal, shift=0.4, scale_factor=1.4)
    pyro.set_rng_seed(0)
    anatomy = elbo_anatomy(linear_gaussian_pair(model, guide), x, num_samples=400)
    exact = closed_forms(model, guide, x)
    for name, value in exact.items():
        term = anatomy[name]
        tolerance = 4 * term["se"] + 1e-4
        assert abs(term["value"] - float(value)) < tolerance, (name, term, float(value))
    assert anatomy["entropy"]["method"] == "analytic"
    # torch has KL(Normal ‖ Normal) but not KL(MultivariateNormal ‖ Independent Normal): MC there, and said so
    assert anatomy["kl"]["method"] == ("analytic" if diagonal else "monte carlo")
    assert (anatomy["kl"]["se"] == 0.0) if diagonal else (anatomy["kl"]["se"] > 0)


def test_kl_is_minus_prior_term_minus_entropy(oracle):
    model, x = oracle
    pyro.set_rng_seed(1)
    anatomy = elbo_anatomy(linear_gaussian_pair(model, exact_guide(model, diagonal=True, shift=0.5)), x, 400)
    recombined = -(anatomy["log_prior"]["value"] + anatomy["entropy"]["value"])
    assert abs(recombined - anatomy["kl"]["value"]) < 4 * anatomy["log_prior"]["se"]


def test_point_mass_guide_reports_no_entropy_and_no_kl():
    pair = build_pair(ModelSpec(guide="delta", latent_dim=2, hidden=(8,)), (1, 8, 8))
    x = torch.bernoulli(torch.full((6, 1, 8, 8), 0.5), generator=torch.Generator().manual_seed(0))
    pair.initialize(x)
    anatomy = elbo_anatomy(pair, x, num_samples=4)
    for name in ("entropy", "kl", "elbo"):
        assert anatomy[name]["value"] is None and anatomy[name]["method"] is None
    assert any("point mass" in note for note in anatomy["notes"])
    assert math.isfinite(anatomy["log_likelihood"]["value"]) and anatomy["log_likelihood"]["se"] == 0.0
    joint = anatomy["log_joint_at_code"]["value"]
    assert joint == pytest.approx(anatomy["log_likelihood"]["value"] + anatomy["log_prior"]["value"])
    stats = latent_statistics(pair, x)
    assert stats["kl_total"] is None and "point-mass" in stats["kl_method"] and stats["point_mass"]


def test_per_dimension_kls_sum_to_the_total_kl(oracle):
    model, x = oracle
    guide = exact_guide(model, diagonal=True, shift=0.3, scale_factor=0.8)
    pair = linear_gaussian_pair(model, guide)
    pyro.set_rng_seed(2)
    stats = latent_statistics(pair, x)
    anatomy = elbo_anatomy(pair, x, num_samples=2000)
    per_dim = torch.tensor([row["kl"] for row in stats["per_dimension"]], dtype=torch.float64)
    # Σ_u KL_u against the KL of the whole (Independent) guide, computed by torch without splitting dimensions
    assert float(per_dim.sum()) == pytest.approx(anatomy["kl"]["value"], abs=1e-4)
    # and against Monte Carlo: E_q[log q − log p(z)] over 2000 draws, independent of any closed form
    with torch.no_grad():
        terms = trace_terms(pair, x, 2000)
    mc = terms.log_q - terms.log_prior                                # (draws, images)
    mc_se = float((mc.var(0) / mc.shape[0]).sum().sqrt() / x.shape[0])
    assert abs(float(mc.mean()) - float(per_dim.sum())) < 4 * mc_se
    # each dimension: ½ (σ_u² + μ_u² − 1 − log σ_u²), averaged over images
    with torch.no_grad():
        q = guide.distribution(x)
        mu, var = q.mean, q.variance
    exact = (0.5 * (var + mu.square() - 1 - var.log())).mean(0)
    assert torch.allclose(per_dim.float(), exact, atol=1e-5)


def test_full_covariance_guide_has_no_per_dimension_kl(oracle):
    model, x = oracle
    stats = latent_statistics(linear_gaussian_pair(model, exact_guide(model, shift=0.1)), x)
    assert stats["kl_total"] is None and "factorized" in stats["kl_method"]
    assert stats["moments_method"].startswith("analytic")


def test_active_units_count_dimensions_whose_mean_varies_over_images():
    generator = torch.Generator().manual_seed(0)
    spread = torch.tensor([1.0, 0.3, 0.05, 0.0])          # std of E_q[z_u] over images
    means = torch.randn(5000, 4, generator=generator) * spread + 0.7
    count, activity = active_units(means)
    assert count == 2                                       # variances 1, 0.09 > 0.01; 0.0025, 0 are not
    assert torch.allclose(activity, spread ** 2, rtol=0.1, atol=1e-6)


def test_moments_of_the_guide_are_its_mean_and_std(oracle):
    model, x = oracle
    guide = exact_guide(model, diagonal=True, shift=0.2)
    moments = posterior_moments(linear_gaussian_pair(model, guide), x)
    with torch.no_grad():
        q = guide.distribution(x)
        assert torch.allclose(moments.means, q.mean, atol=1e-6)
        assert torch.allclose(moments.stds, q.stddev, atol=1e-6)


def test_prior_marginals_drawn_in_the_plots_are_exact():
    """The plots' prior curves: a factorized prior's and a mixture prior's marginal over chosen dimensions."""
    import pyro.distributions as dist
    from bayesvae.analysis.plots_anatomy import prior_marginal
    from bayesvae.models.priors import GaussianMixturePrior, StandardNormalPrior

    values = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        normal = StandardNormalPrior(4)().expand([1, 7])          # as traced: a batch of images
        log_density, label = prior_marginal(normal, [0, 2])
        assert torch.allclose(log_density(values).double(), dist.Normal(0., 1.).log_prob(values).sum(-1), atol=1e-6)
        mog = GaussianMixturePrior(4)
        mog.logits.copy_(torch.randn(10, generator=torch.Generator().manual_seed(1)))   # unequal weights
        mixture = mog().expand([1, 7])
        log_density, label = prior_marginal(mixture, [3, 1])
        scales = torch.nn.functional.softplus(mog.raw_scales) + 1e-3
        sub = dist.MixtureSameFamily(dist.Categorical(logits=mog.logits),
                                     dist.Normal(mog.locs[:, [3, 1]], scales[:, [3, 1]]).to_event(1))
        assert torch.allclose(log_density(values).double(), sub.log_prob(values.float()).double(), atol=1e-5)
        assert label == "p(z) prior"

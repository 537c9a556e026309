"""Discrete latents summed out exactly, against the closed form of a Gaussian mixture with a linear decoder.

The enumerated ELBO is ≤ log p(x) and equals it for the exact posterior guide; the class-summing evidence
estimate is within 3 standard errors of the exact log p(x) (guide-side and model-side enumeration) and its
posterior over the class converges to the exact p(c | x); a discrete site that is not enumerated is refused.
"""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO, config_enumerate

from bayesvae.inference.enumerated_terms import class_terms
from bayesvae.inference.evidence_discrete import estimate_log_evidence_discrete
from bayesvae.models.discrete_sites import CLUSTER
from bayesvae.models.errors import BadInput
from bayesvae.models.linear_gaussian_mixture import (MixtureOracleGuide, oracle_mixture_pair,
                                                     random_linear_gaussian_mixture)
from bayesvae.models.pair import Pair
from bayesvae.models.protocol import check_pair
from bayesvae.models.sites import DATA_PLATE, LATENT


@pytest.fixture(scope="module")
def oracle():
    model = random_linear_gaussian_mixture(K=3, D=5, d=2, sigma=0.4, seed=0)
    x = model.sample_images(40, torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model, x, model.log_evidence(x), model.class_posterior_logits(x).exp()


def enumerated_elbo(pair, x, particles):
    """Pyro's TraceEnum_ELBO per image (the data plate is the one plate the protocol counts)."""
    elbo = TraceEnum_ELBO(max_plate_nesting=1, num_particles=particles, vectorize_particles=True)
    with pair.active(), torch.no_grad():
        return -elbo.loss(pair.model, pair.guide, x) / x.shape[0]


def test_exact_posterior_guide_makes_elbo_and_estimate_equal_to_log_px(oracle):
    model, x, exact, posterior = oracle
    pair = oracle_mixture_pair(model, MixtureOracleGuide(model))
    check_pair(pair, x)
    est = estimate_log_evidence_discrete(pair, x, k=20)
    torch.testing.assert_close(est.log_px, exact, atol=1e-4, rtol=0)
    torch.testing.assert_close(est.elbo, exact, atol=1e-4, rtol=0)
    torch.testing.assert_close(est.posterior, posterior, atol=1e-5, rtol=0)
    assert enumerated_elbo(pair, x, 4) == pytest.approx(float(exact.mean()), abs=1e-4)


def test_wrong_guide_bounds_and_estimate_within_three_standard_errors(oracle):
    model, x, exact, posterior = oracle
    pyro.set_rng_seed(0)
    pair = oracle_mixture_pair(model, MixtureOracleGuide(model, temperature=0.4, shift=0.4, scale_factor=1.4))
    est = estimate_log_evidence_discrete(pair, x, k=400)
    assert abs(est.mean_log_px - float(exact.mean())) < 3 * est.se_mean
    assert float(((est.log_px - exact).abs() < 3 * est.se + 1e-6).float().mean()) >= 0.9
    gap = exact - est.elbo                       # KL(q(c,z|x) ‖ p(c,z|x)) per image
    assert bool((gap > 3 * est.elbo_se).all()) and float(gap.mean()) > 0.5
    # the importance-weighted p̂(c|x) corrects the tempered q(c|x) towards the exact p(c|x)
    assert (est.posterior - posterior).abs().mean() < 0.3 * (est.q_class - posterior).abs().mean()
    pyro_elbo = enumerated_elbo(pair, x, 400)    # Pyro's estimator of the same enumerated ELBO
    assert abs(pyro_elbo - est.mean_elbo) < 3 * 2 ** 0.5 * est.elbo_se_mean + 1e-3


def test_anatomy_terms_add_up_and_class_kl_is_exact(oracle):
    model, x, _, posterior = oracle
    pair = oracle_mixture_pair(model, MixtureOracleGuide(model))
    parts = class_terms(pair, x, CLUSTER, num_samples=3).anatomy()
    torch.testing.assert_close(parts["elbo"], parts["log_likelihood"] - parts["kl_code"] - parts["kl_class"])
    prior = model.log_weights.exp()
    kl_class = (posterior * (posterior.log() - prior.log())).sum(-1)
    torch.testing.assert_close(parts["kl_class"], kl_class, atol=1e-5, rtol=0)
    assert bool((parts["kl_code"] > 0).all())


class MeanFieldCodeGuide(torch.nn.Module):
    """q(z | x) = N(Σ_c p(c|x) E[z|x,c], 1.5² I): no class in the guide, so the model enumerates it."""

    def __init__(self, model):
        super().__init__()
        object.__setattr__(self, "model", model)
        self.log_scale = torch.nn.Parameter(torch.tensor(1.5).log())

    def forward(self, x):
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            weights = self.model.class_posterior_logits(x).exp()
            means = torch.stack([self.model.code_posterior(x, torch.full((x.shape[0],), c)).loc for c in range(3)])
            loc = (weights.T[..., None] * means).sum(0)
            pyro.sample(LATENT, dist.Normal(loc, self.log_scale.exp()).to_event(1))


def test_model_side_enumeration_with_a_code_only_guide(oracle):
    model, x, exact, _ = oracle
    pyro.set_rng_seed(1)
    pair = Pair(config_enumerate(model), MeanFieldCodeGuide(model), modules=[model])
    est = estimate_log_evidence_discrete(pair, x, k=400)
    assert est.q_class is None
    assert abs(est.mean_log_px - float(exact.mean())) < 3 * est.se_mean
    assert est.mean_elbo < float(exact.mean()) - 3 * est.elbo_se_mean
    assert abs(enumerated_elbo(pair, x, 400) - est.mean_elbo) < 3 * 2 ** 0.5 * est.elbo_se_mean + 1e-3


def test_discrete_site_without_enumeration_is_refused(oracle):
    model, x, _, _ = oracle

    def sampled_guide(x):  # the oracle guide's program, but c sampled (no enumerate mark)
        pyro.module("guide", guide)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            c = pyro.sample(CLUSTER, guide.class_posterior(x))
            pyro.sample(LATENT, model.code_posterior(x, c))

    guide = MixtureOracleGuide(model)
    with pytest.raises(BadInput, match="without enumeration support"):
        estimate_log_evidence_discrete(Pair(model, sampled_guide, modules=[model, guide]), x, k=4)

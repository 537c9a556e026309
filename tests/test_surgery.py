"""ELBO surgery: average KL = I_q(x; z) + KL(q(z) ‖ p(z)), with q(z) the aggregate posterior.

Checked numerically (the directly estimated I_q plus the marginal KL equals the average KL), against
the linear-Gaussian model's exact mutual information ½ log det(I + WᵀW/σ²), at its two extremes
(an encoder that ignores x: I_q = 0; a near-deterministic one: I_q = log N), and on a trained VAE.
"""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from torch import nn

from bayesvae.analysis.aggregate import elbo_surgery
from bayesvae.analysis.latent_stats import latent_statistics
from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.errors import BadInput
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian
from bayesvae.models.pair import Pair
from bayesvae.models.sites import DATA_PLATE, LATENT


class CollapsedGuide(nn.Module):
    """q(z | x) = N(z; m, diag s²) for every image: an encoder that ignores x (posterior collapse)."""

    def __init__(self, d: int):
        super().__init__()
        self.loc = nn.Parameter(torch.linspace(-0.5, 0.5, d))
        self.log_scale = nn.Parameter(torch.full((d,), -0.7))

    def forward(self, x):
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            pyro.sample(LATENT, dist.Normal(self.loc, self.log_scale.exp()).to_event(1))


def within(value, target, se, sigmas=4.0):
    return abs(value - target) < sigmas * se


def test_identity_and_bound_on_a_trained_vae(trained_run):
    x, _ = trained_run.images("test")
    pyro.set_rng_seed(0)
    result = elbo_surgery(trained_run.pair, x, samples_per_image=2)
    assert result["kl_method"] == "analytic" and result["evaluator"].startswith("factorized Normal")
    # I_q estimated directly + marginal KL against the closed-form average KL: independent estimates agree
    assert within(result["identity_residual"], 0.0, result["identity_residual_se"])
    assert result["mutual_information"] <= result["log_n"] + 3 * result["mutual_information_se"]
    assert result["mutual_information"] > 1.0                      # the codes carry information about x
    assert result["marginal_kl"] > -3 * result["marginal_kl_se"]   # a KL, up to Monte Carlo error
    assert within(result["mutual_information_direct"], result["mutual_information"],
                  math.hypot(result["mutual_information_direct_se"], result["mutual_information_se"]))


def test_linear_gaussian_mutual_information_is_exact():
    """x ~ p(x) and q = p(z|x): I_q → I(x; z) = ½ log det Λ and KL(q(z) ‖ p(z)) → 0 as N grows."""
    model = random_linear_gaussian(D=6, d=2, sigma=1.0, orthogonal=True, seed=1)
    x = model.sample_images(2000, torch.Generator().manual_seed(10))
    guide = exact_guide(model, diagonal=True)            # orthogonal W: the exact posterior is mean-field
    pyro.set_rng_seed(11)                                 # not 10: the draws must not reuse the data's noise
    result = elbo_surgery(linear_gaussian_pair(model, guide), x)
    with torch.no_grad():
        precision = torch.eye(2) + model.weight.T @ model.weight / model.log_sigma.exp() ** 2
        exact_information = 0.5 * float(torch.logdet(precision))
        q = guide.distribution(x)
        kl_per_image = torch.distributions.kl_divergence(q, dist.Normal(0.0, 1.0).expand([2]).to_event(1))
    data_se = float(kl_per_image.std()) / math.sqrt(x.shape[0])   # the average KL varies with the sample of x
    assert within(result["mutual_information"], exact_information,
                  math.hypot(data_se, result["mutual_information_se"]))
    assert abs(result["marginal_kl"]) < 0.03
    assert within(result["identity_residual"], 0.0, result["identity_residual_se"])


def test_encoder_that_ignores_x_has_no_information_and_no_active_units():
    model = random_linear_gaussian(D=6, d=3, sigma=0.5, seed=2)
    x = model.sample_images(300, torch.Generator().manual_seed(3))
    pair = Pair(model, CollapsedGuide(3), modules=[model])
    pyro.set_rng_seed(4)
    result = elbo_surgery(pair, x)
    assert abs(result["mutual_information_direct"]) < 1e-6          # q(z) = q(z|x) exactly
    assert within(result["mutual_information"], 0.0, result["mutual_information_se"])
    assert result["average_kl"] > 0.5                                 # the KL is not zero: q ≠ p(z) ...
    assert within(result["marginal_kl"], result["average_kl"], result["marginal_kl_se"])   # ... it is all marginal
    stats = latent_statistics(pair, x)
    assert stats["active_units"] == 0 and max(r["activity"] for r in stats["per_dimension"]) < 1e-10


def test_near_deterministic_encoder_reaches_log_n():
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, seed=5)
    x = model.sample_images(400, torch.Generator().manual_seed(6))
    pair = linear_gaussian_pair(model, exact_guide(model, diagonal=True, scale_factor=1e-3))
    pyro.set_rng_seed(7)
    result = elbo_surgery(pair, x)
    # each z_n is explained only by its own image: log q(z_n) = log q(z_n | x_n) − log N
    assert result["mutual_information_direct"] == pytest.approx(math.log(400), abs=1e-3)
    assert result["mutual_information_direct"] <= result["log_n"] + 1e-9


def test_matrix_product_path_equals_the_guides_own_log_prob(trained_run):
    x, _ = trained_run.images("test")
    runs = []
    for generic in (False, True):
        pyro.set_rng_seed(8)
        runs.append(elbo_surgery(trained_run.pair, x[:200], generic=generic, chunk=64, batch_size=50))
    fast, generic = runs
    assert fast["evaluator"] != generic["evaluator"]
    for key in ("marginal_kl", "mutual_information", "mutual_information_direct"):
        assert fast[key] == pytest.approx(generic[key], abs=1e-5), key


def test_non_analytic_kl_uses_independent_draws():
    model = random_linear_gaussian(D=6, d=2, sigma=1.0, seed=1)
    x = model.sample_images(500, torch.Generator().manual_seed(20))
    pyro.set_rng_seed(21)
    result = elbo_surgery(linear_gaussian_pair(model, exact_guide(model, shift=0.2)), x)  # full covariance
    assert result["kl_method"].startswith("monte carlo") and result["average_kl_se"] > 0
    assert result["evaluator"].startswith("guide log_prob")
    assert result["identity_residual"] != 0.0                                  # two independent estimates ...
    assert within(result["identity_residual"], 0.0, result["identity_residual_se"])   # ... that agree


def test_point_mass_guide_is_refused():
    pair = build_pair(ModelSpec(guide="delta", latent_dim=2, hidden=(8,)), (1, 8, 8))
    x = torch.bernoulli(torch.full((5, 1, 8, 8), 0.5), generator=torch.Generator().manual_seed(0))
    pair.initialize(x)
    with pytest.raises(BadInput, match="point-mass"):
        elbo_surgery(pair, x)


@pytest.mark.slow
@pytest.mark.mnist
def test_surgery_on_ten_thousand_mnist_images(mnist_dir, tmp_path):
    """All 10,000 real MNIST test images (8,333 train + 1,667 test of the split) through a briefly trained VAE."""
    import bayesvae
    from bayesvae.inference.batches import evaluation_images

    run = bayesvae.fit(data="mnist", data_dir=str(mnist_dir), download=False, out=None, epochs=2, device="cpu",
                       progress=False, log=lambda _: None)
    x = evaluation_images(torch.cat([run.data.train_x, run.data.test_x]), "fixed")
    assert x.shape[0] == 10000
    pyro.set_rng_seed(0)
    result = elbo_surgery(run.pair, x)
    print(f"\nELBO surgery, N = 10,000 MNIST, latent 16: {result['seconds']:.1f} s; "
          f"average KL {result['average_kl']:.2f} = I_q {result['mutual_information']:.2f} "
          f"+ marginal KL {result['marginal_kl']:.2f} nats (log N = {result['log_n']:.2f})")
    assert within(result["identity_residual"], 0.0, result["identity_residual_se"])
    assert result["mutual_information"] <= result["log_n"] + 3 * result["mutual_information_se"]

"""The richer guides q(z|x) (low-rank / full-covariance Normal, IAF flow) and priors p(z) (mixture of
Gaussians, VampPrior): their densities against torch.distributions and hand formulas, their samples,
each parameter registered once, the analytic-KL option falling back to Monte Carlo out loud, and the
flow's ELBO bounded by the exact evidence of the linear-Gaussian model."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import MultivariateNormal, Normal, constraints

import pyro
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO

from bayesvae.inference.objectives import make_elbo
from bayesvae.inference.terms import trace_terms
from bayesvae.inference.options import TrainOptions
from bayesvae.inference.training_setup import check_training_setup
from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.errors import BadInput
from bayesvae.models.guides import IAF
from bayesvae.models.linear_gaussian import LinearGaussianModel, exact_guide
from bayesvae.models.pair import Pair
from bayesvae.models.sites import DATA_PLATE, LATENT

IMAGE = (1, 8, 8)
NEW_PAIRS = [("lowrank", "normal"), ("fullcov", "normal"), ("iaf", "normal"), ("normal", "mog"),
             ("normal", "vamp"), ("iaf", "vamp"), ("lowrank", "mog")]


def images(n=6, seed=0):
    return torch.rand(n, *IMAGE, generator=torch.Generator().manual_seed(seed)).round()


def pair_for(guide, prior="normal", latent_dim=3, seed=0):
    pyro.set_rng_seed(seed)
    return build_pair(ModelSpec(guide=guide, prior=prior, latent_dim=latent_dim, hidden=(32,)), IMAGE)


def guide_site(pair, x):
    with pair.active():
        trace = poutine.trace(pair.guide).get_trace(x)
    trace.compute_log_prob()
    return trace.nodes[LATENT]


def test_default_pair_keeps_its_parameter_names():
    """The user-script template and saved runs rely on these names and this order (model's, then guide's)."""
    pair = pair_for("normal", latent_dim=16)
    pair.initialize(images())
    assert list(pair.unconstrained_parameters()) == [
        "guide$$$encoder.net.0.weight", "guide$$$encoder.net.0.bias", "guide$$$loc.weight", "guide$$$loc.bias",
        "guide$$$scale.weight", "guide$$$scale.bias", "model$$$decoder.net.0.weight", "model$$$decoder.net.0.bias",
        "model$$$decoder.net.2.weight", "model$$$decoder.net.2.bias"]


@pytest.mark.parametrize("name,rank", [("lowrank", 2), ("fullcov", 3)])
def test_lowrank_guide_density_is_the_multivariate_normal(name, rank):
    pair = pair_for(name, latent_dim=3)
    guide, x = pair.guide, images()
    site = guide_site(pair, x)
    # by hand: loc, W (d×r) and δ from the linear heads, then torch's full-covariance MultivariateNormal
    with torch.no_grad():
        h = guide.encoder(x)
        loc = h @ guide.loc.weight.T + guide.loc.bias
        factor = (h @ guide.factor.weight.T + guide.factor.bias).reshape(len(x), 3, rank)
        diag = F.softplus(h @ guide.diag.weight.T + guide.diag.bias) + 1e-4
        cov = factor @ factor.transpose(-1, -2) + torch.diag_embed(diag)
        q = MultivariateNormal(loc, covariance_matrix=cov)
    assert site["value"].shape == (len(x), 3) and torch.isfinite(site["value"]).all()
    assert torch.allclose(site["log_prob"], q.log_prob(site["value"]), atol=1e-4)
    z = torch.randn(len(x), 3)  # hand-made points, not draws of q
    assert torch.allclose(site["fn"].log_prob(z), q.log_prob(z), atol=1e-4)
    draws = site["fn"].sample((20000,))
    assert torch.allclose(torch.cov(draws[:, 0].T), cov[0], atol=0.05 * float(cov[0].abs().max()))


def test_iaf_guide_density_integrates_to_one_and_inverts_its_draws():
    pair = pair_for("iaf", latent_dim=2, seed=1)
    x = images(3)
    site = guide_site(pair, x)
    q = site["fn"]
    assert site["value"].shape == (3, 2) and torch.isfinite(site["value"]).all()
    assert q.support.event_dim == 1 and q.event_shape == (2,)
    with torch.no_grad():
        # log q at a draw comes from the cached forward pass; at a copy, from the flow's inverse: same number
        assert torch.allclose(q.log_prob(site["value"]), q.log_prob(site["value"].clone()), atol=1e-4)
        draws = q.sample((4000,))                                     # (4000, 3, 2)
        # change of variables done right: ∫ q(z|x) dz = 1 (a wrong log-det would not integrate to 1)
        lo, hi = draws.amin((0, 1)) - 2, draws.amax((0, 1)) + 2
        u = torch.linspace(float(lo[0]), float(hi[0]), 300)
        v = torch.linspace(float(lo[1]), float(hi[1]), 300)
        grid = torch.stack(torch.meshgrid(u, v, indexing="ij"), -1).reshape(-1, 1, 2)
        cell = float((u[1] - u[0]) * (v[1] - v[0]))
        mass = q.log_prob(grid).exp().sum(0) * cell                   # one integral per image
    assert torch.allclose(mass, torch.ones(3), atol=0.02), mass


def test_mixture_of_gaussians_prior_density_and_samples():
    pair = pair_for("normal", "mog", latent_dim=3)
    prior_module = pair.model.prior
    with torch.no_grad():
        prior_module.logits.copy_(torch.linspace(-1, 1, 10))
        prior = prior_module()
        z = torch.randn(7, 3) * 2
        weights = torch.softmax(prior_module.logits, 0)
        scales = F.softplus(prior_module.raw_scales) + 1e-3
        by_hand = torch.logsumexp(weights.log() + Normal(prior_module.locs, scales).log_prob(z[:, None]).sum(-1), -1)
        assert torch.allclose(prior.log_prob(z), by_hand, atol=1e-5)
        draws = prior.expand((50000,)).sample()
    assert draws.shape == (50000, 3)
    assert prior.support.event_dim == 1 and isinstance(prior.support, constraints.independent)
    assert torch.allclose(draws.mean(0), weights @ prior_module.locs, atol=0.05)


@pytest.mark.parametrize("guide", ["normal", "iaf"])
def test_vamp_prior_is_the_guides_mixture_at_the_pseudo_inputs(guide):
    pair = pair_for(guide, "vamp", latent_dim=2)
    vamp = pair.model.prior
    with torch.no_grad():
        prior = vamp()
        z = torch.randn(5, 2)
        u = torch.sigmoid(vamp.pseudo_inputs)
        # by hand: score z under q(z | u_k) one pseudo-input at a time, then average the densities
        per_component = torch.stack([pair.guide.posterior(u[k:k + 1]).log_prob(z) for k in range(len(u))], -1)
        by_hand = torch.logsumexp(per_component, -1) - math.log(len(u))
        assert torch.allclose(prior.log_prob(z), by_hand, atol=1e-4)
        draws = prior.expand((11,)).sample()
    assert draws.shape == (11, 2) and torch.isfinite(draws).all()


@pytest.mark.parametrize("guide,prior", NEW_PAIRS)
def test_each_parameter_is_registered_once(guide, prior):
    pair = pair_for(guide, prior)
    x = images()
    pair.initialize(x)
    params = pair.unconstrained_parameters()
    assert len({id(p) for p in params.values()}) == len(params)
    module_params = {id(p) for m in pair.modules for p in m.parameters()}
    assert {id(p) for p in params.values()} == module_params, "a parameter is missing from the store"
    if prior == "vamp":
        assert not any(name.startswith("model$$$") and "encoder" in name for name in params)
        # the prior term reaches the encoder through the guide's weights (the coupling)
        with pair.active():
            guide_trace = poutine.trace(pair.guide).get_trace(x)
            model_trace = poutine.trace(poutine.replay(pair.model, trace=guide_trace)).get_trace(x)
        model_trace.nodes[LATENT]["fn"].log_prob(guide_trace.nodes[LATENT]["value"].detach()).sum().backward()
        assert float(pair.guide.encoder.net[0].weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("guide,prior", NEW_PAIRS)
def test_analytic_elbo_says_it_falls_back_and_equals_the_mc_elbo(guide, prior):
    pair = pair_for(guide, prior)
    x = images(20)
    notes = check_training_setup(pair, x, x, TrainOptions(elbo="analytic", batch_size=4))
    assert len(notes) == 1 and "no closed form" in notes[0] and "Monte Carlo" in notes[0]
    losses = {}
    for kind in ("analytic", "mc"):
        pyro.set_rng_seed(3)  # the same draw of z for both objectives
        with pair.active():
            losses[kind] = make_elbo(kind, 4).loss(pair.model, pair.guide, x)
    assert math.isclose(losses["analytic"], losses["mc"], rel_tol=1e-5), losses


def test_analytic_elbo_is_analytic_where_torch_has_the_kl():
    pair = pair_for("normal", "normal")
    x = images(20)
    assert check_training_setup(pair, x, x, TrainOptions(elbo="analytic", batch_size=4)) == []
    losses = {}
    for kind in ("analytic", "mc"):
        pyro.set_rng_seed(3)
        with pair.active():
            losses[kind] = make_elbo(kind, 4).loss(pair.model, pair.guide, x)
    assert not math.isclose(losses["analytic"], losses["mc"], rel_tol=1e-3)  # so the test above can fail


@pytest.mark.parametrize("guide", ["delta", "examples/none.py:guide"])
def test_vamp_prior_refuses_a_guide_without_a_density(guide):
    with pytest.raises(BadInput, match="needs a built-in guide with a density"):
        ModelSpec(guide=guide, prior="vamp")


class FlowOnGaussianGuide(nn.Module):
    """The oracle's amortized Gaussian guide with two IAF layers on top, conditioned on x."""

    def __init__(self, base, data_dim, latent_dim):
        super().__init__()
        self.base = base
        self.flow = IAF(latent_dim, data_dim)

    def forward(self, x):
        pyro.module("guide", self)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            pyro.sample(LATENT, self.flow(self.base.distribution(x), x.flatten(-3)))


@pytest.fixture(scope="module")
def correlated_oracle():
    """pPCA with nearly parallel columns of W: the exact posterior p(z|x) has correlation ≈ −0.96."""
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 1, generator=g) @ torch.ones(1, 2) + 0.3 * torch.randn(6, 2, generator=g)
    model = LinearGaussianModel(weight, 0.5 * torch.randn(6, generator=g), 0.5)
    x = model.sample_images(16, torch.Generator().manual_seed(2))
    return model, x


def flow_gap(model, x, steps, samples=2000):
    """Train the flow guide (model frozen) for ``steps``; (mean gap log p(x) − ELBO, its MC standard error)."""
    pyro.set_rng_seed(0)
    guide = FlowOnGaussianGuide(exact_guide(model, diagonal=True), 6, 2)
    pair = Pair(model, guide, modules=[model, guide])
    with pair.active():
        svi = SVI(poutine.block(model, hide_types=["param"]), guide, pyro.optim.Adam({"lr": 0.01}),
                  Trace_ELBO(num_particles=8, vectorize_particles=True, max_plate_nesting=1))
        for _ in range(steps):
            svi.step(x)
    with torch.no_grad():
        log_w = trace_terms(pair, x, samples).log_weight
        gap = model.log_evidence(x) - log_w.mean(0)
        se = log_w.std(0) / math.sqrt(samples)
    return float(gap.mean()), float(se.square().sum().sqrt() / len(x))


def test_flow_guide_elbo_is_below_the_exact_evidence(correlated_oracle):
    model, x = correlated_oracle
    for steps in (0, 40):  # a random flow, then one trained to exploit any error in its log-det
        gap, se = flow_gap(model, x, steps)
        assert gap > -3 * se, (steps, gap, se)


def test_flow_guide_beats_the_best_mean_field_guide(correlated_oracle):
    """KL(q ‖ p(z|x)) of the best diagonal Gaussian (variances 1/Λ_uu) is > 1 nat here; IAF goes below it."""
    model, x = correlated_oracle
    with torch.no_grad():
        posterior = model.posterior(x)
        precision = torch.linalg.inv(posterior.covariance_matrix[0])
        mean_field = MultivariateNormal(posterior.loc, covariance_matrix=torch.diag(1 / precision.diagonal()))
        best_mean_field_gap = float(torch.distributions.kl_divergence(mean_field, posterior).mean())
    gap, se = flow_gap(model, x, 250)
    assert -3 * se < gap < 0.5 * best_mean_field_gap, (gap, best_mean_field_gap)


@pytest.mark.parametrize("guide,prior", [("iaf", "vamp"), ("fullcov", "mog")])
def test_new_definitions_train_save_and_reload(guide, prior, tmp_path):
    import bayesvae

    run = bayesvae.fit(guide=guide, prior=prior, out=tmp_path / "run", epochs=2, latent_dim=2, hidden=(16,),
                       device="cpu", progress=False, log=lambda _: None)
    assert all(math.isfinite(row["test_elbo"]) for row in run.history_rows)
    loaded = bayesvae.load_run(tmp_path / "run", device="cpu")
    a, b = run.pair.unconstrained_parameters(), loaded.pair.unconstrained_parameters()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    z = torch.randn(4, 2)
    with torch.no_grad():  # the reloaded prior is the trained one (VampPrior: through the reloaded guide)
        assert torch.allclose(run.pair.model.prior().log_prob(z), loaded.pair.model.prior().log_prob(z))

"""M2 and the mixture VAE as Pyro programs: the enumerated objectives are the bounds their docstrings state,
labelled images are chosen balanced and seeded, and training through the ordinary loop runs with labels.
"""

import pyro
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

from bayesvae.inference.enumerated_terms import class_terms, discrete_elbo_means
from bayesvae.inference.kl_weight import kl_weighted
from bayesvae.inference.semi_supervised import UNLABELLED, SemiSupervisedObjective, choose_labelled, labelled_batches
from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.discrete_sites import CLUSTER, LABEL
from bayesvae.models.errors import BadInput
from bayesvae.models.protocol import check_pair


@pytest.fixture(scope="module")
def images(digits):
    generator = torch.Generator().manual_seed(0)
    return torch.bernoulli(digits.train_x[:12], generator=generator), digits.train_y[:12]


def pair_of(model, images, guide="normal"):
    pyro.set_rng_seed(0)
    pair = build_pair(ModelSpec(model=model, guide=guide, hidden=(32,), latent_dim=3, clusters=10), (1, 8, 8))
    check_pair(pair, images[0][:4])
    return pair


def enum_loss(pair, *args, particles=2000):
    elbo = TraceEnum_ELBO(max_plate_nesting=1, num_particles=particles, vectorize_particles=True)
    with pair.active(), torch.no_grad():
        return elbo.loss(pair.model, pair.guide, *args)


@pytest.mark.parametrize("model, guide, site", [("mixture", "cluster", CLUSTER), ("mixture", "normal", CLUSTER),
                                               ("m2", "normal", LABEL)])
def test_enumerated_elbo_is_the_class_sum_of_conditioned_bounds(model, guide, site, images):
    """Pyro's TraceEnum_ELBO of the program = Σ_c q(c|x) [E log w_c − log q(c|x)] (guide-side) or
    E_q(z|x) log Σ_c w_c (model-side) from the pair run at each value of the class: the enumeration shapes
    in model and guide are right."""
    x, _ = images
    pair = pair_of(model, images, guide)
    terms = class_terms(pair, x, site, num_samples=2000)
    ours = terms.elbo().mean(0).detach()                           # per image
    se = terms.elbo().detach().std(0) / 2000 ** 0.5
    pyro_elbo = -float(enum_loss(pair, x))
    assert abs(pyro_elbo - float(ours.sum())) < 4 * float(se.square().sum().sqrt()) * 2 ** 0.5 + 1e-3
    means = discrete_elbo_means(pair, x, site)
    if guide == "normal" and model == "mixture":   # model-side: no q(c|x), so no class KL of its own
        assert means["kl_class"] != means["kl_class"]
        assert means["elbo"] == pytest.approx(means["log_likelihood"] - means["kl"], abs=1e-4)
    else:
        assert means["elbo"] == pytest.approx(means["log_likelihood"] - means["kl_code"] - means["kl_class"], abs=1e-4)
        assert means["kl_class"] >= 0


def test_semi_supervised_objective_is_minus_u_minus_l_minus_alpha_log_q(images):
    """−J^α = −Σ U(x) − (B/B_l) Σ [L(x_l, y_l) + α log q(y_l|x_l)], each bound from the pair run per class."""
    x, y = images
    pair = pair_of("m2", images)
    pyro.set_rng_seed(1)
    terms = class_terms(pair, x, LABEL, num_samples=2000)
    unlabelled = terms.elbo().mean(0).detach()                                  # U(x) per image
    at_label = terms.log_weight[y, :, torch.arange(len(y))].mean(-1).detach()   # L(x, y) per image
    x_l, y_l = x[:4], y[:4]
    objective = SemiSupervisedObjective(TraceEnum_ELBO(max_plate_nesting=1, num_particles=2000,
                                                       vectorize_particles=True), pair.guide.class_posterior, 3.0)
    with pair.active():
        loss = objective(kl_weighted(pair.model), kl_weighted(pair.guide), x, torch.tensor(1.0), x_l, y_l).detach()
        log_q = pair.guide.class_posterior(x_l).log_prob(y_l).detach()
    expected = -(unlabelled.sum() + len(x) / len(x_l) * (at_label[:4].sum() + 3.0 * log_q.sum()))
    assert float(loss) == pytest.approx(float(expected), abs=1.0)   # MC spread of 2000 draws: ~0.2 nats


def test_labelled_images_are_balanced_seeded_and_checked(digits):
    labels = digits.train_y
    chosen = choose_labelled(labels, 100, seed=3)
    kept = chosen != UNLABELLED
    assert int(kept.sum()) == 100
    assert torch.equal(chosen[kept], labels[kept])
    assert torch.bincount(chosen[kept], minlength=10).tolist() == [10] * 10
    assert torch.equal(chosen, choose_labelled(labels, 100, seed=3))
    assert not torch.equal(chosen, choose_labelled(labels, 100, seed=4))
    assert sorted(torch.bincount(labels[choose_labelled(labels, 23, 0) != UNLABELLED]).tolist()) == [2] * 7 + [3] * 3
    picks = labelled_batches(chosen, 3, 64, torch.Generator().manual_seed(0))
    assert [len(p) for p in picks] == [64] * 3 and all(bool(kept[p].all()) for p in picks)
    assert len(set(picks[0].tolist())) == 64 and not torch.equal(picks[0], picks[1])
    with pytest.raises(BadInput, match="more than the 1437 training images"):
        choose_labelled(labels, 5000, 0)
    with pytest.raises(BadInput, match="has none"):
        choose_labelled(None, 10, 0)


def test_m2_trains_with_labels_through_the_ordinary_loop(tmp_path):
    import bayesvae

    run = bayesvae.fit("m2", data="digits", out=tmp_path / "m2", labels=20, epochs=2, hidden=(32,), latent_dim=4,
                       device="cpu", progress=False, log=lambda _: None)
    rows = run.history_rows
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(r["test_elbo"])) for r in rows)
    assert rows[-1]["test_elbo"] <= 0 and rows[-1]["test_kl"] >= 0

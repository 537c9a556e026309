"""The compiled training step is the interpreted one, faster: same loss, same gradients, same randomness.

Pyro's JIT ELBOs trace the model and guide into a graph once per batch shape. Everything that
changes between steps must reach that graph as an input: the KL weight β (warm-up changes it
every epoch) and the batch's shape (the short last batch gets its own graph). Compiling must not
draw from the training random stream, or a resumed run would not end where an uninterrupted one
does (tests/test_resume.py checks that end to end).
"""

import pytest
import torch

import pyro

from bayesvae.inference.compiled import CompiledObjective
from bayesvae.inference.objectives import make_elbo
from bayesvae.inference.terms import trace_terms
from bayesvae.inference.kl_weight import kl_weighted
from bayesvae.inference.optimizer import CheckedAdam
from bayesvae.inference.options import TrainOptions
from bayesvae.inference.step import TrainingStep, compilable
from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.guides import GUIDES
from bayesvae.models.likelihoods import LIKELIHOODS
from bayesvae.models.priors import PRIORS

SHAPE = (1, 8, 8)


def images(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.rand(n, *SHAPE, generator=generator) * 0.6, generator=generator)


def pair_of(seed: int = 0, **spec):
    pyro.set_rng_seed(seed)
    pair = build_pair(ModelSpec(**{"latent_dim": 3, "hidden": (16,), **spec}), SHAPE)
    pair.initialize(images(2))
    return pair


@pytest.mark.parametrize("elbo", ["mc", "analytic", "iwae"])
def test_compiled_steps_follow_the_interpreted_ones_through_beta_changes_and_a_short_batch(elbo):
    x = images(40)
    batches = [x[:16], x[16:32], x[32:]]  # the last batch is short: a second graph
    betas = [0.0, 0.0, 0.0, 2.5, 2.5, 2.5]
    paths = {}
    for compiled in (True, False):
        pair = pair_of()
        step = TrainingStep(pair, TrainOptions(elbo=elbo, batch_size=16), CheckedAdam(0.01), compiled=compiled)
        assert step.compiled is compiled
        torch.manual_seed(123)
        losses = []
        with step.running():
            for i, beta in enumerate(betas):
                step.set_beta(beta)
                losses.append(float(step(batches[i % 3])))
        if compiled:
            assert len(step.objective.graphs) == 2  # batch shapes (16, ...) and (8, ...)
        paths[compiled] = losses, pair.unconstrained_parameters(), torch.get_rng_state()
    (losses_c, params_c, rng_c), (losses_i, params_i, rng_i) = paths[True], paths[False]
    assert losses_c == pytest.approx(losses_i, rel=1e-4)
    for name in params_i:
        torch.testing.assert_close(params_c[name], params_i[name], rtol=1e-4, atol=1e-5)
    assert torch.equal(rng_c, rng_i), "compiling drew from the training random stream"


def test_beta_reaches_the_compiled_graph_as_an_input():
    """loss(β) − loss(0) = β · KL(q ‖ p) at the same draw: β scales exactly the closed-form KL."""
    pair, x = pair_of(), images(16)
    objective = CompiledObjective("analytic")
    model, guide = kl_weighted(pair.model), kl_weighted(pair.guide)
    losses = {}
    with pair.active():
        for beta in (0.0, 1.0, 3.0):  # one graph for all three (same shape)
            torch.manual_seed(5)
            losses[beta] = objective.loss(model, guide, x, torch.tensor(beta))
        with torch.no_grad():
            kl = float(trace_terms(pair, x).analytic_kl().sum())
    assert len(objective.graphs) == 1
    assert losses[1.0] - losses[0.0] == pytest.approx(kl, rel=1e-4)
    assert losses[3.0] - losses[0.0] == pytest.approx(3 * kl, rel=1e-4)


CONFIGS = ([{"guide": g} for g in GUIDES] + [{"prior": p} for p in PRIORS if p != "normal"]
           + [{"likelihood": lik} for lik in LIKELIHOODS if lik != "bernoulli"] + [{"net": "conv"}])


@pytest.mark.parametrize("spec", CONFIGS, ids=lambda spec: "-".join(spec.values()))
def test_every_builtin_pair_compiles_to_the_same_loss(spec):
    pair, x = pair_of(**spec), images(8)
    assert compilable(pair, "mc") and compilable(pair, "analytic") and compilable(pair, "iwae")
    model, guide = kl_weighted(pair.model), kl_weighted(pair.guide)
    beta = torch.tensor(0.7)
    with pair.active():
        torch.manual_seed(9)
        expected = pyro.infer.Trace_ELBO(max_plate_nesting=1).differentiable_loss(model, guide, x, beta).item()
        torch.manual_seed(9)
        compiled = CompiledObjective("mc").loss(model, guide, x, beta)
    assert compiled == pytest.approx(expected, rel=1e-4, abs=1e-3)
    with pair.active():   # IWAE (4 particles): the compiled estimator is RenyiELBO(alpha=0)'s
        torch.manual_seed(9)
        expected = make_elbo("iwae", 4).loss(model, guide, x, beta)
        torch.manual_seed(9)
        compiled = CompiledObjective("iwae", 4).loss(model, guide, x, beta)
    assert compiled == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_user_programs_are_not_compiled():
    built = pair_of()

    def model(x):  # a script's function: its Python may do anything between calls
        built.model(x)

    from bayesvae.models.pair import Pair

    assert not compilable(Pair(model, built.guide, modules=built.modules), "analytic")


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("at", [3, 4])
def test_a_compiled_step_with_a_finite_loss_and_a_bad_gradient_is_found_at_the_epochs_read(poison, at):
    """The loss of step ``at`` is finite (computed before its update); one gradient element is made NaN or
    ±inf by a hook on the parameter. read() must say a gradient was not finite, from Adam's state, and
    name the first step whose loss then was not (none when it was the last step)."""
    pair = pair_of()
    step = TrainingStep(pair, TrainOptions(elbo="mc", batch_size=8), CheckedAdam(0.01))
    assert step.compiled
    x = images(8)
    with step.running():
        for i in range(5):
            if i == at:
                loc = pyro.get_param_store().get_param("guide$$$loc.bias").unconstrained()
                handle = loc.register_hook(lambda g: g.index_fill(0, torch.tensor([0]), poison))
            loss = step(x)
            assert bool(torch.isfinite(loss)) is (i <= at)   # after the bad update the parameters are NaN
            if i == at:
                handle.remove()
    losses, bad, finite_gradients = step.read()
    assert len(losses) == 5 and bad == (at + 1 if at < 4 else None) and finite_gradients is False


def test_a_compiled_run_of_good_steps_reads_finite():
    step = TrainingStep(pair_of(), TrainOptions(elbo="mc", batch_size=8), CheckedAdam(0.01))
    with step.running():
        for _ in range(3):
            step(images(8))
    losses, bad, finite_gradients = step.read()
    assert len(losses) == 3 and bad is None and finite_gradients is True


@pytest.mark.parametrize("grads, finite", [
    ((torch.tensor([1e18, -1e18, 3.0]), torch.tensor([1e18, 1e18])), True),      # g² ≈ 10³⁶: finite in float32
    ((torch.tensor([1e21, 0.0, 0.0]), torch.tensor([0.0, 0.0])), False),          # (1 − β₂) g² overflows Adam's v
    ((torch.tensor([1.0, float("inf"), 0.0]), torch.tensor([0.0, 0.0])), False),
    ((torch.tensor([float("inf"), 0.0, 0.0]), torch.tensor([-float("inf"), 0.0])), False),
    ((torch.tensor([0.0, 0.0, 0.0]), torch.tensor([float("nan"), 0.0])), False)])
def test_the_gradient_check_flags_exactly_gradients_whose_square_is_not_finite(grads, finite):
    pyro.clear_param_store()
    p, q = (pyro.param(name, torch.zeros(n)).unconstrained() for name, n in (("p", 3), ("q", 2)))
    adam = CheckedAdam(0.01)
    p.grad, q.grad = grads[0].clone(), grads[1].clone()
    adam([p, q])
    assert bool(adam.moments_finite()) is finite
    for _ in range(3):   # and it stays so: later good gradients do not hide a bad one
        p.grad, q.grad = torch.ones(3), torch.ones(2)
        adam([p, q])
        assert bool(adam.moments_finite()) is finite


@pytest.mark.parametrize("elbo", ["mc", "analytic", "iwae"])
@pytest.mark.parametrize("spec", CONFIGS, ids=lambda spec: "-".join(spec.values()))
def test_dropping_the_identity_operations_keeps_the_loss_and_the_gradients(spec, elbo, monkeypatch):
    """The graph without its ×1, +0 and same-shape reshapes gives the numbers of the graph with them: the very
    loss, and the gradients up to float rounding."""
    import bayesvae.inference.compiled as compiled_module

    def loss_and_gradients(drop):
        monkeypatch.setattr(compiled_module, "drop_identities", drop)
        pair, x = pair_of(**spec), images(8)
        model, guide = kl_weighted(pair.model), kl_weighted(pair.guide)
        with pair.active():
            torch.manual_seed(5)
            objective = CompiledObjective(elbo, 4 if elbo == "iwae" else None)
            loss, params = objective.loss_and_grads(model, guide, x, torch.tensor(0.7))
            graph = next(iter(objective.graphs.values())).fn.graph
            return loss, [p.grad.clone() for p in params], graph

    drop_identities = compiled_module.drop_identities
    full = loss_and_gradients(lambda graph: None)
    lean = loss_and_gradients(drop_identities)
    assert torch.equal(full[0], lean[0])
    # the same gradients, up to the order in which autograd adds the contributions of a merged operation
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6 * float(a.abs().max())) for a, b in zip(full[1], lean[1]))
    ops = [len([n for n in graph.nodes() if n.kind().startswith("aten::")]) for graph in (full[2], lean[2])]
    if any(n.kind().startswith("aten::") and n.kind().endswith("_") for n in full[2].nodes()):
        assert ops[1] == ops[0]   # an in-place operation (the low-rank and full-covariance guides): left alone
        return
    assert ops[1] < ops[0]
    assert not [n for n in lean[2].nodes() if (same := compiled_module._identity_input(n)) is not None
                and compiled_module._same_type(same, n.output())]

"""Compiled objectives: Pyro's JIT ELBOs traced once per batch shape and then called as plain graphs.

For a model/guide whose Python never changes what it does between calls (the built-in pairs),
:class:`CompiledObjective` traces the programs with Pyro's JIT machinery into a TorchScript graph:

* ``mc``       — ``JitTrace_ELBO``: returns (−ELBO, surrogate loss);
* ``analytic`` — ``JitTraceMeanField_ELBO``: returns the differentiable loss (value −ELBO, gradient
  that of the surrogate);
* ``iwae``     — :class:`JitIWAE` below: ``RenyiELBO(alpha=0)``'s estimator, traced the same way (Pyro
  has no JIT form of it): loss −Σ_n log (1/K) Σ_k w_nk, surrogate −Σ_n Σ_k w̃_nk log w_nk / K with the
  normalized weights w̃ = w / mean_k w held constant, whose gradient is the IWAE gradient.

Same ELBOs, same estimators, same gradients and random draws as the interpreted objectives (checked in
tests/test_compiled_objective.py). What this module adds to Pyro's:

* one graph per batch shape (Pyro keys graphs on the number of arguments; the tracer records sizes as
  constants), and in each graph the traced sizes are folded into constants (``aten::size`` → a
  number, then TorchScript's constant propagation): the plate and scale bookkeeping that Pyro's
  programs do with sizes (``subsample`` ranges, ``size / subsample_size`` scales) is done once at
  compile time instead of as ~25 tensor↔number conversions per step;
* the graph is called directly with the parameters' unconstrained tensors (fetched from the active
  param store at every call), not through Pyro's per-call parameter capture, which only re-checks that
  no parameter appeared after the first call — true of the built-in pairs;
* compiling draws no training randomness (it runs inside ``torch.random.fork_rng``), so a resumed run
  draws exactly what the uninterrupted one drew;
* graphs run as traced (``torch.jit.optimized_execution(False)``): TorchScript's optimizing executor
  rewrote a graph after its first runs and then drew the low-rank guide's noise differently.

The loss is returned as a 0-dim tensor (nats, summed over the batch), never read on the host.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

import pyro
import pyro.infer
import pyro.ops.jit
from pyro.infer.util import get_dependent_plate_dims, is_identically_zero, torch_sum

from .objectives import check_objective
from bayesvae.models.sites import MAX_PLATE_NESTING


class JitIWAE(pyro.infer.RenyiELBO):
    """``RenyiELBO(alpha=0)`` (IWAE, vectorized particles) with its loss and surrogate traced by
    ``pyro.ops.jit.trace``. The arithmetic is RenyiELBO.loss_and_grads' for α = 0, written out here
    because Pyro has no JIT form of it (the traced function must return tensors, not call backward)."""

    def loss_and_surrogate_loss(self, model, guide, *args, **kwargs):
        if getattr(self, "_loss_and_surrogate_loss", None) is None:
            self._loss_and_surrogate_loss = pyro.ops.jit.trace(self._iwae, ignore_warnings=True)
        return self._loss_and_surrogate_loss(*args, _pyro_model=model, _pyro_guide=guide, **kwargs)

    def _iwae(self, *args, _pyro_model, _pyro_guide, **kwargs):
        [(model_trace, guide_trace)] = list(self._get_traces(_pyro_model, _pyro_guide, args, kwargs))
        sum_dims = get_dependent_plate_dims(model_trace.nodes.values())
        log_w, surrogate = 0.0, 0.0
        for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
            for site in trace.nodes.values():
                if site["type"] != "sample":
                    continue
                log_prob_sum = torch_sum(site["log_prob"], sum_dims)
                log_w = log_w + sign * log_prob_sum.detach()
                if sign > 0 or not is_identically_zero(site["score_parts"].entropy_term):
                    if sign < 0 and not is_identically_zero(site["score_parts"].score_function):
                        raise NotImplementedError("IWAE needs a reparameterized guide")   # as RenyiELBO
                    surrogate = surrogate + sign * log_prob_sum
        log_mean_w = log_w.logsumexp(0, keepdim=True) - math.log(self.num_particles)
        normalized = (log_w - log_mean_w).exp()
        return -log_mean_w.sum(), -(normalized * surrogate).sum() / self.num_particles


def make_jit_elbo(kind: str, particles: int) -> pyro.infer.ELBO:
    common = dict(num_particles=particles, vectorize_particles=True, max_plate_nesting=MAX_PLATE_NESTING)
    if kind == "iwae":
        return JitIWAE(alpha=0, **common)
    jit_class = pyro.infer.JitTrace_ELBO if kind == "mc" else pyro.infer.JitTraceMeanField_ELBO
    return jit_class(ignore_jit_warnings=True, **common)


@dataclass
class Graph:
    """One compiled graph: ``fn(*unconstrained_params, x, *args)`` → (loss, surrogate) or the
    differentiable loss (``pair=False``)."""

    fn: torch._C.ScriptFunction
    param_names: list[str]
    pair: bool

    def params(self) -> list[torch.Tensor]:
        store = pyro.get_param_store()
        return [store.get_param(name).unconstrained() for name in self.param_names]

    def __call__(self, x: torch.Tensor, *args) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(loss value, tensor to differentiate, the parameters it depends on)."""
        params = self.params()
        with _unoptimized():
            out = self.fn(*params, x, *args)
        return (out[0], out[1], params) if self.pair else (out, out, params)


class CompiledObjective:
    """The objective ``kind`` compiled, one graph per batch shape (see the module docstring).

    Requirements (Pyro's, for any JIT ELBO): the model and guide run the same sites with the same
    shapes at every call and read every changing input from their arguments. So the KL weight β is
    passed as a tensor argument, never captured (a captured number would be frozen into the graph).
    """

    def __init__(self, kind: str, particles: int | None = None):
        self.kind = kind
        self.particles = check_objective(kind, particles)
        self.graphs: dict[tuple, Graph] = {}

    def graph(self, model, guide, x: torch.Tensor, *args) -> Graph:
        key = (tuple(x.shape), x.dtype, x.device)
        if key not in self.graphs:
            self.graphs[key] = _compile(self.kind, self.particles, model, guide, x, *args)
        return self.graphs[key]

    def loss_and_grads(self, model, guide, x: torch.Tensor, *args) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """−objective summed over the batch (0-dim tensor, nats) and the parameters whose gradient
        (accumulated into ``.grad``) it computed."""
        loss, differentiable, params = self.graph(model, guide, x, *args)(x, *args)
        differentiable.backward()
        return loss.detach(), params

    def loss(self, model, guide, x: torch.Tensor, *args) -> float:
        """−objective summed over the batch (nats), no gradient."""
        with torch.no_grad():
            return float(self.graph(model, guide, x, *args)(x, *args)[0])


def _compile(kind: str, particles: int, model, guide, x: torch.Tensor, *args) -> Graph:
    elbo = make_jit_elbo(kind, particles)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), warnings.catch_warnings(), _unoptimized():
        # torch 2.x says TorchScript (which Pyro's JIT uses) is deprecated; the interpreted ELBOs remain
        warnings.filterwarnings("ignore", message=".*torch.jit.trace.* is deprecated", category=FutureWarning)
        if kind == "analytic":
            elbo.differentiable_loss(model, guide, x, *args)        # traces and compiles; result unused
            compiled = elbo._differentiable_loss
        else:
            elbo.loss_and_surrogate_loss(model, guide, x, *args)
            compiled = elbo._loss_and_surrogate_loss
    [traced] = compiled.compiled.values()
    graph = traced.graph.copy()
    fold_sizes(graph)
    return Graph(torch._C._create_function_from_graph(f"bayesvae_{kind}", graph), list(compiled._param_names),
                 pair=kind != "analytic")


def fold_sizes(graph: torch._C.Graph) -> None:
    """Replace every ``aten::size(t, dim)`` of a tensor whose shape the trace recorded by that number,
    then fold what depends only on constants (TorchScript's constant propagation leaves random and
    in-place operations alone). Valid because a graph is only ever called with the shapes it was traced with."""
    for node in list(graph.nodes()):
        if node.kind() != "aten::size" or len(list(node.inputs())) != 2:
            continue
        tensor, dim = node.inputs()
        sizes, dim = tensor.type().sizes(), dim.toIValue()
        if sizes is None or dim is None or sizes[dim] is None:
            continue
        constant = graph.insertConstant(int(sizes[dim]))
        constant.node().moveBefore(node)
        node.output().replaceAllUsesWith(constant)
    torch._C._jit_pass_constant_propagation(graph)
    torch._C._jit_pass_dce(graph)


def _unoptimized():
    """Run TorchScript graphs as traced (see the module docstring)."""
    return torch.jit.optimized_execution(False)

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
  compile time instead of as ~25 tensor↔number conversions per step; then the operations that return
  their input unchanged (×1, +0, reshapes to the same shape: :func:`drop_identities`) are removed;
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
from contextlib import contextmanager
from dataclasses import dataclass

import torch

import pyro
import pyro.infer
import pyro.ops.jit
from pyro.infer.util import get_dependent_plate_dims, is_identically_zero, torch_sum

from .invariant_split import InvariantSplit, split_invariant
from .objectives import check_objective
from .terms import log_weight, traces
from bayesvae.models.pair import Pair
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
    with _tracing(x):
        if kind == "analytic":
            elbo.differentiable_loss(model, guide, x, *args)        # traces and compiles; result unused
            compiled = elbo._differentiable_loss
        else:
            elbo.loss_and_surrogate_loss(model, guide, x, *args)
            compiled = elbo._loss_and_surrogate_loss
    return _folded_graph(compiled, f"bayesvae_{kind}", pair=kind != "analytic")


@contextmanager
def _tracing(x: torch.Tensor):
    """Around a first call of a Pyro JIT function: it draws none of the caller's randomness, runs as
    traced, and torch's notice that TorchScript (which Pyro's JIT uses) is deprecated is not shown."""
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), warnings.catch_warnings(), _unoptimized():
        warnings.filterwarnings("ignore", message=".*torch.jit.trace.* is deprecated", category=FutureWarning)
        yield


def _folded_graph(compiled: pyro.ops.jit.CompiledFunction, name: str, pair: bool) -> Graph:
    """The one graph that ``compiled`` traced, sizes folded and identities dropped, as a :class:`Graph`."""
    [traced] = compiled.compiled.values()
    graph = traced.graph.copy()
    fold_sizes(graph)
    drop_identities(graph)
    return Graph(torch._C._create_function_from_graph(name, graph), list(compiled._param_names), pair=pair)


BUILT_IN_MODULES = ("bayesvae.models.", "torch.nn.", "pyro.nn.", "pyro.distributions.")
"""Where the classes of the built-in programs and of every network inside them come from."""


def traceable(pair: Pair) -> bool:
    """Model and guide are the built-in programs (bayesvae.models) made of built-in networks (theirs, torch's
    layers, Pyro's autoregressive ones), which run the same sites with the same shapes at every call, and
    no bfloat16 autocast wraps them (a trace would freeze autocast's weight copies, :mod:`.precision`).
    A user's script may branch in Python between calls: it runs interpreted, also where it puts its own
    network (an encoder, say) inside a built-in program."""
    programs = [getattr(fn, "__wrapped__", fn) for fn in (pair.model, pair.guide)]   # unwrap AtPrecision
    parts = [part for fn in programs for part in (fn.modules() if isinstance(fn, torch.nn.Module) else [fn])]
    return all(type(fn).__module__.startswith("bayesvae.models.") for fn in programs) \
        and all(type(part).__module__.startswith(BUILT_IN_MODULES) for part in parts) \
        and all(getattr(fn, "traceable", True) for fn in (pair.model, pair.guide))


class CompiledLogWeights:
    """The importance log-weights log p(x|z) + log p(z) − log q(z|x) of S draws per image, ``(S, N)``
    nats, from :func:`.terms.traces` traced once per (S, batch shape) into a graph with its sizes folded
    and its identities dropped, as the compiled objectives are: the evidence's chunks of draws without
    Pyro's per-call interpretation (5–10 % of an MLP chunk's time on the CPU; more on a GPU, where the
    kernels are fast and Python is not). The same draws and arithmetic as :func:`.terms.trace_terms`: the
    same numbers, bit for bit, except within a few 10⁻⁶ nats for the low-rank and full-covariance guides,
    whose graphs round their linear algebra differently (tests/test_evidence_compiled.py). Call inside ``pair.active()``, for
    a :func:`traceable` pair.

    The built-in programs' branches that a trace would freeze are part of the key: on the data, the
    Bernoulli likelihood's "are all pixels 0 or 1" (:class:`bayesvae.models.likelihoods.Bernoulli`), so a
    graph traced on binary pixels never scores grey ones, and on whether gradients are taken."""

    def __init__(self, pair: Pair):
        self.pair = pair
        self.graphs: dict[tuple, tuple[Graph, InvariantSplit | None]] = {}

    def for_images(self, x: torch.Tensor):
        """``score(num_samples)`` → the log-weights ``(num_samples, N)`` of the images ``x``; the pixels are
        looked at once here (one device read), not once per chunk of draws. What does not change between
        chunks of draws (the encoder on ``x``, :mod:`.invariant_split`) is computed at a chunk size's first
        call and reused: the parameters must not change while ``score`` is used."""
        images = (tuple(x.shape), x.dtype, x.device, bool(((x == 0) | (x == 1)).all()), torch.is_grad_enabled())
        fixed: dict[int, tuple] = {}

        def score(num_samples: int) -> torch.Tensor:
            key = (num_samples, *images)
            if key not in self.graphs:
                self.graphs[key] = self._compile(x, num_samples)
            graph, split = self.graphs[key]
            inputs = (*graph.params(), x)
            with _unoptimized():
                if split is None:
                    return graph.fn(*inputs)
                if num_samples not in fixed:
                    fixed[num_samples] = split.fixed_values(*inputs)
                return split.rest(*inputs, *fixed[num_samples])
        return score

    def _compile(self, x: torch.Tensor, num_samples: int) -> tuple[Graph, InvariantSplit | None]:
        def log_weights(images: torch.Tensor) -> torch.Tensor:
            return log_weight(*traces(self.pair, images, num_samples), (num_samples, images.shape[0]))

        traced_fn = pyro.ops.jit.trace(log_weights, ignore_warnings=True)
        # Pyro's first call captures the parameters with validation as set globally; the evidence checks
        # the arguments apart, by Pyro's trace of one draw per image, so not here
        with _tracing(x), pyro.validation_enabled(False):
            traced_fn(x)
        graph = _folded_graph(traced_fn, "bayesvae_log_weights", pair=False)
        return graph, split_invariant(graph.fn.graph, "bayesvae_log_weights")


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


def drop_identities(graph: torch._C.Graph) -> None:
    """Remove the operations of the trace that return their input unchanged, then merge repeated ones.

    Pyro's programs multiply each site's log-density by its scale (1 without subsampling or β), add the
    first term of the ELBO to 0, divide by the number of particles (1), subtract the prior's loc (zeros)
    and log-scale (zeros) and divide by its variance (ones), and reshape, expand and broadcast tensors to
    the shapes they already have; the MLP step's graph has about a third of its operations of this kind.
    A traced operation is removed only when it is an exact identity on the values it was traced with:
    ``x·1``, ``x/1``, ``x + 0``, ``0 + x``, ``x − 0`` (constants that are all ones or zeros) and a reshape,
    view, expand or broadcast to the shape it was given — and only when its result has the type of its
    input (shape and dtype), so the values are the same, bit for bit. Then TorchScript's
    common-subexpression pass merges operations repeated on the same inputs (random ones excepted), e.g.
    the guide's scaled log-density that Pyro computes twice, as the ELBO term and as its entropy term;
    autograd then adds the gradient contributions of a merged operation in another order, so gradients
    agree up to float rounding (tests/test_compiled_objective.py).
    Nothing is done to a graph with an in-place operation, where an identity's result could be an alias."""
    if any(node.kind().startswith("aten::") and node.kind().endswith("_") for node in graph.nodes()):
        return
    for node in list(graph.nodes()):
        if node.kind() == "aten::broadcast_tensors":
            _drop_equal_broadcast(node)
            continue
        same = _identity_input(node)
        if same is not None and _same_type(same, node.output()):
            node.output().replaceAllUsesWith(same)
    torch._C._jit_pass_dce(graph)
    torch._C._jit_pass_cse(graph)
    torch._C._jit_pass_dce(graph)


def _identity_input(node: torch._C.Node) -> torch._C.Value | None:
    """The input that ``node`` returns unchanged, when its other inputs make it an identity."""
    kind, inputs = node.kind(), list(node.inputs())
    if kind in ("aten::reshape", "aten::view", "aten::expand"):
        return inputs[0]
    if kind in ("aten::mul", "aten::div") and len(inputs) == 2:
        if _constant_all(inputs[1], 1):
            return inputs[0]
        if kind == "aten::mul" and _constant_all(inputs[0], 1):
            return inputs[1]
    if kind in ("aten::add", "aten::sub") and len(inputs) == 3:
        if _constant_all(inputs[1], 0):
            return inputs[0]
        if kind == "aten::add" and _constant_all(inputs[0], 0) and _constant(inputs[2]) == 1:
            return inputs[1]
    return None


def _drop_equal_broadcast(node: torch._C.Node) -> None:
    """``broadcast_tensors([a, b, ...])`` unpacked, where every tensor already has the broadcast shape."""
    listed, uses = node.input().node(), node.output().uses()
    if listed.kind() != "prim::ListConstruct" or len(uses) != 1 or uses[0].user.kind() != "prim::ListUnpack":
        return
    pairs = list(zip(listed.inputs(), uses[0].user.outputs()))
    if all(_same_type(given, broadcast) for given, broadcast in pairs):
        for given, broadcast in pairs:
            broadcast.replaceAllUsesWith(given)


def _constant(value: torch._C.Value):
    return value.toIValue() if value.node().kind() == "prim::Constant" else None


def _constant_all(value: torch._C.Value, number: int) -> bool:
    constant = _constant(value)
    if isinstance(constant, torch.Tensor):
        return constant.numel() > 0 and bool((constant == number).all())
    return isinstance(constant, (int, float)) and not isinstance(constant, bool) and constant == number


def _same_type(a: torch._C.Value, b: torch._C.Value) -> bool:
    """Both are tensors of one dtype and one fully known shape."""
    types = [value.type() for value in (a, b)]
    if not all(isinstance(t, torch._C.TensorType) for t in types):
        return False
    sizes = [t.sizes() for t in types]
    return sizes[0] is not None and None not in sizes[0] and sizes[0] == sizes[1] \
        and types[0].scalarType() == types[1].scalarType() and types[0].scalarType() is not None


def _unoptimized():
    """Run TorchScript graphs as traced (see the module docstring)."""
    return torch.jit.optimized_execution(False)

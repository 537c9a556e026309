"""The training objectives, all Pyro's own ELBOs (a loss is −objective, summed over the batch, in nats).

* ``mc``       — ``Trace_ELBO``: E_q[log p(x|z) + log p(z) − log q(z|x)], all terms Monte Carlo.
* ``analytic`` — ``TraceMeanField_ELBO``: E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) with the KL in closed
  form where torch knows it (Normal guide, Normal prior); elsewhere Pyro estimates that site's KL by
  Monte Carlo, and :func:`analytic_kl_note` says so before training.
* ``iwae``     — ``RenyiELBO(alpha=0)``: log (1/K) Σ_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x), per image
  (Burda et al. 2015); K = ``particles``.

Particles are vectorized (a particle plate left of the data plate).

Compiled objectives. For a model/guide whose Python never changes what it does between calls (the
built-in pairs), :class:`CompiledObjective` runs Pyro's own JIT ELBOs (``JitTrace_ELBO``,
``JitTraceMeanField_ELBO``): the programs are traced once per batch shape into a TorchScript graph, so
a training step no longer pays for Pyro's Python machinery. It is the same ELBO, same estimator, same
gradients (checked in tests/test_compiled_objective.py); IWAE (``RenyiELBO``) has no JIT form in Pyro.
"""

from __future__ import annotations

import warnings

import torch

import pyro.infer
from pyro import poutine
from torch.distributions import kl_divergence

from bayesvae.models.errors import BadInput
from bayesvae.models.families import family_name, is_point_mass
from bayesvae.models.sites import LATENT, MAX_PLATE_NESTING

OBJECTIVES = ("mc", "analytic", "iwae")
DEFAULT_PARTICLES = {"mc": 1, "analytic": 1, "iwae": 5}
COMPILABLE = ("mc", "analytic")
"""Objectives with a JIT form in Pyro."""


def check_objective(kind: str, particles: int | None) -> int:
    """Validate ``--elbo``/``--particles``; returns the number of particles (default per objective)."""
    if kind not in OBJECTIVES:
        raise BadInput(f"unknown --elbo {kind!r}; choose one of: {', '.join(OBJECTIVES)}")
    if particles is None:
        return DEFAULT_PARTICLES[kind]
    if isinstance(particles, bool) or not isinstance(particles, int) or particles < 1:
        raise BadInput(f"--particles must be a whole number ≥ 1, got {particles!r}")
    return particles


def make_elbo(kind: str, particles: int | None = None, jit: bool = False) -> pyro.infer.ELBO:
    """Pyro's ELBO for ``kind`` in :data:`OBJECTIVES` with ``particles`` vectorized samples per image;
    ``jit=True`` gives its JIT form (``kind`` in :data:`COMPILABLE`; use it through :class:`CompiledObjective`)."""
    particles = check_objective(kind, particles)
    common = dict(num_particles=particles, vectorize_particles=True, max_plate_nesting=MAX_PLATE_NESTING)
    if jit:
        if kind not in COMPILABLE:
            raise ValueError(f"Pyro has no JIT form of the {kind!r} objective")
        jit_class = pyro.infer.JitTrace_ELBO if kind == "mc" else _JitTraceMeanField_ELBO
        return jit_class(ignore_jit_warnings=True, **common)
    if kind == "mc":
        return pyro.infer.Trace_ELBO(**common)
    if kind == "analytic":
        return pyro.infer.TraceMeanField_ELBO(**common)
    return pyro.infer.RenyiELBO(alpha=0, **common)


class _JitTraceMeanField_ELBO(pyro.infer.JitTraceMeanField_ELBO):
    """Pyro 1.9's ``JitTraceMeanField_ELBO`` keeping its compiled loss.

    Pyro stores the compiled function as ``_differentiable_loss`` but tests for
    ``_loss_and_surrogate_loss`` before building it, so it traces the programs again at every step
    (3.4x slower than the interpreted ELBO, 784-400-50 MLP, batch 128). This reuses the stored one.
    """

    def differentiable_loss(self, model, guide, *args, **kwargs):
        compiled = getattr(self, "_differentiable_loss", None)
        if compiled is None:
            return super().differentiable_loss(model, guide, *args, **kwargs)
        return compiled(*args, _pyro_model_id=id(model), _pyro_guide_id=id(guide), **kwargs)


class CompiledObjective:
    """The objective ``kind`` as Pyro JIT ELBOs, one compiled graph per batch shape; a loss for ``SVI``.

    Requirements (Pyro's, for any JIT ELBO): the model and guide run the same sites with the same
    shapes at every call and read every changing input from their arguments. So the KL weight β
    is passed as a tensor argument, never captured (a captured number would be frozen into the
    graph at its first value, and KL warm-up would silently stop). What this class adds to Pyro's:

    * one graph per batch shape: Pyro keys its graphs on the number of arguments only, and a traced
      graph is only guaranteed for the shapes it was traced with (the tracer may record a size as a
      constant), so the short last batch of an epoch gets its own graph;
    * compiling draws no training randomness: tracing runs the programs twice more, inside
      ``torch.random.fork_rng``, so a run resumed from a checkpoint draws exactly what the
      uninterrupted run drew;
    * graphs run as traced (``torch.jit.optimized_execution(False)``): the same ATen operations in
      the same order as the interpreted ELBO. TorchScript's optimizing executor rewrites a graph
      after its first runs; in our tests it then drew the low-rank guide's noise differently (not
      the interpreted ELBO's value for the same seed) and it was slower.
    """

    def __init__(self, kind: str, particles: int | None = None):
        self.kind = kind
        self.particles = check_objective(kind, particles)
        self.graphs: dict[tuple, pyro.infer.ELBO] = {}

    def _elbo(self, model, guide, x: torch.Tensor, *args) -> pyro.infer.ELBO:
        key = (tuple(x.shape), x.dtype, x.device)
        if key not in self.graphs:
            elbo = make_elbo(self.kind, self.particles, jit=True)
            devices = [x.device] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), warnings.catch_warnings(), _unoptimized():
                # torch 2.x says TorchScript (which Pyro's JIT uses) is deprecated; the interpreted ELBOs remain
                warnings.filterwarnings("ignore", message=".*torch.jit.trace.* is deprecated", category=FutureWarning)
                elbo.differentiable_loss(model, guide, x, *args)  # traces and compiles; result unused
            self.graphs[key] = elbo
        return self.graphs[key]

    def loss_and_grads(self, model, guide, x: torch.Tensor, *args) -> float:
        """−ELBO summed over the batch (nats); its gradient is accumulated into the parameters."""
        elbo = self._elbo(model, guide, x, *args)
        with _unoptimized():
            return elbo.loss_and_grads(model, guide, x, *args)

    def loss(self, model, guide, x: torch.Tensor, *args) -> float:
        """−ELBO summed over the batch (nats), no gradient."""
        elbo = self._elbo(model, guide, x, *args)
        with torch.no_grad(), _unoptimized():
            return float(elbo.differentiable_loss(model, guide, x, *args))


def _unoptimized():
    """Run TorchScript graphs as traced (see :class:`CompiledObjective`)."""
    return torch.jit.optimized_execution(False)


def analytic_kl_available(guide_trace: poutine.Trace, model_trace: poutine.Trace) -> bool:
    """True when torch has KL(q(z|x) ‖ p(z)) in closed form for the latent site of these traces."""
    try:
        kl_divergence(guide_trace.nodes[LATENT]["fn"], model_trace.nodes[LATENT]["fn"])
    except NotImplementedError:
        return False
    return True


def analytic_kl_note(kind: str, guide_trace: poutine.Trace, model_trace: poutine.Trace) -> str | None:
    """The line to print when ``--elbo analytic`` cannot be analytic for this pair (None when it can)."""
    if kind != "analytic" or analytic_kl_available(guide_trace, model_trace):
        return None
    q_fn, p_fn = guide_trace.nodes[LATENT]["fn"], model_trace.nodes[LATENT]["fn"]
    if is_point_mass(q_fn):
        return ("note: the guide is a point mass (Delta): there is no KL term to take in closed form; "
                "--elbo analytic trains log p(x|z) + β log p(z) at the code, like --elbo mc")
    return (f"note: KL({family_name(q_fn)} guide ‖ {family_name(p_fn)} prior) has no closed form: "
            f"--elbo analytic estimates this KL by Monte Carlo (log q − log p at z ~ q), like --elbo mc")


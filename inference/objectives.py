"""The training objectives, all Pyro's own ELBOs (a loss is −objective, summed over the batch, in nats).

* ``mc``       — ``Trace_ELBO``: E_q[log p(x|z) + log p(z) − log q(z|x)], all terms Monte Carlo.
* ``analytic`` — ``TraceMeanField_ELBO``: E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) with the KL in closed
  form where torch knows it (Normal guide, Normal prior); elsewhere Pyro estimates that site's KL by
  Monte Carlo, and :func:`analytic_kl_note` says so before training.
* ``iwae``     — ``RenyiELBO(alpha=0)``: log (1/K) Σ_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x), per image
  (Burda et al. 2015); K = ``particles``.

Particles are vectorized (a particle plate left of the data plate).

Compiled objectives: for the built-in pairs all three run compiled (:mod:`.compiled`), the same
estimators traced once per batch shape.
"""

from __future__ import annotations

import pyro.infer
from pyro import poutine
from torch.distributions import kl_divergence

from bayesvae.models.errors import BadInput
from bayesvae.models.families import family_name, is_point_mass
from bayesvae.models.sites import LATENT, MAX_PLATE_NESTING

OBJECTIVES = ("mc", "analytic", "iwae")
DEFAULT_PARTICLES = {"mc": 1, "analytic": 1, "iwae": 5}
COMPILABLE = OBJECTIVES
"""Objectives with a compiled form (:mod:`.compiled`)."""


def check_objective(kind: str, particles: int | None) -> int:
    """Validate ``--elbo``/``--particles``; returns the number of particles (default per objective)."""
    if kind not in OBJECTIVES:
        raise BadInput(f"unknown --elbo {kind!r}; choose one of: {', '.join(OBJECTIVES)}")
    if particles is None:
        return DEFAULT_PARTICLES[kind]
    if isinstance(particles, bool) or not isinstance(particles, int) or particles < 1:
        raise BadInput(f"--particles must be a whole number ≥ 1, got {particles!r}")
    return particles


def make_elbo(kind: str, particles: int | None = None) -> pyro.infer.ELBO:
    """Pyro's ELBO for ``kind`` in :data:`OBJECTIVES` with ``particles`` vectorized samples per image
    (interpreted; :class:`.compiled.CompiledObjective` is the compiled form)."""
    particles = check_objective(kind, particles)
    common = dict(num_particles=particles, vectorize_particles=True, max_plate_nesting=MAX_PLATE_NESTING)
    if kind == "mc":
        return pyro.infer.Trace_ELBO(**common)
    if kind == "analytic":
        return pyro.infer.TraceMeanField_ELBO(**common)
    return pyro.infer.RenyiELBO(alpha=0, **common)


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


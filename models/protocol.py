"""Checking that a model/guide pair follows the protocol of :mod:`.sites`, on one small batch.

Runs before any training or diagnosis so that a user's pair fails with one line naming the site,
the expected and the found shape, instead of a stack trace deep inside an ELBO.
"""

from __future__ import annotations

import warnings

import torch
from torch.distributions import constraints

import pyro
from pyro import poutine
from pyro.util import check_model_guide_match

from .errors import BadInput
from .pair import Pair
from .sites import DATA_PLATE, LATENT, MAX_PLATE_NESTING, OBSERVED
from .user_code import first_line, user_frame


def _traced(fn, x: torch.Tensor, role: str) -> poutine.Trace:
    try:
        return poutine.trace(fn).get_trace(x)
    except BadInput:
        raise
    except Exception as error:  # noqa: BLE001 - user code may fail in any way
        where = user_frame(error)
        raise BadInput(f"the {role} failed on a batch of shape {tuple(x.shape)}{' at ' + where if where else ''}: "
                       f"{first_line(error)}") from None


def trace_pair(pair: Pair, x: torch.Tensor) -> tuple[poutine.Trace, poutine.Trace]:
    """(guide trace, model trace replayed at the guide's z) for the batch ``x``; errors become BadInput."""
    with pair.active():
        guide_trace = _traced(pair.guide, x, "guide")
        return guide_trace, _traced(poutine.replay(pair.model, trace=guide_trace), x, "model")


def _sample_site(trace: poutine.Trace, name: str, role: str, observed: bool) -> dict:
    sites = [n for n, s in trace.nodes.items() if s["type"] == "sample"]
    if name not in sites:
        raise BadInput(f"the {role} has no sample site {name!r} (found: {', '.join(sites) or 'none'}); "
                       f"the protocol names the latent {LATENT!r} and the data {OBSERVED!r}")
    site = trace.nodes[name]
    if site["is_observed"] != observed:
        wanted = f"observed (pyro.sample({name!r}, ..., obs=x))" if observed else "sampled, not observed"
        raise BadInput(f"site {name!r} in the {role} must be {wanted}")
    return site


def _check_in_plate(site: dict, role: str, n: int) -> None:
    frames = {f.name: f for f in site["cond_indep_stack"]}
    if DATA_PLATE not in frames:
        raise BadInput(f"site {site['name']!r} in the {role} is not inside pyro.plate({DATA_PLATE!r}, len(x))")
    if frames[DATA_PLATE].size != n:
        raise BadInput(f"pyro.plate({DATA_PLATE!r}) around site {site['name']!r} in the {role} has size "
                       f"{frames[DATA_PLATE].size}, expected len(x) = {n}")
    batch = tuple(site["fn"].batch_shape)
    if batch != (n,):
        raise BadInput(f"site {site['name']!r} in the {role} has batch shape {batch}, expected ({n},): one "
                       f"{'latent' if site['name'] == LATENT else 'image'} per image (declare the rest with .to_event)")


def _base(constraint: constraints.Constraint) -> tuple[str, int]:
    event_dim = constraint.event_dim
    while isinstance(constraint, constraints.independent):
        constraint = constraint.base_constraint
    return repr(constraint), event_dim


def _without_model_enumerated(model_trace: poutine.Trace, guide_trace: poutine.Trace) -> poutine.Trace:
    """The model trace minus sites it enumerates itself (a discrete c summed out in the model, which the guide
    rightly lacks; see bayesvae.models.discrete_sites): Pyro's match check only skips them under poutine.enum."""
    summed = [name for name, site in model_trace.nodes.items() if site["type"] == "sample" and name not in
              guide_trace.nodes and not site["is_observed"] and site["infer"].get("enumerate") == "parallel"]
    if not summed:
        return model_trace
    trimmed = model_trace.copy()
    for name in summed:
        trimmed.remove_node(name)
    return trimmed


def check_pair(pair: Pair, x: torch.Tensor) -> tuple[poutine.Trace, poutine.Trace]:
    """Raise :class:`BadInput` unless model and guide follow the protocol on the batch ``x``;
    returns the (guide, model) traces it checked.

    Checks: the latent site (guide, model) and the observed site (model) exist under their names,
    sit in the data plate with one entry per image, the guide's latent has the prior's shape and
    support, and Pyro's own ``check_model_guide_match`` finds no unmatched site.
    """
    n = x.shape[0]
    with pair.active():  # the model on its own first: z from the prior, so shapes can be compared
        guide_trace, prior_trace = _traced(pair.guide, x, "guide"), _traced(pair.model, x, "model")
    q_site = _sample_site(guide_trace, LATENT, "guide", observed=False)
    p_site = _sample_site(prior_trace, LATENT, "model", observed=False)
    q_shape, p_shape = tuple(q_site["value"].shape), tuple(p_site["value"].shape)
    if q_shape != p_shape:
        raise BadInput(f"the guide's {LATENT!r} has shape {q_shape} but the model's prior has {p_shape} "
                       f"(check the latent dimension)")
    guide_trace, model_trace = trace_pair(pair, x)
    q_site = _sample_site(guide_trace, LATENT, "guide", observed=False)
    p_site = _sample_site(model_trace, LATENT, "model", observed=False)
    x_site = _sample_site(model_trace, OBSERVED, "model", observed=True)
    for site, role in ((q_site, "guide"), (p_site, "model"), (x_site, "model")):
        _check_in_plate(site, role, n)
    if tuple(x_site["value"].shape) != tuple(x.shape):
        raise BadInput(f"site {OBSERVED!r} observes a tensor of shape {tuple(x_site['value'].shape)}, "
                       f"expected the batch itself, shape {tuple(x.shape)} (obs=x)")
    if tuple(x_site["fn"].event_shape) != tuple(x.shape[1:]):
        raise BadInput(f"the likelihood at {OBSERVED!r} has event shape {tuple(x_site['fn'].event_shape)}, "
                       f"expected one image, {tuple(x.shape[1:])}")
    if _base(q_site["fn"].support) != _base(p_site["fn"].support):
        raise BadInput(f"the guide's {LATENT!r} lives on {_base(q_site['fn'].support)[0]} but the prior on "
                       f"{_base(p_site['fn'].support)[0]}: q(z|x) must cover the prior's support")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check_model_guide_match(_without_model_enumerated(model_trace, guide_trace), guide_trace,
                                    MAX_PLATE_NESTING)
        except ValueError as error:
            raise BadInput(f"model and guide disagree: {error}") from None
    for warning in caught:
        if issubclass(warning.category, (RuntimeWarning, UserWarning)) and "vars" in str(warning.message):
            raise BadInput("model and guide disagree: " + " ".join(str(warning.message).split()))
    with pair.active():
        if not pyro.get_param_store().keys():
            raise BadInput("the model and guide register no parameters (pyro.module / pyro.param): nothing to fit")
    check_vectorized(pair, x)
    return guide_trace, model_trace


PARTICLE_PLATE = "particles"   # the plate inference/terms.py (and Pyro's vectorize_particles) put left of the data
CHECK_PARTICLES = 3            # differs from any batch the checks use, so a mixed-up dimension cannot pass


def check_vectorized(pair: Pair, x: torch.Tensor, samples: int = CHECK_PARTICLES) -> None:
    """Run the pair the way every objective and diagnostic does: ``samples`` draws of z per image in a
    plate left of the data plate (Pyro's vectorized particles, the evidence estimator's sample batch), so
    z has shape ``(samples, N, d)``. The densities must then have one entry per (draw, image): a pair
    that only works for z of shape ``(N, d)`` (e.g. ``decoder(z).reshape(x.shape)``) is refused here,
    not after 100 epochs."""
    n = x.shape[0]

    def stacked(fn):
        def run(*args):
            with pyro.plate(PARTICLE_PLATE, samples, dim=-(MAX_PLATE_NESTING + 1)):
                return fn(*args)
        return run

    rule = (f"a model and guide must broadcast over sample dimensions left of the batch (objectives and "
            f"diagnostics stack draws of z there): write decoder(z).unflatten(-1, x.shape[1:]) or "
            f".reshape(*z.shape[:-1], *x.shape[1:]), not .reshape(x.shape)")
    with pair.active(), pyro.validation_enabled(False):  # shapes only: the pixels' support is checked elsewhere
        role = "guide"
        try:
            guide_trace = poutine.trace(stacked(pair.guide)).get_trace(x)
            role = "model"
            model_trace = poutine.trace(poutine.replay(stacked(pair.model), trace=guide_trace)).get_trace(x)
            for role, trace in (("guide", guide_trace), ("model", model_trace)):
                trace.compute_log_prob()
        except Exception as error:  # noqa: BLE001 - user code may fail in any way
            where = user_frame(error)
            raise BadInput(f"the {role} fails with {samples} draws of z per image (z of shape ({samples}, {n}, ...))"
                           f"{' at ' + where if where else ''}: {first_line(error)}; {rule}") from None
    for trace, role, names in ((guide_trace, "guide", (LATENT,)), (model_trace, "model", (LATENT, OBSERVED))):
        for name in names:
            shape = tuple(trace.nodes[name]["log_prob"].shape)
            if shape != (samples, n):
                raise BadInput(f"site {name!r} in the {role} has log-density of shape {shape}, expected "
                               f"({samples}, {n}): {rule}")

"""The best per-image approximate posterior q*(z | x_n) of the guide's own family (Cremer et al. 2018).

An amortized guide computes q(z | x) = q(z; λ(x)) with one encoder λ(·) for all images. For one
image the family {q(z; λ) : λ} may contain a better member than λ(x_n); the best one is

    q*_n = argmax_λ ELBO(λ; x_n),   ELBO(λ; x) = E_{q(z; λ)}[log p(x | z)] − KL(q(z; λ) ‖ p(z))  (nats).

We find it by local SVI: one free λ_n per image, initialised at the encoder's output λ(x_n),
optimized by Adam on Pyro's ELBO (``TraceMeanField_ELBO``: closed-form KL where torch has one),
with the model's parameters untouched (gradients are taken with respect to λ only).

Which guides are supported. The local guide rebuilds the amortized guide's *distribution at the
latent site*: it reads the distribution object q(z | x) from a trace of the guide, takes its
parameters as free tensors (one set per image) and rebuilds the same family from them. That works
for any guide whose latent site is one of the families in :data:`FAMILIES`, optionally wrapped in
``.to_event(...)``, whatever network computes their parameters: the built-in ``normal`` (mean-field
Normal), ``lowrank`` and ``fullcov`` (LowRankMultivariateNormal) guides, and user guides returning a
Normal, MultivariateNormal, LowRankMultivariateNormal, Laplace or Student-t. It is refused
(:class:`UnsupportedGuide`, the amortization gap is then skipped with that message) for a point mass
(``delta``: no density, so no ELBO) and for any other distribution — the built-in ``iaf`` flow,
mixtures, ``.expand``/``.mask`` wrappers — whose free parameters cannot be read off the distribution
object generically (a flow's per-image family would need per-image flow weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.distributions import Distribution, Independent, transform_to

import pyro
import pyro.distributions as dist
from pyro import poutine

from bayesvae.models.families import is_point_mass
from bayesvae.models.pair import Pair
from bayesvae.models.sites import DATA_PLATE, LATENT

from .kl_weight import KLWeight
from .mcmc import torch_threads
from .objectives import make_elbo

FAMILIES: dict[type, tuple[str, ...]] = {
    dist.Normal: ("loc", "scale"),
    dist.MultivariateNormal: ("loc", "scale_tril"),
    dist.LowRankMultivariateNormal: ("loc", "cov_factor", "cov_diag"),
    dist.Laplace: ("loc", "scale"),
    dist.StudentT: ("df", "loc", "scale"),
}
"""Family → the parameters that define it without redundancy (each free per image in q*)."""


class UnsupportedGuide(Exception):
    """The guide's q(z | x) has no per-image family this module can rebuild; the message says why."""


def amortized_posterior(pair: Pair, x: torch.Tensor) -> Distribution:
    """The guide's distribution q(z | x) at the latent site for the images ``x`` (batch shape (N,))."""
    with pair.active(), torch.no_grad():
        trace = poutine.trace(pair.guide).get_trace(x)
    return trace.nodes[LATENT]["fn"]


class LocalFamily:
    """q(z; λ_n) of one family with free unconstrained parameters, one set per image.

    ``from_distribution(q)`` starts every λ_n at the amortized value (the encoder's output).
    """

    def __init__(self, kind: type, event_dims: list[int], constraints: dict, unconstrained: dict[str, torch.Tensor]):
        self.kind, self.event_dims, self.constraints = kind, event_dims, constraints
        self.unconstrained = unconstrained

    @classmethod
    def from_distribution(cls, q: Distribution) -> "LocalFamily":
        if is_point_mass(q):
            raise UnsupportedGuide("the guide is a point mass (Delta): it has no density, so its ELBO and "
                                   "the amortization gap are not defined")
        event_dims, base = [], q
        while isinstance(base, Independent):
            event_dims.append(base.reinterpreted_batch_ndims)
            base = base.base_dist
        kind = type(base)
        if kind not in FAMILIES:
            names = ", ".join(k.__name__ for k in FAMILIES)
            raise UnsupportedGuide(f"the guide's q(z|x) is a {kind.__name__}; the per-image q* is built for "
                                   f"{names} (optionally .to_event), so the amortization gap is skipped")
        unconstrained = {}
        for name in FAMILIES[kind]:
            value = getattr(base, name).detach()
            event = value.shape[len(base.batch_shape):] if value.dim() >= len(base.batch_shape) else ()
            value = value.expand(*base.batch_shape, *event).clone()
            constraint = kind.arg_constraints[name]
            unconstrained[name] = transform_to(constraint).inv(value).detach().requires_grad_(True)
        constraints = {name: kind.arg_constraints[name] for name in unconstrained}
        return cls(kind, event_dims, constraints, unconstrained)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.unconstrained.values())

    def distribution(self) -> Distribution:
        """q(z; λ) with batch shape (N,) (the images) and the amortized guide's event shape."""
        q = self.kind(**{name: transform_to(self.constraints[name])(u) for name, u in self.unconstrained.items()},
                      validate_args=False)
        for k in reversed(self.event_dims):
            q = q.to_event(k)
        return q

    def guide(self, x: torch.Tensor) -> None:
        """The local guide q*(z | x_n): same site and plate as the amortized guide, no network."""
        with pyro.plate(DATA_PLATE, x.shape[0]):
            pyro.sample(LATENT, self.distribution())  # per-image approximate posterior q*(z | x_n)


@dataclass
class LocalPosterior:
    """q*(z | x_n) for the images it was fitted on: ``pair`` scores them like the amortized pair does
    (same model and parameter store, guide replaced by the local family)."""

    pair: Pair
    family: str
    steps: int
    losses: list[float]          # −ELBO summed over the images (nats), one Monte Carlo estimate per step


def fit_local_posterior(pair: Pair, x: torch.Tensor, steps: int = 300, particles: int = 16, lr: float = 0.02,
                        progress: Callable | None = None, threads: int = 1, beta: float = 1.0) -> LocalPosterior:
    """Maximize each image's ELBO over its own λ_n, starting from the encoder's λ(x_n).

    ``beta`` ≠ 1 maximizes the β-weighted target E_q[log p(x|z)] − β KL(q ‖ p(z)) instead (the latent site
    scaled by β, :class:`~.kl_weight.KLWeight`, as in training): its optimum is the best member of the family
    for the tempered posterior p(x|z)^(1/β) p(z) — what a β-VAE's encoder is trained to output.

    Adam with learning rate ``lr`` decaying geometrically to lr/10 over ``steps``; ``particles`` vectorized
    z-samples per image and step. Raises :class:`UnsupportedGuide` when the guide's family is not supported.
    ``progress`` wraps the step range (e.g. ``tqdm``).
    """
    family = LocalFamily.from_distribution(amortized_posterior(pair, x))
    local = Pair(pair.model, family.guide, modules=pair.modules,
                 definitions={"model": pair.definitions.get("model"), "guide": family.guide})
    local.param_state = pair.param_state  # the trained model's parameters, read only
    elbo = make_elbo("analytic", particles)
    params = family.parameters()
    optimizer = torch.optim.Adam(params, lr=lr)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.1 ** (1 / max(steps, 1)))
    losses = []
    x = x.detach()
    with torch_threads(threads), local.active():
        for _ in (progress or iter)(range(steps)):
            with KLWeight(beta):
                loss = elbo.differentiable_loss(local.model, local.guide, x)
            grads = torch.autograd.grad(loss, params)  # λ only: the decoder stays as trained
            for p, g in zip(params, grads):
                p.grad = g
            optimizer.step()
            decay.step()
            losses.append(float(loss.detach()))
    return LocalPosterior(local, family.kind.__name__, steps, losses)

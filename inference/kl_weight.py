"""The KL weight β of the β-VAE, written once for every objective and every model/guide pair.

The objective becomes E_q[log p(x|z)] − β KL(q(z|x) ‖ p(z)) by scaling the latent site's
log-density by β in the model (log p(z)) *and* in the guide (log q(z|x)). Scaling only the model
is wrong for both Pyro ELBOs: ``TraceMeanField_ELBO`` takes the analytic KL's scale from the guide
site, ``Trace_ELBO`` would then weigh log p(z) alone (../shared/notes/pyro-arviz.md).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from pyro.poutine.messenger import Messenger

from bayesvae.models.errors import BadInput
from bayesvae.models.sites import LATENT


class KLWeight(Messenger):
    """Multiply the log-density of the latent site (and nothing else) by ``beta``.

    ``poutine.scale`` scales every site, the likelihood included, and refuses β = 0 (the
    autoencoder-like end of a β sweep), hence this four-line messenger. ``beta`` may be changed
    between steps (KL warm-up).
    """

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = beta

    def _process_message(self, msg) -> None:
        if msg["type"] == "sample" and msg["name"] == LATENT:
            msg["scale"] = self.beta * msg["scale"]


def check_beta(value: float, option: str = "--beta") -> float:
    """A KL weight must be a finite number ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadInput(f"{option} must be a finite number ≥ 0, got {value!r}")
    return float(value)


def beta_at(epoch: int, beta: float, beta0: float = 0.0, warmup_epochs: int = 0) -> float:
    """KL warm-up: β rises linearly from ``beta0`` at epoch 1 to ``beta`` at epoch ``warmup_epochs + 1``.

    β_e = β₀ + (β − β₀) · min(1, (e − 1) / W); with W = 0 it is β from the first epoch.
    """
    if warmup_epochs <= 0:
        return beta
    return beta0 + (beta - beta0) * min(1.0, (epoch - 1) / warmup_epochs)


def kl_weighted(fn: Callable) -> Callable:
    """The program ``(x, beta) ↦ fn(x)`` with the latent site's log-density scaled by β (:class:`KLWeight`).

    β is an argument (a 0-dim tensor), not state the program closes over: a compiled objective reads
    its arguments at every step but freezes what it captured, and KL warm-up changes β every epoch.
    """
    def program(x: torch.Tensor, beta: torch.Tensor, *labels: torch.Tensor):
        with KLWeight(beta):
            return fn(x, *labels)  # labels: M2's observed y (bayesvae.inference.semi_supervised)
    return program

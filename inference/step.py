"""One SVI training step, compiled where it can be: what :func:`.train.train` runs and benchmarks/ times.

A step never waits for the device: it returns the loss as a 0-dim tensor and keeps it there. The epoch
loop reads the losses once, at the epoch's end (:meth:`TrainingStep.read`), together with whether every
gradient applied so far was finite, which Adam's own state tells (:meth:`.optimizer.CheckedAdam.moments_finite`).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch

import pyro
from pyro import poutine

from bayesvae.models.pair import Pair

from .compiled import CompiledObjective, traceable
from .distributed import SINGLE_PROCESS, SingleProcess
from .kl_weight import kl_weighted
from .objectives import COMPILABLE, make_elbo
from .optimizer import CheckedAdam
from .options import TrainOptions
from .semi_supervised import SemiSupervisedObjective, classifier, make_enumerated_elbo


class NonFiniteStep(Exception):
    """An interpreted step's loss or gradient was not finite (read at once: Pyro reads its loss anyway)."""


def compilable(pair: Pair, elbo: str) -> bool:
    """True when training may compile the objective: it has a compiled form and the pair is
    :func:`.compiled.traceable` (the built-in programs, no bfloat16 autocast)."""
    return elbo in COMPILABLE and traceable(pair)


class TrainingStep:
    """One SVI step on a batch at the KL weight :attr:`beta`: what :func:`train` runs (and benchmarks/ times).

    The objective of ``options`` — compiled (:class:`.compiled.CompiledObjective`) when
    :func:`compilable`, unless ``compiled=False``, else Pyro's interpreted ELBO with its parameters
    captured by ``poutine.trace`` as ``SVI.step`` does — then ``optimizer``. It is ``SVI.step``
    without its last line, which reads the loss on the host (a device synchronization every step).
    Steps run inside :meth:`running`.
    """

    def __init__(self, pair: Pair, options: TrainOptions, optimizer: CheckedAdam,
                 device: torch.device | str = "cpu", compiled: bool | None = None, discrete: bool = False,
                 runtime: SingleProcess = SINGLE_PROCESS):
        self.pair = pair
        self.runtime = runtime   # with several ranks: gradients and loss summed over them before the update
        self.optimizer = optimizer
        self.compiled = not discrete and (compilable(pair, options.elbo) if compiled is None else compiled)
        self.beta = torch.tensor(1.0, device=device)
        self.model, self.guide = kl_weighted(pair.model), kl_weighted(pair.guide)
        if discrete:  # a discrete site summed out exactly; with labels, M2's J^α (a callable loss)
            elbo = make_enumerated_elbo(options.elbo, options.particles)
            self.loss_and_grads = differentiated(SemiSupervisedObjective(elbo, classifier(pair), options.alpha)) \
                if options.labels else elbo.loss_and_grads
        elif self.compiled:
            self.objective = CompiledObjective(options.elbo, options.particles)
        else:
            self.loss_and_grads = make_elbo(options.elbo, options.particles).loss_and_grads
        self.losses: list[torch.Tensor] = []

    def set_beta(self, beta: float) -> None:
        self.beta.fill_(beta)

    @contextmanager
    def running(self) -> Iterator[None]:
        """The scope of a run of steps: the pair's parameters, and distribution arguments not
        re-validated at every step (:func:`check_training_setup` validated the pair and the data once;
        a NaN those checks would report is caught as divergence)."""
        with self.pair.active(), pyro.validation_enabled(False):
            yield

    def __call__(self, x: torch.Tensor, *labelled: torch.Tensor) -> torch.Tensor:
        """−objective summed over the batch ``x`` (nats, 0-dim tensor on the device), after one optimizer step;
        ``labelled``: a batch of labelled images and their labels when training with labels (M2)."""
        if not self.compiled:
            with poutine.trace(param_only=True) as capture:
                loss = self.loss_and_grads(self.model, self.guide, x, self.beta, *labelled)  # a float: Pyro reads it
            params = list({site["value"].unconstrained() for site in capture.trace.nodes.values()})
            if self.runtime.synchronizes:
                loss = float(self.runtime.share_gradients(torch.tensor(loss, dtype=torch.float64), params))
            self.optimizer(params)
            if not (math.isfinite(loss) and bool(self.optimizer.moments_finite())):
                raise NonFiniteStep   # Pyro read the loss anyway: stop now, not at the epoch's end
            loss = torch.tensor(loss, dtype=torch.float64, device=self.beta.device)
        else:
            loss, params = self.objective.loss_and_grads(self.model, self.guide, x, self.beta)
            if self.runtime.synchronizes:
                loss = self.runtime.share_gradients(loss, params)
            self.optimizer(params)
        self.losses.append(loss)
        return loss

    def read(self) -> tuple[list[float], int | None, bool]:
        """The losses of the steps since the last read (nats per batch), the index among them of the first
        whose loss was not finite (None if all were), and whether every gradient applied so far was finite.
        Called once per epoch: the only places the loop waits on the device."""
        losses = torch.stack(self.losses).double().cpu() if self.losses else torch.zeros(0, dtype=torch.float64)
        self.losses = []
        bad = (~losses.isfinite()).nonzero()
        return losses.tolist(), (int(bad[0]) if bad.numel() else None), bool(self.optimizer.moments_finite())


def differentiated(objective):
    """``loss_and_grads`` of a callable loss, as Pyro's ``SVI`` builds it: the loss, backpropagated, as a float."""
    def loss_and_grads(*args):
        loss = objective(*args)
        if getattr(loss, "requires_grad", False):
            loss.backward(retain_graph=True)
        return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    return loss_and_grads

"""One SVI training step, compiled where Pyro can compile it: what :func:`.train.train` runs and
benchmarks/ times."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

import pyro
import pyro.optim
from pyro.infer import SVI

from bayesvae.models.pair import Pair

from .kl_weight import kl_weighted
from .objectives import COMPILABLE, CompiledObjective, make_elbo
from .options import TrainOptions
from .semi_supervised import SemiSupervisedObjective, classifier, make_enumerated_elbo


def compilable(pair: Pair, elbo: str) -> bool:
    """True when training may compile the objective: Pyro has a JIT form of it and model and guide are
    the built-in programs (bayesvae.models), which run the same sites with the same shapes at every
    call. A user's script may branch in Python between calls; it runs interpreted."""
    return elbo in COMPILABLE and all(type(fn).__module__.startswith("bayesvae.models.")
                                      for fn in (pair.model, pair.guide))


class TrainingStep:
    """One SVI step on a batch at the KL weight :attr:`beta`: what :func:`train` runs (and benchmarks/ times).

    Pyro's ``SVI`` with the objective of ``options`` — compiled (:class:`.objectives.CompiledObjective`)
    when :func:`compilable`, unless ``compiled=False`` — and ``optimizer``. Steps run inside
    :meth:`running`.
    """

    def __init__(self, pair: Pair, options: TrainOptions, optimizer: pyro.optim.PyroOptim,
                 device: torch.device | str = "cpu", compiled: bool | None = None, discrete: bool = False):
        self.pair = pair
        self.compiled = not discrete and (compilable(pair, options.elbo) if compiled is None else compiled)
        self.beta = torch.tensor(1.0, device=device)
        model, guide = kl_weighted(pair.model), kl_weighted(pair.guide)
        if discrete:  # a discrete site summed out exactly; with labels, M2's J^α
            elbo = make_enumerated_elbo(options.elbo, options.particles)
            loss = SemiSupervisedObjective(elbo, classifier(pair), options.alpha) if options.labels else elbo
            self.svi = SVI(model, guide, optimizer, loss=loss)
        elif self.compiled:
            objective = CompiledObjective(options.elbo, options.particles)
            self.svi = SVI(model, guide, optimizer, loss=objective.loss, loss_and_grads=objective.loss_and_grads)
        else:
            self.svi = SVI(model, guide, optimizer, loss=make_elbo(options.elbo, options.particles))

    def set_beta(self, beta: float) -> None:
        self.beta.fill_(beta)

    @contextmanager
    def running(self) -> Iterator[None]:
        """The scope of a run of steps: the pair's parameters, and distribution arguments not
        re-validated at every step (:func:`check_training_setup` validated the pair and the data once;
        a NaN those checks would report is caught as divergence)."""
        with self.pair.active(), pyro.validation_enabled(False):
            yield

    def __call__(self, x: torch.Tensor, *labelled: torch.Tensor) -> float:
        """−objective summed over the batch ``x`` (nats), after one optimizer step; ``labelled``: a batch of
        labelled images and their labels when training with labels (M2)."""
        return self.svi.step(x, self.beta, *labelled)


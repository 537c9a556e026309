"""SVI training of a model/guide pair: one loop for built-in and user definitions.

Each step (:mod:`.step`: an SVI step, :mod:`.optimizer`: Adam whose state tells whether every gradient was finite) maximizes
the chosen objective (:mod:`.objectives`) with the latent site weighted by β (:mod:`.kl_weight`); the
loss Pyro reports is −objective summed over the batch, in nats. After every
epoch the test set is scored at β = 1 (:mod:`.evaluate`) and ``save`` receives a :class:`TrainState`
that restores the run exactly: parameters, Adam's moments, the torch and data RNG states.
Ctrl-C (SIGINT) and SIGTERM are deferred to the end of the current step, saved the same way, then
raised as :class:`Interrupted`. With several data-parallel processes (``runtime``, :mod:`.distributed`)
each trains on its share of every batch and the gradients are summed over them.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

import pyro
import pyro.optim

from bayesvae.models.errors import BadInput
from bayesvae.models.pair import Pair

from .distributed import SINGLE_PROCESS, SingleProcess
from .enumerated_terms import discrete_site_of
from .evaluate import elbo_means
from .image_source import test_source, training_source
from .interrupts import route_interrupts
from .kl_weight import beta_at
from .optimizer import CheckedAdam
from .options import TrainOptions
from .pause_points import pause_point
from .semi_supervised import choose_labelled, labelled_batches
from .step import NonFiniteStep, TrainingStep


@dataclass
class TrainState:
    """Where training stands: ``epoch`` epochs complete, plus ``step`` batches of the next one."""

    epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)   # one row of metrics per finished epoch
    optimizer: dict = field(default_factory=dict)       # PyroOptim.get_state()
    torch_rng: torch.Tensor | None = None               # torch's global RNG (the Monte Carlo draws)
    data_rng: torch.Tensor | None = None                # the data generator at the start of the next epoch
    partial_loss: float = 0.0                           # loss summed over the ``step`` batches done

    def to_tree(self) -> dict:
        return asdict(self)

    @classmethod
    def from_tree(cls, tree: dict) -> "TrainState":
        try:
            return cls(**tree)
        except TypeError as error:
            raise BadInput(f"checkpoint state is malformed: {error}") from None


class Interrupted(Exception):
    """Training stopped by Ctrl-C or SIGTERM after saving its state."""

    def __init__(self, state: TrainState, signum: int = signal.SIGINT):
        super().__init__(f"interrupted after epoch {state.epoch}, step {state.step}")
        self.state, self.signal = state, signum   # SIGINT (Ctrl-C) or SIGTERM


class Diverged(BadInput):
    """The loss or a gradient became NaN or infinite; the last good checkpoint was left as it was."""


def _install_sigint_flag() -> tuple[threading.Event, Callable[[], None]]:
    """Ctrl-C (SIGINT) and SIGTERM set the flag (its ``signal`` says which); the loop saves and stops."""
    flag = threading.Event()
    flag.signal = signal.SIGINT

    def deferred(signum, _frame):
        flag.signal = signum
        flag.set()

    return flag, route_interrupts(deferred)


def train(pair: Pair, train_x, test_x, options: TrainOptions,
          state: TrainState | None = None, save: Callable[[TrainState], None] | None = None,
          log: Callable[[str], None] | None = None, progress: bool | None = None,
          train_labels: torch.Tensor | None = None, runtime: SingleProcess = SINGLE_PROCESS) -> TrainState:
    """Fit ``pair`` by SVI from ``state`` (fresh when None) up to ``options.epochs``; returns the final state.

    ``train_x``/``test_x`` are image tensors in [0, 1] on the training device, or streamed data sets
    (:mod:`.image_source`: batches read by a DataLoader, the same batches and metrics); ``save`` is called after
    every epoch (and on Ctrl-C) with a state that :func:`train` can resume from exactly.
    ``progress=None`` shows a bar when stderr is a terminal. ``runtime``: one process (default) or one rank
    of several (:mod:`.distributed`): it trains on its share of each global batch, gradients are summed over
    ranks, and only the writer (rank 0) saves and logs.
    """
    log = log or (lambda line: tqdm.write(line))
    if not runtime.writer:
        # the writer alone saves and logs; a no-op save keeps the same finiteness checks on every rank
        save, log, progress = (lambda _state: None), (lambda line: None), False
    state = state or TrainState()
    source = training_source(train_x, options.binarize, options.seed)
    n, device = source.n, source.device
    steps_per_epoch = math.ceil(n / options.batch_size)
    test_images = test_source(test_x, options.binarize)

    data_rng = torch.Generator(device=device).manual_seed(options.seed)
    if state.data_rng is not None:
        data_rng.set_state(state.data_rng)
    if state.torch_rng is not None:
        torch.set_rng_state(state.torch_rng)
    runtime.seed_draws(options.seed, state.epoch, state.step)

    optimizer = CheckedAdam(options.lr)
    if state.optimizer:
        optimizer.set_state(state.optimizer)
    with pyro.validation_enabled(False):
        discrete = discrete_site_of(pair, source.head(2)) is not None
    training_step = TrainingStep(pair, options, optimizer, device=device, discrete=discrete, runtime=runtime)
    # M2: the labels of the chosen labelled images, −1 elsewhere; a labelled batch joins every step
    labelled = choose_labelled(train_labels, options.labels, options.seed).to(device) \
        if options.labels else None

    interrupted, restore_sigint = _install_sigint_flag()
    if runtime.synchronizes:
        runtime.watch(interrupted)
    total = options.epochs * steps_per_epoch
    bar = tqdm(total=total, initial=min(total, state.epoch * steps_per_epoch + state.step), unit="step",
               disable=None if progress is None else not progress, dynamic_ncols=True)
    if state.epoch == 0 and state.step == 0:
        log(_header())
    try:
        with pair.active():
            while state.epoch < options.epochs:
                epoch = state.epoch + 1
                beta = beta_at(epoch, options.beta, options.beta0, options.warmup_epochs)
                training_step.set_beta(beta)
                epoch_start_rng = data_rng.get_state()
                epoch_batches = source.epoch(data_rng, options.batch_size)
                images = epoch_batches.images  # in memory only (M2's labelled picks index into it)
                picks = None if labelled is None else \
                    labelled_batches(labelled, steps_per_epoch, options.batch_size, data_rng)
                started = time.perf_counter()
                with training_step.running():
                    for step, batch in enumerate(epoch_batches.batches(state.step, runtime.rank, runtime.world),
                                                 start=state.step):
                        try:
                            pick = None if picks is None else runtime.share(picks[step])
                            extra = () if picks is None else (images[pick], labelled[pick])
                            training_step(batch, *extra)
                        except (NonFiniteStep, ValueError, RuntimeError) as error:
                            # a NaN met by a user distribution built with validate_args=True is this step's
                            # divergence; any other error may follow from an earlier step's: report that one
                            invalid = isinstance(error, NonFiniteStep) or (
                                isinstance(error, ValueError) and "found invalid values" in str(error))
                            _account(training_step, state, epoch, options, failed_step=step if invalid else None)
                            raise
                        state.step = step + 1
                        bar.update()
                        pause_point("step")
                        if runtime.agreed_stop(interrupted) and state.step < steps_per_epoch:
                            _account(training_step, state, epoch, options)
                            _snapshot(state, optimizer, epoch_start_rng)
                            _save(save, pair, state)
                            raise Interrupted(state, interrupted.signal)
                _account(training_step, state, epoch, options)
                pause_point("evaluate")
                metrics = runtime.mean_over_images(lambda images: elbo_means(pair, images), test_images)
                row = {"epoch": epoch, "beta": beta, "train_loss": state.partial_loss / n,
                       "test_elbo": metrics["elbo"], "test_log_likelihood": metrics["log_likelihood"],
                       "test_kl": metrics["kl"], "test_log_prior": metrics["log_prior"]}
                state.history.append(row)
                state.epoch, state.step, state.partial_loss = epoch, 0, 0.0
                _snapshot(state, optimizer, data_rng.get_state())
                _save(save, pair, state)
                log(_row(row, time.perf_counter() - started))
                bar.set_postfix_str(f"epoch {epoch} train -obj/img {row['train_loss']:.2f}", refresh=False)
                if runtime.any_rank(interrupted):
                    raise Interrupted(state, interrupted.signal)
    finally:
        bar.close()
        restore_sigint()
    return state


def _account(training_step: TrainingStep, state: TrainState, epoch: int, options: TrainOptions,
             failed_step: int | None = None) -> None:
    """Read the steps' losses from the device (once per epoch, and on an interrupt) into
    ``state.partial_loss``, in step order; raise :class:`Diverged` when a loss or a gradient was not
    finite (or at ``failed_step``, a step that raised). The step is named when a loss tells it: a
    gradient is only known to have been non-finite at some step of the epoch (:class:`.optimizer.CheckedAdam`)."""
    losses, bad, finite_gradients = training_step.read()
    first = state.step - len(losses) + 1            # 1-based index in the epoch of losses[0]
    if bad is not None:
        what = [f"the loss of step {first + bad} is not finite"]
    elif failed_step is not None:   # checked as it ran (interpreted; or an invalid value met by a distribution)
        what = [f"a value that step {failed_step + 1} computed (its loss or a gradient) is not finite"]
    else:
        what = []
    what += [] if finite_gradients else ["a gradient of this epoch was not finite"]
    if what:
        raise Diverged(
            f"training diverged at epoch {epoch}: {' and '.join(what)}; lower --lr (now {options.lr}) or, "
            f"for a Gaussian likelihood, raise --likelihood-scale; the last good checkpoint is kept")
    for loss in losses:
        state.partial_loss += loss


def _snapshot(state: TrainState, optimizer: pyro.optim.PyroOptim, data_rng_state: torch.Tensor) -> None:
    state.optimizer = optimizer.get_state()
    state.torch_rng = torch.get_rng_state()
    state.data_rng = data_rng_state


def _save(save: Callable[[TrainState], None] | None, pair: Pair, state: TrainState) -> None:
    if save is None:
        return
    for name, value in pair.unconstrained_parameters().items():
        if not bool(torch.isfinite(value).all()):
            raise Diverged(f"training diverged before epoch {state.epoch + 1} ended: parameter {name} is not "
                           f"finite; lower --lr; the last good checkpoint is kept")
    save(state)


_COLUMNS = (("epoch", 5), ("beta", 6), ("train -obj", 11), ("test ELBO", 11), ("E_q log p(x|z)", 15),
            ("KL(q||p)", 9), ("seconds", 8))


def _header() -> str:
    return " ".join(f"{name:>{width}}" for name, width in _COLUMNS)


def _row(row: dict, seconds: float) -> str:
    values = [row["epoch"], f"{row['beta']:.3g}", f"{row['train_loss']:.2f}", f"{row['test_elbo']:.2f}",
              f"{row['test_log_likelihood']:.2f}", f"{row['test_kl']:.2f}", f"{seconds:.2f}"]
    return " ".join(f"{value:>{width}}" for value, (_, width) in zip(values, _COLUMNS))

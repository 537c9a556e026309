"""SVI training of a model/guide pair: one loop for built-in and user definitions.

Each step maximizes the chosen objective (:mod:`.objectives`) with the latent site weighted by β
(:mod:`.kl_weight`); the loss Pyro reports is −objective summed over the batch, in nats. After every
epoch the test set is scored at β = 1 (:mod:`.evaluate`) and ``save`` receives a :class:`TrainState`
that restores the run exactly: parameters, Adam's moments, the torch and data RNG states.
Ctrl-C (SIGINT) is deferred to the end of the current step, saved the same way, then raised as
:class:`Interrupted`.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

import pyro
import pyro.optim
from pyro.infer import SVI

from bayesvae.models.errors import BadInput
from bayesvae.models.families import family_name
from bayesvae.models.pair import Pair
from bayesvae.models.protocol import check_pair
from bayesvae.models.sites import OBSERVED

from .batches import TrainingImages, binarize, check_binarize, evaluation_images, shuffled_batches
from .evaluate import elbo_means
from .kl_weight import KLWeight, beta_at, check_beta
from .objectives import COMPILABLE, CompiledObjective, analytic_kl_note, check_objective, make_elbo


@dataclass(frozen=True)
class TrainOptions:
    """How to fit a pair (saved in config.json). Defaults train a digits VAE in seconds."""

    elbo: str = "analytic"          # mc | analytic | iwae
    particles: int | None = None    # z-samples per image (default 1, IWAE 5)
    beta: float = 1.0               # KL weight β
    beta0: float = 0.0              # β at epoch 1 when warming up
    warmup_epochs: int = 0          # epochs of linear warm-up from beta0 to beta
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    binarize: str = "dynamic"       # dynamic | fixed | none (see batches.py)

    def __post_init__(self):
        object.__setattr__(self, "particles", check_objective(self.elbo, self.particles))
        object.__setattr__(self, "beta", check_beta(self.beta))
        object.__setattr__(self, "beta0", check_beta(self.beta0, "--beta0"))
        check_binarize(self.binarize)
        for name, low in (("epochs", 1), ("batch_size", 1), ("warmup_epochs", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise BadInput(f"--{name.replace('_', '-')} must be a whole number ≥ {low}, got {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not (math.isfinite(self.lr) and self.lr > 0):
            raise BadInput(f"--lr must be a finite number > 0, got {self.lr!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise BadInput(f"--seed must be a whole number ≥ 0, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainOptions":
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise BadInput(f"unknown training settings {unknown}")
        return cls(**data)


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
    """Training stopped by Ctrl-C after saving its state."""

    def __init__(self, state: TrainState):
        super().__init__(f"interrupted after epoch {state.epoch}, step {state.step}")
        self.state = state


class Diverged(BadInput):
    """The loss or a gradient became NaN or infinite; the last good checkpoint was left as it was."""


class _NonFiniteGradient(Exception):
    pass


class CheckedAdam(pyro.optim.PyroOptim):
    """Adam on all parameters at once, refusing a NaN/Inf gradient before applying it.

    ``SVI.step`` computes the gradients and applies them in one call, so the check sits in the
    optimizer: a bad step never reaches the parameters (or the next checkpoint). The check is one sum
    per gradient: a sum is finite unless an element is NaN or ±inf (or the sum passes float32's 3e38,
    a diverged gradient too); ``isfinite().all()`` per tensor cost 20x more.

    Pyro's ``PyroOptim`` keeps one torch optimizer per parameter; here one ``torch.optim.Adam`` holds
    them all (the same update of each tensor, one call per step instead of one per tensor). After the
    step the gradients are released (``grad = None``), so the next backward pass writes them instead
    of adding them to the zeros ``SVI`` would allocate. :meth:`get_state` keeps Pyro's format
    (parameter name → that parameter's Adam state dict), so checkpoints are unchanged.
    """

    def __init__(self, lr: float):
        super().__init__(torch.optim.Adam, {"lr": lr})
        self.lr = lr
        self.adam: torch.optim.Adam | None = None

    def __call__(self, params, *args, **kwargs) -> None:
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        if not bool(torch.stack([p.grad.sum() for p in params]).sum().isfinite()):
            raise _NonFiniteGradient
        self._adopt([p for p in params if p not in self.optim_objs])
        self.adam.step()
        for p in params:
            p.grad = None

    def _adopt(self, params: list[torch.Tensor]) -> None:
        """Add parameters seen for the first time (in name order), with their saved state if any."""
        if not params:
            return
        store = pyro.get_param_store()
        params = sorted(params, key=store.param_name)
        if self.adam is None:
            self.adam = torch.optim.Adam(params, lr=self.lr)
        else:
            self.adam.add_param_group({"params": params})
        for p in params:
            self.optim_objs[p] = self.adam
            saved = self._state_waiting_to_be_consumed.pop(store.param_name(p), None)
            if saved is not None:
                single = torch.optim.Adam([p], lr=self.lr)
                single.load_state_dict(saved)  # torch's own checks and casts
                self.adam.state[p] = single.state[p]

    def get_state(self) -> dict:
        """Parameter name → the state dict a one-parameter Adam would have (Pyro's format)."""
        store = pyro.get_param_store()
        state = dict(self._state_waiting_to_be_consumed)
        for p in self.optim_objs:
            single = torch.optim.Adam([p], lr=self.lr)
            if p in self.adam.state:
                single.state[p] = self.adam.state[p]
            state[store.param_name(p)] = single.state_dict()
        return state


def compilable(pair: Pair, elbo: str) -> bool:
    """True when training may compile the objective: Pyro has a JIT form of it and model and guide are
    the built-in programs (bayesvae.models), which run the same sites with the same shapes at every
    call. A user's script may branch in Python between calls; it runs interpreted."""
    return elbo in COMPILABLE and all(type(fn).__module__.startswith("bayesvae.models.")
                                      for fn in (pair.model, pair.guide))


def kl_weighted(fn: Callable) -> Callable:
    """The program ``(x, beta) ↦ fn(x)`` with the latent site's log-density scaled by β (:class:`KLWeight`).

    β is an argument (a 0-dim tensor), not state the program closes over: a compiled objective reads
    its arguments at every step but freezes what it captured, and KL warm-up changes β every epoch.
    """
    def program(x: torch.Tensor, beta: torch.Tensor):
        with KLWeight(beta):
            return fn(x)
    return program


class TrainingStep:
    """One SVI step on a batch at the KL weight :attr:`beta`: what :func:`train` runs (and benchmarks/ times).

    Pyro's ``SVI`` with the objective of ``options`` — compiled (:class:`.objectives.CompiledObjective`)
    when :func:`compilable`, unless ``compiled=False`` — and ``optimizer``. Steps run inside
    :meth:`running`.
    """

    def __init__(self, pair: Pair, options: TrainOptions, optimizer: pyro.optim.PyroOptim,
                 device: torch.device | str = "cpu", compiled: bool | None = None):
        self.pair = pair
        self.compiled = compilable(pair, options.elbo) if compiled is None else compiled
        self.beta = torch.tensor(1.0, device=device)
        model, guide = kl_weighted(pair.model), kl_weighted(pair.guide)
        if self.compiled:
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

    def __call__(self, x: torch.Tensor) -> float:
        """−objective summed over the batch ``x`` (nats), after one optimizer step."""
        return self.svi.step(x, self.beta)


def check_training_setup(pair: Pair, train_x: torch.Tensor, test_x: torch.Tensor, options: TrainOptions) -> list[str]:
    """All checks that need data, before anything is written; returns notes to print.

    The pair follows the protocol on a small batch (this also creates its parameters), the batch size
    fits the data, and every training/test image lies in the likelihood's support.
    """
    if options.batch_size > train_x.shape[0]:
        raise BadInput(f"--batch-size {options.batch_size} is larger than the {train_x.shape[0]} training images")
    generator = torch.Generator(device=train_x.device).manual_seed(options.seed)
    sample = train_x[:4] if options.binarize == "none" else binarize(train_x[:4], generator)
    guide_trace, model_trace = check_pair(pair, sample)
    likelihood = model_trace.nodes[OBSERVED]["fn"]
    if options.binarize == "none":  # binarized pixels are 0/1, in every likelihood's support
        for split, images in (("training", train_x), ("test", test_x)):
            if not bool(likelihood.support.check(images).all()):
                raise BadInput(
                    f"the {family_name(likelihood)} likelihood does not support the {split} images "
                    f"({int(torch.unique(images).numel())} distinct pixel values): use --binarize dynamic "
                    f"or a likelihood for grey levels (--likelihood continuous-bernoulli / gaussian)")
    note = analytic_kl_note(options.elbo, guide_trace, model_trace)
    return [note] if note else []


def _install_sigint_flag() -> tuple[threading.Event, Callable[[], None]]:
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return flag, lambda: None
    previous = signal.signal(signal.SIGINT, lambda *_: flag.set())
    return flag, lambda: signal.signal(signal.SIGINT, previous)


def train(pair: Pair, train_x: torch.Tensor, test_x: torch.Tensor, options: TrainOptions,
          state: TrainState | None = None, save: Callable[[TrainState], None] | None = None,
          log: Callable[[str], None] | None = None, progress: bool | None = None) -> TrainState:
    """Fit ``pair`` by SVI from ``state`` (fresh when None) up to ``options.epochs``; returns the final state.

    ``train_x``/``test_x`` are image tensors in [0, 1] on the training device; ``save`` is called after
    every epoch (and on Ctrl-C) with a state that :func:`train` can resume from exactly.
    ``progress=None`` shows a bar when stderr is a terminal.
    """
    log = log or (lambda line: tqdm.write(line))
    state = state or TrainState()
    n = train_x.shape[0]
    steps_per_epoch = math.ceil(n / options.batch_size)
    test_images = evaluation_images(test_x, options.binarize)
    training_images = TrainingImages(train_x, options.binarize, options.seed)

    data_rng = torch.Generator(device=train_x.device).manual_seed(options.seed)
    if state.data_rng is not None:
        data_rng.set_state(state.data_rng)
    if state.torch_rng is not None:
        torch.set_rng_state(state.torch_rng)

    optimizer = CheckedAdam(options.lr)
    if state.optimizer:
        optimizer.set_state(state.optimizer)
    training_step = TrainingStep(pair, options, optimizer, device=train_x.device)

    interrupted, restore_sigint = _install_sigint_flag()
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
                images = training_images.epoch(data_rng)
                batches = shuffled_batches(n, options.batch_size, data_rng)
                started = time.perf_counter()
                with training_step.running():
                    for step in range(state.step, steps_per_epoch):
                        try:
                            loss = training_step(images[batches[step]])
                        except _NonFiniteGradient:
                            loss = math.nan
                        except ValueError as error:  # torch's argument validation meeting NaN parameters
                            if "found invalid values" not in str(error):
                                raise
                            loss = math.nan
                        if not math.isfinite(loss):
                            raise Diverged(
                                f"training diverged at epoch {epoch}, step {step + 1}: the loss or its gradient is "
                                f"not finite; lower --lr (now {options.lr}) or, for a Gaussian likelihood, raise "
                                f"--likelihood-scale; the last good checkpoint is kept")
                        state.partial_loss += loss
                        state.step = step + 1
                        bar.update()
                        bar.set_postfix_str(f"epoch {epoch} -ELBO/img {loss / len(batches[step]):.2f}", refresh=False)
                        if interrupted.is_set() and state.step < steps_per_epoch:
                            _snapshot(state, optimizer, epoch_start_rng)
                            _save(save, pair, state)
                            raise Interrupted(state)
                metrics = elbo_means(pair, test_images)
                row = {"epoch": epoch, "beta": beta, "train_loss": state.partial_loss / n,
                       "test_elbo": metrics["elbo"], "test_log_likelihood": metrics["log_likelihood"],
                       "test_kl": metrics["kl"], "test_log_prior": metrics["log_prior"]}
                state.history.append(row)
                state.epoch, state.step, state.partial_loss = epoch, 0, 0.0
                _snapshot(state, optimizer, data_rng.get_state())
                _save(save, pair, state)
                log(_row(row, time.perf_counter() - started))
                if interrupted.is_set():
                    raise Interrupted(state)
    finally:
        bar.close()
        restore_sigint()
    return state


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

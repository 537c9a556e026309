"""NUTS on the true posterior p(z | x) ∝ p(z) p(x | z) of a few images, from the pair's own model.

The potential energy is U(z) = −log p(x, z) = −log p(z) − log p(x | z) (nats), read from the very
model function that was trained (Pyro's ``initialize_model`` traces it with x observed), so the
sampled distribution is exactly the posterior the guide q(z | x) approximates. The decoder's
parameters stay as trained: no optimizer sees them and NUTS differentiates U with respect to z only.

Vectorization. Images are independent given the decoder, and ``R`` chains of one image are
independent copies of the same posterior. Both are passed through the data plate at once:
the model sees ``x_rep`` of shape ``(R · N, C, H, W)`` (chain-major: row ``r · N + n`` is chain r of
image n), whose joint posterior is Π_{r,n} p(z_{r,n} | x_n). One NUTS run on that product state
gives R chains per image for the price of one batched decoder pass per leapfrog step; the
diagonal mass matrix is adapted per coordinate, so each image and chain gets its own scale.
What the copies share is the step size and the trajectory length (chosen for the whole state):
divergences and tree depths are properties of the joint state, not of one image. ``group_size``
splits the images into several such runs, one after another. One state for all is the default because
it was faster: 16 digits images, d = 16, same settings, one state 48 s against 148 s for four states
of 4 images (smaller states mixed somewhat better per draw, not per second).

Chains start from independent uniform draws in [−2, 2]^d (Pyro's ``init_to_uniform``), which is
over-dispersed relative to a posterior under a N(0, I) prior, as R-hat needs.

Defaults (4 chains, 200 warm-up, 1200 draws, tree depth ≤ 3). On the vectorized state NUTS settles at
depth 4 (15 leapfrog steps per draw); capping it at 3 (7 steps) gave more tail-ESS per gradient
evaluation (digits VAE, 16 test images: 189 vs 158 per 1000 evaluations at d = 16, 362 vs 182 at d = 2),
so more, cheaper draws buy healthier R-hat for the same time. Same images, d = 16: 400 draws at depth
4 flagged 3 of 16 images (max R-hat 1.017); 1000 draws at depth ≤ 3 had max R-hat 1.010 (2 images at
the 1.01 line), 1200 draws none; every run had bulk and tail ESS > 700 per image. A posterior that
needs long trajectories (strong correlations a diagonal mass matrix cannot undo) then shows up as
low ESS / high R-hat in the table; raise ``max_tree_depth`` for it.

Threads. Each leapfrog step is a small batched decoder pass (~1-4 ms, mostly Pyro's tracing);
intra-op threads do not speed that up and, on a busy machine, OpenMP spin-waiting made a 2-thread
gradient evaluation 60× slower than a 1-thread one (111 ms vs 1.9 ms, digits decoder, 64 rows).
Sampling therefore runs with ``threads`` = 1 torch thread by default and restores the setting after.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch

import pyro
from pyro.infer import MCMC, NUTS
from pyro.infer.mcmc.util import initialize_model

from bayesvae.models.errors import BadInput
from bayesvae.models.pair import Pair
from bayesvae.models.sites import LATENT, MAX_PLATE_NESTING


@dataclass
class NUTSOptions:
    """Settings of one posterior sampling job (validated by :meth:`check`)."""

    chains: int = 4
    warmup: int = 200
    draws: int = 1200
    group_size: int | None = None      # images per NUTS state; None = all images in one state
    target_accept: float = 0.8
    max_tree_depth: int = 3            # ≤ 7 leapfrog steps per draw: see module docstring
    threads: int = 1                   # torch threads while sampling (see module docstring)
    progress: bool = True

    def check(self) -> "NUTSOptions":
        for name, low in (("chains", 1), ("draws", 1), ("warmup", 0), ("max_tree_depth", 1), ("threads", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise BadInput(f"--{name.replace('_', '-')} must be a whole number ≥ {low}, got {value!r}")
        if self.group_size is not None and (not isinstance(self.group_size, int) or self.group_size < 1):
            raise BadInput(f"--mcmc-group-size must be a whole number ≥ 1, got {self.group_size!r}")
        if not 0 < self.target_accept < 1:
            raise BadInput(f"--mcmc-target-accept must be in (0, 1), got {self.target_accept!r}")
        return self


@dataclass
class PosteriorDraws:
    """Draws from p(z | x) for N images, R chains each, and what NUTS did to get them.

    ``z``: (R, draws, N, d). Per NUTS state (``group`` gives each image's state):
    ``diverging`` and ``tree_depth``/``n_leapfrog`` (draws,) per group, ``step_size``, ``seconds`` (wall time
    of warm-up + sampling) and ``cpu_seconds`` (this process's CPU time, what the run costs on an idle core)
    per group.
    """

    z: torch.Tensor
    group: list[int]
    diverging: list[torch.Tensor]
    n_leapfrog: list[torch.Tensor]
    step_size: list[float]
    seconds: list[float]
    cpu_seconds: list[float]
    options: NUTSOptions = field(default_factory=NUTSOptions)

    @property
    def tree_depth(self) -> list[torch.Tensor]:
        """Trajectory doublings per draw: n leapfrog steps need ⌊log₂ n⌋ + 1 doublings."""
        return [torch.floor(torch.log2(n.clamp(min=1).double())).long() + 1 for n in self.n_leapfrog]

    def image_seconds(self) -> torch.Tensor:
        """Wall time of the NUTS run each image was sampled in, seconds, shape (N,)."""
        return torch.tensor([self.seconds[g] for g in self.group])

    def image_divergences(self) -> torch.Tensor:
        """Divergent transitions after warm-up of the state each image was sampled in, shape (N,)."""
        return torch.tensor([int(self.diverging[g].sum()) for g in self.group])


class _CountingPotential:
    """U(z) = −log p(x, z) with a counter: NUTS evaluates U (and its gradient) once per leapfrog step,
    and Pyro does not report tree depth, so it is read from this count (``n_leapfrog`` per draw)."""

    def __init__(self, potential_fn):
        self.potential_fn = potential_fn
        self.calls = 0

    def __call__(self, params):
        self.calls += 1
        return self.potential_fn(params)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sample_group(pair: Pair, x: torch.Tensor, options: NUTSOptions):
    """One NUTS run on the product posterior of the images ``x`` (N, ...), R chains as plate copies."""
    R, N = options.chains, x.shape[0]
    x_rep = x.unsqueeze(0).expand(R, *x.shape).reshape(R * N, *x.shape[1:])
    with pair.active():
        # U(z) = −log p(z) − log p(x_rep | z) from the trained model itself, x observed
        init, potential_fn, transforms, _ = initialize_model(
            pair.model, model_args=(x_rep,), max_plate_nesting=MAX_PLATE_NESTING,
            jit_compile=False)  # torch.jit tracing fails here on torch 2.14 ("Unsupported value kind: Tensor")
        potential = _CountingPotential(potential_fn)
        kernel = NUTS(potential_fn=potential, target_accept_prob=options.target_accept,
                      max_tree_depth=options.max_tree_depth)
        counts: list[int] = []

        def after_each_draw(kernel, params, stage, i):
            counts.append(potential.calls)

        mcmc = MCMC(kernel, num_samples=options.draws, warmup_steps=options.warmup, initial_params=init,
                    transforms=transforms, hook_fn=after_each_draw, disable_progbar=not options.progress)
        started, cpu_started = time.perf_counter(), time.process_time()
        mcmc.run(x_rep)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    z = mcmc.get_samples()[LATENT].detach()                      # (draws, R·N, d)
    z = z.reshape(options.draws, R, N, -1).transpose(0, 1)       # (R, draws, N, d)
    # gradient evaluations per iteration; with warmup = 0 the first draw also counts NUTS's set-up calls
    calls = torch.tensor([0] + counts)
    n_leapfrog = (calls[1:] - calls[:-1])[-options.draws:]
    diverging = torch.zeros(options.draws, dtype=torch.bool)
    for index in mcmc.diagnostics()["divergences"].get("chain 0", []):
        diverging[index] = True
    return z, diverging, n_leapfrog, float(kernel.step_size), seconds, cpu_seconds


def sample_posterior(pair: Pair, x: torch.Tensor, options: NUTSOptions | None = None,
                     seed: int | None = None) -> PosteriorDraws:
    """Draw from p(z | x_n) for each image x_n (rows of ``x``, shape (N, C, H, W)) with NUTS.

    Returns :class:`PosteriorDraws` with z of shape (chains, draws, N, d). ``seed`` fixes Pyro's and
    torch's random state first (initial points, momenta, tree directions).
    """
    options = (options or NUTSOptions()).check()
    if seed is not None:
        pyro.set_rng_seed(seed)
    N = x.shape[0]
    size = options.group_size or N
    starts = list(range(0, N, size))
    parts, group, diverging, n_leapfrog, step_size, seconds, cpu_seconds = [], [], [], [], [], [], []
    for g, start in enumerate(starts):
        xs = x[start:start + size].detach()
        with torch_threads(options.threads):
            z, div, leap, eps, sec, cpu = _sample_group(pair, xs, options)
        parts.append(z)
        group += [g] * len(xs)
        diverging.append(div)
        n_leapfrog.append(leap)
        step_size.append(eps)
        seconds.append(sec)
        cpu_seconds.append(cpu)
    return PosteriorDraws(torch.cat(parts, dim=2), group, diverging, n_leapfrog, step_size, seconds, cpu_seconds,
                          options)


def check_finite_draws(draws: PosteriorDraws) -> None:
    """NUTS on a model whose log-density overflows returns NaN draws; say so instead of summarizing them."""
    if not torch.isfinite(draws.z).all():
        raise BadInput("NUTS produced non-finite draws of z: the model's log p(x, z) is not finite "
                       "everywhere (check the likelihood on these images)")
    if math.isnan(sum(draws.step_size)):
        raise BadInput("NUTS adaptation failed (step size NaN)")

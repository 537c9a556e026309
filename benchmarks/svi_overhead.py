"""SVI overhead: an epoch of bayesvae's training step over an epoch of the hand-written PyTorch loop.

Both sides train the same networks (784-400-50 MLP, or the conv nets) with the same objective, batch
size, learning rate and thread count on the same binarized images already in memory, taking the same
shuffled batches (``x[index]`` per step, as :func:`bayesvae.inference.train.train` does). Epochs
alternate (bayesvae, hand-written, bayesvae, ...) and the ratio of neighbouring epochs is summarized.

bayesvae's side is :class:`bayesvae.inference.step.TrainingStep`, the object ``train`` runs: Pyro's
``SVI`` with the compiled ELBO and :class:`~bayesvae.inference.optimizer.CheckedAdam`. At the reference
setting (MLP, batch 128) two more contenders show where the time went:

* ``pyro, interpreted``: the same step with the ELBO not compiled;
* ``pyro, plain``: what a Pyro user writes first — ``SVI(model, guide, pyro.optim.Adam, Trace_ELBO())``
  with Pyro's default validation, one torch optimizer per parameter (the issue's 1.3x starting point).

IWAE (``--elbo iwae``, K particles) is timed the same way against a hand-written IWAE loop, at
MLP batch 128 and K = 5 and 50, with the interpreted ``RenyiELBO`` beside the compiled one.

``torch.compile`` was tried on Pyro's ELBO and is not used: about 28 s of compilation, graph breaks at
the ``.item()`` calls inside Pyro's ELBO, and steps 15 % slower than the interpreted ELBO (784-400-50,
batch 128, one thread; torch 2.14, pyro 1.9.2).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pyro
import pyro.optim
import torch
from pyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO

from bayesvae.inference.batches import shuffled_batches
from bayesvae.inference.optimizer import CheckedAdam
from bayesvae.inference.options import TrainOptions
from bayesvae.inference.step import TrainingStep
from bayesvae.models.build import ModelSpec, build_pair

from .common import Ratio, Timings, interleaved, median
from .handwritten_vae import HandWrittenStep, HandWrittenVAE

LATENT_DIM, HIDDEN, LR = 50, (400,), 1e-3
REFERENCE = ("mlp", 128)


def bayesvae_pair(net: str, image_shape, seed: int = 0):
    pyro.set_rng_seed(seed)
    pair = build_pair(ModelSpec(net=net, hidden=HIDDEN, latent_dim=LATENT_DIM), image_shape)
    pair.initialize(torch.zeros(2, *image_shape))
    return pair


def plain_pyro_step(pair, objective: str):
    """``SVI.step`` as in Pyro's VAE example: Pyro's defaults throughout, no KL weight."""
    elbo = Trace_ELBO() if objective == "mc" else TraceMeanField_ELBO()
    return SVI(pair.model, pair.guide, pyro.optim.Adam({"lr": LR}), loss=elbo).step


def epoch(step, x: torch.Tensor, batches: list[torch.Tensor], scope=contextlib.nullcontext):
    """One pass over ``batches`` of ``x`` through ``step``, inside ``scope()`` (as ``train`` runs its steps)."""
    def run() -> None:
        with scope():
            for index in batches:
                step(x[index])
    return run


@dataclass
class Row:
    net: str
    batch_size: int
    objective: str
    steps: int
    seconds: dict[str, float]          # median wall seconds per epoch, per contender
    wall: dict[str, Ratio]              # contender / hand-written, wall time
    cpu: dict[str, Ratio]               # contender / hand-written, CPU time of this process
    particles: int = 1


def measure(x: torch.Tensor, net: str, batch_size: int, objective: str, repetitions: int,
            extra: bool = False, particles: int = 1) -> Row:
    """Alternating epochs of the contenders over the binary images ``x``; ratios to the hand-written loop."""
    image_shape = tuple(x.shape[1:])
    batches = shuffled_batches(x.shape[0], batch_size, torch.Generator().manual_seed(0))
    options = TrainOptions(elbo=objective, batch_size=batch_size, lr=LR, particles=particles)
    contenders = {}
    step = TrainingStep(bayesvae_pair(net, image_shape), options, CheckedAdam(LR))
    contenders["bayesvae"] = epoch(step, x, batches, step.running)
    torch.manual_seed(0)
    hand = HandWrittenStep(HandWrittenVAE(net, image_shape, HIDDEN, LATENT_DIM), objective, LR, particles)
    contenders["hand-written"] = epoch(hand, x, batches)
    if extra or objective == "iwae":
        interpreted = TrainingStep(bayesvae_pair(net, image_shape), options, CheckedAdam(LR), compiled=False)
        contenders["pyro, interpreted"] = epoch(interpreted, x, batches, interpreted.running)
    if extra:
        plain = bayesvae_pair(net, image_shape)
        contenders["pyro, plain"] = epoch(plain_pyro_step(plain, objective), x, batches, plain.active)
    timings: Timings = interleaved(contenders, repetitions)
    base = "hand-written"
    return Row(net, batch_size, objective, len(batches),
               {name: median(t) for name, t in timings.wall.items()},
               {name: Ratio.of(timings.wall[name], timings.wall[base]) for name in contenders if name != base},
               {name: Ratio.of(timings.cpu[name], timings.cpu[base]) for name in contenders if name != base},
               particles)


def run_iwae(x_grey: torch.Tensor, images: dict[int, int], batch_size: int, repetitions: int, log=print) -> list[Row]:
    """IWAE rows: for each K in ``images`` (K → number of images), MLP at ``batch_size``."""
    return [row for k, n in images.items()
            for row in run(x_grey[:n], ["mlp"], [batch_size], ["iwae"], repetitions, log, particles=k)]


def markdown_iwae(rows: list[Row]) -> list[str]:
    lines = ["| objective | K | net | batch | steps/epoch | hand-written s/epoch | bayesvae s/epoch | "
             "**ratio (wall)** median [min–max] | ratio (CPU time) | interpreted RenyiELBO (wall) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| iwae | {r.particles} | {r.net} | {r.batch_size} | {r.steps} | {r.seconds['hand-written']:.3f} | "
                     f"{r.seconds['bayesvae']:.3f} | **{r.wall['bayesvae']}** | {r.cpu['bayesvae']} | "
                     f"{r.wall['pyro, interpreted']} |")
    return lines


def run(x_grey: torch.Tensor, nets, batch_sizes, objectives, repetitions: int, log=print,
        particles: int = 1) -> list[Row]:
    x = torch.bernoulli(x_grey, generator=torch.Generator().manual_seed(0))
    rows = []
    for objective in objectives:
        for net in nets:
            for batch_size in batch_sizes:
                row = measure(x, net, batch_size, objective, repetitions, particles=particles,
                              extra=(net, batch_size) == REFERENCE and particles == 1)
                log(f"  svi overhead  {objective:8s} K={particles:<3d} {net:4s} batch {batch_size:4d}: "
                    + "  ".join(f"{name} {ratio}" for name, ratio in row.wall.items()))
                rows.append(row)
    return rows


def markdown(rows: list[Row]) -> list[str]:
    lines = ["| objective | net | batch | steps/epoch | hand-written s/epoch | bayesvae s/epoch | "
             "**ratio (wall)** median [min–max] | ratio (CPU time) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.objective} | {r.net} | {r.batch_size} | {r.steps} | {r.seconds['hand-written']:.3f} | "
                     f"{r.seconds['bayesvae']:.3f} | **{r.wall['bayesvae']}** | {r.cpu['bayesvae']} |")
    extra = [r for r in rows if len(r.wall) > 1]
    if extra:
        lines += ["", "Where the time went, at the reference setting (ratio to the hand-written loop):", "",
                  "| objective | net | batch | contender | s/epoch | ratio (wall) | ratio (CPU time) |",
                  "|---|---|---|---|---|---|---|"]
        for r in extra:
            for name in r.wall:
                lines.append(f"| {r.objective} | {r.net} | {r.batch_size} | {name} | {r.seconds[name]:.3f} | "
                             f"{r.wall[name]} | {r.cpu[name]} |")
    return lines

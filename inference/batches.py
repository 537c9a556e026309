"""Data handling inside training: binarization and shuffled batches, tensors on the device, no per-image Python.

Binarization turns grey levels p ∈ [0, 1] into pixels x ~ Bernoulli(p), so a Bernoulli likelihood is
a probability of the data it scores: ``dynamic`` draws new pixels every epoch (a regularizer, the
usual MNIST practice), ``fixed`` draws them once, ``none`` keeps grey levels. Evaluation always
uses one fixed draw (seed 0, drawn on the CPU whatever the data's device) so that every run of a data
set, on a CPU or a GPU, is scored on the same binary images.

An epoch's data handling (binarization, shuffling, batching) must stay a small part of the epoch
(benchmarks/data_pipeline.py measures it): random numbers are drawn only for grey pixels
(0 < p < 1; 0 and 1 are certain, 81 % of MNIST's pixels), and the dynamic binarization is written
into one buffer reused every epoch.
"""

from __future__ import annotations

from typing import Iterator

import torch

from bayesvae.models.errors import BadInput

BINARIZE = ("dynamic", "fixed", "none")
EVALUATION_SEED = 0


def check_binarize(mode: str) -> str:
    if mode not in BINARIZE:
        raise BadInput(f"unknown --binarize {mode!r}; choose one of: {', '.join(BINARIZE)}")
    return mode


class Binarizer:
    """Draws x ~ Bernoulli(p) pixel-wise for fixed grey levels ``p`` (one call, one fresh draw).

    Exact for every p: u ~ Uniform[0, 1) gives P(u < p) = p, and pixels at p = 0 or 1 need no draw.
    Each call writes into the same buffer and returns it: use the images before the next call.
    """

    def __init__(self, p: torch.Tensor):
        flat = p.reshape(-1)
        self.grey = ((flat > 0) & (flat < 1)).nonzero().squeeze(1)  # where a draw is needed
        self.p = flat[self.grey]
        self.images = (p >= 1).to(p.dtype).contiguous()            # the certain pixels, 0 or 1

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(self.p.shape, generator=generator, device=self.p.device, dtype=self.p.dtype)
        self.images.view(-1).scatter_(0, self.grey, (u < self.p).to(self.images.dtype))
        return self.images


def binarize(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """x ~ Bernoulli(p) pixel-wise, p the grey level (a new tensor)."""
    return Binarizer(x)(generator)


def evaluation_images(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The images diagnostics score: one fixed binarization (seed 0) unless ``mode`` is ``none``.

    Drawn with a CPU generator and moved to ``x``'s device: CUDA generators give other numbers for
    the same seed, and the test images must not depend on where a run is evaluated."""
    if mode == "none":
        return x
    generator = torch.Generator(device="cpu").manual_seed(EVALUATION_SEED)
    return binarize(x.cpu(), generator).to(x.device)


class TrainingImages:
    """The training images of each epoch: a fresh binarization (``dynamic``, drawn from the data
    generator), one draw made with ``seed`` (``fixed``), or the grey levels themselves (``none``)."""

    def __init__(self, x: torch.Tensor, mode: str, seed: int):
        self.dynamic = Binarizer(x) if mode == "dynamic" else None
        self.fixed = x
        if mode == "fixed":
            self.fixed = binarize(x, torch.Generator(device=x.device).manual_seed(seed))

    def epoch(self, generator: torch.Generator) -> torch.Tensor:
        """This epoch's images (dynamic: valid until the next call)."""
        return self.dynamic(generator) if self.dynamic is not None else self.fixed


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Index tensors of one epoch: a seeded permutation of ``range(n)`` cut into batches (last may be short)."""
    order = torch.randperm(n, generator=generator, device=generator.device)
    return list(order.split(batch_size))


def rank_share(indices: torch.Tensor, rank: int = 0, world: int = 1) -> torch.Tensor:
    """The part of one global batch that process ``rank`` of ``world`` trains on: contiguous, disjoint,
    sizes differing by at most one (``tensor_split``). Every rank draws the same global batches from the
    same data generator, so the union over ranks of each step's shares is the single-process batch."""
    return indices.tensor_split(world)[rank] if world > 1 else indices


def chunks(x: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``x`` along its first dimension, at most ``size`` long."""
    yield from x.split(size)

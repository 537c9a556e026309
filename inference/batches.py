"""Data handling inside training: binarization and shuffled batches, tensors on the device, no per-image Python.

Binarization turns grey levels p ∈ [0, 1] into pixels x ~ Bernoulli(p), so a Bernoulli likelihood is
a probability of the data it scores: ``dynamic`` draws new pixels every epoch (a regularizer, the
usual MNIST practice), ``fixed`` draws them once, ``none`` keeps grey levels. Evaluation always
uses one fixed draw (seed 0) so that every run of a data set is scored on the same binary images.
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


def binarize(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """x ~ Bernoulli(p) pixel-wise, p the grey level."""
    return torch.bernoulli(x, generator=generator)


def evaluation_images(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The images diagnostics score: one fixed binarization (seed 0) unless ``mode`` is ``none``."""
    if mode == "none":
        return x
    generator = torch.Generator(device=x.device).manual_seed(EVALUATION_SEED)
    return binarize(x, generator)


def epoch_images(x: torch.Tensor, mode: str, generator: torch.Generator, fixed: torch.Tensor | None) -> torch.Tensor:
    """The training images of one epoch: a fresh binarization (dynamic), the fixed one, or ``x``."""
    if mode == "dynamic":
        return binarize(x, generator)
    if mode == "fixed":
        assert fixed is not None
        return fixed
    return x


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Index tensors of one epoch: a seeded permutation of ``range(n)`` cut into batches (last may be short)."""
    order = torch.randperm(n, generator=generator, device=generator.device)
    return list(order.split(batch_size))


def chunks(x: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    """Consecutive slices of ``x`` along its first dimension, at most ``size`` long."""
    yield from x.split(size)

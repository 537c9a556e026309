"""Where training gets its images: one small interface for tensors in memory and for streamed data sets.

A *training source* has ``n`` (images), ``device``, ``head(k)`` (the first k grey-level images, for checks)
and ``epoch(data_rng, batch_size)``, which draws the epoch's random numbers from the data generator at once
(binarization, then the seeded permutation ``shuffled_batches``) and returns an :class:`EpochBatches`:
``epoch.batches(start_step, rank, world)`` yields, for each step from ``start_step`` on, the images at
``rank_share(global batch, rank, world)``. Every rank draws the same global batches, so the union of the
shares of a step is the single-process batch, and a resumed epoch skips its first steps without loading them.

A *test source* is a tensor (in memory) or an object with ``n`` and ``chunks(size)`` yielding the evaluation
images (one fixed binarization) in order; :func:`~.evaluate.elbo_means` accepts both.

The streamed implementations (image folders, memory-mapped arrays, torchvision's CIFAR-10/CelebA, read by a
torch DataLoader with workers) live in ``bayesvae.data.streaming``: inference never imports the data layer,
it only calls this interface. A streamed source is recognized by having an ``epoch`` method.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from bayesvae.models.errors import BadInput

from .batches import TrainingImages, evaluation_images, rank_share, shuffled_batches


class EpochBatches:
    """One epoch's batches: ``batches(start_step, rank, world)`` yields each step's share of images.
    ``images`` is the epoch's whole (binarized) tensor for in-memory data (M2 indexes its labelled picks
    into it), None for streamed data."""

    def __init__(self, steps: int, load: Callable[[int, int, int], Iterator[torch.Tensor]],
                 images: torch.Tensor | None = None):
        self.steps, self._load, self.images = steps, load, images

    def batches(self, start_step: int = 0, rank: int = 0, world: int = 1) -> Iterator[torch.Tensor]:
        return self._load(start_step, rank, world)


class InMemoryImages:
    """Training images held in one tensor on the training device (digits, MNIST, .npz): exactly today's path,
    the binarization of :class:`~.batches.TrainingImages` and index batches into the epoch's tensor."""

    def __init__(self, x: torch.Tensor, mode: str, seed: int):
        self.x, self.n, self.device = x, x.shape[0], x.device
        self._images = TrainingImages(x, mode, seed)

    def head(self, k: int) -> torch.Tensor:
        return self.x[:k]

    def epoch(self, data_rng: torch.Generator, batch_size: int) -> EpochBatches:
        images = self._images.epoch(data_rng)
        order = shuffled_batches(self.n, batch_size, data_rng)

        def load(start: int, rank: int, world: int) -> Iterator[torch.Tensor]:
            for indices in order[start:]:
                yield images[rank_share(indices, rank, world)]

        return EpochBatches(len(order), load, images)


def is_streamed(data) -> bool:
    return not isinstance(data, torch.Tensor)


def training_source(data, mode: str, seed: int):
    """The source of the training images: a tensor becomes :class:`InMemoryImages`; a streamed data set
    (``bayesvae.data.streaming.ImageStream``) gives its own ``training(mode, seed)`` source."""
    return data.training(mode, seed) if is_streamed(data) else InMemoryImages(data, mode, seed)


def test_source(data, mode: str):
    """The images the per-epoch evaluation scores: one fixed binarization (see :mod:`.batches`)."""
    return data.evaluation(mode) if is_streamed(data) else evaluation_images(data, mode)


def head(data, k: int) -> torch.Tensor:
    """The first ``k`` grey-level images of a tensor or a streamed data set."""
    return data.head(k) if is_streamed(data) else data[:k]


def count(data) -> int:
    return data.n if is_streamed(data) else data.shape[0]


SUPPORT_SAMPLE = 256


def support_sample(data) -> torch.Tensor:
    """The images whose pixels are checked against the likelihood's support: all of a tensor, the first
    256 of a stream (its readers give grey levels in [0, 1] by construction)."""
    return data.head(SUPPORT_SAMPLE) if is_streamed(data) else data


def check_in_memory_for(site: str | None, data) -> None:
    """Refuse a model with a discrete site on streamed data: M2's labelled batches and the exact enumeration
    of the test ELBO index into images held in memory."""
    if site and is_streamed(data):
        raise BadInput(f"a model with a discrete site ({site!r}, e.g. --model m2) trains on data in memory only: "
                       f"streamed data sets (image folders with --stream, .npy, cifar10, celeba) are refused")

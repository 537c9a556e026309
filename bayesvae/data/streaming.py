"""Streamed data sets: images read from disk in batches by a torch DataLoader with worker processes.

An :class:`ImageStream` wraps a map-style torch ``Dataset`` whose items are grey levels p ∈ [0, 1], float32
(C, H, W) (image folders, memory-mapped ``.npy`` arrays, torchvision's CIFAR-10 and CelebA: the readers of
this package). It implements the training/test source interface of ``bayesvae.inference.image_source``:

* the batches are exactly the in-memory path's: the global batches come from ``shuffled_batches(n, B,
  data_rng)`` and a *batch sampler* hands the DataLoader ``rank_share(batch, rank, world)`` step by step,
  starting at the resumed step (earlier steps are never loaded). torch's DistributedSampler is not used:
  it pads with duplicates and interleaves ranks, which changes the gradient of a step; splitting each
  seeded global batch keeps the union of the shares equal to the single-process batch.
* binarization x ~ Bernoulli(p) is drawn per image, in the worker, from the image's own generator seeded
  with a hash of (key, index), u ~ Uniform[0, 1), x = [u < p] (exact for every p): ``dynamic`` takes a
  new key each epoch from the data generator (so a resumed epoch and any number of ranks draw the same
  pixels), ``fixed`` the key 1 + seed, evaluation the key 0 (one fixed binarization, as in memory, but not the
  same draw as the in-memory path's: with ``--binarize none`` both paths give the same numbers).
* worker errors (an image that cannot be decoded, a pixel outside [0, 1]) are :class:`BadInput` raised in
  the worker; the DataLoader re-raises them wrapped in a traceback, :func:`_one_line` restores the one line.
"""

from __future__ import annotations

import hashlib
import signal
from typing import Iterator

import torch
from torch.utils.data import DataLoader

from bayesvae.inference.batches import rank_share, shuffled_batches
from bayesvae.inference.image_source import EpochBatches
from bayesvae.inference.resources import check_fits
from bayesvae.models.errors import BadInput

EVALUATION_KEY = 0
DYNAMIC_KEYS = 2**31   # epoch keys are drawn from [2^33, 2^33 + 2^31): apart from evaluation's (0) and fixed (1 + seed < 2^33)


def _image_seed(key: int, index: int) -> int:
    """63 bits of BLAKE2b of (key, index): a distinct seed for every pair (up to a 2⁻⁶³ collision)."""
    return int.from_bytes(hashlib.blake2b(f"{key}:{index}".encode(), digest_size=8).digest(), "little") >> 1


class _Keyed(torch.utils.data.Dataset):
    """Items ``(index, key)`` → image ``index``, binarized with the generator of (key, index) (key None: grey)."""

    def __init__(self, images: torch.utils.data.Dataset):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: tuple[int, int | None]) -> torch.Tensor:
        index, key = item
        p = self.images[index]
        if key is None:
            return p
        u = torch.rand(p.shape, generator=torch.Generator().manual_seed(_image_seed(key, index)))
        return (u < p).to(p.dtype)


class _Batches:
    """A batch sampler whose batches are set before each pass (lists of ``(index, key)``)."""

    def __init__(self):
        self.batches: list[list[tuple[int, int | None]]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _ignore_ctrl_c(_worker: int) -> None:
    """Ctrl-C in a terminal reaches the whole process group: the workers leave it to the training process,
    which finishes its step (or its test ELBO, read by these workers), saves and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _one_line(error: BadInput) -> BadInput:
    """The worker's own message (the DataLoader prefixes it with the worker's traceback)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else str(error)
    return BadInput(last.split("BadInput: ", 1)[-1])


class _Loader:
    """One DataLoader (its workers kept alive between passes) over a mutable list of batches."""

    def __init__(self, images, workers: int, device: torch.device):
        self.sampler, self.device = _Batches(), device
        self.loader = DataLoader(_Keyed(images), batch_sampler=self.sampler, num_workers=workers,
                                 persistent_workers=workers > 0, pin_memory=device.type == "cuda",
                                 worker_init_fn=_ignore_ctrl_c,
                                 generator=torch.Generator())  # its own seed: torch's global RNG is untouched

    def close(self) -> None:
        """Stop the workers now. Written by hand because torch has no public call for it: persistent workers
        stop when the DataLoader's iterator is garbage-collected, and when that happened inside a cycle
        collection (during an unrelated import, say) each worker's join waited out its 5 s timeout."""
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self.loader._iterator = None

    def __call__(self, batches: list[list[tuple[int, int | None]]], shape: tuple[int, ...]) -> Iterator[torch.Tensor]:
        """The batches' images in order; an empty share (a short last batch split over many ranks) is an
        empty (0, C, H, W) tensor, so every rank sees the same number of steps."""
        self.sampler.batches = [batch for batch in batches if batch]
        loaded = iter(self.loader)
        try:
            for batch in batches:
                images = next(loaded) if batch else torch.empty(0, *shape)
                yield images.to(self.device, non_blocking=True)
        except BadInput as error:
            raise _one_line(error) from None


class ImageStream:
    """One split of a streamed data set: ``n`` images of ``image_shape`` read by ``workers`` processes."""

    def __init__(self, images: torch.utils.data.Dataset, image_shape: tuple[int, ...], workers: int):
        self.images, self.image_shape, self.workers = images, tuple(image_shape), workers
        self.n, self.device = len(images), torch.device("cpu")
        self._loader = None

    def to(self, device) -> "ImageStream":
        self.device, self._loader = torch.device(device), None
        return self

    @property
    def loader(self) -> _Loader:
        if self._loader is None:
            self._loader = _Loader(self.images, self.workers, self.device)
        return self._loader

    def close(self) -> None:
        """Stop the reading workers (the next pass starts new ones)."""
        if self._loader is not None:
            self._loader.close()
            self._loader = None

    def head(self, k: int) -> torch.Tensor:
        """The first ``k`` images (grey levels), read in this process."""
        return torch.stack([self.images[i] for i in range(min(k, self.n))]).to(self.device)

    def training(self, mode: str, seed: int) -> "StreamedTraining":
        return StreamedTraining(self, mode, seed)

    def evaluation(self, mode: str) -> "StreamedEvaluation":
        return StreamedEvaluation(self, None if mode == "none" else EVALUATION_KEY)


class StreamedTraining:
    """The training source of a stream (``bayesvae.inference.image_source``'s interface)."""

    def __init__(self, stream: ImageStream, mode: str, seed: int):
        self.stream, self.mode, self.seed = stream, mode, seed
        self.n, self.device = stream.n, stream.device

    def head(self, k: int) -> torch.Tensor:
        return self.stream.head(k)

    def epoch(self, data_rng: torch.Generator, batch_size: int) -> EpochBatches:
        key = None if self.mode == "none" else 1 + self.seed
        if self.mode == "dynamic":
            key = 2**33 + int(torch.randint(DYNAMIC_KEYS, (1,), generator=data_rng, device=data_rng.device))
        order = shuffled_batches(self.n, batch_size, data_rng)

        def load(start: int, rank: int, world: int) -> Iterator[torch.Tensor]:
            shares = [rank_share(indices, rank, world).tolist() for indices in order[start:]]
            return self.stream.loader([[(i, key) for i in share] for share in shares], self.stream.image_shape)

        return EpochBatches(len(order), load)


class StreamedEvaluation:
    """The test images in order, each binarized with the evaluation key (or grey levels for ``none``)."""

    def __init__(self, stream: ImageStream, key: int | None):
        self.stream, self.key, self.n = stream, key, stream.n

    def chunks(self, size: int, limit: int | None = None) -> Iterator[torch.Tensor]:
        n = self.n if limit is None else min(limit, self.n)
        return self.stream.loader([[(i, self.key) for i in range(start, min(start + size, n))]
                                   for start in range(0, n, size)], self.stream.image_shape)

    def load(self, limit: int | None = None) -> torch.Tensor:
        """The first ``limit`` (all) evaluation images in memory: diagnose, compare and the pictures use these."""
        n = self.n if limit is None else min(limit, self.n)
        check_fits(n * 4 * torch.Size(self.stream.image_shape).numel(), self.stream.device.type,
                   f"{n} streamed images of shape {self.stream.image_shape}", "pass --max-images")
        try:
            return torch.cat(list(self.chunks(1000, n)))
        finally:
            self.stream.close()   # read once: the workers are not needed again

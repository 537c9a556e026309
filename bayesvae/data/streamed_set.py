"""A data set too large to hold in memory: two :class:`~.streaming.ImageStream` splits and their labels.

It stands where the in-memory :class:`~.dataset.Dataset` stands (``train_x``/``test_x`` are the streams,
which training reads batch by batch); ``split`` gives the stream and labels, and a run's diagnostics load
the test split's evaluation images into memory (:meth:`bayesvae.run.Run.images`): the test split is small
(10,000 CIFAR-10 images are 123 MB as float32) and ``--max-images`` bounds it further.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Subset

from bayesvae.models.errors import BadInput

from .dataset import split_order
from .streaming import ImageStream

DEFAULT_WORKERS = 2


@dataclass
class StreamedDataset:
    name: str
    train_x: ImageStream
    test_x: ImageStream
    train_y: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    note: str | None = None
    streamed = True

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.train_x.image_shape

    def split(self, name: str) -> tuple[ImageStream, torch.Tensor | None]:
        if name == "train":
            return self.train_x, self.train_y
        if name == "test":
            return self.test_x, self.test_y
        raise BadInput(f"unknown split {name!r}: choose train or test")

    def close(self) -> None:
        """Stop both splits' reading workers (a later pass starts new ones)."""
        self.train_x.close(), self.test_x.close()

    def to(self, device) -> "StreamedDataset":
        self.train_x.to(device), self.test_x.to(device)
        return self


def split_streams(name: str, images, labels: torch.Tensor | None, image_shape, workers: int | None,
                  note: str | None = None) -> StreamedDataset:
    """One indexable set of images cut by the fixed split of :func:`~.dataset.split_fixed` (same images)."""
    train, test = split_order(len(images))
    workers = DEFAULT_WORKERS if workers is None else workers
    pick = (lambda order: None if labels is None else labels[order])
    return StreamedDataset(name, ImageStream(Subset(images, train.tolist()), image_shape, workers),
                           ImageStream(Subset(images, test.tolist()), image_shape, workers),
                           pick(train), pick(test), note)


def two_streams(name: str, train, test, train_y, test_y, image_shape, workers: int | None) -> StreamedDataset:
    """A data set with its own train/test files (CIFAR-10, CelebA)."""
    workers = DEFAULT_WORKERS if workers is None else workers
    return StreamedDataset(name, ImageStream(train, image_shape, workers), ImageStream(test, image_shape, workers),
                           train_y, test_y)

"""The in-memory data set every command works on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bayesvae.models.errors import BadInput

SPLIT_SEED = 0
"""Seed of every deterministic train/test split, independent of the training seed."""


@dataclass
class Dataset:
    """Images in [0, 1], float32, shape (N, C, H, W); labels int64 (N,) or None (analysis only)."""

    name: str
    train_x: torch.Tensor
    test_x: torch.Tensor
    train_y: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    note: str | None = None

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(images, labels)`` of the ``train`` or ``test`` split."""
        if name == "train":
            return self.train_x, self.train_y
        if name == "test":
            return self.test_x, self.test_y
        raise BadInput(f"unknown split {name!r}: choose train or test")

    def close(self) -> None:
        """Nothing to stop: the images are in memory (a streamed set stops its reading workers)."""

    def to(self, device: torch.device | str) -> "Dataset":
        self.train_x, self.test_x = self.train_x.to(device), self.test_x.to(device)
        return self


def split_order(n: int, test_fraction: float = 1 / 6) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train indices, test indices)`` of the fixed split of ``n`` images (seed :data:`SPLIT_SEED`)."""
    n_test = max(1, round(n * test_fraction))
    if n - n_test < 1:
        raise BadInput(f"{n} image(s) are too few to split into training and test sets")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return order[n_test:], order[:n_test]


def split_fixed(x: torch.Tensor, y: torch.Tensor | None, test_fraction: float = 1 / 6):
    """A deterministic split (seed :data:`SPLIT_SEED`): ``(train_x, train_y, test_x, test_y)``."""
    train, test = split_order(x.shape[0], test_fraction)
    pick = (lambda t, i: None if t is None else t[i])
    return x[train], pick(y, train), x[test], pick(y, test)


def checked_images(images: torch.Tensor, what: str) -> torch.Tensor:
    """Float32 images (N, C, H, W) in [0, 1] from (N, H, W) or (N, C, H, W) uint8/bool/float arrays."""
    if images.dtype == torch.uint8:
        images = images.float() / 255
    elif images.dtype == torch.bool:
        images = images.float()
    elif images.dtype in (torch.float16, torch.float32, torch.float64):
        images = images.float()
        if not bool(torch.isfinite(images).all()):
            raise BadInput(f"{what} contains NaN or infinite pixel values")
        low, high = (float(images.min()), float(images.max())) if images.numel() else (0.0, 0.0)
        if low < 0 or high > 1:
            raise BadInput(f"{what} has pixel values in [{low:g}, {high:g}]; expected [0, 1] (or uint8 0–255)")
    else:
        raise BadInput(f"{what} has dtype {str(images.dtype).replace('torch.', '')}; expected uint8, bool or float")
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] < 1 or min(images.shape[2:]) < 1:
        raise BadInput(f"{what} has shape {tuple(images.shape)}; expected (N, H, W) or (N, C, H, W) with C = 1 or 3")
    return images.contiguous()


def checked_labels(labels: torch.Tensor | None, n: int, what: str) -> torch.Tensor | None:
    """Integer labels, one per image."""
    if labels is None:
        return None
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dtype.is_complex:
        raise BadInput(f"{what} has dtype {str(labels.dtype).replace('torch.', '')}; expected integers")
    labels = labels.reshape(-1).long()
    if labels.shape[0] != n:
        raise BadInput(f"{what} has {labels.shape[0]} labels for {n} images")
    return labels

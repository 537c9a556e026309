"""scikit-learn's 8×8 handwritten digits: 1,797 images, 17 grey levels, shipped inside scikit-learn.

The offline default data set: no download, a fixed stratified split of 1,437 training and 360 test images.
"""

from __future__ import annotations

import torch

from .dataset import SPLIT_SEED, Dataset


def load_digits() -> Dataset:
    """Digits scaled from 0–16 to [0, 1], shape (N, 1, 8, 8); labels 0–9."""
    from sklearn.datasets import load_digits as sklearn_digits  # imported on use: ~1.4 s
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    train, test = train_test_split(range(len(labels)), test_size=360, stratify=bunch.target,
                                   random_state=SPLIT_SEED)
    train, test = torch.tensor(train), torch.tensor(test)
    return Dataset("digits", images[train], images[test], labels[train], labels[test])

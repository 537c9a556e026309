"""Data sets as tensors in [0, 1] of shape (N, C, H, W), with a fixed train/test split.

``digits`` (scikit-learn's 8×8 digits, shipped with scikit-learn: the offline default), ``mnist``,
``fashion-mnist`` and ``kmnist`` (IDX files in ``--data-dir``, downloaded by torchvision when
missing), a ``.npz`` file of arrays, or a folder of images. Labels are kept for analysis only.
"""

from __future__ import annotations

from pathlib import Path

from bayesvae.models.errors import BadInput

from .dataset import Dataset
from .digits import load_digits
from .files import load_image_folder, load_npz
from .mnist_like import MNIST_LIKE, load_mnist_like

NAMED = ("digits", *MNIST_LIKE)


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """The data set ``name``: one of :data:`NAMED`, a path to a ``.npz`` file or to a folder of images."""
    if name == "digits":
        return load_digits()
    if name in MNIST_LIKE:
        return load_mnist_like(name, Path(data_dir) if data_dir else Path("data"), download)
    path = Path(name)
    if path.suffix == ".npz":
        return load_npz(path)
    if path.is_dir():
        return load_image_folder(path)
    if path.exists():
        raise BadInput(f"--dataset {name}: not a .npz file or a folder of images")
    raise BadInput(f"unknown --dataset {name!r}: choose one of {', '.join(NAMED)}, a .npz file or an image folder")


__all__ = ["Dataset", "NAMED", "load_dataset"]

"""MNIST, Fashion-MNIST and KMNIST: 28×28 grey images in IDX files.

Looked up in ``data_dir`` either flat (``train-images-idx3-ubyte[.gz]`` ...) or in torchvision's layout
(``data_dir/MNIST/raw/...``). When nothing is there and ``download`` is on, torchvision downloads
the official files (md5-checked) into ``data_dir``. A folder with only the test files
(``t10k-*``, 10,000 images) is split deterministically into 8,333 training and 1,667 test images.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from bayesvae.models.errors import BadInput

from .dataset import Dataset, checked_images, checked_labels, split_fixed
from .idx import read_idx

MNIST_LIKE = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _folder_with_files(data_dir: Path, name: str) -> Path | None:
    for folder in (data_dir, data_dir / MNIST_LIKE[name] / "raw"):
        if _find(folder, FILES["test"][0]) or _find(folder, FILES["train"][0]):
            return folder
    return None


def _download(name: str, data_dir: Path) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, MNIST_LIKE[name])
    # the folders this download creates (data_dir, data_dir/MNIST, .../raw): removed again if it fails
    created = [p for p in (data_dir, data_dir / MNIST_LIKE[name]) if not p.exists()]
    try:
        for train in (True, False):
            cls(root=str(data_dir), train=train, download=True)
    except BaseException as error:  # noqa: BLE001 - network errors come in many types; Ctrl-C too
        for folder in created[:1]:
            shutil.rmtree(folder, ignore_errors=True)
        if not isinstance(error, Exception):
            raise
        raise BadInput(f"could not download {name} into {data_dir} ({type(error).__name__}: {error}); "
                       f"put its IDX files in a folder and pass --data-dir") from None


def _read_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    images_path, labels_path = (_find(folder, stem) for stem in FILES[split])
    if images_path is None:
        return None
    if labels_path is None:
        raise BadInput(f"{folder}: found {images_path.name} but no {FILES[split][1]}[.gz]")
    images = checked_images(read_idx(images_path, 3), str(images_path))
    labels = checked_labels(read_idx(labels_path, 1), images.shape[0], str(labels_path))
    return images, labels


def load_mnist_like(name: str, data_dir: Path, download: bool = True) -> Dataset:
    """``name`` in :data:`MNIST_LIKE` from ``data_dir`` (downloading when allowed and missing)."""
    folder = _folder_with_files(data_dir, name)
    if folder is None:
        if not download:
            raise BadInput(f"no {name} IDX files in {data_dir} (expected t10k-images-idx3-ubyte[.gz] ...)")
        if data_dir.exists() and not data_dir.is_dir():
            raise BadInput(f"--data-dir {data_dir} is not a folder")
        _download(name, data_dir)
        folder = _folder_with_files(data_dir, name)
        if folder is None:
            raise BadInput(f"downloaded {name} but found no IDX files in {data_dir}")
    train, test = _read_split(folder, "train"), _read_split(folder, "test")
    if train is not None and test is not None:
        return Dataset(name, train[0], test[0], train[1], test[1])
    images, labels = train or test
    which = "training" if test is None else "test"
    train_x, train_y, test_x, test_y = split_fixed(images, labels)
    return Dataset(name, train_x, test_x, train_y, test_y,
                   note=f"{folder} holds only the {which} files: split {len(train_x)}/{len(test_x)} (fixed seed)")

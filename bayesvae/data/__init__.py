"""Data sets as tensors in [0, 1] of shape (N, C, H, W), with a fixed train/test split.

``digits`` (scikit-learn's 8×8 digits, shipped with scikit-learn: the offline default), ``mnist``,
``fashion-mnist`` and ``kmnist`` (IDX files in ``--data-dir``, downloaded by torchvision when
missing), a ``.npz`` file of arrays, or a folder of images. Labels are kept for analysis only.

Streamed (read batch by batch by a DataLoader, :mod:`.streaming`): ``cifar10`` and ``celeba`` (torchvision),
a ``.npy`` array (memory-mapped), and an image folder with ``stream=True`` (``--stream``: RGB kept, any size
with ``--image-size``). The others are loaded into memory as before.
"""

from __future__ import annotations

from pathlib import Path

from bayesvae.models.errors import BadInput

from .dataset import Dataset
from .digits import load_digits
from .files import load_image_folder, load_npz
from .folder_stream import stream_image_folder
from .memmap import stream_memmap
from .mnist_like import MNIST_LIKE, load_mnist_like
from .streamed_set import StreamedDataset
from .torchvision_sets import TORCHVISION_SETS, load_torchvision_set

NAMED = ("digits", *MNIST_LIKE, *TORCHVISION_SETS)


def is_streamed(name: str, stream: bool = False) -> bool:
    """Whether ``--dataset name`` is read batch by batch (see the module docstring)."""
    return stream or name in TORCHVISION_SETS or Path(name).suffix == ".npy"


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = True, stream: bool = False,
                 image_size: int | None = None, workers: int | None = None) -> Dataset | StreamedDataset:
    """The data set ``name``: one of :data:`NAMED`, a path to a ``.npz``/``.npy`` file or to a folder of images."""
    for given, what in ((image_size, "--image-size resizes"), (workers, "--workers reads")):
        if given is not None and not is_streamed(name, stream):
            raise BadInput(f"{what} streamed data only: add --stream (image folders), or use cifar10, celeba "
                           f"or a .npy array")
    path = Path(name)
    if stream and (name in ("digits", *MNIST_LIKE) or path.suffix == ".npz"):
        raise BadInput(f"--stream reads image folders (and .npy, cifar10, celeba, always streamed); "
                       f"--dataset {name} is loaded into memory")
    if name == "digits":
        return load_digits()
    if name in MNIST_LIKE:
        return load_mnist_like(name, Path(data_dir) if data_dir else Path("data"), download)
    if name in TORCHVISION_SETS:
        return load_torchvision_set(name, Path(data_dir) if data_dir else Path("data"), download, image_size, workers)
    if path.suffix == ".npz":
        return load_npz(path)
    if path.suffix == ".npy":
        return stream_memmap(path, workers)
    if path.is_dir():
        return stream_image_folder(path, image_size, workers) if stream else load_image_folder(path)
    if path.exists():
        raise BadInput(f"--dataset {name}: not a .npz or .npy file or a folder of images")
    raise BadInput(f"unknown --dataset {name!r}: choose one of {', '.join(NAMED)}, a .npz or .npy file or an "
                   f"image folder")


__all__ = ["Dataset", "NAMED", "StreamedDataset", "is_streamed", "load_dataset"]

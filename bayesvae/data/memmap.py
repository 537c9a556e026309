"""A ``.npy`` array of images opened as a memory map (``np.load(mmap_mode="r")``, never unpickled): the
operating system pages in the images a batch needs, so the array may be larger than memory.

Shape (N, H, W) or (N, C, H, W) with C = 1 or 3 (channels first); dtype uint8 (0–255, divided by 255),
bool, or float16/32/64 with values in [0, 1] (checked image by image as they are read: a value outside
stops training with one line). The fixed 5:1 train/test split of the in-memory readers; no labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bayesvae.models.errors import BadInput

from .streamed_set import StreamedDataset, split_streams

DTYPES = ("uint8", "bool", "float16", "float32", "float64")


class MemmapImages(torch.utils.data.Dataset):
    """Image ``i`` of the memory-mapped array as float32 (C, H, W) in [0, 1]."""

    def __init__(self, path: Path, array: np.memmap):
        self.path, self.array = path, array

    def __len__(self) -> int:
        return self.array.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        image = torch.from_numpy(np.array(self.array[index]))
        if image.ndim == 2:
            image = image.unsqueeze(0)
        if image.dtype == torch.uint8:
            return image.float() / 255
        image = image.float()
        if image.dtype != torch.bool and not bool(((image >= 0) & (image <= 1)).all()):
            raise BadInput(f"{self.path}: image {index} has pixel values outside [0, 1] (or NaN)")
        return image


def open_memmap(path: Path) -> np.ndarray:
    """The array of ``path``, memory-mapped read-only, its shape and dtype checked (one line if wrong)."""
    if not path.is_file():
        raise BadInput(f"--dataset {path}: no such file")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise BadInput(f"{path}: not a readable .npy array ({error})") from None
    if array.dtype.name not in DTYPES:
        raise BadInput(f"{path}: dtype {array.dtype} is not one of {', '.join(DTYPES)}")
    shape = array.shape
    channels_ok = len(shape) == 3 or (len(shape) == 4 and shape[1] in (1, 3))
    if not channels_ok or shape[0] < 2 or min(shape[1:]) < 1:
        raise BadInput(f"{path}: shape {shape}; expected (N, H, W) or (N, C, H, W) with C = 1 or 3, channels "
                       f"first, N ≥ 2")
    return array


def stream_memmap(path: Path, workers: int | None) -> StreamedDataset:
    array = open_memmap(path)
    image_shape = (1, *array.shape[1:]) if array.ndim == 3 else tuple(array.shape[1:])
    return split_streams(path.stem, MemmapImages(path, array), None, image_shape, workers)

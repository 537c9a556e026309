"""User data: a ``.npz`` file of arrays, or a folder of images (one subfolder per class, or none).

``.npz`` keys: ``images`` (N, H, W) or (N, C, H, W), uint8 0–255, bool or float in [0, 1]; optional
``labels`` (N,) integers; optional ``test_images``/``test_labels``, else a fixed 5:1 split. Read with
``allow_pickle=False``: an array of Python objects is refused, never unpickled.
"""

from __future__ import annotations

import math
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from bayesvae.inference.resources import check_fits, format_bytes
from bayesvae.models.errors import BadInput

from .dataset import Dataset, checked_images, checked_labels, split_fixed

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _check_declared_size(arrays, key: str, path: Path) -> None:
    """Read only the .npy header of ``key``: refuse a shape the member cannot hold (a header claiming
    10^13 elements in a small file) or one that would not fit in memory, before numpy allocates it."""
    try:
        info = arrays.zip.getinfo(f"{key}.npy")
        with arrays.zip.open(info) as member:
            version = np.lib.format.read_magic(member)
            read_header = _HEADER_READERS.get(version)
            if read_header is None:
                return  # a newer format: numpy checks it when reading
            shape, _, dtype = read_header(member)  # numpy's own header parser, no data read
            header = member.tell()
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise BadInput(f"{path}: array {key!r} has a corrupt header ({error})") from None
    elements = math.prod(shape)
    if dtype.hasobject:
        return  # refused without pickle by numpy itself
    if elements * dtype.itemsize > info.file_size - header:
        raise BadInput(f"{path}: array {key!r} claims shape {shape} ({elements:.3g} elements) but holds only "
                       f"{info.file_size - header} bytes: the file is corrupt")
    check_fits(elements * (dtype.itemsize + 4), "cpu", f"{path}: array {key!r} of shape {shape}",
               "use fewer or smaller images")  # the array and its float32 copy


def _array(arrays, key: str, path: Path) -> torch.Tensor | None:
    if key not in arrays.files:
        return None
    _check_declared_size(arrays, key, path)
    try:
        value = arrays[key]
    except ValueError as error:  # object arrays need pickle, which is refused
        raise BadInput(f"{path}: array {key!r} cannot be read without pickle ({error})") from None
    if value.dtype.kind not in "biuf":
        raise BadInput(f"{path}: array {key!r} has dtype {value.dtype}; expected numbers")
    return torch.from_numpy(np.ascontiguousarray(value))


def load_npz(path: Path) -> Dataset:
    """Images (and labels) from a ``.npz`` file."""
    if not path.is_file():
        raise BadInput(f"--dataset {path}: no such file")
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise BadInput(f"{path}: not a readable .npz file ({error})") from None
    with arrays:
        if "images" not in arrays.files:
            raise BadInput(f"{path}: no array named 'images' (found: {', '.join(arrays.files) or 'none'})")
        try:
            images = checked_images(_array(arrays, "images", path), f"{path}:images")
            labels = checked_labels(_array(arrays, "labels", path), images.shape[0], f"{path}:labels")
            test_images = _array(arrays, "test_images", path)
            if test_images is None:
                train_x, train_y, test_x, test_y = split_fixed(images, labels)
            else:
                train_x, train_y = images, labels
                test_x = checked_images(test_images, f"{path}:test_images")
                test_y = checked_labels(_array(arrays, "test_labels", path), test_x.shape[0], f"{path}:test_labels")
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise BadInput(f"{path}: corrupt .npz file ({error})") from None
    if test_x.shape[1:] != train_x.shape[1:]:
        raise BadInput(f"{path}: test images {tuple(test_x.shape[1:])} differ in shape from images {tuple(train_x.shape[1:])}")
    return Dataset(path.stem, train_x, test_x, train_y, test_y)


def _check_image_size(file: Path, size: tuple[int, int], count: int) -> None:
    """Refuse an image whose header claims more pixels than PIL's own bomb limit, or a folder whose
    images would not fit in memory (count × width × height float32), before any pixel is decoded."""
    from PIL import Image

    pixels = size[0] * size[1]
    if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
        raise BadInput(f"{file}: claims {size[0]}×{size[1]} = {pixels:.3g} pixels, more than the "
                       f"{Image.MAX_IMAGE_PIXELS:.3g} a decoder safely expands (a decompression bomb?); "
                       f"decoding it needs about {format_bytes(pixels * 4)}")
    check_fits(count * pixels * 5.0, "cpu", f"{count} images of {size[0]}×{size[1]} pixels",
               "use smaller images")  # grey bytes and their float32 copy


def image_files(folder: Path) -> tuple[list[tuple[int, Path]], bool]:
    """``([(label, file), ...], has classes)``: subfolders are classes (labels by sorted name, -1 without)."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    groups = [(i, sorted(f for f in c.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)) for i, c in enumerate(classes)]
    if not classes:
        groups = [(-1, sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))]
    files = [(label, f) for label, group in groups for f in group]
    if not files:
        raise BadInput(f"{folder}: no .png or .jpg images found")
    return files, bool(classes)


def load_image_folder(folder: Path) -> Dataset:
    """Grey-scale images from ``folder``: subfolders are classes (labels by sorted name), else unlabeled."""
    from PIL import Image, UnidentifiedImageError

    files, classes = image_files(folder)
    images, labels = [], []
    for label, file in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)  # refused below, not printed
                with Image.open(file) as opened:  # reads the header only: the size, before decoding
                    _check_image_size(file, opened.size, len(files))
                    image = torch.from_numpy(np.array(opened.convert("L"))).unsqueeze(0)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise BadInput(f"{file}: refused as a decompression bomb ({error})") from None
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise BadInput(f"{file}: cannot decode image ({error})") from None
        if images and image.shape != images[0].shape:
            raise BadInput(f"{file}: size {tuple(image.shape[1:])} differs from {tuple(images[0].shape[1:])}; "
                           f"all images must have one size")
        images.append(image)
        labels.append(label)
    x = checked_images(torch.stack(images), str(folder))
    y = torch.tensor(labels) if classes else None
    train_x, train_y, test_x, test_y = split_fixed(x, y)
    return Dataset(folder.name, train_x, test_x, train_y, test_y)

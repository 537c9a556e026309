"""User data: a ``.npz`` file of arrays, or a folder of images (one subfolder per class, or none).

``.npz`` keys: ``images`` (N, H, W) or (N, C, H, W), uint8 0–255, bool or float in [0, 1]; optional
``labels`` (N,) integers; optional ``test_images``/``test_labels``, else a fixed 5:1 split. Read with
``allow_pickle=False``: an array of Python objects is refused, never unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from bayesvae.models.errors import BadInput

from .dataset import Dataset, checked_images, checked_labels, split_fixed

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def _array(arrays, key: str, path: Path) -> torch.Tensor | None:
    if key not in arrays.files:
        return None
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


def load_image_folder(folder: Path) -> Dataset:
    """Grey-scale images from ``folder``: subfolders are classes (labels by sorted name), else unlabeled."""
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    groups = [(i, sorted(f for f in c.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)) for i, c in enumerate(classes)]
    if not classes:
        groups = [(-1, sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))]
    files = [(label, f) for label, group in groups for f in group]
    if not files:
        raise BadInput(f"{folder}: no .png or .jpg images found")
    images, labels = [], []
    for label, file in files:
        try:
            with Image.open(file) as opened:
                image = torch.from_numpy(np.array(opened.convert("L"))).unsqueeze(0)
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

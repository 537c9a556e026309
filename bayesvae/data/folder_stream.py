"""A folder of RGB or grey images (one subfolder per class, or none), streamed: decoded batch by batch.

Before training, every file is opened once and checked by PIL (``Image.verify``: the header and, for PNG,
the chunks' checksums; no pixel is decoded): a file that is not an image, a truncated or corrupt PNG, a
decompression bomb, or images of several sizes without ``--image-size`` are refused with one line before
anything is written. Channels: 3 (RGB) when any image has colour (RGB, RGBA, palette, CMYK, ...), else 1.
``--image-size S`` resizes the shorter side to S and crops the centre S×S (torchvision's ``Resize`` and
``CenterCrop``); pixels are uint8 / 255, exactly as the in-memory readers give them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torchvision.transforms import functional as tvf

from bayesvae.models.errors import BadInput

from .files import image_files
from .streamed_set import StreamedDataset, split_streams

GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def grey_levels(image, channels: int, size: int | None) -> torch.Tensor:
    """A PIL image as float32 (C, H, W) in [0, 1]: converted to RGB or grey, resized and centre-cropped."""
    image = image.convert("RGB" if channels == 3 else "L")
    if size is not None:
        image = tvf.center_crop(tvf.resize(image, size), [size, size])
    return tvf.pil_to_tensor(image).float() / 255


class FolderImages(torch.utils.data.Dataset):
    """Image ``i`` of the folder, decoded on demand (in a DataLoader worker)."""

    def __init__(self, files: list[Path], channels: int, size: int | None):
        self.files, self.channels, self.size = files, channels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        file = self.files[index]
        try:
            with Image.open(file) as opened:
                return grey_levels(opened, self.channels, self.size)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise BadInput(f"{file}: cannot decode image ({error})") from None


def _scan(files: list[Path]) -> tuple[set, set]:
    """The sizes and modes of all files (headers and checksums only); one line for the first bad file."""
    from PIL import Image, UnidentifiedImageError

    sizes, modes = set(), set()
    for file in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(file) as opened:
                    sizes.add(opened.size)
                    modes.add(opened.mode)
                    opened.verify()
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise BadInput(f"{file}: refused as a decompression bomb ({error})") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
            raise BadInput(f"{file}: cannot decode image ({error})") from None
        if len(sizes) > 1:
            first, other = sorted(sizes)[:2]
            raise BadInput(f"{file}: images of several sizes ({first[0]}×{first[1]}, {other[0]}×{other[1]}, ...): "
                           f"pass --image-size S to resize them to S×S")
    return sizes, modes


def stream_image_folder(folder: Path, image_size: int | None, workers: int | None) -> StreamedDataset:
    """The folder's images cut by the fixed 5:1 split; labels from class subfolders (None without)."""
    listed, classes = image_files(folder)
    files = [file for _, file in listed]
    sizes, modes = _scan(files) if image_size is None else _scan_any_size(files)
    channels = 1 if modes <= GREY_MODES else 3
    width, height = next(iter(sizes)) if image_size is None else (image_size, image_size)
    labels = torch.tensor([label for label, _ in listed]) if classes else None
    return split_streams(folder.name, FolderImages(files, channels, image_size), labels,
                         (channels, height, width), workers)


def _scan_any_size(files: list[Path]) -> tuple[set, set]:
    """As :func:`_scan` for images that will be resized (several sizes allowed)."""
    sizes, modes = set(), set()
    for file in files:
        file_sizes, file_modes = _scan([file])
        sizes |= file_sizes
        modes |= file_modes
    return sizes, modes

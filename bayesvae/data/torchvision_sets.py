"""torchvision's CIFAR-10 and CelebA behind ``--dataset cifar10|celeba``, streamed (``--data-dir``, default ./data).

The files are found, downloaded (``download=True``: the official files, from torchvision's URLs) and
checked by torchvision itself: every file's md5 is compared with torchvision's list before it is read.
CIFAR-10's python batches are pickles: they are only ever opened by torchvision *after* that md5 check of
the official files, so a modified or foreign ``data_batch_1`` is refused, never unpickled. CelebA's images
(178×218 RGB; usually trained with ``--image-size 64``) are decoded one by one; its attributes are not used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from bayesvae.models.errors import BadInput

from .folder_stream import grey_levels
from .streamed_set import StreamedDataset, two_streams

TORCHVISION_SETS = {"cifar10": "CIFAR10", "celeba": "CelebA"}
NATIVE_SIZE = {"cifar10": (32, 32), "celeba": (218, 178)}   # (H, W)


class TorchvisionImages(torch.utils.data.Dataset):
    """The images of a torchvision data set (PIL images) as float32 (3, H, W) in [0, 1]."""

    def __init__(self, source, size: int | None):
        self.source, self.size = source, size

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> torch.Tensor:
        try:
            image, _ = self.source[index]
        except (OSError, ValueError) as error:
            raise BadInput(f"{type(self.source).__name__} image {index} cannot be read ({error})") from None
        return grey_levels(image, 3, self.size)


def _open(name: str, data_dir: Path, split: str, download: bool):
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION_SETS[name])
    kwargs = {"train": split == "train"} if name == "cifar10" else {"split": split, "target_type": []}
    created = None if data_dir.exists() else data_dir
    try:
        return cls(root=str(data_dir), download=download, **kwargs)
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted" (a file missing or its md5 wrong)
        raise BadInput(f"{data_dir}: no verified {name} files ({error}); torchvision checks each file's md5 and "
                       f"refuses files that differ from the official ones") from None
    except Exception as error:  # noqa: BLE001 - network errors come in many types
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise BadInput(f"could not download {name} into {data_dir} ({type(error).__name__}: {error}); "
                       f"put its files there and pass --data-dir (and --no-download)") from None


def load_torchvision_set(name: str, data_dir: Path, download: bool, image_size: int | None,
                         workers: int | None) -> StreamedDataset:
    """CIFAR-10 (labels: its 10 classes) or CelebA (unlabelled), its own train and test splits."""
    if data_dir.exists() and not data_dir.is_dir():
        raise BadInput(f"--data-dir {data_dir} is not a folder")
    train, test = (_open(name, data_dir, split, download) for split in ("train", "test"))
    labels = [torch.tensor(s.targets) if name == "cifar10" else None for s in (train, test)]
    height, width = NATIVE_SIZE[name] if image_size is None else (image_size, image_size)
    return two_streams(name, TorchvisionImages(train, image_size), TorchvisionImages(test, image_size),
                       labels[0], labels[1], (3, height, width), workers)

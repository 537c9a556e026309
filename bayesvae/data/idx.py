"""Reading IDX files (the MNIST format), plain or gzip-compressed, with a clear error for each defect.

torchvision's reader (``read_sn3_pascalvincent_tensor``) takes only uncompressed files and stops on
a bare ``assert``; users hand us .gz files and need to know *what* is wrong, hence this reader.
Format: 2 zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, one big-endian
uint32 per dimension, then the data.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from bayesvae.models.errors import BadInput


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """The uint8 array stored in ``path`` (``.gz`` or plain), which must have ``ndim`` dimensions."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise BadInput(f"{path}: cannot read ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise BadInput(f"{path}: not an IDX file (wrong magic number {raw[:4].hex() or 'empty'})")
    if raw[2] != 0x08:
        raise BadInput(f"{path}: IDX data type 0x{raw[2]:02x} is not unsigned bytes (0x08)")
    if raw[3] != ndim:
        raise BadInput(f"{path}: has {raw[3]} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise BadInput(f"{path}: truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise BadInput(f"{path}: {len(raw) - header} data bytes for shape {shape} ({size} expected): "
                       f"the file is truncated or corrupt")
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy())

"""Input checks every command makes before any work: the device and an ``--out`` folder (seeds are declared options).

Each raises :class:`~bayesvae.models.errors.BadInput` (one line, exit 2) instead of a traceback
from deep inside torch minutes later.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bayesvae.models.errors import BadInput

DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | None) -> str:
    """The device to run on: ``device`` checked to exist here (type known, index in range), or the
    default (``cuda`` when available, else ``cpu``)."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device) if isinstance(device, (str, torch.device)) else None
    except (RuntimeError, ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in DEVICE_TYPES:
        raise BadInput(f"--device {device!r} is not a device: use cpu, cuda, cuda:N or mps")
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise BadInput(f"--device {device}: this machine has no CUDA device (use --device cpu)")
        if parsed.index is not None and parsed.index >= count:
            raise BadInput(f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise BadInput(f"--device {device}: Apple's MPS is not available here (use --device cpu)")
    return str(parsed)


def check_out_folder(out) -> None:
    """``--out`` must name a run folder: not empty, not the current folder or one above it."""
    if out is None:
        return
    if str(out).strip() == "":
        raise BadInput("--out is empty: name the run folder, e.g. --out runs/my-vae")
    target, here = Path(os.path.abspath(out)), Path(os.path.abspath(os.curdir))
    if target == here or here.is_relative_to(target):
        raise BadInput(f"--out {out} is the current folder or one above it: a run needs a folder of its own, "
                       f"e.g. --out runs/my-vae")

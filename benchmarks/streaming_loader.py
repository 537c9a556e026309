"""Streaming loader: the time an epoch waits for streamed batches, as a share of the epoch (conv VAE).

The images are PNG files of a folder read with ``--stream`` (:mod:`bayesvae.data.streaming`: a DataLoader
with 2 worker processes decoding and binarizing while the training process runs the SVI steps). The
share is the time spent in ``next(batches)`` (waiting for the workers, moving the batch) over the epoch
(that plus :class:`~bayesvae.inference.step.TrainingStep`), timed in the same loop; the first epoch starts
the workers and compiles the step, and is not timed. Target: below 10 %.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bayesvae.data import load_dataset
from bayesvae.inference.optimizer import CheckedAdam
from bayesvae.inference.options import TrainOptions
from bayesvae.inference.step import TrainingStep

from .common import median, share_cell
from .svi_overhead import LR, bayesvae_pair

TARGET = 0.10


@dataclass
class Row:
    n: int
    batch_size: int
    workers: int
    wait_seconds: float      # median per epoch
    step_seconds: float      # median per epoch
    fractions: list[float]   # wait / (wait + steps), per timed epoch

    @property
    def fraction(self) -> float:
        return median(self.fractions)


def _write_pngs(x_grey: torch.Tensor, folder: Path) -> None:
    for i, image in enumerate((x_grey[:, 0] * 255).round().to(torch.uint8).numpy()):
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"{i:05d}.png")


def measure(x_grey: torch.Tensor, batch_size: int, epochs: int, workers: int = 2) -> Row:
    """``epochs`` timed epochs (after one untimed) of the conv VAE on ``x_grey`` streamed from PNG files."""
    with tempfile.TemporaryDirectory() as folder:
        _write_pngs(x_grey, Path(folder))
        stream = load_dataset(folder, stream=True, workers=workers).train_x
        pair = bayesvae_pair("conv", stream.image_shape)
        step = TrainingStep(pair, TrainOptions(batch_size=batch_size, lr=LR), CheckedAdam(LR))
        source, data_rng = stream.training("dynamic", seed=0), torch.Generator().manual_seed(0)
        waits, steps = [], []
        with step.running():
            for epoch in range(epochs + 1):
                batches = source.epoch(data_rng, batch_size).batches()
                wait = spent = 0.0
                while True:
                    started = time.perf_counter()
                    xb = next(batches, None)
                    middle = time.perf_counter()
                    wait += middle - started
                    if xb is None:
                        break
                    step(xb)
                    spent += time.perf_counter() - middle
                step.read()
                if epoch:
                    waits.append(wait)
                    steps.append(spent)
        del stream, source  # the workers end with their DataLoader
    return Row(x_grey.shape[0] * 5 // 6, batch_size, workers, median(waits), median(steps),
               [w / (w + s) for w, s in zip(waits, steps)])


def markdown(rows: list[Row]) -> list[str]:
    lines = ["| training images | batch | workers | waiting for batches s/epoch | SVI steps s/epoch | "
             "**loader share of the epoch** median [min–max] | target |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.n:,} | {r.batch_size} | {r.workers} | {r.wait_seconds:.4f} | {r.step_seconds:.3f} | "
                     f"{share_cell(r.fractions)} | < {100 * TARGET:.0f} % |")
    return lines

"""Data pipeline: an epoch's data handling as a fraction of the epoch.

Data handling is what ``train`` does to the images besides the SVI steps: the dynamic binarization
(:class:`bayesvae.inference.batches.TrainingImages`), the shuffle (``shuffled_batches``) and cutting the
batches (``images[index]`` per step). The epoch is that plus the steps
(:class:`bayesvae.inference.step.TrainingStep`). Both parts are timed in the same loop, epoch after
epoch; the target is a fraction below 5 %.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from bayesvae.inference.batches import TrainingImages, shuffled_batches
from bayesvae.inference.optimizer import CheckedAdam
from bayesvae.inference.options import TrainOptions
from bayesvae.inference.step import TrainingStep

from .common import median, share_cell
from .svi_overhead import LR, bayesvae_pair


@dataclass
class Row:
    n: int
    batch_size: int
    data_seconds: float       # median per epoch
    step_seconds: float       # median per epoch
    fractions: list[float]    # data / (data + steps), per epoch

    @property
    def fraction(self) -> float:
        return median(self.fractions)


def measure(x_grey: torch.Tensor, batch_size: int, epochs: int, objective: str = "analytic") -> Row:
    """Epochs of ``train``'s inner loop with the data handling and the steps timed apart."""
    pair = bayesvae_pair("mlp", tuple(x_grey.shape[1:]))
    step = TrainingStep(pair, TrainOptions(elbo=objective, batch_size=batch_size, lr=LR), CheckedAdam(LR))
    images_of = TrainingImages(x_grey, "dynamic", seed=0)
    data_rng = torch.Generator().manual_seed(0)
    data_times, step_times = [], []
    with step.running():
        for epoch in range(epochs + 1):  # the first epoch compiles: not timed
            data = steps = 0.0
            started = time.perf_counter()
            images = images_of.epoch(data_rng)
            batches = shuffled_batches(x_grey.shape[0], batch_size, data_rng)
            data += time.perf_counter() - started
            for index in batches:
                started = time.perf_counter()
                xb = images[index]
                middle = time.perf_counter()
                step(xb)
                data, steps = data + middle - started, steps + time.perf_counter() - middle
            if epoch:
                data_times.append(data)
                step_times.append(steps)
    return Row(x_grey.shape[0], batch_size, median(data_times), median(step_times),
               [d / (d + s) for d, s in zip(data_times, step_times)])


def markdown(rows: list[Row]) -> list[str]:
    lines = ["| images N | batch | data handling s/epoch | SVI steps s/epoch | **data share of the epoch** "
             "median [min–max] | target |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.n:,} | {r.batch_size} | {r.data_seconds:.4f} | {r.step_seconds:.3f} | "
                     f"{share_cell(r.fractions)} | < 5 % |")
    return lines

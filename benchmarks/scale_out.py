"""Data-parallel training: samples/s of ``bayesvae train --net conv`` on 1 vs 2 CPU processes.

The same command (conv VAE, MNIST-shaped images from a .npz, the same global batch and seed) runs with
``--devices 1`` and ``--devices 2``, alternately, each process with one torch thread
(``OMP_NUM_THREADS=1``): 1 process uses one core, 2 processes two. The rate is training images per
second of an epoch as the command reports it (its ``seconds`` column: the steps, the sharded test score
and rank 0's checkpoint), the median over the epochs after the first (which compiles the objective);
start-up (imports, Lightning's launch and the gloo rendezvous) is not counted. With 2 processes every step
ends with one all-reduce of all gradients, so on a 2-core machine shared with other work a speed-up below
2× is expected; the point is that the path is correct and the same on GPUs (README "Scale-out").
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .common import ROOT


@dataclass
class ScaleRow:
    processes: int
    images: int
    rates: list[float]   # images/s, one per timed epoch over all repetitions

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


def _epoch_seconds(stdout: str) -> list[float]:
    """The ``seconds`` column of the epoch table ``bayesvae train`` prints (last column of each row)."""
    rows = [line.split() for line in stdout.splitlines()]
    return [float(row[-1]) for row in rows if len(row) == 7 and row[0].isdigit()]


def _train(data: Path, out: Path, processes: int, epochs: int, batch_size: int) -> list[float]:
    command = [sys.executable, "-m", "bayesvae.cli", "train", "--dataset", str(data), "--net", "conv",
               "--epochs", str(epochs), "--batch-size", str(batch_size), "--device", "cpu", "--seed", "0",
               "--out", str(out), "--force", "--devices", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-1000:]}")
    return _epoch_seconds(done.stdout)[1:]


def measure(x: torch.Tensor, epochs: int, repetitions: int, batch_size: int = 128, log=print) -> list[ScaleRow]:
    """Alternating runs on 1 and 2 processes; rows for both."""
    n_train = x.shape[0] * 5 // 6
    rows = {p: ScaleRow(p, n_train, []) for p in (1, 2)}
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "images.npz"
        np.savez(data, images=x[:n_train].numpy(), test_images=x[n_train:].numpy())
        for _ in range(repetitions):
            for processes, row in rows.items():
                seconds = _train(data, Path(folder) / f"run-{processes}", processes, epochs, batch_size)
                row.rates += [n_train / s for s in seconds if s > 0]
                log(f"  {processes} process(es): {row.rate:,.0f} images/s")
    return list(rows.values())


def markdown(rows: list[ScaleRow]) -> list[str]:
    one = rows[0].rate
    lines = ["| processes | training images | timed epochs | images/s (median) | ratio to 1 process |",
             "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.processes} | {r.images:,} | {len(r.rates)} | {r.rate:,.0f} | {r.rate / one:.2f} |" for r in rows]
    return lines

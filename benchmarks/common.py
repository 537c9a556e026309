"""What every benchmark shares: the images, interleaved timing, ratio statistics, the machine.

Timing is interleaved (A, B, A, B, ...): other processes on the machine slow both sides alike, and the
ratio of each pair of neighbouring runs is what gets summarized (median and range). Wall time is the
result; CPU time of this process is recorded too, because it is far less sensitive to other
processes (it does not count time spent waiting for a core).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIRS = (os.environ.get("BAYESVAE_MNIST_DIR"), ROOT.parent / "shared" / "data" / "mnist",
              "/work/shared/data/mnist")


def mnist_images(n: int) -> tuple[torch.Tensor, str]:
    """Up to ``n`` grey-level MNIST test images (N, 1, 28, 28) in [0, 1] and where they came from.

    The real MNIST test set (10,000 images) when a folder in :data:`MNIST_DIRS` holds it; otherwise
    uniform random grey levels of the same shape (every pixel grey: the binarization's worst case).
    """
    from bayesvae.data import load_dataset

    for folder in MNIST_DIRS:
        if folder and Path(folder).is_dir():
            data = load_dataset("mnist", folder, download=False)
            x = torch.cat([data.train_x, data.test_x])[:n]
            return x, f"real MNIST test images ({x.shape[0]:,}) from {folder}"
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=generator), \
        f"MNIST NOT FOUND: {n:,} random 28×28 images (uniform grey levels) instead"


def binary_images(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One binarization of grey levels ``x`` (the data a training step sees)."""
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))


@dataclass
class Timings:
    """Wall and CPU seconds of each repetition, per contender."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)


def interleaved(contenders: dict[str, Callable[[], object]], repetitions: int, warmup: int = 1) -> Timings:
    """Call each contender once per round, round after round; the first ``warmup`` rounds are not timed."""
    timings = Timings({name: [] for name in contenders}, {name: [] for name in contenders})
    for round_ in range(warmup + repetitions):
        for name, run in contenders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if round_ >= warmup:
                timings.wall[name].append(wall)
                timings.cpu[name].append(cpu)
    return timings


@dataclass
class Ratio:
    """Per-repetition ratios a/b summarized: median, smallest, largest."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, a: list[float], b: list[float]) -> "Ratio":
        ratios = [x / y for x, y in zip(a, b)]
        return cls(statistics.median(ratios), min(ratios), max(ratios))

    def __str__(self) -> str:
        return f"{self.median:.3f} [{self.low:.2f}–{self.high:.2f}]"


def median(values: list[float]) -> float:
    return statistics.median(values)


def share_cell(fractions: list[float]) -> str:
    """``**6.63 %** [5.54–8.74]``: the median share of an epoch and its range, as the tables print it."""
    return f"**{100 * median(fractions):.2f} %** [{100 * min(fractions):.2f}–{100 * max(fractions):.2f}]"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int) -> dict[str, str]:
    """The facts a reader needs to compare these numbers with theirs."""
    import pyro

    return {
        "CPU": cpu_model(),
        "logical CPUs": str(os.cpu_count()),
        "torch threads (both sides)": str(threads),
        "Python": platform.python_version(),
        "torch": torch.__version__,
        "pyro-ppl": pyro.__version__,
        "OS": f"{platform.system()} {platform.release()}",
        "load average (1, 5, 15 min) at start": load_average(),
    }


def load_average() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"

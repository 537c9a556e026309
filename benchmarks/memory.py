"""Memory: peak resident set size (RSS) of training and of evidence estimation, each in a fresh process.

Each measurement runs ``python -m benchmarks.memory JOB N K`` in a child process that loads the images
and builds the 784-400-50 MLP pair (the *set-up*), reads its resident memory, does the job, and reports
the kernel's high-water mark (``VmHWM`` in /proc/self/status). The growth is peak − set-up: what the
job itself needed on top of the data and the model.

* training: one epoch (dynamic binarization, shuffled batches of 128, SVI steps) — it keeps the
  binarization buffers, O(N), and per-step activations, O(batch);
* evidence: ``estimate_log_evidence`` with K draws per image, streamed in blocks of 100 draws × 100
  images — O(block), whatever N and K.

Each line runs twice: *as bayesvae runs* (no ``MALLOC_*`` setting in the environment: glibc's
allocator, whose thresholds the evidence tunes to keep the blocks each chunk frees and asks for again,
:mod:`bayesvae.inference.allocator`, and training leaves at glibc's defaults), where the heap keeps freed
blocks of up to 32 MiB, so the peak includes what the allocator kept and depends on the heap's layout,
which changes from run to run (evidence, N = 1,000, K = 1,000: 26–300 MiB over 32 fresh processes
at five commits of 2026-12-02/03, below 75 MiB in 6 and 173–300 MiB in 26, low and high at the same
commits, with or without bayesvae's tuning); and with ``MALLOC_MMAP_THRESHOLD_`` fixed at 1 MiB,
so every large block is returned to the system when freed (bayesvae then leaves the allocator alone):
that peak is what the code itself holds at once (72–80 MiB in 10 such processes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(job: str, n: int, k: int, threads: int) -> dict:
    """The measurement inside the child process (called by ``python -m benchmarks.memory``)."""
    import torch

    from bayesvae.inference.batches import TrainingImages, shuffled_batches
    from bayesvae.inference.evidence import estimate_log_evidence
    from bayesvae.inference.optimizer import CheckedAdam
    from bayesvae.inference.options import TrainOptions
    from bayesvae.inference.step import TrainingStep

    from .common import mnist_images
    from .svi_overhead import LR, bayesvae_pair

    torch.set_num_threads(threads)
    x, _ = mnist_images(n)
    if x.shape[0] < n:  # fewer real images than asked: repeat them (memory depends on the count only)
        x = x.repeat((n + x.shape[0] - 1) // x.shape[0], 1, 1, 1)[:n]
    if job == "evidence":
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    pair = bayesvae_pair("mlp", tuple(x.shape[1:]))
    setup = _status_kib("VmRSS")
    if job == "training":
        step = TrainingStep(pair, TrainOptions(elbo="analytic", batch_size=128, lr=LR), CheckedAdam(LR))
        rng = torch.Generator().manual_seed(0)
        images = TrainingImages(x, "dynamic", seed=0).epoch(rng)
        with step.running():
            for index in shuffled_batches(n, 128, rng):
                step(images[index])
    elif job == "evidence":
        estimate_log_evidence(pair, x, k=k, chunk=25, batch_size=100)
    else:
        raise ValueError(f"unknown job {job!r}")
    return {"job": job, "n": n, "k": k, "setup_kib": setup, "peak_kib": _status_kib("VmHWM"),
            "data_kib": x.numel() * x.element_size() // 1024}


ALLOCATORS = {"as bayesvae runs": {}, "large blocks returned": {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}}


@dataclass
class Row:
    job: str
    n: int
    k: int
    allocator: str
    setup_mib: float
    peak_mib: float
    data_mib: float

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.setup_mib


def measure(job: str, n: int, k: int, threads: int, allocator: str = "as bayesvae runs") -> Row:
    """Run :func:`child` in a fresh interpreter (so no earlier peak is counted) and read its report."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.memory", job, str(n), str(k), str(threads)],
                          cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, **ALLOCATORS[allocator]})
    out = json.loads(done.stdout.strip().splitlines()[-1])
    mib = 1 / 1024
    return Row(job, n, k, allocator, out["setup_kib"] * mib, out["peak_kib"] * mib, out["data_kib"] * mib)


def markdown(rows: list[Row]) -> list[str]:
    lines = ["| job | images N | draws K | allocator | images' own size MiB | RSS after set-up MiB | peak RSS MiB | "
             "**peak − set-up MiB** |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        k = f"{r.k:,}" if r.job == "evidence" else "–"
        lines.append(f"| {r.job} | {r.n:,} | {k} | {r.allocator} | {r.data_mib:.1f} | {r.setup_mib:.0f} | "
                     f"{r.peak_mib:.0f} | **{r.growth_mib:.0f}** |")
    return lines


if __name__ == "__main__":
    job, n, k, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(child(job, n, k, threads)))

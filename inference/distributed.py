"""The process layout of a training run: one process (the default) or W data-parallel ranks.

:func:`.train.train` asks its ``runtime`` five things: which part of a global batch this process trains on
(:meth:`share`), how to combine the ranks' gradients before the optimizer step (:meth:`share_gradients`),
whether every rank agrees to stop (:meth:`agreed_stop`, :meth:`any_rank`), the test metrics over all
ranks' images (:meth:`mean_over_images`) and whether this process writes the run (``writer``).
:data:`SINGLE_PROCESS` answers them without any communication; :class:`DataParallel` answers them with
the collectives of a Lightning Fabric object (``fabric.all_reduce``; built in :mod:`bayesvae.launch`; this
module never imports Lightning, so the single-process path does not load it).

Gradient. Rank r's loss is −objective summed over its share S_r of the global batch B (nats). The
objective is a sum over images, so the single-process gradient of the global-batch sum is

    ∇ Σ_{i∈B} ℓ_i = Σ_r ∇ Σ_{i∈S_r} ℓ_i,

the SUM over ranks of the per-rank gradients (DDP's mean times W). The ranks start from the same
weights (the same seed) and apply the same summed gradient with the same Adam, so they stay equal.

Why collectives and not ``fabric.setup_module`` (DDP's backward hooks): a step is Pyro's ELBO run on
parameters fetched from Pyro's param store, often as a TorchScript graph (:mod:`.compiled`), never through
an ``nn.Module.forward`` that DDP could wrap; DDP's reducer needs that forward to prepare each backward.
So the gradients are summed by hand with one ``fabric.all_reduce`` per step, in one flat buffer that also
carries the step's loss and each rank's interrupt flag (one message per step, as DDP's one bucket).
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import Callable

import torch

import pyro

from .batches import rank_share

DRAW_SEED_STRIDE = 1_000_003
"""Rank r > 0 reseeds torch's Monte Carlo stream with seed + r·stride + position (see :meth:`DataParallel.seed_draws`)."""


class SingleProcess:
    """One process: its share is the whole batch, no communication, it writes the run."""

    rank, world, writer, synchronizes = 0, 1, True, False
    device: str | None = None

    def share(self, indices: torch.Tensor) -> torch.Tensor:
        return indices

    def agreed_stop(self, flag: threading.Event) -> bool:
        return flag.is_set()

    def any_rank(self, flag: threading.Event) -> bool:
        return flag.is_set()

    def seed_draws(self, seed: int, epoch: int, step: int) -> None:
        """Rank 0 keeps torch's stream (the checkpoint's); nothing to do with one process."""

    def mean_over_images(self, mean: Callable[[torch.Tensor], dict], images: torch.Tensor) -> dict:
        return mean(images)

    def from_writer(self, value: int) -> int:
        return value


SINGLE_PROCESS = SingleProcess()


class DataParallel(SingleProcess):
    """Rank ``fabric.global_rank`` of ``fabric.world_size`` data-parallel processes (see the module docstring)."""

    synchronizes = True

    def __init__(self, fabric):
        self.fabric = fabric
        self.rank, self.world = int(fabric.global_rank), int(fabric.world_size)
        self.writer = self.rank == 0
        self.device = str(fabric.device)
        self.flag: threading.Event | None = None
        self.stop = False

    def share(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of a global batch (:func:`.batches.rank_share`)."""
        return rank_share(indices, self.rank, self.world)

    def watch(self, flag: threading.Event) -> None:
        """The interrupt flag whose state travels with every step's gradients."""
        self.flag = flag

    def share_gradients(self, loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """Replace each parameter's ``.grad`` by its sum over ranks; return the loss summed over ranks
        (−objective of the whole global batch, nats). Records whether any rank was interrupted."""
        store = pyro.get_param_store()
        # the same order on every rank: a set's order (the interpreted step's) depends on object ids
        params = sorted((p for p in params if p.grad is not None), key=store.param_name)
        grads = [p.grad for p in params]
        flag = 1.0 if self.flag is not None and self.flag.is_set() else 0.0
        dtype = grads[0].dtype if grads else torch.float32
        tail = torch.stack([loss.detach().to(dtype).reshape(()), torch.tensor(flag, dtype=dtype, device=loss.device)])
        flat = torch.cat([g.reshape(-1) for g in grads] + [tail])
        flat = self.fabric.all_reduce(flat, reduce_op="sum")
        offset = 0
        for p in params:
            size = p.grad.numel()
            p.grad.copy_(flat[offset:offset + size].view_as(p.grad))
            offset += size
        self.stop = bool(flat[-1] > 0)
        return flat[-2].to(loss.dtype)

    def agreed_stop(self, flag: threading.Event) -> bool:
        """Whether any rank had been interrupted when the last step's gradients were summed: the same
        answer on every rank, so all stop after the same step."""
        return self.stop

    def any_rank(self, flag: threading.Event) -> bool:
        """Whether any rank's flag is set now (one all-reduce)."""
        mine = torch.tensor([1.0 if flag.is_set() else 0.0], device=self.device)
        return bool(self.fabric.all_reduce(mine, reduce_op="sum")[0] > 0)

    def seed_draws(self, seed: int, epoch: int, step: int) -> None:
        """Give rank r > 0 a Monte Carlo stream of its own (else every rank would draw the same noise for
        its share). Rank 0's stream is the checkpoint's; the others are re-derived at every (re)start from
        the seed and the position, so a resume on any number of ranks is well defined (not draw-for-draw
        equal to an uninterrupted multi-process run: only rank 0's stream is saved)."""
        if self.rank > 0:
            pyro.set_rng_seed((seed + self.rank * DRAW_SEED_STRIDE + epoch * 65_537 + step) % 2**32)

    def mean_over_images(self, mean: Callable[[torch.Tensor], dict], images: torch.Tensor) -> dict:
        """``mean`` (a dict of per-image averages) over all of ``images``, each rank scoring its share:
        the per-rank sums are all-reduced and divided by N (NaN stays NaN)."""
        if not isinstance(images, torch.Tensor) or images.shape[0] < self.world:
            return mean(images)   # a streamed test set, or too few images to share: every rank scores all
        mine = rank_share(torch.arange(images.shape[0], device=images.device), self.rank, self.world)
        local = mean(images[mine])
        names = sorted(local)   # the same keys on every rank: the same pair and evaluation
        values = torch.tensor([local[name] * mine.numel() for name in names], dtype=torch.float64,
                              device=self.device)
        totals = self.fabric.all_reduce(values, reduce_op="sum")
        return {name: float(total) / images.shape[0] for name, total in zip(names, totals)}

    def from_writer(self, value: int) -> int:
        """Rank 0's ``value`` on every rank (a whole number: a seed)."""
        mine = torch.tensor([value if self.writer else 0], dtype=torch.int64, device=self.device)
        return int(self.fabric.all_reduce(mine, reduce_op="sum")[0])

    def gather_blocks(self, columns: torch.Tensor, n: int, size: int) -> torch.Tensor:
        """Per-image results ``(C, n_r)`` of this rank's blocks (:meth:`share` of the ``⌈n/size⌉`` blocks of
        ``size`` images) → ``(C, n)`` of all images in order. Every rank knows every rank's image count, so
        the uneven parts are padded to one length for ``fabric.all_gather`` and cut back."""
        blocks = torch.arange(math.ceil(n / size)).tensor_split(self.world)
        counts = [sum(min(size, n - b * size) for b in part.tolist()) for part in blocks]
        padded = columns.new_full((columns.shape[0], max(counts)), math.nan)
        padded[:, :columns.shape[1]] = columns
        with warnings.catch_warnings():   # Lightning's own call, not ours: the user cannot act on it
            warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_gather is deprecated")
            every = self.fabric.all_gather(padded)   # (world, C, max count)
        return torch.cat([every[r, :, :count] for r, count in enumerate(counts)], dim=1)

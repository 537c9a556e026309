"""``diagnose --devices N``: part 1's evidence estimate — the costly part, K draws per image — sharded over
data-parallel ranks; rank 0 alone then does everything else (the other part-1 quantities, findings, files,
part 2, printing) and the other ranks return after the gather.

Each rank estimates log p(x) on a contiguous run of blocks of images; every block draws from a generator
keyed by (seed, block) and the per-image results are gathered in image order
(:func:`bayesvae.inference.evidence.estimate_log_evidence`), so anatomy.json's evidence (log p(x), its
se, k̂, ... in nats per image) is the one-process result for the same ``--seed``.

No rank may wait on a collective another rank never reaches, so every branch is taken before the first
one, on numbers all ranks compute alike (the same run, images and seed): a pair with a discrete site is
refused before any process starts (its evidence sums the class exactly, :mod:`.analysis.discrete_report`,
and is not sharded); a point-mass guide (no importance weights, so no evidence) starts the processes but
shares nothing: rank 0 measures alone; part 2 and ``--no-mcmc`` only matter on rank 0, after the gather.
"""

from __future__ import annotations

import torch

from bayesvae.analysis import quantities
from bayesvae.analysis.diagnose_report import check_image_count
from bayesvae.inference.enumerated_terms import discrete_site_of
from bayesvae.inference.evidence import EvidenceEstimate
from bayesvae.inference.scale_options import ScaleOptions
from bayesvae.inference.terms import trace_terms
from bayesvae.models.errors import BadInput

from .checks import resolve_device
from .launch import check_scale, launch
from .run import Run

SHARD_NAMES = ("devices", "strategy", "num_nodes")   # precision and the logger are training's only


def scale_options(devices: int = 1, strategy: str = "ddp", num_nodes: int = 1,
                  device: str | None = None) -> ScaleOptions:
    """The checked layout (BadInput: ``devices`` < 1, more devices than this machine has, an unknown
    strategy, Lightning missing), before the run is loaded."""
    scale = ScaleOptions(devices=devices, strategy=strategy, num_nodes=num_nodes)
    check_scale(scale, resolve_device(device))
    return scale


def shard_evidence(run: Run, x: torch.Tensor, k: int, seed: int, scale: ScaleOptions,
                   progress: bool | None) -> tuple[bool, EvidenceEstimate | None]:
    """Start the ranks and estimate log p(x) of ``x`` sharded over them (see the module docstring).
    Returns (whether this process goes on — rank 0 —, the gathered estimate or None when the pair has none)."""
    check_image_count(x)
    site = discrete_site_of(run.pair, x)
    if site is not None:
        raise BadInput(f"--devices/--num-nodes shard the importance-sampled evidence; this pair's discrete site "
                       f"{site!r} is summed exactly instead: diagnose it with one process (--devices 1)")
    with torch.no_grad():
        point_mass = trace_terms(run.pair, x[:1], 1).point_mass   # the same answer on every rank
    runtime = launch(scale, run.device)   # the other processes start here, before anything is written
    if point_mass:
        return runtime.writer, None
    if runtime.device not in (None, run.device):   # one GPU per rank
        run.pair.to(runtime.device)
        x = x.to(runtime.device)
    estimate = quantities.evidence(run.pair, x, k, seed, progress if runtime.writer else False, runtime=runtime)
    return runtime.writer, estimate

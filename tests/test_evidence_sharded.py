"""The evidence estimate sharded across ranks gives one process's numbers for the same seed: each block of
images draws from a generator keyed by (seed, block), not from a stream that depends on what ran before it."""

import os
import subprocess
import sys

import pytest
import torch

from bayesvae.inference.batches import rank_share
from bayesvae.inference.distributed import SingleProcess
from bayesvae.inference.evidence import estimate_log_evidence
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian

FIELDS = ("log_px", "elbo", "se", "elbo_se", "delta_se", "khat")


class OneShard(SingleProcess):
    """Rank ``rank`` of ``world`` without the others: its blocks only (the gather is the identity)."""

    synchronizes = True

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world

    def share(self, indices):
        return rank_share(indices, self.rank, self.world)

    def gather_blocks(self, columns, n, size):
        return columns


@pytest.fixture
def setup():
    model = random_linear_gaussian(D=6, d=2, sigma=0.5, seed=1)
    x = model.sample_images(23, torch.Generator().manual_seed(2))
    return linear_gaussian_pair(model, exact_guide(model, shift=0.2, scale_factor=1.3)), x


@pytest.mark.parametrize("world", [2, 3])
def test_shards_put_together_are_the_single_process_estimate(setup, world):
    pair, x = setup
    whole = estimate_log_evidence(pair, x, k=40, chunk=16, batch_size=5, seed=11)
    parts = [estimate_log_evidence(pair, x, k=40, chunk=16, batch_size=5, seed=11, runtime=OneShard(r, world))
             for r in range(world)]
    assert sum(p.n for p in parts) == x.shape[0] and all(p.n > 0 for p in parts)
    for name in FIELDS:
        joined = torch.cat([getattr(p, name) for p in parts])
        assert torch.equal(joined, getattr(whole, name)), name


def test_seed_fixes_the_estimate_and_a_global_seed_still_does(setup):
    pair, x = setup
    a = estimate_log_evidence(pair, x, k=40, seed=3)
    assert torch.equal(a.log_px, estimate_log_evidence(pair, x, k=40, seed=3).log_px)
    assert not torch.equal(a.log_px, estimate_log_evidence(pair, x, k=40, seed=4).log_px)
    torch.manual_seed(0)
    b = estimate_log_evidence(pair, x, k=40)
    torch.manual_seed(0)
    assert torch.equal(b.log_px, estimate_log_evidence(pair, x, k=40).log_px)


GATHER_SCRIPT = """
import sys, torch
from lightning.fabric import Fabric
from safetensors.torch import save_file
from bayesvae.inference.distributed import DataParallel
from bayesvae.inference.evidence import estimate_log_evidence
from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian

fabric = Fabric(accelerator="cpu", devices=2, strategy="ddp")
fabric.launch()
model = random_linear_gaussian(D=6, d=2, sigma=0.5, seed=1)
x = model.sample_images(23, torch.Generator().manual_seed(2))
pair = linear_gaussian_pair(model, exact_guide(model, shift=0.2, scale_factor=1.3))
torch.manual_seed(fabric.global_rank)   # the ranks' global streams differ: the seed is rank 0's
estimate = estimate_log_evidence(pair, x, k=40, chunk=16, batch_size=5, runtime=DataParallel(fabric))
if fabric.global_rank == 0:
    save_file({name: getattr(estimate, name).contiguous() for name in %r}, sys.argv[1])
"""


@pytest.mark.slow
def test_two_gloo_processes_gather_the_single_process_estimate(setup, tmp_path):
    pair, x = setup
    script = tmp_path / "sharded_evidence.py"
    script.write_text(GATHER_SCRIPT % (FIELDS,))
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "out.safetensors")], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    from safetensors.torch import load_file

    gathered = load_file(tmp_path / "out.safetensors")
    torch.manual_seed(0)   # rank 0's global stream gave the seed
    whole = estimate_log_evidence(pair, x, k=40, chunk=16, batch_size=5)
    for name in FIELDS:
        assert torch.equal(gathered[name], getattr(whole, name)), name

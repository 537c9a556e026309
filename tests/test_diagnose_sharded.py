"""``diagnose --devices N``: the evidence estimate sharded over data-parallel ranks (Lightning Fabric, gloo,
2 CPU processes) has the one-process numbers for the same seed; rank 0 alone reports and writes; a pair
without evidence (point mass) or a refused one (discrete site, bad layout) leaves no rank waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import bayesvae
from bayesvae.models.errors import BadInput
from conftest import bayesvae_command, tree_snapshot

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="2 processes need 2 CPU cores (--devices ≤ cores)")
QUIET = dict(epochs=1, latent_dim=2, hidden=(16,), device="cpu", progress=False, log=lambda _: None)
IMAGES, K, SEED = 150, 100, 3   # 150 images at most 100 a block: rank 0 takes block 0 (100), rank 1 block 1 (50)
MEASURE = ["--k", str(K), "--max-images", str(IMAGES), "--seed", str(SEED), "--device", "cpu"]
TIMING = ("seconds", "images_per_second")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TIMEOUT = 600   # a rank left waiting on a collective would hang: fail instead
PART2 = ["--n-images", "2", "--chains", "1", "--warmup", "20", "--draws", "20", "--gap-steps", "2"]   # tiny NUTS

SCRIPT = '''
import json, os, sys
import torch
import bayesvae
import bayesvae.inference.evidence as evidence

run, log, out = sys.argv[1:4]
_trace = evidence.trace_terms


def recording(pair, x, num_samples):   # which images each rank's evidence draws for
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    with open(os.path.join(log, f"rank-{rank}.txt"), "a") as f:
        f.write(f"{x.shape[0]}\\n")
    return _trace(pair, x, num_samples=num_samples)


evidence.trace_terms = recording
result = bayesvae.diagnose(run, k=%d, max_images=%d, seed=%d, mcmc=False, out=out, device="cpu", progress=False,
                           devices=2)
rank = torch.distributed.get_rank()
with open(os.path.join(log, f"result-{rank}.json"), "w") as f:
    json.dump(None if result is None else result["evidence"], f)
''' % (K, IMAGES, SEED)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    bayesvae.fit(out=root / "vae", **QUIET)
    bayesvae.fit(out=root / "ae", guide="delta", **QUIET)
    bayesvae.fit(out=root / "mixture", model="mixture", clusters=3, **QUIET)
    return root


@pytest.fixture(scope="module")
def one_process(runs):
    """The reference: the evidence of one process (the Python API, devices=1), timing left out."""
    result = bayesvae.diagnose(runs / "vae", k=K, max_images=IMAGES, seed=SEED, mcmc=False, out=runs / "one",
                               device="cpu", progress=False, log=lambda _: None, devices=1)
    return untimed(result["evidence"])


def untimed(evidence: dict) -> dict:
    return {key: value for key, value in evidence.items() if key not in TIMING}


def evidence_in(folder) -> dict:
    return untimed(json.loads((folder / "anatomy.json").read_text())["evidence"])


@pytest.mark.slow
def test_two_processes_on_the_command_line_give_the_one_process_evidence(runs, one_process):
    """Part 2 too: rank 0 runs it after the gather while rank 1 has returned."""
    done = subprocess.run(bayesvae_command() + ["diagnose", str(runs / "vae"), *MEASURE, *PART2, "--devices", "2",
                                                "--out", str(runs / "cli2")],
                          env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert evidence_in(runs / "cli2") == one_process   # log p(x), se, delta se, ELBO, gap, k̂ per image: exact
    assert any(value is not None for value in one_process["khat"])
    assert done.stdout.count(f"diagnose {runs / 'vae'}:") == 1 and done.stdout.count("\nwrote ") == 1  # rank 0 only
    assert "error" not in done.stderr and "deprecated" not in done.stderr
    assert (runs / "cli2" / "posterior.json").is_file()


@pytest.mark.slow
def test_the_python_api_shards_the_images_and_rank_0_alone_returns_the_result(runs, one_process):
    (runs / "api.py").write_text(SCRIPT)
    log = runs / "log-api"
    log.mkdir()
    done = subprocess.run([sys.executable, str(runs / "api.py"), str(runs / "vae"), str(log), str(runs / "api2")],
                          env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    chunks = {rank: {int(n) for n in (log / f"rank-{rank}.txt").read_text().split()} for rank in (0, 1)}
    assert chunks == {0: {100}, 1: {50}}   # each rank drew K samples for its own block of images only
    assert json.loads((log / "result-1.json").read_text()) is None
    assert untimed(json.loads((log / "result-0.json").read_text())) == one_process == evidence_in(runs / "api2")


@pytest.mark.slow
def test_a_point_mass_guide_has_no_evidence_and_leaves_no_rank_waiting(runs):
    """No importance weights: nothing is shared; rank 0 measures alone, part 2 (NUTS) included."""
    done = subprocess.run(bayesvae_command() + ["diagnose", str(runs / "ae"), *MEASURE, *PART2, "--devices", "2",
                                                "--out", str(runs / "ae2")],
                          env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((runs / "ae2" / "anatomy.json").read_text())
    assert "point mass" in data["evidence"]["skipped"] and data["n_images"] == IMAGES
    assert done.stdout.count(f"diagnose {runs / 'ae'}:") == 1
    assert (runs / "ae2" / "posterior.json").is_file()


def test_a_discrete_site_pair_is_refused_in_one_line_before_any_process_starts(runs, cli):
    before = tree_snapshot(runs / "mixture")
    result = cli("diagnose", runs / "mixture", *MEASURE, "--no-mcmc", "--devices", "2", "--out", runs / "mix2")
    assert result.code == 2 and result.err.count("\n") == 1, result
    assert "discrete site 'c'" in result.err and "--devices 1" in result.err
    assert tree_snapshot(runs / "mixture") == before and not (runs / "mix2").exists()


@pytest.mark.parametrize("flags, message", [
    (["--devices", "0"], "--devices must be a whole number ≥ 1"),
    (["--devices", "100000"], "this machine has"),
    (["--strategy", "horovod"], "unknown --strategy 'horovod'"),
    (["--num-nodes", "0"], "--num-nodes must be"),
])
def test_a_bad_layout_is_refused_before_anything_is_written(runs, cli, flags, message):
    before = tree_snapshot(runs / "vae")
    result = cli("diagnose", runs / "vae", *MEASURE, "--out", runs / "bad", *flags)
    assert result.code == 2 and result.err.count("\n") == 1 and message in result.err, result
    assert tree_snapshot(runs / "vae") == before and not (runs / "bad").exists()


def test_the_python_api_refuses_the_same_layouts(runs):
    for keywords, message in [({"devices": 0}, "--devices must be"), ({"strategy": "horovod"}, "unknown --strategy"),
                              ({"devices": 100000}, "this machine has")]:
        with pytest.raises(BadInput, match=message):
            bayesvae.diagnose(runs / "vae", out=runs / "bad", mcmc=False, device="cpu", **keywords)
    assert not (runs / "bad").exists()

"""Data-parallel training (Lightning Fabric, gloo, 2 CPU processes): the same parameters as one process, each
rank its own share of every batch, one writer, resume of a killed 2-process run in 1 process, bad layouts.

The objective has no Monte Carlo noise (a point-mass guide: the autoencoder's log p(x, z=f(x))), so one and
two processes must agree up to float rounding (summing two half-batch gradients instead of one); with a
sampling guide the ranks draw different noise and only the statistics agree (README "Scale-out").
The user script below also records, per rank, which images each training step saw and who wrote checkpoints.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from bayesvae.inference.checkpoint import load_checkpoint
from conftest import bayesvae_command, start_paused, tree_snapshot

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="2 processes need 2 CPU cores (--devices ≤ cores)")
EPOCHS, BATCH = 2, 64   # 1437 digits: 23 steps an epoch, the last one 29 images (shares of 15 and 14)

SCRIPT = '''
import hashlib, os, sys
import torch
from torch import nn
import pyro
import pyro.distributions as dist
import bayesvae.run as _run

LOG = os.environ["BAYESVAE_TEST_LOG"]


def _rank():
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


_save = _run.save_checkpoint


def _recording_save(*args, **kwargs):   # who writes checkpoints
    with open(os.path.join(LOG, "writers.txt"), "a") as f:
        f.write(f"{_rank()} {os.getpid()} {'lightning' in sys.modules}\\n")
    return _save(*args, **kwargs)


_run.save_checkpoint = _recording_save
decoder = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 64))
encoder = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 2))


def model(x):
    pyro.module("decoder", decoder)
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Normal(x.new_zeros(2), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(decoder(z).unflatten(-1, (1, 8, 8)), 0.3).to_event(3), obs=x)


def guide(x):
    pyro.module("encoder", encoder)
    if torch.is_grad_enabled() and x.shape[0] > 4:   # a training step (set-up probes use 2 or 4 images)
        seen = ",".join(hashlib.md5(row.numpy().tobytes()).hexdigest()[:12] for row in x.flatten(1))
        with open(os.path.join(LOG, f"shares-{_rank()}.txt"), "a") as f:
            f.write(seen + "\\n")
    with pyro.plate("data", x.shape[0]):
        pyro.sample("z", dist.Delta(encoder(x.flatten(-3))).to_event(1))
'''


@pytest.fixture(scope="module")
def setup(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("distributed")
    np.savez(root / "digits.npz", images=digits.train_x.numpy(), labels=digits.train_y.numpy(),
             test_images=digits.test_x.numpy(), test_labels=digits.test_y.numpy())
    (root / "autoencoder.py").write_text(SCRIPT)
    args = ["--dataset", root / "digits.npz", "--model", f"{root / 'autoencoder.py'}:model",
            "--guide", f"{root / 'autoencoder.py'}:guide", "--epochs", EPOCHS, "--batch-size", BATCH,
            "--seed", 5, "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return root, [str(a) for a in args], env


def train(setup, name: str, *extra: str) -> tuple[Path, Path]:
    """Train into ROOT/NAME with a log folder of its own; returns (run folder, log folder)."""
    root, args, env = setup
    log = root / f"log-{name}"
    log.mkdir()
    done = subprocess.run(bayesvae_command() + ["train", *args, "--out", str(root / name), *extra],
                          env={**env, "BAYESVAE_TEST_LOG": str(log)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / name, log


@pytest.fixture(scope="module")
def one_process(setup):
    """The single-process reference, trained in this process (the script's recording hook undone after)."""
    import bayesvae
    import bayesvae.run

    root, _, _ = setup
    log = root / "log-one"
    log.mkdir()
    original, previous = bayesvae.run.save_checkpoint, os.environ.get("BAYESVAE_TEST_LOG")
    os.environ["BAYESVAE_TEST_LOG"] = str(log)
    try:
        script = root / "autoencoder.py"
        bayesvae.fit(f"{script}:model", f"{script}:guide", str(root / "digits.npz"), root / "one", epochs=EPOCHS,
                     batch_size=BATCH, seed=5, device="cpu", progress=False, log=lambda _: None)
    finally:
        bayesvae.run.save_checkpoint = original
        if previous is None:
            os.environ.pop("BAYESVAE_TEST_LOG")
        else:
            os.environ["BAYESVAE_TEST_LOG"] = previous
    return root / "one", log


def lines(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def assert_close_params(a: Path, b: Path) -> None:
    """Same parameters and same Adam moments. Adam's step hardly changes when every gradient is scaled
    (m/√v), its first moment m (a running mean of the gradients) does: a mean over ranks instead of the
    sum would halve it, so it checks that the summed gradient is the single-process one."""
    (pa, ta), (pb, tb) = (load_checkpoint(run / "checkpoint.safetensors") for run in (a, b))
    assert pa.keys() == pb.keys() and ta["optimizer"].keys() == tb["optimizer"].keys() == pa.keys()
    worst = max(float((pa[k] - pb[k]).abs().max()) for k in pa)
    assert worst < 1e-4, f"parameters differ by up to {worst}"
    for k in pa:
        ma, mb = (t["optimizer"][k]["state"][0]["exp_avg"] for t in (ta, tb))
        assert torch.allclose(ma, mb, rtol=1e-3, atol=1e-4), f"Adam's gradient average differs at {k}"


def assert_partition(single: Path, two: Path, steps: int) -> None:
    """At every step the two ranks' images, together, are the single-process batch (multisets of image
    hashes: ranks take disjoint parts), sizes differing by at most one."""
    whole, rank0, rank1 = lines(single / "shares-0.txt"), lines(two / "shares-0.txt"), lines(two / "shares-1.txt")
    assert len(rank0) == len(rank1) == steps and len(whole) == EPOCHS * 23
    for batch, a, b in zip(whole, rank0, rank1):
        assert Counter(a) + Counter(b) == Counter(batch), "the ranks' shares are not a partition of the batch"
        assert abs(len(a) - len(b)) <= 1
    assert {len(a) for a in rank0} == {32, 15}


def writers(log: Path) -> list[list[str]]:
    """(rank, pid, Lightning imported) of every checkpoint write."""
    return [line.split() for line in (log / "writers.txt").read_text().splitlines()]


def test_killed_two_process_run_resumes_in_one_process(setup, one_process):
    """Epoch 1 on 2 processes, SIGKILL in epoch 2, epochs 2 on 1 process: the single-process run's end
    (so the 2-process epoch was the single-process epoch), one writer, a partition of every batch."""
    one, one_log = one_process
    root, args, env = setup
    run, log = root / "killed", root / "log-killed"
    log.mkdir()
    cmd = bayesvae_command() + ["train", *args, "--out", str(run), "--devices", "2"]
    proc = start_paused(cmd, {**env, "BAYESVAE_TEST_LOG": str(log)}, "step:30", root / "paused-killed",
                        new_session=True)   # epoch 2, step 7: epoch 1's checkpoint is on disk
    os.killpg(proc.pid, signal.SIGKILL)   # rank 0 and the rank it launched
    proc.wait()
    assert load_checkpoint(run / "checkpoint.safetensors")[1]["epoch"] == 1
    assert_partition(one_log, log, steps=30)   # both ranks did step 30's all-reduce before pausing
    assert [w[0] for w in writers(log)] == ["0"] and writers(log)[0][2] == "True"
    first_row = run.joinpath("metrics.csv").read_text().splitlines()[:2]

    done = subprocess.run(bayesvae_command() + ["train", "--resume", str(run), "--trust-code"],
                          env={**env, "BAYESVAE_TEST_LOG": str(log)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [w[2] for w in writers(log)[1:]] == ["False"] * EPOCHS, "the single-process path imported Lightning"
    assert_same_metrics(one, run)
    assert run.joinpath("metrics.csv").read_text().splitlines()[:2] == first_row
    assert_close_params(one, run)   # no Monte Carlo noise: the same end as one process throughout


def assert_same_metrics(one: Path, two: Path) -> None:
    """Same columns, one row per epoch, the same values (train_loss: the all-reduced sum over ranks / n)."""
    rows_one, rows_two = (run.joinpath("metrics.csv").read_text().splitlines() for run in (one, two))
    assert rows_one[0] == rows_two[0] and len(rows_two) == len(rows_one) == 1 + EPOCHS
    for a, b in zip(rows_one[1:], rows_two[1:]):
        assert np.allclose([float(v) for v in a.split(",")], [float(v) for v in b.split(",")],
                           rtol=1e-5, equal_nan=True)


@pytest.mark.slow
def test_two_processes_train_the_single_process_parameters_from_disjoint_shards(setup, one_process):
    one, one_log = one_process
    two, two_log = train(setup, "two", "--devices", "2")
    assert_close_params(one, two)
    assert_same_metrics(one, two)
    assert_partition(one_log, two_log, steps=EPOCHS * 23)
    assert [w[0] for w in writers(two_log)] == ["0"] * EPOCHS and len({w[1] for w in writers(two_log)}) == 1
    assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())


@pytest.mark.parametrize("flags, message", [
    (["--devices", "0"], "--devices must be a whole number ≥ 1"),
    (["--devices", "100000"], "this machine has"),
    (["--strategy", "horovod"], "unknown --strategy 'horovod'"),
    (["--precision", "fp8"], "unknown --precision"),
    (["--num-nodes", "0"], "--num-nodes must be"),
])
def test_bad_layout_is_refused_before_anything_is_written(cli, tmp_path, flags, message):
    before = tree_snapshot(tmp_path)
    result = cli("train", "--epochs", "1", "--device", "cpu", "--out", tmp_path / "run", *flags)
    assert result.code == 2, result
    assert result.err.count("\n") == 1 and message in result.err
    assert tree_snapshot(tmp_path) == before and not (tmp_path / "run").exists()


def test_bad_layout_is_refused_by_the_python_api_too(tmp_path):
    import bayesvae
    from bayesvae.models.errors import BadInput

    with pytest.raises(BadInput, match="--devices must be"):
        bayesvae.fit(out=tmp_path / "run", devices=0, device="cpu", progress=False, log=lambda _: None)
    with pytest.raises(BadInput, match="unknown option 'device_count'"):
        bayesvae.fit(out=tmp_path / "run", device_count=2, device="cpu", progress=False, log=lambda _: None)
    assert not (tmp_path / "run").exists()


def test_an_interactive_session_is_refused_in_one_line(tmp_path, monkeypatch):
    """Lightning's ddp launcher re-runs a script; a notebook or REPL cannot be re-run: BadInput, nothing written."""
    import bayesvae
    from bayesvae.models.errors import BadInput

    pytest.importorskip("lightning")
    import lightning.fabric.connector

    monkeypatch.setattr(lightning.fabric.connector, "_IS_INTERACTIVE", True)   # what a REPL or notebook is
    with pytest.raises(BadInput, match="cannot start 2 processes: .*interactive environment"):
        bayesvae.fit(epochs=1, devices=2, device="cpu", out=tmp_path / "run", progress=False, log=lambda _: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_sigterm_stops_both_ranks_after_the_same_step_and_rank_0_saves(setup, one_process):
    root, args, env = setup
    run, log = root / "terminated", root / "log-terminated"
    log.mkdir()
    cmd = bayesvae_command() + ["train", *args, "--out", str(run), "--devices", "2"]
    proc = start_paused(cmd, {**env, "BAYESVAE_TEST_LOG": str(log)}, "step:5", root / "paused-term",
                        new_session=True)
    os.killpg(proc.pid, signal.SIGTERM)   # as a scheduler stops a job: every process of the group
    _, err = proc.communicate()
    assert proc.returncode == 143, err[-2000:]
    assert err.count("terminated (SIGTERM)") == 1          # rank 0 alone reports
    state = load_checkpoint(run / "checkpoint.safetensors")[1]
    # the flags were set during the pause after step 5 and travel with step 6's all-reduce: both stop there
    assert (state["epoch"], state["step"]) == (0, 6)
    assert len(lines(log / "shares-0.txt")) == len(lines(log / "shares-1.txt")) == 6
    assert [w[0] for w in writers(log)] == ["0"]
    done = subprocess.run(bayesvae_command() + ["train", "--resume", str(run), "--trust-code"],
                          env={**env, "BAYESVAE_TEST_LOG": str(log)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_close_params(one_process[0], run)


def test_scale_out_options_are_not_saved_in_the_config(tmp_path, cli):
    """--devices/--logger describe a session, not the run: config.json is the one-process run's, byte for byte."""
    import bayesvae

    assert cli("train", "--epochs", "1", "--device", "cpu", "--out", tmp_path / "cli", "--devices", "1",
               "--logger", "csv", "--num-nodes", "1", "--strategy", "ddp", "--precision", "32-true").code == 0
    bayesvae.fit(out=tmp_path / "api", epochs=1, device="cpu", progress=False, log=lambda _: None)
    assert (tmp_path / "cli" / "config.json").read_bytes() == (tmp_path / "api" / "config.json").read_bytes()
    assert "devices" not in (tmp_path / "cli" / "config.json").read_text()


@pytest.mark.slow
def test_divergence_stops_both_ranks_at_the_single_process_step_with_one_line(setup, tmp_path):
    """The non-finite guard reads the summed loss and gradients: every rank stops at the same step, the
    one a single process stops at; rank 0 alone prints it."""
    import bayesvae
    from bayesvae.inference.train import Diverged

    root, _, env = setup
    how = ["--epochs", "2", "--lr", "1e8", "--likelihood", "gaussian", "--binarize", "none", "--device", "cpu",
           "--dataset", str(root / "digits.npz")]
    with pytest.raises(Diverged) as single:
        bayesvae.fit(data=str(root / "digits.npz"), out=tmp_path / "one", epochs=2, lr=1e8, likelihood="gaussian",
                     binarize="none", device="cpu", progress=False, log=lambda _: None)
    done = subprocess.run(bayesvae_command() + ["train", *how, "--out", str(tmp_path / "two"), "--devices", "2"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("bayesvae: error:")]
    assert errors == [f"bayesvae: error: {' '.join(str(single.value).split())}"]
    assert not (tmp_path / "two" / "checkpoint.safetensors").exists()


@pytest.mark.slow
def test_two_processes_on_streamed_data_train_the_single_process_parameters(tmp_path, digits):
    """A memory-mapped .npy read by DataLoader workers, each rank its share (part B's sampler): the same end
    as one process (point-mass guide, no Monte Carlo noise)."""
    np.save(tmp_path / "digits.npy", digits.train_x.numpy())
    how = ["--dataset", str(tmp_path / "digits.npy"), "--workers", "1", "--guide", "delta", "--binarize", "none",
           "--likelihood", "gaussian", "--epochs", "2", "--batch-size", "64", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for devices in ("1", "2"):
        done = subprocess.run(bayesvae_command() + ["train", *how, "--out", str(tmp_path / devices),
                                                    "--devices", devices], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert_close_params(tmp_path / "1", tmp_path / "2")
    assert_same_metrics(tmp_path / "1", tmp_path / "2")

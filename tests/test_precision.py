"""--precision: 64-true trains float64 parameters with every step in float64, bf16-mixed keeps float32 weights
and runs model and guide under bfloat16 autocast; both train to the 32-true curve within their rounding;
checkpoints resume at any precision; 16-mixed and unknown names are refused in one line, nothing written.

The closeness tests use the point-mass guide (``--guide delta``: no Monte Carlo draws, and dynamic
binarization draws from the data generator in float32 at every precision), so a difference between
precisions is rounding alone, not a different random path:
* 64-true vs 32-true: float32 rounding of the 32-bit run, ~1e-7 relative per operation, accumulated over
  42 Adam steps: seen 3e-8 relative on train_loss; asserted 1e-5;
* bf16-mixed vs 32-true: bfloat16 has an 8-bit significand (2^-9 ≈ 2e-3 relative per product), though
  the loss sums and the densities stay float32: seen 4e-5 relative; asserted 2e-3 — and asserted to
  differ from 32-true by more than float32 rounding (else autocast did nothing).
"""

import os
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

import pyro
import pyro.distributions as dist

import bayesvae
from bayesvae.inference.checkpoint import load_checkpoint
from bayesvae.models.errors import BadInput
from conftest import bayesvae_command, tree_snapshot

quiet = dict(device="cpu", progress=False, log=lambda _: None)
TINY = dict(latent_dim=2, hidden=(16,), seed=1, batch_size=128)


def losses(run) -> np.ndarray:
    return run.history["train_loss"].to_numpy()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The point-mass VAE trained 3 epochs at each precision, saved."""
    root = tmp_path_factory.mktemp("precision")
    return {p: bayesvae.fit(guide="delta", out=root / p, epochs=3, precision=p, **TINY, **quiet)
            for p in ("32-true", "64-true", "bf16-mixed")}


def test_64_true_and_bf16_mixed_train_to_the_32_true_curve(runs):
    base = losses(runs["32-true"])
    assert np.isfinite(base).all() and np.isfinite(losses(runs["64-true"])).all()
    np.testing.assert_allclose(losses(runs["64-true"]), base, rtol=1e-5)
    np.testing.assert_allclose(losses(runs["bf16-mixed"]), base, rtol=2e-3)
    assert np.abs(losses(runs["bf16-mixed"]) / base - 1).max() > 1e-6, "bf16-mixed trained exactly as 32-true"


def test_parameters_keep_the_precision_s_dtype_in_memory_and_in_the_checkpoint(runs):
    for precision, dtype in (("32-true", torch.float32), ("64-true", torch.float64), ("bf16-mixed", torch.float32)):
        run = runs[precision]
        assert {p.dtype for p in run.pair.unconstrained_parameters().values()} == {dtype}, precision
        params, tree = load_checkpoint(run.path / "checkpoint.safetensors")
        assert {p.dtype for p in params.values()} == {dtype}, precision
        moments = [s["state"][0]["exp_avg"] for s in tree["optimizer"].values()]
        assert {m.dtype for m in moments} == {dtype}, precision   # Adam's moments too (bf16: float32 master)


def test_each_precision_resumes_the_other_s_checkpoint(runs, tmp_path):
    """64 → 32 and 32 → 64 for a 4th epoch: both finish at the precision asked, on the same curve."""
    import shutil

    ends = {}
    for trained, resumed, dtype in (("64-true", "32-true", torch.float32), ("32-true", "64-true", torch.float64)):
        path = shutil.copytree(runs[trained].path, tmp_path / trained)
        run = bayesvae.resume(path, epochs=4, precision=resumed, **quiet)
        assert len(run.history) == 4
        assert {p.dtype for p in load_checkpoint(path / "checkpoint.safetensors")[0].values()} == {dtype}
        ends[trained] = losses(run)[-1]
    assert np.isclose(ends["64-true"], ends["32-true"], rtol=1e-5)


def recording_guide(seen: list):
    """A guide (a closure: trained in memory) that records, per training batch of 128 images, the dtype of
    the images it gets, torch's default dtype, of a matrix product and of its network's output."""
    encoder = nn.Linear(64, 4)

    def guide(x):
        pyro.module("encoder", encoder)
        h = encoder(x.flatten(-3))
        if x.shape[0] == 128:
            product = x.flatten(-3) @ encoder.weight.T
            seen.append((x.dtype, torch.get_default_dtype(), product.dtype, h.dtype))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(h[..., :2], h[..., 2:].exp()).to_event(1))

    return guide


@pytest.mark.parametrize("precision, seen_inside", [
    ("64-true", (torch.float64,) * 4),
    ("bf16-mixed", (torch.float32, torch.float32, torch.bfloat16, torch.float32)),   # module outputs: float32
])
def test_the_step_runs_at_the_precision_inside_the_guide(precision, seen_inside):
    seen = []
    run = bayesvae.fit(guide=recording_guide(seen), epochs=1, precision=precision, **TINY, **quiet)
    assert len(seen) == 11 and set(seen) == {seen_inside}   # 1437 digits: 11 full batches of 128
    assert np.isfinite(losses(run)).all()


@pytest.mark.parametrize("value, message", [
    ("16-mixed", "--precision 16-mixed needs a gradient scaler"),
    ("fp8", "unknown --precision 'fp8'"),
])
def test_bad_precision_is_one_line_and_nothing_written(cli, tmp_path, value, message):
    before = tree_snapshot(tmp_path)
    result = cli("train", "--epochs", "1", "--device", "cpu", "--out", tmp_path / "run", "--precision", value)
    assert result.code == 2 and result.err.count("\n") == 1 and message in result.err, result.err
    assert tree_snapshot(tmp_path) == before
    with pytest.raises(BadInput, match=message):
        bayesvae.fit(out=tmp_path / "api", epochs=1, precision=value, **quiet)
    assert not (tmp_path / "api").exists()


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="2 processes need 2 CPU cores")
def test_two_processes_train_at_bf16_mixed(runs, tmp_path):
    """2 gloo ranks, each under autocast on its half of every batch: the run finishes on the 32-true curve
    (bfloat16 tolerance), float32 weights, one writer."""
    flags = ["--guide", "delta", "--latent-dim", "2", "--hidden", "16", "--seed", "1", "--batch-size", "128",
             "--epochs", "3", "--device", "cpu", "--devices", "2", "--precision", "bf16-mixed"]
    done = subprocess.run(bayesvae_command() + ["train", *flags, "--out", str(tmp_path / "two")],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    two = bayesvae.load_run(tmp_path / "two", device="cpu")
    np.testing.assert_allclose(losses(two), losses(runs["32-true"]), rtol=2e-3)
    assert {p.dtype for p in load_checkpoint(tmp_path / "two" / "checkpoint.safetensors")[0].values()} == {torch.float32}


def test_64_true_compiles_the_objective_and_it_trains_as_the_interpreted_one(monkeypatch):
    """The built-in pair at 64-true still takes the compiled objective (traced in float64), and it gives the
    interpreted objective's losses (the same draws: equal to float64 rounding); bf16-mixed never compiles."""
    import bayesvae.inference.step as step

    chosen, real = [], step.TrainingStep.__init__

    def recording(self, *args, **kwargs):
        real(self, *args, **kwargs)
        chosen.append(self.compiled)

    monkeypatch.setattr(step.TrainingStep, "__init__", recording)
    compiled = bayesvae.fit(epochs=2, precision="64-true", **TINY, **quiet)
    bayesvae.fit(epochs=1, precision="bf16-mixed", **TINY, **quiet)
    monkeypatch.setattr(step, "compilable", lambda pair, elbo: False)
    interpreted = bayesvae.fit(epochs=2, precision="64-true", **TINY, **quiet)
    assert chosen == [True, False, False]
    np.testing.assert_allclose(losses(compiled), losses(interpreted), rtol=1e-12)

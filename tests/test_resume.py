"""Checkpoints: a resumed run ends exactly where an uninterrupted one does; writes are atomic."""

import os

import pytest
import torch

import bayesvae
from bayesvae.inference.checkpoint import load_checkpoint
from bayesvae.models.errors import BadInput

quiet = dict(device="cpu", progress=False, log=lambda _: None)
small = dict(latent_dim=2, hidden=(32,), batch_size=100, seed=7, **quiet)


def params_of(run):
    return {k: v.detach().clone() for k, v in run.pair.unconstrained_parameters().items()}


def test_resume_equals_uninterrupted_run(tmp_path):
    straight = bayesvae.fit(out=tmp_path / "straight", epochs=6, **small)
    bayesvae.fit(out=tmp_path / "split", epochs=3, **small)
    resumed = bayesvae.resume(tmp_path / "split", epochs=6, device="cpu", progress=False, log=lambda _: None)
    a, b = params_of(straight), params_of(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "parameters differ after resume"
    assert (tmp_path / "straight" / "metrics.csv").read_text() == (tmp_path / "split" / "metrics.csv").read_text()


def test_mid_epoch_interrupt_resumes_exactly(tmp_path, monkeypatch):
    """Ctrl-C in the middle of an epoch saves a mid-epoch state that resumes to the same end."""
    from bayesvae.inference.step import TrainingStep

    import bayesvae.inference.train as train_module

    straight = bayesvae.fit(out=tmp_path / "straight", epochs=3, **small)

    original_step = TrainingStep.__call__
    calls = {"n": 0}

    def step_then_interrupt(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:  # epoch 2, step 5 of 15
            os.kill(os.getpid(), __import__("signal").SIGINT)
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(TrainingStep, "__call__", step_then_interrupt)
    with pytest.raises(train_module.Interrupted) as stop:
        bayesvae.fit(out=tmp_path / "cut", epochs=3, **small)
    assert (stop.value.state.epoch, stop.value.state.step) == (1, 5)
    monkeypatch.setattr(TrainingStep, "__call__", original_step)
    resumed = bayesvae.resume(tmp_path / "cut", device="cpu", progress=False, log=lambda _: None)
    a, b = params_of(straight), params_of(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "straight" / "metrics.csv").read_text() == (tmp_path / "cut" / "metrics.csv").read_text()


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    run = bayesvae.fit(out=tmp_path / "run", epochs=2, **small)
    checkpoint = tmp_path / "run" / "checkpoint.safetensors"
    before = checkpoint.read_bytes()

    def crash(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        bayesvae.resume(tmp_path / "run", epochs=3, device="cpu", progress=False, log=lambda _: None)
    monkeypatch.undo()
    assert checkpoint.read_bytes() == before  # the old checkpoint is untouched
    assert not [p for p in (tmp_path / "run").iterdir() if ".tmp-" in p.name]  # no temporary left behind
    params, state = load_checkpoint(checkpoint)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert set(params) == set(run.pair.unconstrained_parameters())


def test_truncated_checkpoint_is_refused(tmp_path):
    bayesvae.fit(out=tmp_path / "run", epochs=1, **small)
    checkpoint = tmp_path / "run" / "checkpoint.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(BadInput, match="corrupt"):
        bayesvae.load_run(tmp_path / "run", device="cpu")

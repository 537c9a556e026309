"""``bayesvae sweep``: one run per β (and guide), trained in order, resumable after an interruption."""

import os
import shutil
import signal

import pytest
import torch

import bayesvae
from bayesvae.inference.checkpoint import load_checkpoint
from conftest import tree_snapshot

small = ["--latent-dim", "2", "--hidden", "16", "--batch-size", "200", "--device", "cpu"]
tiny = [*small, "--epochs", "2"]


def checkpoint_bytes(path):
    return (path / "checkpoint.safetensors").read_bytes()


def test_interrupted_sweep_continues_with_the_next_run(tmp_path, cli, monkeypatch):
    from bayesvae.inference.step import TrainingStep

    out = tmp_path / "sweep"
    first = cli("sweep", "--beta", "0.5,1", *tiny, "--out", out)
    assert first.code == 0, first.err
    done = {name: (checkpoint_bytes(out / name), (out / name / "checkpoint.safetensors").stat().st_mtime_ns)
            for name in ("normal-beta0.5", "normal-beta1")}

    # the full sweep is interrupted (Ctrl-C) in the middle of its third run ...
    original = TrainingStep.__call__
    calls = {"n": 0}

    def step_then_interrupt(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 10:  # epoch 2, step 2 of 8 of the β = 4 run
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TrainingStep, "__call__", step_then_interrupt)
    cut = cli("sweep", "--beta", "0.5,1,4", *tiny, "--out", out)
    assert cut.code == 130 and "normal-beta4" in cut.err and "same command again" in cut.err
    assert cut.out.count("skipped") == 2
    monkeypatch.setattr(TrainingStep, "__call__", original)

    # ... and the same command finishes it: the first two are skipped untouched, the third resumed
    again = cli("sweep", "--beta", "0.5,1,4", *tiny, "--out", out)
    assert again.code == 0, again.err
    assert "normal-beta0.5: done (2 epochs), skipped" in again.out and "normal-beta4: resuming after epoch 1" in again.out
    for name, (data, mtime) in done.items():
        assert checkpoint_bytes(out / name) == data and (out / name / "checkpoint.safetensors").stat().st_mtime_ns == mtime
    # resuming ends exactly where an uninterrupted run of β = 4 ends
    straight = cli("sweep", "--beta", "4", *tiny, "--out", tmp_path / "straight")
    assert straight.code == 0
    resumed, _ = load_checkpoint(out / "normal-beta4" / "checkpoint.safetensors")
    reference, _ = load_checkpoint(tmp_path / "straight" / "normal-beta4" / "checkpoint.safetensors")
    assert resumed.keys() == reference.keys() and all(torch.equal(resumed[k], reference[k]) for k in resumed)


def test_guides_priors_and_betas_make_a_grid_of_runs(tmp_path, cli):
    out = tmp_path / "grid"
    result = cli("sweep", "--guide", "normal,delta", "--prior", "normal,mog", "--beta", "1", *small, "--epochs", "1",
                 "--out", out)
    assert result.code == 0, result.err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["delta-beta1", "delta-mog-beta1", "normal-beta1", "normal-mog-beta1"]
    run = bayesvae.load_run(out / "delta-mog-beta1", device="cpu")
    assert (run.config.model.guide, run.config.model.prior, run.config.training.beta) == ("delta", "mog", 1.0)
    assert run.config.model.latent_dim == 2 and "bayesvae compare" in result.out


def test_objectives_are_a_sweep_axis_too(tmp_path):
    from bayesvae.cli import build_parser
    from bayesvae.commands.sweep import plan

    args = build_parser().parse_args(["sweep", "--guide", "iaf", "--prior", "normal,vamp", "--elbo", "analytic,iwae",
                                      "--beta", "0.5", "--out", str(tmp_path / "zoo")])
    assert [item.name for item in plan(args)] == ["iaf-beta0.5", "iaf-iwae-beta0.5", "iaf-vamp-beta0.5",
                                                  "iaf-vamp-iwae-beta0.5"]
    assert not (tmp_path / "zoo").exists()  # planning writes nothing


def test_longer_sweep_trains_existing_runs_further(tmp_path, cli):
    out = tmp_path / "sweep"
    assert cli("sweep", "--beta", "1", *tiny, "--out", out).code == 0
    result = cli("sweep", "--beta", "1", *small, "--epochs", "3", "--out", out)
    assert result.code == 0 and "resuming after epoch 2" in result.out
    assert len(bayesvae.load_run(out / "normal-beta1", device="cpu").history_rows) == 3


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """A sweep folder holding one finished run (β = 1, 2 epochs), made once."""
    from bayesvae.cli import main

    out = tmp_path_factory.mktemp("finished") / "sweep"
    assert main(["sweep", "--beta", "1", *tiny, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("args,message", [
    (["--beta", "1", "--lr", "0.01"], "other settings (lr 0.001 vs 0.01)"),
    (["--beta", "1", "--epochs", "1"], "a sweep only trains longer"),
    (["--beta", "1,1"], "share a folder name"),
    (["--beta", "1,-2"], "every β must be a finite number ≥ 0"),
    (["--beta", "one"], "comma-separated numbers"),
    (["--beta", "1", "--guide", "normal,,delta"], "comma-separated names"),
    (["--beta", "1", "--guide", "gaussian"], "unknown --guide 'gaussian'"),
    (["--beta", "1", "--prior", "vamp", "--guide", "delta"], "needs a built-in guide with a density"),
])
def test_bad_sweeps_exit_2_and_write_nothing(args, message, finished_sweep, tmp_path, cli):
    out = tmp_path / "sweep"
    shutil.copytree(finished_sweep, out)
    before = tree_snapshot(tmp_path)
    result = cli("sweep", *(small if "--epochs" in args else tiny), *args, "--out", out)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert message in result.err, result.err
    assert tree_snapshot(tmp_path) == before

"""Corrupt run contents and bad options on every command that reads a run: exit 2, one line, nothing changed.

Each corruption of a trained run (checkpoint state, parameters, config.json) is tried on ``train --resume``,
``diagnose`` and ``compare``; each must be refused when the run is loaded, before anything is written.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

import bayesvae
from bayesvae.inference.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from bayesvae.run import CHECKPOINT
from conftest import tree_snapshot

quiet = dict(device="cpu", progress=False, log=lambda _: None)
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("base") / "run"
    bayesvae.fit(out=run, epochs=2, latent_dim=2, hidden=(16,), **quiet)
    return run


def change_state(change):
    def prepare(run):
        params, state = load_checkpoint(run / CHECKPOINT)
        change(params, state)
        save_checkpoint(run / CHECKPOINT, params, state)
    return prepare


def change_config(change):
    def prepare(run):
        config = json.loads((run / "config.json").read_text())
        change(config)
        (run / "config.json").write_text(json.dumps(config))
    return prepare


def first_moment(params, state):
    name = sorted(state["optimizer"])[0]
    return state["optimizer"][name]["state"][0]


def deep_checkpoint_metadata(run):
    params, _ = load_checkpoint(run / CHECKPOINT)
    save_file({f"param/{k}": v for k, v in params.items()}, str(run / CHECKPOINT),
              metadata={"format": FORMAT, "state": DEEP})


def nan_parameter(params, state):
    name = sorted(params)[0]
    params[name] = torch.full_like(params[name], float("nan"))


CORRUPTIONS = {
    "epoch -3": (change_state(lambda p, s: s.update(epoch=-3)), "epoch is -3"),
    "epoch 'two'": (change_state(lambda p, s: s.update(epoch="two")), "epoch is 'two'"),
    "step -1": (change_state(lambda p, s: s.update(step=-1)), "step is -1"),
    "history row missing keys": (change_state(lambda p, s: s["history"][1].pop("test_elbo")), "lacks test_elbo"),
    "history shorter than epochs": (change_state(lambda p, s: s["history"].pop()), "one row per finished epoch"),
    "Adam moment of the wrong shape": (change_state(lambda p, s: first_moment(p, s).update(exp_avg=torch.zeros(3, 3))),
                                       "has shape (3, 3)"),
    "Adam state of two parameter groups": (change_state(lambda p, s: s["optimizer"][sorted(s["optimizer"])[0]]
                                                        ["param_groups"].append({"lr": 1.0, "params": [1]})),
                                           "not a one-parameter Adam state"),
    "10-byte RNG state": (change_state(lambda p, s: s.update(torch_rng=torch.zeros(10, dtype=torch.uint8))),
                          "torch_rng is not a generator state"),
    "data RNG not bytes": (change_state(lambda p, s: s.update(data_rng=torch.zeros(5056))), "data_rng must be a byte"),
    "unknown state field": (change_state(lambda p, s: s.update(colour="red")), "state fields"),
    "NaN parameters": (change_state(nan_parameter), "is not finite"),
    "100,000-deep checkpoint metadata": (deep_checkpoint_metadata, "nested too deeply"),
    "100,000-deep config.json": (lambda run: (run / "config.json").write_text(DEEP), "nested too deeply"),
    "seed 2**32 in config.json": (change_config(lambda c: c["training"].update(seed=2**32)), "--seed"),
    "negative seed in config.json": (change_config(lambda c: c["training"].update(seed=-1)), "--seed"),
}
COMMANDS = {
    "resume": lambda run: ["train", "--resume", run, "--device", "cpu"],
    "diagnose": lambda run: ["diagnose", run, "--k", "5", "--max-images", "10", "--no-mcmc", "--device", "cpu"],
    "compare": lambda run: ["compare", run, "--k", "5", "--max-images", "10", "--out", run.parent / "cmp",
                            "--device", "cpu"],
}


def assert_refused(result, expected: str):
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayesvae: error:"), result.err
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_run_is_refused_on_load_and_nothing_is_written(case, command, base_run, tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    prepare, expected = CORRUPTIONS[case]
    prepare(run)
    before = tree_snapshot(tmp_path)
    assert_refused(cli(*COMMANDS[command](run)), expected)
    assert tree_snapshot(tmp_path) == before, "files were created or changed"


OPTIONS = {
    "device nosuch": (["--device", "nosuch"], "is not a device"),
    "device cuda:99": (["--device", "cuda:99"], "CUDA device"),
    "device meta": (["--device", "meta"], "is not a device"),
    "seed 2**32": (["--seed", str(2**32)], "--seed"),
    "seed -1": (["--seed", "-1"], "--seed"),
    "fewer epochs than done": (["--epochs", "1"], "fewer than the 2 epochs"),
    "step beyond its epoch": (["--epochs", "3"], "step 99 of an epoch that has"),
    "config.json below the epochs done": ([], "config.json says 1 epochs but the checkpoint holds 2"),
}
PREPARED = {  # resume-only cases: the schema alone cannot see them (they need the data or the config)
    "step beyond its epoch": change_state(lambda p, s: s.update(step=99)),
    "config.json below the epochs done": change_config(lambda c: c["training"].update(epochs=1)),
}
RUN_COMMANDS = {  # without --device (each case adds its own, or cpu)
    "train": lambda run: ["train", "--epochs", "1", "--latent-dim", "2", "--hidden", "16", "--out", run.parent / "new"],
    "resume": lambda run: ["train", "--resume", run],
    "diagnose": lambda run: ["diagnose", run, "--k", "5", "--max-images", "10", "--no-mcmc"],
    "compare": lambda run: ["compare", run, "--k", "5", "--max-images", "10", "--out", run.parent / "cmp"],
}
OPTION_CASES = [(command, device) for command in RUN_COMMANDS for device in OPTIONS if device.startswith("device")] + \
    [(command, seed) for command in ("train", "diagnose") for seed in OPTIONS if seed.startswith("seed")] + \
    [("resume", "fewer epochs than done")] + [("resume", case) for case in PREPARED]


@pytest.mark.parametrize("command, case", OPTION_CASES)
def test_bad_option_is_refused_before_any_work(command, case, base_run, tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    extra, expected = OPTIONS[case]
    if case in PREPARED:
        PREPARED[case](run)
    before = tree_snapshot(tmp_path)
    device = [] if "--device" in extra else ["--device", "cpu"]
    assert_refused(cli(*RUN_COMMANDS[command](run), *device, *extra), expected)
    assert tree_snapshot(tmp_path) == before, "files were created or changed"


def test_out_empty_or_current_folder_is_refused(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for out, expected in (("", "--out is empty"), (".", "current folder"), ("..", "one above it")):
        for force in ([], ["--force"]):
            assert_refused(cli("train", "--epochs", "1", "--device", "cpu", "--out", out, *force), expected)
    assert not any(tmp_path.iterdir()) and not list(tmp_path.parent.glob(f".{tmp_path.name}*.lock"))


def test_diagnose_a_file_says_it_is_a_file(base_run, cli):
    result = cli("diagnose", base_run / "config.json", "--device", "cpu")
    assert_refused(result, "is a file, not a run folder")


def test_disk_full_during_diagnose_names_the_file_and_does_not_suggest_resume(base_run, tmp_path, cli, monkeypatch):
    import errno
    from pathlib import Path

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    monkeypatch.setattr(Path, "write_bytes", full)
    monkeypatch.setattr(Path, "write_text", full)
    monkeypatch.setattr("bayesvae.inference.files.write_in_halves", lambda path, data, name: full(path))
    result = cli("diagnose", run, "--k", "5", "--max-images", "10", "--no-mcmc", "--device", "cpu")
    monkeypatch.undo()
    assert_refused(result, f"disk full while writing {run / 'diagnostics'}")
    assert "--resume" not in result.err and "run the command again" in result.err
    assert not list(run.rglob("*.tmp-*"))

"""One writer per run folder (the lock), --force on a symbolic link, and temporaries of killed processes.

The two-process cases start ``bayesvae train`` paused at a named point (inference/pause_points.py),
so the second writer always arrives while the first provably holds the folder: no timing guesses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import bayesvae
from bayesvae.inference.files import atomic_dir, atomic_write_text
from bayesvae.inference.run_lock import lock_path, run_folder_lock
from conftest import bayesvae_command, start_paused, tree_snapshot

quiet = dict(device="cpu", progress=False, log=lambda _: None)
SMALL = ["--epochs", "2", "--latent-dim", "2", "--hidden", "16", "--device", "cpu"]


def start(args: list, point: str, marker: Path):
    proc = start_paused(bayesvae_command() + args, {**os.environ, "OMP_NUM_THREADS": "1"}, point, marker)
    assert proc.poll() is None, proc.communicate()
    return proc


def refused(result, *expected: str) -> None:
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and all(e in lines[0] for e in expected), result.err


@pytest.fixture
def small_run(tmp_path):
    bayesvae.fit(out=tmp_path / "run", epochs=1, latent_dim=2, hidden=(16,), **quiet)
    return tmp_path / "run"


def test_a_second_writer_is_refused_naming_the_holder(small_run, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with run_folder_lock(small_run):  # this process holds it (a flock per open file: a second open conflicts)
        before = tree_snapshot(tmp_path)
        for args in ([*SMALL, "--out", small_run, "--force"], ["--resume", small_run, "--epochs", "3"]):
            refused(cli("train", *args), f"{small_run} is in use: process {os.getpid()} is training it")
        assert tree_snapshot(tmp_path) == before
    assert not lock_path(small_run).exists()  # released and removed
    assert cli("train", "--resume", small_run, "--epochs", "2", "--device", "cpu").code == 0


def test_two_trains_into_one_folder_and_force_while_training(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    # the first writer holds the lock before its folder exists: a simultaneous second `train --out` is refused
    first = start(["train", *SMALL, "--out", run], "start:1", tmp_path / "paused-start")
    refused(cli("train", *SMALL, "--out", run), f"process {first.pid} is training it")
    first.kill()
    first.communicate()
    assert not run.exists()
    # paused mid-epoch: --force and --resume are refused while it trains ...
    second = start(["train", *SMALL, "--out", run], "step:2", tmp_path / "paused-step")
    config = (run / "config.json").read_bytes()
    refused(cli("train", *SMALL, "--out", run, "--force"), f"process {second.pid} is training it")
    refused(cli("train", "--resume", run, "--device", "cpu"), f"process {second.pid}")
    assert (run / "config.json").read_bytes() == config
    # ... and once it is killed (SIGKILL: no clean-up ran) the OS has released the lock
    second.kill()
    second.communicate()
    assert cli("train", "--resume", run, "--device", "cpu").code == 0
    assert not lock_path(run).exists()


def test_force_on_a_symlink_replaces_the_run_it_points_to(small_run, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link").symlink_to(small_run, target_is_directory=True)
    for seed in ("1", "2"):  # twice: the first replacement leaves nothing that blocks the second
        assert cli("train", *SMALL, "--seed", seed, "--out", tmp_path / "link", "--force").code == 0
        assert (tmp_path / "link").is_symlink() and (tmp_path / "link").resolve() == small_run.resolve()
        assert f'"seed": {seed}' in (small_run / "config.json").read_text()
        assert (small_run / "checkpoint.safetensors").is_file()
        assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or p.name.endswith(".lock")]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    pid = dead_pid()
    stale_file = tmp_path / f".posterior_mcmc.tmp-{pid}.nc"
    stale_file.write_bytes(b"half")
    stale_dir = tmp_path / f".comparison.tmp-{pid}"
    stale_dir.mkdir()
    (stale_dir / "comparison.json").write_text("{")
    alive = tmp_path / f".comparison.tmp-{pid}x"  # not a PID suffix: never touched
    alive.mkdir()
    atomic_write_text(tmp_path / "posterior_mcmc.nc", "new")
    assert not stale_file.exists() and (tmp_path / "posterior_mcmc.nc").read_text() == "new"
    with atomic_dir(tmp_path / "comparison") as staging:
        (staging / "comparison.json").write_text("{}")
    assert not stale_dir.exists() and (tmp_path / "comparison" / "comparison.json").read_text() == "{}"
    assert alive.exists()

"""Shared fixtures: the digits data, a small trained run, the real-MNIST folder when present, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

MNIST_DIR = os.environ.get("BAYESVAE_MNIST_DIR")


def pytest_configure(config):
    """Import ArviZ once in the controlling process, before pytest-xdist starts its workers.

    ArviZ 0.23 writes a daily marker at import (``~/.cache/arviz/daily_warning`` through a fixed
    ``daily_warning.tmp`` and a rename) and offers no setting to skip it. Two workers importing it at
    once on a machine without today's marker (every fresh CI clone) race on that one tmp file: one
    rename fails with FileNotFoundError, that worker fails collection, and xdist stops the run
    ("Different tests were collected"). Importing it here first writes today's marker, so the workers
    only read it; through ``inference/arviz_import.py``, the one place bayesvae imports ArviZ, which
    also silences its refactor notice.
    """
    if hasattr(config, "workerinput"):  # a worker: the controller has already done it
        return
    import bayesvae.inference.arviz_import  # noqa: F401


@pytest.fixture(autouse=True)
def _threads():
    """One intra-op thread: the suite's nets are small, results do not depend on the core count, and on a
    busy machine spinning worker threads made tests several times slower."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    from bayesvae.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A digits VAE (2-D latent, 60 epochs) trained once for the whole session."""
    import bayesvae

    out = tmp_path_factory.mktemp("runs") / "vae"
    return bayesvae.fit(out=out, latent_dim=2, epochs=60, hidden=(128,), device="cpu", progress=False,
                        log=lambda _: None)


@pytest.fixture
def mnist_dir():
    if not MNIST_DIR or not Path(MNIST_DIR).is_dir():
        pytest.skip("real MNIST not available (set BAYESVAE_MNIST_DIR)")
    return Path(MNIST_DIR)


class CLIResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"CLIResult(code={self.code}, err={self.err!r})"


@pytest.fixture
def cli(capsys):
    """Run ``bayesvae ARGS`` in this process: returns exit code, stdout, stderr."""
    from bayesvae.cli import main

    def run(*args: str) -> CLIResult:
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:
            code = stop.code
        captured = capsys.readouterr()
        return CLIResult(code, captured.out, captured.err)

    return run


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: compare before/after to prove nothing was written."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def bayesvae_command() -> list[str]:
    """The installed ``bayesvae`` script (or ``python -m bayesvae.cli``), for tests that need a real process."""
    import sys

    script = Path(sys.executable).with_name("bayesvae")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bayesvae.cli"]


def default_signals() -> None:
    """In a child before it runs (``preexec_fn``): Ctrl-C and SIGTERM as a terminal gives them, default and
    unblocked. A child inherits ignored and blocked signals, and a test runner's worker need not have them
    at their defaults: under pytest-xdist, Ctrl-C tests once found their children ignoring SIGINT."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def start_paused(cmd: list, env: dict, point: str, marker: Path, new_session: bool = False):
    """Start ``cmd`` told to pause at ``point`` (NAME:N, see inference/pause_points.py); return the process
    once it sits there (or has ended): kill and race tests then act at an exact moment, never after a sleep.
    ``new_session``: the process leads a process group of its own (kill it and the ranks it started at once)."""
    import subprocess
    import time

    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**env, "BAYESVAE_PAUSE_AT": point, "BAYESVAE_PAUSE_FILE": str(marker)},
                            start_new_session=new_session, preexec_fn=default_signals)
    hung = time.monotonic() + 600  # not a timing guess: only a process that never gets there hits it
    while proc.poll() is None and not marker.exists():
        if time.monotonic() > hung:
            proc.kill()
            raise AssertionError(f"{cmd} never reached pause point {point}: {proc.communicate()[1]}")
        time.sleep(0.01)  # waiting for an event, not guessing a duration
    return proc

"""Guarantees under failure: kill anywhere, Ctrl-C, divergence, hostile files, reproducibility.

The kill and Ctrl-C tests start the real ``bayesvae train`` command as a subprocess.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import bayesvae
from bayesvae.inference.checkpoint import load_checkpoint
from bayesvae.run import METRICS
from conftest import bayesvae_command, start_paused

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 20
quiet = dict(device="cpu", progress=False, log=lambda _: None)


command = bayesvae_command


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, digits):
    """The digits data as a .npz (starts faster than scikit-learn) and an uninterrupted reference run."""
    root = tmp_path_factory.mktemp("reliability")
    np.savez(root / "digits.npz", images=digits.train_x.numpy(), labels=digits.train_y.numpy(),
             test_images=digits.test_x.numpy(), test_labels=digits.test_y.numpy())
    args = ["--dataset", root / "digits.npz", "--epochs", EPOCHS, "--latent-dim", "2", "--hidden", "400",
            "--batch-size", "480", "--seed", "3", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    reference = root / "reference"
    subprocess.run(command() + ["train", *map(str, args), "--out", str(reference)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return root, [str(a) for a in args], env, reference


def final_params(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoint.safetensors")[0]


def assert_same_run(run: Path, reference: Path) -> None:
    a, b = final_params(run), final_params(reference)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "parameters differ"
    rows = (run / METRICS).read_text().splitlines()
    assert len(rows) == 1 + EPOCHS and [r.split(",")[0] for r in rows[1:]] == [str(e) for e in range(1, EPOCHS + 1)]
    assert (run / METRICS).read_text() == (reference / METRICS).read_text()


def temporaries(run: Path) -> list[Path]:
    return [p for p in run.parent.glob(f".{run.name}*.tmp-*")] + \
        ([p for p in run.glob(".*.tmp-*")] if run.is_dir() else [])


# Where the kill-anywhere test stops the process (inference/pause_points.py): NAME -> highest visit N used.
# The counts keep every resume short of the end (≤ 2 epochs of 3 steps each; 5 kills · 2 < EPOCHS), so
# the run never finishes early however fast the machine is, and each kill lands exactly at its point.
MID_RUN_POINTS = {"step": 6, "evaluate": 2, "half-written:checkpoint.safetensors": 2,
                  "written:checkpoint.safetensors": 2, "written:metrics.csv": 2}


def kill_schedule(rng: random.Random) -> list[str]:
    """Start-up, folder staging, then every mid-run point once in a shuffled order, each at a random visit."""
    names = sorted(MID_RUN_POINTS)
    rng.shuffle(names)
    return ["start:1", "staged:killed:1"] + [f"{n}:{rng.randint(1, MID_RUN_POINTS[n])}" for n in names]


def test_kill_anywhere_then_resume_ends_where_an_uninterrupted_run_ends(workspace):
    root, args, env, reference = workspace
    run, marker = root / "killed", root / "paused"
    during_write = 0
    for point in kill_schedule(random.Random(0)) + ["pictures:1"]:
        resume = (run / "config.json").exists()
        cmd = command() + ["train"] + (["--resume", str(run)] if resume else args + ["--out", str(run)])
        proc = start_paused(cmd, env, point, marker)
        assert proc.poll() is None, f"ended before reaching {point}: {proc.communicate()[1]}"
        assert marker.read_text().split()[0] == point.rpartition(":")[0]
        proc.kill()
        proc.communicate()
        during_write += bool(list(run.glob(".checkpoint.tmp-*")))
        # whatever the moment, what is on disk is complete: a loadable checkpoint and config
        if (run / "checkpoint.safetensors").exists():
            params, state = load_checkpoint(run / "checkpoint.safetensors")
            assert params and 0 <= state["epoch"] <= EPOCHS
        if run.exists():
            assert (run / "config.json").is_file(), "a run folder appeared without its config.json"
        else:
            assert point in ("start:1", "staged:killed:1"), f"no run folder after a kill at {point}"
    assert during_write >= 2, during_write
    # killed after the last checkpoint, before the pictures and findings: --resume must finish them
    assert not (run / "reconstructions.png").exists() and not (run / "findings.json").exists()
    subprocess.run(command() + ["train", "--resume", str(run)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert_same_run(run, reference)
    assert (run / "reconstructions.png").is_file() and (run / "prior_samples.png").is_file()
    assert (run / "findings.json").is_file()
    assert not temporaries(run), temporaries(run)


def test_ctrl_c_and_sigterm_save_mid_epoch_alike_and_resuming_ends_where_never_stopping_ends(workspace):
    root, args, env, reference = workspace
    saved = {}
    for signum, code, word in ((signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")):
        run = root / f"interrupted-{signum}"
        # the signal arrives right after step 8 of 3 x 20: epoch 3, step 2 (the epoch in progress is kept)
        proc = start_paused(command() + ["train", *args, "--out", str(run)], env, "step:8", root / f"paused-{signum}")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        assert err.strip().splitlines() == [f"bayesvae: {word} after epoch 2 (+2 steps); saved. Resume with: "
                                            f"bayesvae train --resume {run}"], err
        saved[signum] = load_checkpoint(run / "checkpoint.safetensors")
        assert (saved[signum][1]["epoch"], saved[signum][1]["step"]) == (2, 2)
    # SIGTERM saved exactly what Ctrl-C saved: the same parameters, Adam moments, RNG states, partial loss
    (p_int, s_int), (p_term, s_term) = saved[signal.SIGINT], saved[signal.SIGTERM]
    assert p_int.keys() == p_term.keys() and all(torch.equal(p_int[k], p_term[k]) for k in p_int)
    assert torch.equal(s_int["torch_rng"], s_term["torch_rng"]) and torch.equal(s_int["data_rng"], s_term["data_rng"])
    assert s_int["partial_loss"] == s_term["partial_loss"] and s_int["history"] == s_term["history"]
    assert s_int["optimizer"].keys() == s_term["optimizer"].keys() and all(
        torch.equal(s_int["optimizer"][k]["state"][0][m], s_term["optimizer"][k]["state"][0][m])
        for k in s_int["optimizer"] for m in ("exp_avg", "exp_avg_sq"))
    run = root / f"interrupted-{signal.SIGTERM}"
    subprocess.run(command() + ["train", "--resume", str(run)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert_same_run(run, reference)


POISONED_MODEL = """
import torch, pyro
from bayesvae.models.build import ModelSpec, build_pair

_builtin = build_pair(ModelSpec(latent_dim=2, hidden=(32,)), (1, 8, 8))
steps = {{"n": 0}}

def model(x):
    p = pyro.param("poison", torch.ones(()))
    if torch.is_grad_enabled():
        steps["n"] += 1
    if steps["n"] > {after}:
        {poison}
    _builtin.model(x)

guide = _builtin.guide
"""
POISONS = {
    # log-density NaN: the loss itself is not finite
    "loss": 'pyro.factor("poison_site", p * float("nan"))',
    # finite loss, NaN gradient (0 · ∞ through torch.where): only the gradient check can see it
    "gradient": 'pyro.factor("poison_site", torch.where(p > -1, 0 * p, torch.sqrt(p - p.detach())))',
}


@pytest.mark.parametrize("kind", sorted(POISONS))
def test_divergence_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(kind, tmp_path, cli):
    (tmp_path / "poisoned.py").write_text(POISONED_MODEL.format(after=28, poison=POISONS[kind]))
    result = cli("train", "--model", f"{tmp_path / 'poisoned.py'}:model", "--guide",
                 f"{tmp_path / 'poisoned.py'}:guide", "--epochs", "5", "--elbo", "mc", "--device", "cpu",
                 "--out", tmp_path / "run")
    assert result.code == 2, result
    line = result.err.strip()
    # 12 steps per epoch: the poison starts in epoch 3 (the exact step depends on set-up calls of the model)
    assert len(line.splitlines()) == 1 and re.search(r"diverged at epoch 3: .*step \d+", line) and "--lr" in line, line
    params, state = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert state["epoch"] == 2 and all(bool(torch.isfinite(v).all()) for v in params.values())
    assert len((tmp_path / "run" / METRICS).read_text().splitlines()) == 3


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_a_planted_pickle_is_refused_and_never_executed(tmp_path):
    bayesvae.fit(out=tmp_path / "run", epochs=1, latent_dim=2, hidden=(16,), **quiet)
    marker = tmp_path / "executed"
    payload = pickle.dumps({"state": _Exploit(marker)})
    for name in ("checkpoint.safetensors", "optimizer.pt", "params.pt", "model.pkl"):
        (tmp_path / "run" / name).write_bytes(payload)
    with pytest.raises(bayesvae.BadInput, match="corrupt"):
        bayesvae.load_run(tmp_path / "run", device="cpu")
    assert not marker.exists()


def test_project_code_never_unpickles():
    """Static guard: no pickle import and no torch.load without weights_only=True in the package."""
    offenders = []
    for folder in ("models", "inference", "analysis", "bayesvae"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if "import pickle" in text or "allow_pickle=True" in text:
                offenders.append(str(path))
            for chunk in text.split("torch.load(")[1:]:
                if "weights_only=True" not in chunk.split(")")[0]:
                    offenders.append(str(path))
    assert not offenders, offenders


def test_same_command_same_seed_same_metrics(cli, tmp_path):
    outs = []
    for name in ("a", "b"):
        result = cli("train", "--epochs", "4", "--latent-dim", "2", "--hidden", "64", "--seed", "11",
                     "--device", "cpu", "--out", tmp_path / name)
        assert result.code == 0, result
        outs.append((tmp_path / name / METRICS).read_bytes())
    assert outs[0] == outs[1]
    cli("train", "--epochs", "4", "--latent-dim", "2", "--hidden", "64", "--seed", "12", "--device", "cpu",
        "--out", tmp_path / "c")
    assert (tmp_path / "c" / METRICS).read_bytes() != outs[0]


INTERRUPT_POINTS = {  # command -> where Ctrl-C arrives (pause points, so always at that moment)
    "train during start-up": (lambda root, ref, args: ["train", *args, "--out", str(root / "startup")], "start:1"),
    "diagnose while writing": (lambda root, ref, args: ["diagnose", str(ref), "--k", "5", "--max-images", "20",
                                                         "--no-mcmc", "--device", "cpu", "--out", str(root / "diag")],
                               "written:anatomy.txt:1"),
    "compare while writing": (lambda root, ref, args: ["compare", str(ref), "--k", "5", "--max-images", "20",
                                                        "--device", "cpu", "--out", str(root / "cmp")],
                              "staged:cmp:1"),
}


STOPS = {signal.SIGINT: (130, "bayesvae: interrupted; nothing was half-written"),
         signal.SIGTERM: (143, "bayesvae: terminated (SIGTERM); nothing was half-written")}


# Ctrl-C at every point; SIGTERM (the same clean-up path, raised as Terminated) at start-up and mid-write
CASES_AND_SIGNALS = [(case, signal.SIGINT) for case in sorted(INTERRUPT_POINTS)] + \
    [("train during start-up", signal.SIGTERM), ("diagnose while writing", signal.SIGTERM)]


@pytest.mark.parametrize("case,signum", CASES_AND_SIGNALS)
def test_ctrl_c_or_sigterm_outside_training_exits_with_one_line_and_no_leftovers(case, signum, workspace):
    root, args, env, reference = workspace
    make_args, point = INTERRUPT_POINTS[case]
    before = sorted(p.name for p in root.iterdir())
    proc = start_paused(command() + make_args(root, reference, args), env, point, root / f"paused-{point}")
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    code, line = STOPS[signum]
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [line], err
    after = sorted(p.name for p in root.iterdir() if p.name != f"paused-{point}")
    new = set(after) - set(before)
    assert new <= {"diag"} and not [p for p in root.rglob("*.tmp-*")], (new, list(root.rglob("*.tmp-*")))
    if "diag" in new:  # Ctrl-C waited for the end of diagnose's file set: the whole set is there, each file whole
        names = {p.name for p in (root / "diag").iterdir()}
        assert {"anatomy.txt", "anatomy.json", "findings.json", "kl_per_dimension.png"} <= names, names
        assert json.loads((root / "diag" / "anatomy.json").read_text())["n_images"] == 20

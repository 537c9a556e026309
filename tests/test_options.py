"""One declaration per option: the command line and ``bayesvae.fit`` write the same config.json for every
option; derived defaults (binarization, a user model's latent size) are resolved once for both faces."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

import bayesvae
import bayesvae.api as api
from bayesvae.commands.train import DATA_OPTIONS, MODEL_OPTIONS, TRAIN_OPTIONS
from bayesvae.models.checks import flag

quiet = dict(device="cpu", progress=False, log=lambda _: None)

# option -> (command-line text, the same value in Python); each differs from the default
CASES = {
    "prior": ("mog", "mog"), "likelihood": ("gaussian", "gaussian"), "likelihood_scale": ("0.2", 0.2),
    "net": ("conv", "conv"), "hidden": ("32,16", (32, 16)), "latent_dim": ("3", 3), "activation": ("relu", "relu"),
    "elbo": ("iwae", "iwae"), "particles": ("3", 3), "beta": ("0.5", 0.5), "beta0": ("0.25", 0.25),
    "warmup_epochs": ("2", 2), "epochs": ("2", 2), "batch_size": ("64", 64), "lr": ("0.002", 0.002),
    "seed": ("3", 3), "binarize": ("fixed", "fixed"),
    "clusters": ("3", 3), "labels": ("20", 20), "alpha": ("5", 5.0),
}
# options that only a model with a discrete site takes: (command-line flags, fit keywords) to go with them
EXTRA = {"clusters": (["--model", "mixture"], {"model": "mixture"}), "labels": (["--model", "m2"], {"model": "m2"})}

GAUSSIAN_USER_MODEL = '''
import torch
import pyro
import pyro.distributions as dist
from torch import nn

LATENT = 3
decoder = nn.Linear(LATENT, 64)          # pPCA-style: x = W z + b + noise
encoder = nn.Linear(64, 2 * LATENT)


def model(x):
    pyro.module("decoder", decoder)
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Normal(x.new_zeros(LATENT), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(decoder(z).unflatten(-1, (1, 8, 8)), 0.1).to_event(3), obs=x)


def guide(x):
    pyro.module("encoder", encoder)
    with pyro.plate("data", x.shape[0]):
        loc, raw = encoder(x.flatten(-3)).chunk(2, dim=-1)
        pyro.sample("z", dist.Normal(loc, torch.nn.functional.softplus(raw) + 1e-3).to_event(1))
'''


@pytest.fixture
def no_training(monkeypatch):
    """config.json is written before training starts: skip the training itself."""
    monkeypatch.setattr(api, "_train_run", lambda run, *_how: run)


def config_of(path):
    return json.loads((path / "config.json").read_text())


# how streamed data is read (config.json's "data" section): (command-line text or None for a switch, value)
DATA_CASES = {"stream": (None, True), "image_size": ("6", 6), "workers": ("1", 1)}


def test_every_declared_option_has_a_case():
    assert set(CASES) == set(MODEL_OPTIONS + TRAIN_OPTIONS)
    assert set(CASES) | set(DATA_CASES) == set(MODEL_OPTIONS + TRAIN_OPTIONS + DATA_OPTIONS) == set(api.OPTION_NAMES)


@pytest.mark.parametrize("option", sorted(DATA_CASES))
def test_cli_and_fit_write_the_same_data_section(option, tmp_path, cli, no_training):
    from PIL import Image

    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(torch.full((8, 8), 30 * i, dtype=torch.uint8).numpy()).save(folder / f"{i}.png")
    text, value = DATA_CASES[option]
    given = [flag(option)] + ([text] if text is not None else [])
    result = cli("train", "--dataset", folder, "--stream", *given, "--batch-size", "4", "--out", tmp_path / "cli",
                 "--device", "cpu")
    assert result.code == 0, result
    bayesvae.fit(data=str(folder), out=tmp_path / "api", batch_size=4, **{"stream": True, option: value}, **quiet)
    from_cli, from_api = config_of(tmp_path / "cli"), config_of(tmp_path / "api")
    assert from_cli == from_api and from_cli["data"][option] == value


@pytest.mark.parametrize("option", sorted(CASES))
def test_cli_and_fit_write_the_same_config(option, tmp_path, cli, no_training):
    text, value = CASES[option]
    extra_cli, extra_api = EXTRA.get(option, ([], {}))
    result = cli("train", flag(option), text, *extra_cli, "--out", tmp_path / "cli", "--device", "cpu")
    assert result.code == 0, result
    bayesvae.fit(out=tmp_path / "api", **{option: value}, **extra_api, **quiet)
    from_cli, from_api = config_of(tmp_path / "cli"), config_of(tmp_path / "api")
    assert from_cli == from_api
    section = "model" if option in MODEL_OPTIONS else "training"
    assert from_cli[section][option] == (list(value) if isinstance(value, tuple) else value)


@pytest.mark.parametrize("likelihood, binarize", [("bernoulli", "dynamic"), ("gaussian", "none"),
                                                  ("continuous-bernoulli", "none"), ("gaussian-learned", "none")])
def test_binarization_follows_the_likelihood_in_both_faces(likelihood, binarize, tmp_path, cli, no_training):
    assert cli("train", "--likelihood", likelihood, "--out", tmp_path / "cli", "--device", "cpu").code == 0
    bayesvae.fit(out=tmp_path / "api", likelihood=likelihood, **quiet)
    assert config_of(tmp_path / "cli")["training"]["binarize"] == binarize
    assert config_of(tmp_path / "api")["training"]["binarize"] == binarize


def test_a_gaussian_user_model_trains_on_grey_pixels_without_a_binarize_flag(tmp_path, cli, monkeypatch):
    (tmp_path / "ppca.py").write_text(GAUSSIAN_USER_MODEL)
    monkeypatch.chdir(tmp_path)
    result = cli("train", "--model", "ppca.py:model", "--guide", "ppca.py:guide", "--epochs", "1", "--device", "cpu")
    assert result.code == 0, result
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("digits-ppca-z3-")                     # the latent size of the model's trace
    config = config_of(run_dir)
    assert config["training"]["binarize"] == "none"
    # only what applies to a user's model and guide: no built-in likelihood, prior, networks or latent default
    assert config["model"] == {"model": "code/ppca.py:model", "guide": "code/ppca.py:guide", "latent_dim": 3}
    run = bayesvae.load_run(run_dir, trust_code=True, device="cpu")
    x, _ = run.images("test")
    grey = (x > 0) & (x < 1)
    assert grey.float().mean() > 0.1 and torch.equal(x, run.data.test_x)  # scored on the grey levels themselves


def test_a_bernoulli_user_model_is_binarized_and_keeps_the_builtin_guide_settings(tmp_path, no_training):
    script = tmp_path / "student.py"
    script.write_text((__import__("pathlib").Path(__file__).parents[1] / "examples" / "student_t_vae.py").read_text())
    bayesvae.fit(f"{script}:model", f"{script}:guide", out=tmp_path / "a", **quiet)
    config = config_of(tmp_path / "a")
    assert config["training"]["binarize"] == "dynamic" and config["model"]["latent_dim"] == 8
    # a user model with the built-in guide: the encoder's settings apply, the built-in likelihood does not
    bayesvae.fit(f"{script}:model", "normal", out=tmp_path / "b", latent_dim=8, **quiet)
    assert set(config_of(tmp_path / "b")["model"]) == {"model", "guide", "latent_dim", "net", "hidden", "activation"}


def test_tracing_for_the_defaults_leaves_no_parameter_and_no_draw_behind(tmp_path, digits):
    """Resolving runs the model once; a guide whose parameter starts at random (torch.randn) must start at
    the same value as without that trace, so the trace may neither draw from the RNG nor create parameters."""
    from bayesvae.models.build import ModelSpec, build_pair
    from bayesvae.settings import trace_model

    script = tmp_path / "ppca.py"
    script.write_text(GAUSSIAN_USER_MODEL.replace('pyro.module("encoder", encoder)',
                                                  'pyro.module("encoder", encoder)\n    '
                                                  'shift = pyro.param("shift", lambda: torch.randn(LATENT))'))
    pair = build_pair(ModelSpec(model=f"{script}:model", guide=f"{script}:guide"), digits.image_shape)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    trace = trace_model(pair, digits.train_x)
    assert torch.equal(torch.get_rng_state(), before) and not pair.param_state["params"]
    assert "z" in trace.nodes and "x" in trace.nodes


def test_a_mistyped_option_gets_a_suggestion(cli):
    result = cli("train", "--latent_dim", "3")
    assert result.code == 2 and result.err.count("\n") == 1 and "did you mean --latent-dim?" in result.err
    with pytest.raises(bayesvae.BadInput, match="did you mean 'latent_dim'"):
        bayesvae.fit(latent_dimm=3, **quiet)
    with pytest.raises(bayesvae.BadInput, match="did you mean 'chains'"):
        bayesvae.diagnose("nowhere", chain=2)


def test_help_is_user_facing_text(cli):
    result = cli("--help")
    assert result.code == 0 and ":mod:" not in result.out and "bayesvae train" in result.out
    train = cli("train", "--help").out
    for option in MODEL_OPTIONS + TRAIN_OPTIONS:
        assert flag(option) in train
    assert "softplus" in train and "(default: softplus)" in train


def test_a_sweep_resolves_binarize_as_train_does_and_reruns_cleanly(tmp_path, cli):
    argv = ("sweep", "--beta", "1", "--likelihood", "gaussian", "--epochs", "1", "--hidden", "16", "--latent-dim", "2",
            "--out", tmp_path / "s", "--device", "cpu")
    assert cli(*argv).code == 0
    assert config_of(tmp_path / "s" / "normal-beta1")["training"]["binarize"] == "none"
    again = cli(*argv)
    assert again.code == 0 and "skipped" in again.out, again


def test_sweep_is_a_python_function_returning_its_summary_table(tmp_path):
    import pandas as pd

    table = bayesvae.sweep(tmp_path / "s", beta=[0.5, 1], latent_dim=2, hidden=(16,), epochs=1, device="cpu",
                           log=lambda _: None)
    assert isinstance(table, pd.DataFrame) and list(table.index) == ["normal-beta0.5", "normal-beta1"]
    assert set(table.columns) >= {"elbo", "log_likelihood", "kl"}
    # ELBO = E_q log p(x|z) − KL, from the same draws
    assert (table["elbo"] - (table["log_likelihood"] - table["kl"])).abs().max() < 1e-4
    with pytest.raises(bayesvae.BadInput, match="did you mean 'latent_dim'"):
        bayesvae.sweep(tmp_path / "t", beta=1, latent_dimm=2)

"""Discrete latents from the command line: bad input exits 2 with one line and writes nothing; a tiny
mixture run trains and diagnoses with the class summed exactly; show names the enumerated site."""

import numpy as np
import pytest

from conftest import tree_snapshot

UNENUMERATED = '''
import torch, pyro, pyro.distributions as dist
from torch import nn
net = nn.Linear(3, 64)
def model(x):
    pyro.module("net", net)
    with pyro.plate("data", x.shape[0]):
        c = pyro.sample("c", dist.Categorical(logits=torch.zeros(3)))
        z = pyro.sample("z", dist.Normal(torch.zeros(3), 1.0).to_event(1))
        pyro.sample("x", dist.Bernoulli(logits=net(z).unflatten(-1, (1, 8, 8))).to_event(3), obs=x)
def guide(x):
    with pyro.plate("data", x.shape[0]):
        pyro.sample("c", dist.Categorical(logits=torch.zeros(3)))   # sampled, not marked for enumeration
        pyro.sample("z", dist.Normal(torch.zeros(3), 1.0).to_event(1))
'''


def script(root):
    (root / "vae.py").write_text(UNENUMERATED)
    return ["--model", root / "vae.py:model", "--guide", root / "vae.py:guide"]


def unlabelled_npz(root):
    np.savez(root / "data.npz", images=np.random.default_rng(0).random((40, 8, 8)).astype(np.float32))
    return ["--dataset", root / "data.npz", "--model", "m2", "--labels", "10", "--binarize", "dynamic", "--batch-size", "8"]


CASES = {
    "clusters 0": (lambda r: ["--model", "mixture", "--clusters", "0"], "--clusters must be a whole number ≥ 1"),
    "more labels than images": (lambda r: ["--model", "m2", "--labels", "5000"], "more than the 1437 training images"),
    "labels without labels in the data": (unlabelled_npz, "needs a data set with labels; this one has none"),
    "labels without a label site": (lambda r: ["--labels", "10"], "needs a model whose label is a discrete site"),
    "discrete site not enumerated": (script, "without enumeration support"),
    "iwae with enumeration": (lambda r: ["--model", "mixture", "--elbo", "iwae"], "cannot sum a discrete site out"),
    "point-mass guide of the mixture": (lambda r: ["--model", "mixture", "--guide", "delta"], "a built-in guide with a density"),
    "guide of M2": (lambda r: ["--model", "m2", "--guide", "iaf"], "has its own prior and guide"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_discrete_bad_input_exits_2_with_one_line(case, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_args, expected = CASES[case]
    args = [str(a) for a in make_args(tmp_path)]
    before = tree_snapshot(tmp_path)
    result = cli("train", "--epochs", "1", "--device", "cpu", "--hidden", "16", "--out", tmp_path / "run", *args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayesvae: error:"), result.err
    assert expected in lines[0], lines[0]
    assert tree_snapshot(tmp_path) == before, "files were created or changed"


@pytest.mark.parametrize("guide", ["cluster", "normal"])
def test_mixture_run_trains_diagnoses_and_shows_its_enumerated_site(guide, cli, tmp_path):
    run = tmp_path / "mix"
    result = cli("train", "--model", "mixture", "--guide", guide, "--clusters", "3", "--epochs", "1", "--hidden", "16",
                 "--latent-dim", "2", "--device", "cpu", "--out", run, "--batch-size", "512")
    assert result.code == 0, result
    assert "discrete site 'c' is summed out exactly" in result.out
    result = cli("diagnose", run, "--k", "4", "--max-images", "8", "--device", "cpu")
    assert result.code == 0, result
    assert "class KL(q(c|x) ‖ p(c))" in result.out and "cluster accuracy" in result.out
    if guide == "normal":
        assert "not defined: the guide has no q(c|x)" in result.out
    assert "part 2 skipped" in result.out and "Traceback" not in result.err
    result = cli("show", run)
    assert result.code == 0 and "enumerated discrete site 'c'" in result.out


def test_show_against_goes_plain_vae_to_mixture_to_m2(cli):
    result = cli("show", "--against", "model=mixture")
    assert result.code == 0, result
    assert "+class MixtureModel" in result.out and "-class Model" in result.out
    result = cli("show", "--model", "mixture", "--against", "model=m2")
    assert result.code == 0, result
    assert "enumerated discrete site 'c'" in result.out and "+class M2Model" in result.out

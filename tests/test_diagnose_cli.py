"""``bayesvae diagnose RUN`` (part 1): writes RUN/diagnostics/, prints one line per Bayes term, refuses bad input.

Part 2 (MCMC) is switched off with --no-mcmc where it is installed; its own tests cover it.
"""

import json
import shutil

import pytest
import torch

import bayesvae
from conftest import tree_snapshot

PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = ("kl_per_dimension.png", "latent_means.png", "posterior_stds.png", "aggregate_posterior.png")
NO_MCMC = ["--no-mcmc"]
quiet = dict(device="cpu", progress=False, log=lambda _: None)


def copy_run(run, root):
    """A private copy of a trained run (config + checkpoint) so tests never write into a shared one."""
    target = root / "run"
    target.mkdir()
    for name in ("config.json", "checkpoint.safetensors"):
        shutil.copy(run.path / name, target / name)
    return target


def line(out: str, start: str) -> str:
    matches = [row for row in out.splitlines() if row.startswith(start)]
    assert len(matches) == 1, (start, out)
    return matches[0]


def test_diagnose_writes_json_and_plots_and_prints_the_table(trained_run, tmp_path, cli):
    run = copy_run(trained_run, tmp_path)
    result = cli("diagnose", run, "--k", "100", "--max-images", "100", *NO_MCMC)
    assert result.code == 0, result.err
    folder = run / "diagnostics"
    for name in PLOTS:
        assert (folder / name).read_bytes()[:8] == PNG, name
    data = json.loads((folder / "anatomy.json").read_text())
    assert data["n_images"] == 100 and data["k"] == 100 and data["split"] == "test"
    evidence, anatomy, surgery = data["evidence"], data["anatomy"], data["surgery"]
    # the printed table shows the numbers of the JSON, one line per Bayes term
    assert f"{evidence['log_px']:.3f}" in line(result.out, "evidence log p(x) (IS, K=100)")
    assert f"{evidence['gap']:.3f}" in line(result.out, "gap log p(x) − ELBO = KL(q(z|x) ‖ p(z|x))")
    assert f"{anatomy['entropy']['value']:.3f}" in line(result.out, "entropy H[q(z|x)]")
    assert f"{surgery['mutual_information']:.3f}" in line(result.out, "mutual information I_q(x;z)")
    for start in ("likelihood term E_q[log p(x|z)]", "prior term E_q[log p(z)]", "KL(q(z|x) ‖ p(z))",
                  "marginal KL(q(z) ‖ p(z))", "active units"):
        line(result.out, start)
    # the numbers hang together: ELBO ≤ log p(x), two ELBO estimates agree, the KL splits as surgery says
    assert evidence["elbo"] < evidence["log_px"]
    assert abs(evidence["elbo"] - anatomy["elbo"]["value"]) < 4 * (evidence["elbo_se"] + anatomy["elbo"]["se"])
    assert surgery["average_kl"] == pytest.approx(anatomy["kl"]["value"], abs=1e-4)
    assert data["latent"]["kl_total"] == pytest.approx(anatomy["kl"]["value"], abs=1e-4)
    assert (folder / "anatomy.txt").read_text().count("\n") > 15


def test_delta_guide_says_no_entropy_instead_of_a_number(tmp_path, cli):
    run = tmp_path / "ae"
    bayesvae.fit(out=run, guide="delta", epochs=2, latent_dim=2, hidden=(16,), **quiet)
    result = cli("diagnose", run, "--k", "20", "--max-images", "40", *NO_MCMC)
    assert result.code == 0, result.err
    entropy = line(result.out, "entropy H[q(z|x)] (Delta guide)")
    assert " n/a " in entropy and "not defined" in entropy
    assert "not defined" in line(result.out, "evidence log p(x)")
    assert "n/a" in line(result.out, "KL(q(z|x) ‖ p(z))")
    data = json.loads((run / "diagnostics" / "anatomy.json").read_text())
    assert data["anatomy"]["entropy"]["value"] is None and data["anatomy"]["kl"]["value"] is None
    assert "point mass" in data["evidence"]["skipped"] and "point-mass" in data["surgery"]["skipped"]
    assert data["latent"]["point_mass"] and data["latent"]["kl_total"] is None   # codes have no spread, no KL_u
    assert (run / "diagnostics" / "latent_means.png").read_bytes()[:8] == PNG


def test_python_api_returns_the_tables_as_data(trained_run, tmp_path):
    run = bayesvae.fit(out=None, epochs=1, latent_dim=2, hidden=(16,), **quiet)   # in memory: nothing written
    result = bayesvae.diagnose(run, k=20, max_images=30, mcmc=False, log=lambda _: None)
    assert "files" not in result
    assert {row["quantity"].split(" (")[0] for row in result["table"]} >= {"evidence log p(x)", "entropy H[q(z|x)]"}
    assert isinstance(result["evidence"]["log_px"], float) and result["n_images"] == 30
    assert isinstance(result["latent"]["per_dimension"], list)
    # a run folder by path, results written where asked
    result = bayesvae.diagnose(trained_run.path, k=20, max_images=30, out=tmp_path / "d", mcmc=False,
                               log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(PLOTS + ("anatomy.json", "anatomy.txt", "findings.json"))
    assert json.loads((tmp_path / "d" / "anatomy.json").read_text())["evidence"]["k"] == 20


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return bayesvae.fit(out=tmp_path_factory.mktemp("tiny") / "run", epochs=1, latent_dim=2, hidden=(16,), **quiet)


def never_trained(root, tiny):
    run = copy_run(tiny, root)
    (run / "checkpoint.safetensors").unlink()
    return [run]


def trained(root, tiny, *extra):
    return [copy_run(tiny, root), *extra]


def not_a_run(root):
    (root / "photos").mkdir()
    (root / "photos" / "a.jpg").write_text("precious")
    return [root / "photos"]


CASES = {
    "missing run": lambda root, tiny: [root / "nowhere"],
    "folder that is not a run": lambda root, tiny: not_a_run(root),
    "run without a checkpoint": never_trained,
    "--k 0": lambda root, tiny: trained(root, tiny, "--k", "0"),
    "--k 1": lambda root, tiny: trained(root, tiny, "--k", "1"),
    "--k not a number": lambda root, tiny: trained(root, tiny, "--k", "many"),
    "--max-images 1": lambda root, tiny: trained(root, tiny, "--max-images", "1"),
    "unknown --split": lambda root, tiny: trained(root, tiny, "--split", "validation"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, monkeypatch, cli, tiny_run):
    monkeypatch.chdir(tmp_path)
    args = CASES[case](tmp_path, tiny_run)
    before = tree_snapshot(tmp_path)
    result = cli("diagnose", *args, *NO_MCMC)
    assert result.code == 2, result
    assert result.err.startswith("bayesvae: error: ") and result.err.count("\n") == 1, result.err
    assert tree_snapshot(tmp_path) == before
    if case == "run without a checkpoint":
        assert "checkpoint" in result.err and "train" in result.err

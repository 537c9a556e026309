"""``bayesvae compare``: what tells an autoencoder, a VAE and β-VAEs apart, measured on digits with a 2-D latent.

One set of runs (same seed, same networks, 40 epochs) is trained once for the module: a plain
autoencoder (Delta guide, β = 0) and VAEs at β = 0.5, 1, 4.
"""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import bayesvae
from bayesvae.analysis.latent_space import decode, manifold_grid, project, traversal
from bayesvae.analysis.probes import class_grouping
from bayesvae.inference.evidence import estimate_log_evidence
from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.errors import BadInput
from conftest import tree_snapshot

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
quiet = dict(device="cpu", progress=False, log=lambda _: None)
common = dict(latent_dim=2, hidden=(64,), epochs=40, seed=0, **quiet)
RUNS = {"ae": dict(guide="delta", beta=0.0), "vae-beta0.5": dict(beta=0.5), "vae-beta1": dict(beta=1.0),
        "vae-beta4": dict(beta=4.0)}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare") / "runs"
    for name, options in RUNS.items():
        bayesvae.fit(out=root / name, **{**common, **options})
    return root


@pytest.fixture(scope="module")
def table(runs_dir):
    result = bayesvae.compare(runs_dir, k=200, device="cpu", log=lambda _: None)
    return {row["name"]: row for row in result["runs"]}, result


def test_autoencoder_codes_spread_far_wider_than_the_vaes(table):
    rows, _ = table
    # nothing holds the AE's codes near the origin; the VAE's KL keeps the aggregate near N(0, I)
    assert rows["ae"]["mean_spread"] > 2 * rows["vae-beta1"]["mean_spread"], rows
    assert 0.5 < rows["vae-beta1"]["mean_spread"] < 1.5


def test_rate_falls_and_distortion_rises_with_beta(table):
    rows, _ = table
    vaes = [rows[f"vae-beta{b}"] for b in ("0.5", "1", "4")]
    rates, distortions = [r["rate"] for r in vaes], [r["distortion"] for r in vaes]
    assert rates[0] > rates[1] > rates[2] >= -3 * vaes[2]["rate_se"], rates
    assert distortions[0] < distortions[1] < distortions[2], distortions
    for row in vaes:  # the table's ELBO is −(D + R) (to float32 rounding), and the importance-sampled evidence bounds it
        assert math.isclose(row["elbo"], -(row["rate"] + row["distortion"]), rel_tol=1e-6)
        assert row["log_px"] > row["elbo"] - 3 * (row["log_px_se"] + row["distortion_se"])
        assert abs(row["mutual_information"] + row["marginal_kl"] - row["rate"]) < 1e-6  # ELBO surgery
        assert row["mutual_information"] <= row["log_n"]


def test_classes_group_well_above_chance_for_the_vae(table):
    rows, _ = table
    vae = rows["vae-beta1"]
    assert vae["knn_accuracy"] > 3 * vae["chance"] and vae["logistic_accuracy"] > 3 * vae["chance"], vae
    assert vae["active_units"] == 2


def test_autoencoder_has_no_rate_and_says_so(table):
    rows, result = table
    ae = rows["ae"]
    assert ae["rate"] is None and ae["elbo"] is None and ae["log_px"] is None and ae["mutual_information"] is None
    assert math.isfinite(ae["distortion"]) and ae["knn_accuracy"] > 2 * ae["chance"]
    assert any(note.startswith("ae: rate not defined") for note in result["notes"])


def test_table_agrees_with_the_evidence_estimator(runs_dir, table):
    """The ELBO from analytic KL + MC likelihood (table) and from the log-weights of the evidence run agree."""
    rows, _ = table
    run = bayesvae.load_run(runs_dir / "vae-beta1", device="cpu")
    x, _ = run.images("test")
    torch.manual_seed(1)
    evidence = estimate_log_evidence(run.pair, x, k=500)
    assert abs(evidence.mean_elbo - rows["vae-beta1"]["elbo"]) < 4 * (evidence.elbo_se_mean
                                                                      + rows["vae-beta1"]["distortion_se"])


def test_compare_command_writes_table_and_pictures(runs_dir, tmp_path, cli):
    out = tmp_path / "cmp"
    result = cli("compare", runs_dir / "ae", runs_dir / "vae-beta1", runs_dir / "vae-beta4", "--out", out,
                 "--k", "50", "--max-images", "150", "--tsne", "--device", "cpu")
    assert result.code == 0, result.err
    assert "rate R" in result.out and "k-NN acc" in result.out and "point-mass" in result.out
    written = {p.name for p in out.iterdir()}
    expected = {"comparison.json", "comparison.csv", "comparison.txt", "rate_distortion.png", "latent.png",
                "latent_tsne.png", "class_grouping.png"}
    for name in ("ae", "vae-beta1", "vae-beta4"):
        expected |= {f"{name}-reconstructions.png", f"{name}-prior-samples.png", f"{name}-manifold.png"}
    assert expected == written
    assert all((out / name).stat().st_size > 1000 for name in written if name.endswith(".png"))
    saved = json.loads((out / "comparison.json").read_text())
    assert [row["name"] for row in saved["runs"]] == ["ae", "vae-beta1", "vae-beta4"]
    assert saved["runs"][0]["rate"] is None and saved["runs"][1]["rate"] > saved["runs"][2]["rate"]
    # a second comparison into the same folder replaces the first one whole
    again = cli("compare", runs_dir / "vae-beta1", "--out", out, "--k", "50", "--device", "cpu")
    assert again.code == 0 and "ae-manifold.png" not in {p.name for p in out.iterdir()}


def test_a_folder_of_runs_is_expanded_and_the_api_writes_nothing(runs_dir):
    before = tree_snapshot(runs_dir)
    result = bayesvae.compare(runs_dir, k=20, max_images=50, samples=2, device="cpu", log=lambda _: None)
    assert [row["name"] for row in result["runs"]] == sorted(RUNS)
    assert result["out"] is None and result["files"] == [] and tree_snapshot(runs_dir) == before


def bad_missing(root, runs):
    return [runs / "vae-beta1", root / "nope"]


def bad_no_checkpoint(root, runs):
    (root / "fresh").mkdir()
    shutil.copy(runs / "vae-beta1" / "config.json", root / "fresh" / "config.json")
    return [runs / "vae-beta1", root / "fresh"]


def bad_user_code(root, runs):
    bayesvae.fit(guide=f"{EXAMPLES / 'conv_guide.py'}:guide", out=root / "mine", epochs=1, **quiet)
    return [runs / "vae-beta1", root / "mine"]


def bad_out_folder(root, runs):
    (root / "photos").mkdir()
    (root / "photos" / "cat.jpg").write_text("precious")
    return [runs / "vae-beta1", "--out", root / "photos"]


def bad_k(root, runs):
    return [runs / "vae-beta1", "--k", "1"]


@pytest.mark.parametrize("case,message", [(bad_missing, "does not exist"), (bad_no_checkpoint, "no trained checkpoint"),
                                          (bad_user_code, "--trust-code"), (bad_out_folder, "holds other files"),
                                          (bad_k, "--k must be")])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, message, runs_dir, tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = case(tmp_path, runs_dir)
    if "--out" not in args:
        args += ["--out", tmp_path / "cmp"]
    before, runs_before = tree_snapshot(tmp_path), tree_snapshot(runs_dir)
    result = cli("compare", *args, "--device", "cpu")
    assert result.code == 2 and result.err.count("\n") == 1 and result.err.startswith("bayesvae: error:")
    assert message in result.err, result.err
    assert tree_snapshot(tmp_path) == before and tree_snapshot(runs_dir) == runs_before


def test_probes_on_known_clusters():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    centres = np.array([[0, 0], [6, 0], [0, 6], [6, 6]])
    points = torch.tensor(centres[labels] + rng.normal(size=(200, 2)))
    y = torch.tensor(labels)
    separated = class_grouping(points[::2], y[::2], points[1::2], y[1::2])
    assert separated["knn_accuracy"] > 0.95 and separated["logistic_accuracy"] > 0.95 and separated["silhouette"] > 0.6
    shuffled = torch.tensor(rng.permutation(labels))  # labels unrelated to position: chance level
    chance = class_grouping(points[::2], shuffled[::2], points[1::2], shuffled[1::2])
    assert chance["knn_accuracy"] < 0.45 and chance["silhouette"] < 0.1
    with pytest.raises(BadInput, match="two classes"):
        class_grouping(points, torch.zeros(200), points, y)


def test_decoded_grids_are_the_likelihood_mean(runs_dir):
    run = bayesvae.load_run(runs_dir / "vae-beta1", device="cpu")
    x, _ = run.images("test")
    z = torch.randn(5, 2)
    with torch.no_grad():
        expected = torch.sigmoid(run.pair.model.decoder(z))  # Bernoulli likelihood: E[x | z] = sigmoid(logits)
    assert torch.allclose(decode(run.pair, z, x), expected, atol=1e-6)
    means = torch.randn(100, 2) * 3
    grid = manifold_grid(run.pair, means, x, steps=7)
    assert grid.shape == (49, 1, 8, 8)
    lo, hi = torch.quantile(means, torch.tensor([0.02, 0.98]), dim=0)
    corner = decode(run.pair, torch.stack([lo[0], hi[1]])[None], x)[0]   # top-left: smallest z₁, largest z₂
    assert torch.allclose(grid[0], corner, atol=1e-6)
    pair = build_pair(ModelSpec(latent_dim=5, hidden=(16,)), (1, 8, 8))
    means = torch.randn(100, 5)
    rows = traversal(pair, means, x, dims=[3, 1], steps=4)
    lo, hi = torch.quantile(means, torch.tensor([0.02, 0.98]), dim=0)
    z = means.median(0).values.repeat(4, 1)
    z[:, 1] = torch.linspace(float(lo[1]), float(hi[1]), 4)   # second row: only z₂ moves
    assert rows.shape == (8, 1, 8, 8) and torch.allclose(rows[4:], decode(pair, z, x), atol=1e-6)
    xy, extra, axes = project(torch.randn(50, 5), "pca", extra=torch.randn(7, 5))
    assert xy.shape == (50, 2) and extra.shape == (7, 2) and "PCA" in axes


def test_compare_options_are_declared_once_for_the_flags_and_the_keywords(cli):
    """--samples / --max-images / --tsne come from CompareOptions: the same range checks on both faces."""
    import bayesvae
    from bayesvae.models.errors import BadInput

    result = cli("compare", "nowhere", "--samples", "0")
    assert result.code == 2 and "--samples must be a whole number ≥ 1" in result.err, result
    with pytest.raises(BadInput, match="--samples must be a whole number ≥ 1"):
        bayesvae.compare(["nowhere"], samples=0)
    with pytest.raises(BadInput, match="--max-images must be a whole number ≥ 2"):
        bayesvae.compare(["nowhere"], max_images=1)

"""``diagnose`` part 2 end to end on a small trained digits VAE: files, ArviZ round trip, table, bad input."""

import argparse
import json
import warnings

import pytest

import bayesvae
from bayesvae.commands.posterior_options import add_arguments, from_args
from bayesvae.posterior import FILES, check_options, run_posterior
from bayesvae.inference.mcmc import torch_threads
from bayesvae.models.errors import BadInput
from conftest import tree_snapshot

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

QUICK = ["--n-images", "3", "--chains", "2", "--warmup", "60", "--draws", "60", "--gap-steps", "60"]


def parse(*argv: str):
    """The PosteriorOptions the command line makes of ``argv`` (None with --no-mcmc)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_args(parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def part2(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("diagnostics")
    lines = []
    result = run_posterior(trained_run, parse(*QUICK), out, lines.append)
    return result, out, "\n".join(lines)


def test_inference_data_files_reload_with_plain_arviz(part2):
    result, out, _ = part2
    mcmc = az.from_netcdf(out / FILES["mcmc"])
    guide = az.from_netcdf(out / FILES["guide"])
    for idata in (mcmc, guide):
        assert idata.posterior["z"].dims == ("chain", "draw", "image", "latent")
        assert list(idata.posterior["image"].values) == [0, 1, 2]
        assert list(idata.posterior["latent"].values) == [0, 1]
        assert idata.posterior["z"].shape == (2, 60, 3, 2)
        summary = az.summary(idata)
        assert len(summary) == 6 and {"r_hat", "ess_bulk", "ess_tail"} <= set(summary.columns)
    assert {"diverging", "tree_depth", "n_steps"} <= set(mcmc.sample_stats.data_vars)
    assert mcmc.sample_stats["diverging"].dims == ("chain", "draw", "image")
    # one joint NUTS state: each chain and image carries that state's divergences and tree depths
    assert int(mcmc.sample_stats["diverging"].sel(chain=1, image=2).sum()) == result["nuts"]["divergences"][0]
    depth = mcmc.sample_stats["tree_depth"].sel(chain=0, image=0).values.mean()
    assert depth == pytest.approx(result["nuts"]["mean_tree_depth"][0])
    # the saved draws are the ones the table summarizes
    assert abs(float(mcmc.posterior["z"].sel(image=1).mean()) - sum(result["table"][1]["mean_mcmc"]) / 2) < 1e-5


def test_table_json_and_plots_are_written(part2):
    result, out, text = part2
    for name in FILES.values():
        assert (out / name).is_file(), name
    saved = json.loads((out / FILES["json"]).read_text())
    assert saved["images"] == [0, 1, 2] and len(saved["table"]) == 3
    row = saved["table"][0]
    for key in ("r_hat", "ess_bulk", "ess_tail", "divergences", "ess_per_second", "kl_q_phat", "kl_phat_q", "khat",
                "mean_mcmc", "sd_mcmc", "mean_q", "sd_q"):
        assert key in row
    assert row["kl_q_phat"] >= 0 and row["kl_phat_q"] >= 0
    gap = saved["amortization"]
    assert gap["family"] == "Normal" and len(gap["rows"]) == 3
    for r in gap["rows"]:
        assert r["approximation_gap"] == pytest.approx(r["log_px"] - r["elbo_local"])
        assert r["amortization_gap"] == pytest.approx(r["elbo_local"] - r["elbo_amortized"])
    assert "0.5" in text and "0.7" in text and "k̂" in text            # the PSIS thresholds are explained
    assert "amortization gap" in text and "R-hat" in text
    assert saved["seconds"]["total"] > 0


def test_no_mcmc_gives_no_part_two_options(trained_run, tmp_path):
    assert parse("--no-mcmc") is None


@pytest.mark.parametrize("argv, message", [
    (["--images", "0,400"], "out of range"),
    (["--images", "-1"], "out of range"),
    (["--images", "1,1"], "twice"),
    (["--images", "0", "--n-images", "3"], "either"),
    (["--n-images", "0"], "--n-images"),
    (["--n-images", "361"], "only 360"),
    (["--chains", "0"], "--chains"),
    (["--draws", "0"], "--draws"),
    (["--warmup", "-1"], "--warmup"),
    (["--mcmc-target-accept", "1.5"], "target-accept"),
    (["--gap-lr", "0"], "--gap-lr"),
    (["--gap-particles", "0"], "--gap-particles"),
])
def test_bad_options_are_refused_before_anything_runs(trained_run, argv, message):
    with pytest.raises(BadInput, match=message):
        check_options(trained_run, parse(*argv))


def test_bad_images_through_the_cli_exit_2_and_write_nothing(trained_run, cli):
    before = tree_snapshot(trained_run.path)
    result = cli("diagnose", trained_run.path, "--images", "0,9999", "--device", "cpu")
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayesvae: error:") and "out of range" in lines[0]
    assert tree_snapshot(trained_run.path) == before


def test_delta_guide_runs_mcmc_and_says_what_is_undefined(tmp_path):
    with torch_threads(1):  # a tiny net: one thread is much faster on a busy machine
        run = bayesvae.fit(out=tmp_path / "ae", guide="delta", latent_dim=2, hidden=(32,), epochs=3, device="cpu",
                           progress=False, log=lambda _: None)
    lines = []
    result = run_posterior(run, parse("--n-images", "2", "--chains", "2", "--warmup", "40", "--draws", "40"),
                           tmp_path / "diag", lines.append)
    row = result["table"][0]
    assert row["khat"] is None and row["kl_q_phat"] is None and row["r_hat"] > 0
    assert "point mass" in result["notes"]["kl_method"] and "point mass" in result["amortization"]["skipped"]
    assert "n/a" in "\n".join(lines)

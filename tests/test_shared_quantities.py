"""One computation per quantity: diagnose, compare and the sweep summary give identical values for every
quantity they share, given the same run, images and seed (they used to differ by Monte Carlo order and
by definition: I_q 3.52 vs 3.63, spread of means 0.52 vs 0.58, test ELBO −25.59 vs −25.65)."""

import pytest

import bayesvae
from bayesvae.sweep_api import Planned, summary_rows

quiet = dict(progress=False, log=lambda _: None)


@pytest.fixture(scope="module")
def measured(trained_run):
    diagnosed = bayesvae.diagnose(trained_run, k=50, mcmc=False, seed=0, device="cpu", **quiet)
    (row,) = bayesvae.compare([trained_run], k=50, max_images=None, seed=0, device="cpu", **quiet)["runs"]
    (swept,) = summary_rows([Planned(trained_run.path.name, trained_run.path, "normal", "normal", "analytic", 1.0)],
                            device="cpu")
    return diagnosed, row, swept


SHARED = {  # compare's column -> where diagnose has the same quantity
    "log_px": lambda d: d["evidence"]["log_px"],
    "gap": lambda d: d["evidence"]["gap"],
    "mutual_information": lambda d: d["surgery"]["mutual_information"],
    "marginal_kl": lambda d: d["surgery"]["marginal_kl"],
    "active_units": lambda d: d["latent"]["active_units"],
    "mean_spread": lambda d: (d["latent"]["summary"]["active"] or d["latent"]["summary"]["inactive"])["std_of_means"],
    "elbo": lambda d: d["anatomy"]["elbo"]["value"],
    "rate": lambda d: d["anatomy"]["kl"]["value"],
    "distortion": lambda d: -d["anatomy"]["log_likelihood"]["value"],
}


@pytest.mark.parametrize("quantity", sorted(SHARED))
def test_diagnose_and_compare_agree_exactly(measured, quantity):
    diagnosed, row, _ = measured
    assert row["n_images"] == diagnosed["n_images"]
    assert row[quantity] == SHARED[quantity](diagnosed)


def test_the_sweep_summary_prints_compares_elbo_and_terms(measured):
    diagnosed, row, swept = measured
    assert swept["elbo"] == row["elbo"] == diagnosed["anatomy"]["elbo"]["value"]
    assert swept["log_likelihood"] == -row["distortion"] and swept["kl"] == row["rate"]


def test_a_quantity_does_not_depend_on_what_was_computed_before(trained_run):
    """Each quantity reseeds: I_q alone equals I_q after the evidence and the anatomy drew their numbers."""
    from bayesvae.analysis import quantities

    x, _ = trained_run.images("test", 100)
    alone = quantities.surgery(trained_run.pair, x, seed=3)["mutual_information"]
    quantities.evidence(trained_run.pair, x, k=20, seed=3)
    assert quantities.surgery(trained_run.pair, x, seed=3)["mutual_information"] == alone
    assert quantities.surgery(trained_run.pair, x, seed=4)["mutual_information"] != alone   # the seed matters

"""A Run in a notebook: q(z|x) and p(x|z) as distributions for any pair, samples, reconstructions,
interpolations, log p(x), the history as a DataFrame and a one-line repr."""

from pathlib import Path

import pandas as pd
import pytest
import torch

import bayesvae
from bayesvae.analysis.latent_stats import posterior_moments
from bayesvae.run import METRIC_COLUMNS

quiet = dict(device="cpu", progress=False, log=lambda _: None)
EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.fixture(scope="module")
def small_run():
    return bayesvae.fit(latent_dim=2, hidden=(32,), epochs=3, **quiet)


def test_encode_is_the_guides_q_as_the_diagnostics_see_it(small_run):
    x, _ = small_run.images("test", 7)
    q = small_run.encode(x)
    assert q.batch_shape == (7,) and q.event_shape == (2,)
    moments = posterior_moments(small_run.pair, x)
    assert torch.allclose(q.mean, moments.means) and torch.allclose(q.stddev, moments.stds)
    assert small_run.encode(x[0]).batch_shape == (1,)                # one image is a batch of one


def test_decode_gives_the_likelihood_whose_mean_the_pictures_show(small_run):
    x, _ = small_run.images("test", 4)
    z = small_run.encode(x).mean
    p = small_run.decode(z)
    assert p.batch_shape == (4,) and p.event_shape == tuple(small_run.config.image_shape)
    # a Bernoulli likelihood over {0,1} pixels: log p(x|z) ≤ 0 and the sum over pixels of its terms
    assert bool((p.log_prob(x) <= 0).all())
    ends = small_run.interpolate(x[0], x[1], steps=5)
    assert ends.shape == (5, *small_run.config.image_shape)
    assert torch.allclose(ends[0], p.mean[0].clamp(0, 1), atol=1e-6) and torch.allclose(ends[-1], p.mean[1], atol=1e-6)


def test_samples_and_reconstructions_are_images(small_run):
    x, _ = small_run.images("test", 6)
    for images, n in ((small_run.sample(5), 5), (small_run.reconstruct(x), 6)):
        assert images.shape == (n, *small_run.config.image_shape)
        assert float(images.min()) >= 0 and float(images.max()) <= 1


def test_log_evidence_bounds_the_elbo(small_run):
    x, _ = small_run.images("test", 20)
    estimate = small_run.log_evidence(x, k=200)
    assert estimate.log_px.shape == (20,)
    assert estimate.mean_elbo <= estimate.mean_log_px + 3 * estimate.se_mean      # ELBO ≤ IWAE_K ≤ log p(x)


def test_metrics_is_the_history_as_a_dataframe(small_run):
    frame = small_run.history
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == [1, 2, 3]
    assert list(frame.columns) == list(METRIC_COLUMNS[1:])
    assert frame.loc[3, "test_elbo"] == small_run.history_rows[-1]["test_elbo"]


def test_repr_fits_on_one_line(small_run, trained_run):
    for run in (small_run, trained_run):
        text = repr(run)
        assert "\n" not in text and len(text) < 300 and "optimizer" not in text
    assert "trained 3/3 epochs" in repr(small_run) and "z 2" in repr(small_run)


def test_a_user_guide_is_encoded_by_tracing_it():
    script = EXAMPLES / "student_t_vae.py"
    run = bayesvae.fit(f"{script}:model", f"{script}:guide", epochs=1, **quiet)
    x, _ = run.images("test", 3)
    q = run.encode(x)
    assert type(q.base_dist).__name__ == "StudentT" and q.batch_shape == (3,) and q.event_shape == (8,)
    assert run.decode(q.mean).event_shape == (1, 8, 8)
    assert run.interpolate(x[0], x[1], steps=3).shape == (3, 1, 8, 8)


def test_diagnose_and_compare_return_tables_as_data(small_run):
    import arviz as az
    import xarray as xr

    result = bayesvae.diagnose(small_run, k=20, max_images=12, n_images=2, chains=2, warmup=20, draws=20,
                               gap_steps=0, **quiet)
    assert isinstance(result.table, pd.DataFrame) and "evidence log p(x) (IS, K=20)" in result.table.index
    assert list(result.per_dimension.index) == [0, 1] and result.per_dimension.index.name == "latent"
    per_image = result.per_image
    assert isinstance(per_image, xr.Dataset) and per_image["mean_q"].dims == ("image", "latent")
    assert per_image.sizes == {"image": 12, "latent": 2}
    # the per-image numbers are the ones the table averages
    assert float(per_image["log_px"].mean()) == pytest.approx(result["evidence"]["log_px"], rel=1e-6)
    assert isinstance(result.mcmc, az.InferenceData) and result.mcmc.posterior["z"].dims == (
        "chain", "draw", "image", "latent")
    assert isinstance(result.guide_draws, az.InferenceData)
    comparison = bayesvae.compare([small_run], k=20, max_images=12, **quiet)
    assert isinstance(comparison.table, pd.DataFrame) and comparison.table.loc["run1", "log_px"] == \
        comparison["runs"][0]["log_px"]

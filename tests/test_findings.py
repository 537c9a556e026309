"""Each findings threshold on synthetic signals: just past it the finding fires, just short of it it does not."""

from __future__ import annotations

import math

import pytest

from bayesvae.analysis.findings import (Finding, compare_findings, definition_labels, diagnose_findings,
                                        findings_json, format_log_px, live_warning, render_findings, train_findings)
from bayesvae.analysis.findings import thresholds as T
from bayesvae.analysis.findings.posterior import beta_gap_finding, mcmc_finding
from bayesvae.analysis.findings.scale import likelihood_loss_nats, residual_rms

CONFIG = {"image_shape": [1, 8, 8], "model": {"model": "builtin", "likelihood": "bernoulli", "likelihood_scale": 0.1},
          "training": {"lr": 1e-3, "beta": 1.0, "warmup_epochs": 0}}
D = 64


def history(elbo, kl=None, loss=None, beta=None):
    n = len(elbo)
    kl = kl or [5.0] * n
    loss = loss or [-e for e in elbo]
    beta = beta or [1.0] * n
    return [{"epoch": e + 1, "beta": beta[e], "train_loss": loss[e], "test_elbo": elbo[e],
             "test_log_likelihood": elbo[e] + kl[e], "test_kl": kl[e], "test_log_prior": 0.0} for e in range(n)]


def ids(findings):
    return {f.id: f.severity for f in findings}


def flat(n=40, value=-25.0, wiggle=0.05):
    return [value + wiggle * (-1) ** e for e in range(n)]


def test_a_flat_healthy_curve_raises_nothing():
    assert train_findings(history(flat()), CONFIG) == []


@pytest.mark.parametrize("kl, fires", [(T.KL_COLLAPSED_NATS * 0.9, True), (T.KL_COLLAPSED_NATS * 1.1, False)])
def test_posterior_collapse_at_the_kl_threshold(kl, fires):
    found = ids(train_findings(history(flat(), kl=[5.0] * 39 + [kl]), CONFIG))
    assert (found.get("posterior-collapse") == "problem") is fires


def test_kl_vanishing_under_warm_up_is_its_own_finding():
    config = {**CONFIG, "training": {**CONFIG["training"], "warmup_epochs": 10}}
    peak = T.WARMUP_KL_PEAK_FACTOR * T.KL_COLLAPSED_NATS * 1.2
    found = ids(train_findings(history(flat(), kl=[peak] * 10 + [0.1] * 30), config))
    assert found == {"kl-vanished-under-warmup": "problem"}


@pytest.mark.parametrize("factor, severity", [(0.9, None), (1.1, "problem")])
def test_kl_exploded_above_the_images_information_content(factor, severity):
    kl = [5.0] * 39 + [factor * T.KL_NATS_PER_PIXEL_MAX * D]
    assert ids(train_findings(history(flat(), kl=kl), CONFIG)).get("kl-exploded") == severity


@pytest.mark.parametrize("ratio, severity", [(9, None), (11, "warning"), (150, "problem")])
def test_loss_explosion_severity_follows_the_ratio(ratio, severity):
    loss = [25.0 + ratio * max(25.0, T.LOSS_FLOOR_NATS_PER_PIXEL * D)] + [25.0] * 39
    assert ids(train_findings(history(flat(), loss=loss), CONFIG)).get("loss-explosion") == severity


def test_an_explosion_is_seen_live_after_two_epochs_and_a_calm_epoch_is_not():
    rows = history([-1700.0, -190.0], loss=[2.8e7, 388.0])
    assert "exploded in the first epoch" in live_warning(rows, CONFIG)
    assert live_warning(history([-30.0, -28.0], loss=[34.0, 28.0]), CONFIG) is None


def test_not_converged_needs_a_gain_above_two_percent_and_the_noise():
    rising = [-40 + 0.3 * e for e in range(40)]           # +2.4 nats (≈ 8 %) over the last 8 epochs
    assert ids(train_findings(history(rising), CONFIG)).get("not-converged") == "warning"
    slow = [-25 + 0.004 * e for e in range(40)]           # 0.03 nats: well below 2 %
    assert "not-converged" not in ids(train_findings(history(slow), CONFIG))


def test_overfitting_needs_the_test_elbo_to_fall_while_the_gap_grows():
    test = [-25 + 0.1 * e for e in range(20)] + [-23.1 - 0.1 * e for e in range(20)]
    train = [-(-25 + 0.1 * e) for e in range(40)]          # the training ELBO keeps rising: the gap grows...
    found = ids(train_findings(history(test, loss=train), CONFIG))
    assert found.get("overfitting") == "warning"
    tracked = [-t for t in test]                            # ...not when train falls with test
    assert "overfitting" not in ids(train_findings(history(test, loss=tracked), CONFIG))


def test_the_gaussian_residual_inverts_the_likelihood_term_exactly():
    s, r = 0.5, 0.2
    ll = -D / 2 * math.log(2 * math.pi * s ** 2) - D * r ** 2 / (2 * s ** 2)
    assert residual_rms(ll, s, D) == pytest.approx(r)
    ll_best = -D / 2 * math.log(2 * math.pi * r ** 2) - D / 2
    assert likelihood_loss_nats(s, r, D) == pytest.approx(ll_best - ll)


@pytest.mark.parametrize("residual, fires", [(0.1 / (T.SCALE_RATIO_MAX * 1.1), True), (0.1 / (T.SCALE_RATIO_MAX * 0.9), False),
                                             (0.1 * T.SCALE_RATIO_MAX * 1.1, True)])
def test_gaussian_scale_mismatch_at_the_ratio(residual, fires):
    s = 0.1
    ll = -D / 2 * math.log(2 * math.pi * s ** 2) - D * residual ** 2 / (2 * s ** 2)
    config = {**CONFIG, "model": {"model": "builtin", "likelihood": "gaussian", "likelihood_scale": s}}
    rows = history(flat(), kl=[5.0] * 40)
    rows[-1]["test_log_likelihood"] = ll
    found = {f.id: f for f in train_findings(rows, config)}
    assert ("gaussian-scale-mismatch" in found) is fires
    if fires:
        assert found["gaussian-scale-mismatch"].evidence["residual_rms"] == pytest.approx(residual)


def latent(active, d=16, kl=5.0, mi=3.0, marginal=None, log_n=5.89, inactive_std=1.0):
    per_dim = [{"dim": u, "active": u < active, "kl": kl / d, "mean_std": 0.3 if u < active else inactive_std,
                "std_of_means": 1.0 if u < active else 0.01} for u in range(d)]
    summary = {"active": None if not active else {"dims": active, "mean_std": 0.3, "std_of_means": 1.0, "kl": kl},
               "inactive": None if active == d else {"dims": d - active, "mean_std": inactive_std,
                                                      "std_of_means": 0.01, "kl": 0.0}}
    marginal = kl - mi if marginal is None else marginal
    return {"latent": {"latent_dim": d, "active_units": active, "point_mass": False, "per_dimension": per_dim,
                       "summary": summary, "kl_total": kl},
            "anatomy": {"kl": {"value": kl}}, "n_images": 360, "pixels": D,
            "surgery": {"average_kl": kl, "mutual_information": mi, "marginal_kl": marginal, "log_n": log_n,
                        "n_images": 360},
            "evidence": {"log_px": -24.0, "log_px_se": 0.01}}


def test_diagnose_collapse_constant_encoder_and_partial_collapse():
    assert ids(diagnose_findings(latent(0, kl=0.01, mi=0.0), None, CONFIG, [])) == {"posterior-collapse": "problem"}
    assert ids(diagnose_findings(latent(4, kl=0.3, mi=0.05), None, CONFIG, []))["posterior-collapse"] == "problem"
    constant = ids(diagnose_findings(latent(0, kl=120.0, mi=0.0, inactive_std=0.08), None, CONFIG, []))
    assert constant["constant-encoder"] == "problem" and constant["aggregate-posterior-mismatch"] == "warning"
    assert ids(diagnose_findings(latent(7), None, CONFIG, [])) == {"partial-collapse": "note"}
    assert ids(diagnose_findings(latent(8), None, CONFIG, [])) == {}


def test_mutual_information_at_log_n_is_a_note_and_hides_the_marginal_warning():
    found = ids(diagnose_findings(latent(16, kl=30.0, mi=5.8, log_n=5.89), None, CONFIG, []))
    assert found == {"mutual-information-at-bound": "note"}


@pytest.mark.parametrize("khats, severity", [([0.3] * 20, None), ([0.6] + [0.3] * 19, "note"),
                                             ([0.8] * 2 + [0.3] * 18, "note"), ([0.8] * 3 + [0.3] * 17, "problem")])
def test_evidence_khat_thresholds(khats, severity):
    results = latent(8)
    results["evidence"]["khat"] = khats
    found = [f for f in diagnose_findings(results, None, CONFIG, []) if f.id.startswith("evidence")]
    assert (found[0].severity if found else None) == severity


def test_format_log_px_hides_decimals_only_when_unreliable():
    assert format_log_px(-138.6392, 0.035, 0.3) == "-138.639 ± 0.035"
    assert format_log_px(-138.6392, 0.035, None) == "-138.639 ± 0.035"
    assert format_log_px(-138.6392, 0.035, 0.6).startswith("-138.64 ± 0.04")
    shown = format_log_px(-138.6392, 0.035, 2.2)
    assert "unreliable" in shown and "138.639" not in shown and "±" not in shown
    assert "unreliable" not in format_log_px(-23.6, 0.01, 0.8, fraction_above=0.03)


def posterior(depth, cap=3, divergences=0, r_hat=2.3, ess=5.0):
    return {"table": [{"r_hat": r_hat, "ess_bulk": ess, "ess_tail": ess}],
            "nuts": {"mean_tree_depth": [depth], "divergences": [divergences]},
            "settings": {"max_tree_depth": cap, "target_accept": 0.8, "draws": 1200}}


def test_mcmc_not_converged_names_the_probable_cause_and_its_option():
    assert "--mcmc-max-tree-depth" in mcmc_finding(posterior(depth=3.0)).remedy
    assert "--mcmc-target-accept" in mcmc_finding(posterior(depth=1.5, divergences=4)).remedy
    assert "--draws" in mcmc_finding(posterior(depth=1.5)).remedy
    assert mcmc_finding(posterior(depth=1.5, r_hat=1.005, ess=900.0)) is None


def test_the_beta_split_is_reported_only_at_beta_not_one():
    split = {"mean": {"total_gap": 3.2, "beta_part": 2.5, "amortization_part": 0.4, "approximation_gap": 0.3}}
    post = {"amortization": {"beta_split": split}}
    config = {**CONFIG, "training": {**CONFIG["training"], "beta": 4.0}}
    finding = beta_gap_finding(post, config)
    assert finding.evidence["beta_part_nats"] == 2.5 and "from β" in finding.title
    assert beta_gap_finding(post, CONFIG) is None


def row(name, likelihood="bernoulli", binarize="dynamic", dataset="digits", **extra):
    return {"name": name, "likelihood": likelihood, "binarize": binarize, "dataset": dataset, "active_units": 8,
            "mean_spread": 0.8, "rate": 5.0, "knn_accuracy": 0.9, "silhouette": 0.2, "chance": 0.1, **extra}


def test_compare_refuses_to_rank_across_likelihoods_and_binarizations():
    same = compare_findings([row("a"), row("b")])
    assert same["rankable"] and same["comparison"] == []
    mixed = compare_findings([row("a"), row("b", likelihood="gaussian", binarize="none")])
    assert not mixed["rankable"] and mixed["comparison"][0].id == "log-px-not-comparable"
    assert mixed["groups"] == [["a"], ["b"]]


def test_compare_flags_probes_on_a_constant_encoder_and_names_users_models():
    found = compare_findings([row("c", active_units=0, mean_spread=0.02, rate=0.01)])["runs"]["c"]
    assert {"posterior-collapse": "problem", "probes-meaningless": "warning"}.items() <= ids(found).items()
    labels = definition_labels({"model": {"model": "code/laplace.py:model", "prior": "normal",
                                          "likelihood": "bernoulli", "guide": "code/laplace.py:guide"}})
    assert labels["prior"].startswith("user's") and "normal" not in labels["prior"]
    assert definition_labels(CONFIG)["likelihood"] == "bernoulli"


def test_findings_render_and_serialize():
    finding = Finding("x", "warning", "a title", {"value": 1.5, "inf": math.inf}, "meaning", "remedy")
    assert findings_json([finding])["findings"][0]["evidence"] == {"value": 1.5, "inf": "inf"}
    text = render_findings([Finding("n", "note", "n"), finding])
    assert text.index("[warning]") < text.index("[note]")
    assert "no problem or warning" in render_findings([])
    with pytest.raises(ValueError):
        Finding("x", "bad", "t")

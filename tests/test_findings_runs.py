"""Deliberately broken digits runs, trained for seconds each: every one raises its finding with the right
severity and evidence, and a healthy default run raises no problem or warning.

Runs are trained once per session (in memory) and diagnosed with a small K; the PSIS k̂ of the main
evidence estimate is computed here (issue 19 adds it to the evidence block itself).
"""

from __future__ import annotations

import pytest

from bayesvae.analysis.findings import diagnose_findings, format_log_px, render_findings, train_findings

CASES = {
    "healthy": dict(epochs=100),
    "gaussian-scale-1": dict(epochs=30, likelihood="gaussian", likelihood_scale=1.0, binarize="none"),
    "lr-1": dict(epochs=3, lr=1.0),
    "lr-1000": dict(epochs=2, lr=1000.0),
}
K, MAX_IMAGES = 200, 100


def _config(run) -> dict:
    import json

    return json.loads(run.config.to_json())


@pytest.fixture(scope="session")
def broken_runs():
    """name -> (config dict, history, diagnose results with the evidence's k̂, or None when not diagnosed)."""
    import bayesvae
    from bayesvae.analysis.posterior_check import psis_khat
    from bayesvae.diagnose_api import diagnose

    out = {}
    for name, options in CASES.items():
        run = bayesvae.fit(data="digits", out=None, device="cpu", progress=False, log=lambda _: None, **options)
        results = None
        if name != "lr-1000":
            results = diagnose(run, k=K, max_images=MAX_IMAGES, mcmc=False, log=lambda _: None, progress=False)
            x, _ = run.images("test", MAX_IMAGES)
            khat = psis_khat(run.pair, x, num_samples=K)
            results["evidence"].update({"khat": khat.tolist(), "khat_max": float(khat.max()),
                                        "n_khat_above_0_7": int((khat > 0.7).sum())})
        out[name] = (_config(run), run.history_rows, results)
        RUNS[name] = run
    return out


RUNS: dict = {}  # name -> the trained Run of broken_runs (for compare, which measures the runs itself)


def _by_id(findings):
    return {f.id: f for f in findings}


def _serious(findings):
    return [f for f in findings if f.severity in ("problem", "warning")]


def test_a_healthy_default_run_raises_no_problem_or_warning(broken_runs):
    config, history, results = broken_runs["healthy"]
    assert _serious(train_findings(history, config)) == []
    found = diagnose_findings(results, None, config, history)
    assert _serious(found) == [], render_findings(found)


def test_a_wide_gaussian_scale_collapses_and_both_numbers_are_given(broken_runs):
    config, history, results = broken_runs["gaussian-scale-1"]
    train = _by_id(train_findings(history, config))
    assert train["posterior-collapse"].severity == "problem"
    assert train["posterior-collapse"].evidence["final_test_kl"] < 0.5
    scale = train["gaussian-scale-mismatch"]
    assert scale.severity == "warning" and scale.evidence["likelihood_scale"] == 1.0
    assert 0.15 < scale.evidence["residual_rms"] < 0.33          # digits pixels around their mean image
    assert "--likelihood-scale" in train["posterior-collapse"].remedy
    found = _by_id(diagnose_findings(results, None, config, history))
    assert found["posterior-collapse"].evidence["active_units"] == 0
    assert found["posterior-collapse"].evidence["mutual_information_nats"] < 0.1
    assert "gaussian-scale-mismatch" in found


def test_lr_1_explodes_in_the_first_epoch_and_its_evidence_is_flagged_unreliable(broken_runs):
    config, history, results = broken_runs["lr-1"]
    explosion = _by_id(train_findings(history, config))["loss-explosion"]
    assert explosion.severity == "problem" and explosion.evidence["epoch"] == 1
    assert explosion.evidence["ratio_to_median"] > 100
    found = _by_id(diagnose_findings(results, None, config, history))
    assert {"constant-encoder", "posterior-collapse"} & set(found)
    evidence = found["evidence-unreliable"]
    assert evidence.severity == "problem" and evidence.evidence["khat_max"] > 0.7
    share = results["evidence"]["n_khat_above_0_7"] / len(results["evidence"]["khat"])
    assert share > 0.1
    shown = format_log_px(results["evidence"]["log_px"], results["evidence"]["log_px_se"],
                          results["evidence"]["khat_max"], share)
    assert "unreliable" in shown and "±" not in shown


def test_lr_1000_reports_a_kl_of_millions_of_nats(broken_runs):
    config, history, _ = broken_runs["lr-1000"]
    found = _by_id(train_findings(history, config))
    assert found["kl-exploded"].severity == "problem"
    assert found["kl-exploded"].evidence["max_test_kl"] > found["kl-exploded"].evidence["bound_nats"]


def test_train_diagnose_and_compare_write_and_print_their_findings(tmp_path):
    """The wiring: train warns during training and writes RUN/findings.json; diagnose prints findings before
    its tables and writes diagnostics/findings.json; compare refuses to rank different likelihoods."""
    import json

    import bayesvae

    lines = []
    exploded = bayesvae.fit(data="digits", out=tmp_path / "lr1", epochs=2, lr=1.0, device="cpu", progress=False,
                            log=lines.append)
    assert any(line.startswith("warning: the training loss exploded in the first epoch") for line in lines)
    saved = json.loads((tmp_path / "lr1" / "findings.json").read_text())["findings"]
    assert {"id": "loss-explosion", "severity": "problem"}.items() <= saved[0].items()
    assert "findings from the training curves" in lines[-1]

    printed = []
    result = bayesvae.diagnose(exploded.path, k=20, max_images=30, mcmc=False, log=printed.append)
    text = "\n".join(printed)
    assert text.index("[problem]") < text.index("quantity (Bayes role)")
    on_disk = json.loads((tmp_path / "lr1" / "diagnostics" / "findings.json").read_text())
    assert on_disk["findings"] == result["findings"] and result["findings"][0]["severity"] == "problem"

    grey = bayesvae.fit(data="digits", out=tmp_path / "grey", epochs=2, likelihood="gaussian", binarize="none",
                        device="cpu", progress=False, log=lambda _: None)
    compared = bayesvae.compare([exploded.path, grey.path], k=20, max_images=40, log=lambda _: None)
    assert compared["findings"]["rankable"] is False
    assert compared["findings"]["comparison"][0]["id"] == "log-px-not-comparable"
    assert [row["binarize"] for row in compared["runs"]] == ["dynamic", "none"]
    assert all(isinstance(row["findings"], list) for row in compared["runs"])
    from bayesvae.compare_api import report_text
    assert "likelihood" in report_text(compared) and "Findings per run" in report_text(compared)


def test_compare_flags_probes_on_the_collapsed_run_and_does_not_rank_grey_against_binary(broken_runs):
    import bayesvae

    result = bayesvae.compare([RUNS["healthy"], RUNS["gaussian-scale-1"]], k=20, max_images=100, log=lambda _: None)
    healthy, collapsed = ({f["id"]: f["severity"] for f in row["findings"]} for row in result["runs"])
    assert collapsed["probes-meaningless"] == "warning" and collapsed["posterior-collapse"] == "problem"
    assert "probes-meaningless" not in healthy and "silhouette" in healthy
    assert not result["findings"]["rankable"]
    assert [row["likelihood"] for row in result["runs"]] == ["bernoulli", "gaussian"]

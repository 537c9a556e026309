"""`bayesvae report`: what the page says is computed from the run's own files and true for VAE, autoencoder,
collapsed and user-script runs; bad input ends with one line, exit 2 and nothing written."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from test_report_fixtures import SMALL, report_sweep, script_run  # noqa: F401 - session fixtures


def text_of(page: Path) -> str:
    raw = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page.read_text(encoding="utf-8"))
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw)))


def section_texts(page: Path) -> dict[str, str]:
    raw = page.read_text(encoding="utf-8")
    return {key: re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))
            for key, body in re.findall(r'<section id="([^"]+)"[^>]*>(.*?)</section>', raw, re.S)}


def test_one_run_page_holds_its_measured_numbers_code_lines_and_embedded_pictures(report_sweep, tmp_path):
    from bayesvae.report import write_report

    page = write_report(report_sweep / "vae", tmp_path / "vae.html")
    anatomy = json.loads((report_sweep / "vae" / "diagnostics" / "anatomy.json").read_text())
    sections = section_texts(page)
    assert list(sections) == ["findings", "bayes", "kl", "ae-vae-beta", "grouping", "posterior", "training"]
    text = text_of(page)
    evidence = anatomy["evidence"]   # log p(x) is printed by format_log_px: fewer digits once PSIS k̂ is high
    shown = (f"{evidence['log_px']:.3f}", f"{evidence['log_px']:.2f}", f"≈ {evidence['log_px']:.0f}")
    assert any(value in text for value in shown) and f"{evidence['gap']:.3f}" in text
    model_lines = Path(__import__("bayesvae.models.model", fromlist=["x"]).__file__).read_text().splitlines()
    observed = next(n for n, line in enumerate(model_lines, 1) if "obs=x" in line)
    assert re.search(rf"models/model.py {observed} pyro.sample\(OBSERVED", sections["bayes"])
    sources = re.findall(r'src="([^"]*)"', page.read_text())
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n" for s in sources)
    assert not re.search(r'(href|src)="(https?:)?//', page.read_text())
    written = []
    for name in ("findings.json", "diagnostics/findings.json"):
        if (report_sweep / "vae" / name).is_file():
            written += json.loads((report_sweep / "vae" / name).read_text())["findings"]
    for item in written:                                  # the findings layer's own words, problems first
        assert item["title"] in sections["findings"]
    if not any((report_sweep / "vae" / name).is_file() for name in ("findings.json", "diagnostics/findings.json")):
        assert "bayesvae diagnose" in sections["findings"]   # no findings file: the page names the command


def test_autoencoder_is_described_without_a_kl_term_and_as_map(report_sweep, tmp_path):
    from bayesvae.report import write_report

    sections = section_texts(write_report(report_sweep, tmp_path / "sweep.html"))
    assert "amortized MAP estimation" in sections["ae-vae-beta"]
    assert "The guide is a point mass: there is no KL term" in sections["kl"]
    assert "q(z | x) is a point mass: no density, so no ELBO" in sections["bayes"]
    assert "What changes in the code from vae to ae: only the guide" in sections["ae-vae-beta"]
    assert "+class DeltaGuide" in sections["ae-vae-beta"] and "-class NormalGuide" in sections["ae-vae-beta"]
    assert "a set of points has no volume" in sections["ae-vae-beta"]


def test_sweep_page_takes_probe_and_rate_numbers_from_the_comparison(report_sweep, tmp_path):
    from bayesvae.report import write_report

    comparison = json.loads((report_sweep / "comparison" / "comparison.json").read_text())
    sections = section_texts(write_report(report_sweep, tmp_path / "sweep.html"))
    for row in comparison["runs"]:
        assert f"{row['knn_accuracy']:.3f}" in sections["grouping"]
        assert f"{row['distortion']:.2f}" in sections["ae-vae-beta"]
    assert "rate–distortion plane" in sections["ae-vae-beta"]
    assert "vae-beta4 has no MCMC check" in sections["posterior"]   # a missing part names its command
    assert "bayesvae diagnose" in sections["posterior"]


def test_user_script_page_shows_the_script_lines_without_running_it(script_run, tmp_path):
    from bayesvae.report import write_report

    sections = section_texts(write_report(script_run, tmp_path / "script.html"))
    script = (script_run / "code" / "vae_template.py").read_text().splitlines()
    for needle in ('pyro.sample("x", dist.Bernoulli', 'pyro.sample("z", dist.Normal(x.new_zeros', "F.softplus(scale_head"):
        number = next(n for n, line in enumerate(script, 1) if needle in line)
        assert re.search(rf"code/vae_template.py {number} (z = )?pyro.sample", sections["bayes"]), needle
    # the prior's std comes from diagnose, which ran the user's prior: the report never runs the script
    assert "Prior std: not recorded" not in sections["kl"] and "not recorded" not in sections["kl"]


def test_runs_of_different_data_sets_are_not_ranked(report_sweep, tmp_path):
    import bayesvae
    from bayesvae.data import load_dataset
    from bayesvae.report import write_report

    digits = load_dataset("digits")
    npz = tmp_path / "few.npz"
    np.savez(npz, images=digits.train_x[:300].numpy(), labels=digits.train_y[:300].numpy())
    other = bayesvae.fit(data=str(npz), out=tmp_path / "few-run", **SMALL)
    page = write_report([report_sweep / "vae", other.path], tmp_path / "mixed.html")
    text = text_of(page)
    assert "different data sets" in text and "does not rank them" in text
    assert "Across β" not in text


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(cli, report_sweep, tmp_path):
    (tmp_path / "empty").mkdir()
    old = tmp_path / "old.html"
    old.write_text("old report")
    cases = [([str(tmp_path / "empty"), "--out", str(old)], "is not a bayesvae run"),
             ([str(report_sweep / "vae"), "--out", str(tmp_path)], "is a folder"),
             ([str(report_sweep / "vae"), "--out", str(tmp_path / "missing" / "r.html")], "does not exist"),
             ([str(report_sweep / "vae"), "--out", str(old / "r.html")], "does not exist")]
    for args, message in cases:
        before = sorted(p.name for p in tmp_path.rglob("*"))
        result = cli("report", *args)
        assert result.code == 2 and message in result.err and result.err.count("\n") == 1, result
        assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert old.read_text() == "old report"


def _synthetic(anatomy: dict, guide: str = "normal", beta: float = 1.0, findings=()):
    from bayesvae.report.inputs import RunResults

    config = {"model": {"guide": guide, "latent_dim": 2}, "training": {"beta": beta}, "data": {"dataset": "digits"}}
    return RunResults(Path("run"), "run", config, [], anatomy, None, list(findings))


def _latent(active: int, kl: float, stds=(1.0, 1.0), point_mass=False) -> dict:
    per_dim = [{"dim": u, "kl": kl / 2, "active": u < active, "mean_std": s, "std_of_means": 0.5 if u < active else 0.0}
               for u, s in enumerate(stds)]
    summary = {"active": {"dims": active, "mean_std": float(np.mean(stds[:active])), "std_of_means": 0.5}
               if active else None}
    return {"latent": {"latent_dim": 2, "active_units": active, "per_dimension": per_dim, "summary": summary,
                       "point_mass": point_mass},
            "anatomy": {"kl": {"value": kl}}, "surgery": {}, "evidence": {}}


def test_kl_answer_is_the_one_diagnose_wrote():
    from bayesvae.report.kl_section import kl_answer, prior_std

    anatomy = {**_latent(2, 6.0), "answer": "Per image the KL pulls q(z|x) toward p(z), but ...",
               "prior": {"std": 1.41, "std_per_dim": [1.41, 1.41]}}
    assert kl_answer(_synthetic(anatomy)) == anatomy["answer"]
    assert prior_std(_synthetic(anatomy)) == [1.41, 1.41]
    assert "run bayesvae diagnose again" in kl_answer(_synthetic(_latent(2, 6.0)))
    assert prior_std(_synthetic(_latent(2, 6.0))) is None
    discrete = kl_answer(_synthetic({**anatomy, "discrete_site": "y", "answer": "The class 'y' is a latent variable"}))
    assert "KL(q(y|x) ‖ p(y))" in discrete and discrete.endswith("The class 'y' is a latent variable")


def test_evidence_with_heavy_tailed_weights_is_not_printed_to_three_decimals():
    from bayesvae.report.numbers import evidence_text

    anatomy = {"evidence": {"log_px": -138.63921, "log_px_se": 0.035, "khat_max": 1.3, "n_khat_above_0_7": 40,
                            "n_images": 100}}
    text, reliable = evidence_text(_synthetic(anatomy))
    assert not reliable and "≈ -139" in text and "-138.639" not in text and "unreliable" in text
    few = {"evidence": {"log_px": -24.1234, "log_px_se": 0.01, "khat_max": 0.8, "n_khat_above_0_7": 1, "n_images": 100}}
    text, reliable = evidence_text(_synthetic(few))       # one image in a hundred: a note, the mean still holds
    assert not reliable and "-24.12 ± 0.01" in text and "1 of 100 images above 0.7" in text
    fine, reliable = evidence_text(_synthetic({"evidence": {"log_px": -24.1234, "log_px_se": 0.01, "khat_max": 0.3,
                                                            "n_khat_above_0_7": 0, "n_images": 10}}))
    assert reliable and "-24.123 ± 0.010" in fine


def test_training_curves_have_titles_axis_labels_and_a_line_per_series(report_sweep):
    from bayesvae.analysis.plots_training import training_figure
    from bayesvae.report.inputs import read_metrics

    rows = read_metrics(report_sweep / "vae" / "metrics.csv")
    ae_rows = read_metrics(report_sweep / "ae" / "metrics.csv")
    fig = training_figure([("vae", rows), ("ae", ae_rows)])
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() == "epoch" and "nats" in ax.get_ylabel()
    loss, kl, likelihood = fig.axes[:3]
    assert len(loss.lines) == 4 and len(kl.lines) == 2
    assert list(kl.lines[1].get_xdata()) == []          # the autoencoder has no KL (NaN in metrics.csv)
    assert list(likelihood.lines[0].get_ydata()) == pytest.approx([r["test_log_likelihood"] for r in rows])

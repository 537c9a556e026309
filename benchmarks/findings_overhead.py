"""What the findings layer adds to ``diagnose``: its time as a share of diagnose part 1, same run, same data.

Contenders, alternated round after round (see :func:`.common.interleaved`):

* diagnose part 1: :func:`bayesvae.analysis.diagnose_report.measure` (evidence by importance sampling with
  K draws, ELBO terms, latent statistics, ELBO surgery) on N images;
* findings: :func:`bayesvae.analysis.findings.diagnose_findings` on those results plus a training
  history, :func:`~bayesvae.analysis.findings.render_findings` and the findings.json text.

The result is the median over rounds of t(findings) / t(diagnose part 1); the target is < 5 %.
"""

from __future__ import annotations

import json

import torch

from .common import Ratio, interleaved

TARGET = 0.05


def _history(epochs: int = 100) -> list[dict]:
    """A plausible 100-epoch metrics history (the findings read every row)."""
    return [{"epoch": e, "beta": 1.0, "train_loss": 100 + 50 / e, "test_elbo": -100 - 50 / e,
             "test_log_likelihood": -80 - 50 / e, "test_kl": 20.0, "test_log_prior": -30.0} for e in range(1, epochs + 1)]


def run(pair, x: torch.Tensor, k: int, repetitions: int, log=print) -> dict:
    """Time both contenders on ``x`` (binary images) and return the ratio and the two medians (seconds)."""
    from bayesvae.analysis.diagnose_report import measure
    from bayesvae.analysis.findings import diagnose_findings, findings_json, render_findings

    config = {"image_shape": list(x.shape[1:]), "model": {"model": "builtin", "likelihood": "bernoulli"},
              "training": {"lr": 1e-3, "beta": 1.0, "warmup_epochs": 0}}
    history = _history()
    results = {}

    def diagnose_part1():
        results["last"] = measure(pair, x, k=k, progress=False).results

    def findings():
        found = diagnose_findings(results["last"], None, config, history)
        render_findings(found)
        json.dumps(findings_json(found))

    diagnose_part1()
    timings = interleaved({"diagnose": diagnose_part1, "findings": findings}, repetitions, warmup=0)
    ratio = Ratio.of(timings.wall["findings"], timings.wall["diagnose"])
    log(f"  findings / diagnose part 1: {100 * ratio.median:.3g} % (N = {x.shape[0]}, K = {k})")
    return {"ratio": ratio, "n": x.shape[0], "k": k,
            "diagnose_s": sorted(timings.wall["diagnose"])[len(timings.wall["diagnose"]) // 2],
            "findings_s": sorted(timings.wall["findings"])[len(timings.wall["findings"]) // 2]}


def markdown(row: dict) -> list[str]:
    verdict = "met" if row["ratio"].median < TARGET else "NOT met"
    return ["| images | K | diagnose part 1 (s) | findings (s) | findings / diagnose |", "|---|---|---|---|---|",
            f"| {row['n']:,} | {row['k']:,} | {row['diagnose_s']:.2f} | {row['findings_s']:.4f} | "
            f"{100 * row['ratio'].median:.3g} % [{100 * row['ratio'].low:.2g}–{100 * row['ratio'].high:.2g} %] |",
            "", f"Target < {TARGET:.0%} of diagnose's time: **{verdict}**."]

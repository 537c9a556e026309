"""Findings for ``compare``: which runs' log p(x) may be ranked against each other, and each run's own findings.

A log-density depends on what it is a density *of*: a Bernoulli on binarized pixels and a Gaussian on
grey levels score different data (probability mass vs density in nats per pixel: −23.74 vs +12.63 on
digits), and a different data set is a different question. Runs are ranked only within groups of
equal (data set, likelihood, binarization); across groups ``compare_findings`` returns a warning and
``rankable`` False. A model from a user's script has its own prior and likelihood: its row names them as
the user's (:func:`definition_labels`), never as the built-in defaults its config also stores.
"""

from __future__ import annotations

from bayesvae.models.user_code import is_code_ref

import bayesvae.analysis.findings.thresholds as T  # absolute: "from . import" would make the package a dependency
from .evidence import evidence_finding
from .finding import Finding
from .latent import probe_findings

USER = "user's"


def definition_labels(config: dict) -> dict:
    """``{"model", "prior", "likelihood", "guide"}`` as a table should print them for a run's config.json:
    a script's model/guide name the script, and then prior and likelihood are the user's."""
    model = config.get("model", {})
    ref, guide = model.get("model", "builtin"), model.get("guide", "normal")
    if ref != "builtin" and is_code_ref(ref):
        return {"model": ref, "prior": f"{USER} ({ref})", "likelihood": f"{USER} ({ref})", "guide": guide}
    return {"model": "builtin", "prior": model.get("prior"), "likelihood": model.get("likelihood"), "guide": guide}


def _group(row: dict) -> tuple:
    return (row.get("dataset"), row.get("likelihood"), row.get("binarize", "?"))


def run_findings(row: dict) -> list[Finding]:
    """One run's findings from its compare row (collapse, probes, silhouette, evidence k̂, I_q at log N)."""
    out = []
    rate, active = row.get("rate"), row.get("active_units")
    if active == 0 and (rate is None or rate < T.KL_COLLAPSED_NATS):
        out.append(Finding("posterior-collapse", "problem", "posterior collapse: 0 active units",
                           {"active_units": 0, "rate_nats": rate if rate is not None else "?"},
                           "q(z|x) does not depend on x; its log p(x) is that of a model without latent code.",
                           "see `bayesvae diagnose RUN` for the causes and remedies"))
    out += probe_findings(row)
    khat = row.get("khat_max")
    if khat is not None:
        finding = evidence_finding({"khat_max": khat, "n_khat_above_0_7": row.get("n_khat_above_0_7", 0),
                                    "n_images": row.get("n_images", "?"), "log_px": row.get("log_px")})
        if finding is not None:
            out.append(finding)
    mi, log_n = row.get("mutual_information"), row.get("log_n")
    if mi is not None and log_n and mi >= T.MI_AT_BOUND_FRACTION * log_n:
        out.append(Finding("mutual-information-at-bound", "note", f"I_q = {mi:.2f} at its bound log N = {log_n:.2f}",
                           {"mutual_information_nats": mi, "log_n": log_n},
                           "The codes tell every image apart; I_q and the marginal KL are limited by N.",
                           "compare on more images (--max-images)"))
    if str(row.get("prior", "")).startswith(USER):
        out.append(Finding("user-defined-model", "note", f"prior and likelihood are defined by {row.get('model')}",
                           {"model": str(row.get("model"))},
                           "The prior and likelihood columns name the user's script, not a built-in default.", ""))
    return out


def compare_findings(rows: list[dict]) -> dict:
    """``{"runs": {name: [Finding]}, "comparison": [Finding], "rankable": bool, "groups": [[names]]}``.

    ``rankable`` is True when every run scores the same data (data set, likelihood, binarization), so
    their log p(x) may be ordered; otherwise ``groups`` lists the runs that may be ranked together."""
    groups: dict[tuple, list[str]] = {}
    for row in rows:
        groups.setdefault(_group(row), []).append(row["name"])
    comparison = []
    if len(groups) > 1:
        described = "; ".join(f"{', '.join(names)}: data {key[0]}, likelihood {key[1]}, binarize {key[2]}"
                              for key, names in groups.items())
        comparison.append(Finding("log-px-not-comparable", "warning",
                                  f"log p(x) is not ranked across {len(groups)} kinds of score", {"groups": described},
                                  "log p(x) of runs with different data sets, likelihoods or binarizations measures "
                                  "different things (a probability of binary pixels vs a density of grey levels): "
                                  "a higher number is not a better model.",
                                  "compare runs within one group; or train them with the same --likelihood, "
                                  "--binarize and data set"))
    return {"runs": {row["name"]: run_findings(row) for row in rows}, "comparison": comparison,
            "rankable": len(groups) <= 1, "groups": list(groups.values())}

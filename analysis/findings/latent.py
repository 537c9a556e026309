"""Findings from the latent-space measurements of ``diagnose`` (anatomy.json's ``latent``/``surgery``/``anatomy``).

Signals: active units and the spread of the posterior means (``latent``), the average KL, I_q(x; z),
the marginal KL and log N (``surgery``), KL(q ‖ p(z)) from the ELBO's terms (``anatomy``).
"""

from __future__ import annotations

import bayesvae.analysis.findings.thresholds as T  # absolute: "from . import" would make the package a dependency
from .finding import Finding
from .remedies import collapse_remedies


def _value(block: dict | None, key: str):
    if not block or "skipped" in block:
        return None
    value = block.get(key)
    return value.get("value") if isinstance(value, dict) else value


def collapse_findings(results: dict, config: dict) -> list[Finding]:
    """Posterior collapse, a constant encoder far from the prior, partial collapse (a note)."""
    latent, surgery = results.get("latent") or {}, results.get("surgery") or {}
    d, active = latent.get("latent_dim"), latent.get("active_units")
    kl = _value(results.get("anatomy"), "kl")
    kl = kl if kl is not None else _value(surgery, "average_kl")
    mi = _value(surgery, "mutual_information")
    if d is None or active is None:
        return []
    spread = (latent.get("summary") or {}).get("inactive") or {}
    evidence = {"active_units": active, "latent_dim": d}
    if kl is not None:
        evidence["kl_nats"] = kl
    if mi is not None:
        evidence["mutual_information_nats"] = mi
    collapsed_kl = kl is not None and kl < T.KL_COLLAPSED_NATS
    if (active == 0 and (kl is None or collapsed_kl)) or (collapsed_kl and mi is not None and mi < T.MI_COLLAPSED_NATS):
        point = latent.get("point_mass")
        return [Finding("posterior-collapse", "problem",
                        "the codes do not depend on the image" if point else
                        f"posterior collapse: {active} of {d} latent dimensions active"
                        + (f", KL {kl:.2f} nats, I_q {mi:.2f} nats" if kl is not None and mi is not None else ""),
                        evidence,
                        ("The point-mass codes are (almost) the same for every image: the decoder ignores z."
                         if point else "q(z|x) is (almost) the prior for every image: z carries no information about "
                         "x and the decoder ignores it. The per-dimension table, latent plots and probes describe "
                         "an unused latent space."),
                        "; ".join(collapse_remedies(config)))]
    if active == 0 and kl is not None:
        std = spread.get("mean_std")
        evidence["mean_posterior_std"] = std if std is not None else "?"
        return [Finding("constant-encoder", "problem",
                        f"q(z|x) is the same for every image but {kl:.1f} nats from the prior",
                        evidence,
                        "No dimension's posterior mean varies over images, so z tells nothing about x, yet each q(z|x) "
                        "sits far from p(z): the ELBO pays the whole KL for no information (typical after a "
                        "diverged start).",
                        "retrain with a lower --lr; check the training findings for an explosion")]
    if d >= 2 and (d - active) / d > T.PARTIAL_COLLAPSE_FRACTION:
        return [Finding("partial-collapse", "note", f"partial collapse: {d - active} of {d} latent dimensions inactive",
                        {**evidence, "inactive_fraction": (d - active) / d},
                        "The model uses fewer dimensions than it has; the inactive ones sit near the prior and cost "
                        "almost no KL. This is how VAEs usually behave, not an error.",
                        f"nothing to fix; a --latent-dim near {max(active, 1)} would give the same model")]
    return []


def surgery_findings(results: dict) -> list[Finding]:
    """I_q at its bound log N (a note); an aggregate posterior far from the prior (a warning)."""
    surgery = results.get("surgery") or {}
    if "skipped" in surgery or "mutual_information" not in surgery:
        return []
    mi, log_n, marginal, average = (surgery["mutual_information"], surgery["log_n"], surgery["marginal_kl"],
                                    surgery["average_kl"])
    n = surgery.get("n_images")
    out = []
    evidence = {"mutual_information_nats": mi, "log_n": log_n, "n_images": n if n is not None else "?",
                "average_kl_nats": average, "marginal_kl_nats": marginal}
    at_bound = mi >= T.MI_AT_BOUND_FRACTION * log_n
    if at_bound:
        out.append(Finding("mutual-information-at-bound", "note",
                           f"I_q(x;z) = {mi:.2f} nats has reached its bound log N = {log_n:.2f}", evidence,
                           f"The encoder tells every one of the {n} images apart; with N images I_q cannot exceed "
                           f"log N, so the split of the average KL into information and marginal KL is limited by "
                           f"N, not by the model (Monte Carlo noise can put the estimate slightly past the bound).",
                           "measure on more images (--max-images) for an I_q below its bound"))
    elif marginal > T.MARGINAL_KL_MAX_NATS and marginal > 0.5 * average:
        out.append(Finding("aggregate-posterior-mismatch", "warning",
                           f"the aggregate posterior q(z) is {marginal:.1f} nats from the prior", evidence,
                           "Most of the average KL is the mismatch between q(z) and p(z), not information about x: "
                           "samples decoded from the prior will not look like the data.",
                           "a learned prior (--prior mog or vamp), a lower --lr, or a smaller --latent-dim"))
    return out


def probe_findings(row: dict) -> list[Finding]:
    """Probe accuracies and silhouette on a near-constant encoder are meaningless; the silhouette explained."""
    if row.get("knn_accuracy") is None:
        return []
    active, spread = row.get("active_units"), row.get("mean_spread")
    out = []
    evidence = {"active_units": active if active is not None else "?", "mean_spread": spread if spread is not None else "?",
                "knn_accuracy": row["knn_accuracy"], "chance": row.get("chance") or "?"}
    if active == 0 or (spread is not None and spread < T.SPREAD_MIN):
        out.append(Finding("probes-meaningless", "warning",
                           "probe accuracies and silhouette measure an encoder that (almost) ignores the image",
                           evidence,
                           "With no active dimension the posterior means differ by numerical noise only; k-NN and "
                           "logistic probes can still read classes from that noise, which says nothing about "
                           "grouping in a latent space the decoder uses.",
                           "fix the collapse first (see the collapse finding); then compare probes"))
    silhouette = row.get("silhouette")
    if silhouette is not None:
        word = ("classes overlap in z" if silhouette < 0.1 else "classes form loose groups" if silhouette < 0.5
                else "classes form tight, separated clusters")
        out.append(Finding("silhouette", "note", f"silhouette {silhouette:.2f}: {word}",
                           {"silhouette": silhouette},
                           "The silhouette (−1 … 1) compares each code's mean distance to its own class with that to "
                           "the nearest other class: near 0 the classes overlap (a probe may still separate them "
                           "locally or linearly), near 1 they are tight, well separated clusters.", ""))
    return out

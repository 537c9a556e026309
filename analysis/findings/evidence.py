"""Is the importance-sampled evidence log p(x) to be trusted? PSIS k̂ of its weights, and how to print it.

The main estimate of ``diagnose`` (anatomy.json's ``evidence``) carries, once measured, ``khat`` (per
image), ``khat_max`` and ``n_khat_above_0_7``: the Pareto shape k̂ of the weights w = p(x,z)/q(z|x)
(Vehtari et al. 2024). Above 0.7 the weights' variance is (nearly) infinite: the estimate can be far
off (87 nats on a diverged digits run) while its standard error looks tiny, so the number is not
printed to three decimals. Part 2's per-image rows (posterior.json ``table[*].khat``) are read too.
"""

from __future__ import annotations

import math

import bayesvae.analysis.findings.thresholds as T  # absolute: "from . import" would make the package a dependency
from .finding import Finding


def khat_summary(evidence: dict | None, posterior: dict | None = None) -> dict | None:
    """``{"khat_max", "n_above", "n_images", "source"}`` from the evidence block (preferred) or part 2's rows."""
    evidence = evidence or {}
    values = evidence.get("khat")
    source = "main evidence estimate"
    if values is None and evidence.get("khat_max") is not None:
        return {"khat_max": float(evidence["khat_max"]), "n_above": int(evidence.get("n_khat_above_0_7", 0)),
                "n_images": evidence.get("n_images", "?"), "source": source}
    if values is None and posterior and isinstance(posterior.get("table"), list):
        values = [row.get("khat") for row in posterior["table"]]
        source = "part 2 images (PSIS of q(z|x))"
    values = [float(v) for v in (values or []) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None
    return {"khat_max": max(values), "n_above": sum(v > T.KHAT_BAD for v in values), "n_images": len(values),
            "source": source}


def evidence_finding(evidence: dict | None, posterior: dict | None = None) -> Finding | None:
    """A problem above k̂ 0.7 (any image), a note between 0.5 and 0.7, nothing below."""
    summary = khat_summary(evidence, posterior)
    if summary is None:
        return None
    k, n_above, n = summary["khat_max"], summary["n_above"], summary["n_images"]
    log_px = (evidence or {}).get("log_px")
    base = {"khat_max": k, "images_above_0_7": n_above, "images": n, "measured_on": summary["source"]}
    if log_px is not None:
        base["log_px_shown"] = log_px
    if k > T.KHAT_BAD and unreliable(k, n_above / n if isinstance(n, int) and n else None):
        return Finding("evidence-unreliable", "problem",
                       f"the importance-sampled log p(x) cannot be trusted: PSIS k̂ up to {k:.2f} "
                       f"({n_above} of {n} images above {T.KHAT_BAD})", base,
                       "The guide q(z|x) is much narrower than, or misplaced against, the true posterior: a few "
                       "huge weights decide the estimate, its standard error is meaningless and log p(x) can be "
                       "off by many nats (usually too low).",
                       "check with MCMC (diagnose part 2); use a guide closer to p(z|x) (--guide fullcov or iaf, "
                       "--elbo iwae) or fix the training first; more --k helps only slowly")
    if k > T.KHAT_BAD:
        return Finding("evidence-tail", "note",
                       f"{n_above} of {n} images have PSIS k̂ above {T.KHAT_BAD} (up to {k:.2f})", base,
                       "For those images the importance-sampled log p(x) is uncertain beyond its standard error; "
                       "they are too few to make the mean over images unreliable.",
                       "a larger --k; part 2 (MCMC) checks single images")
    if k > T.KHAT_GOOD:
        return Finding("evidence-slow", "note", f"PSIS k̂ up to {k:.2f}: log p(x) converges slowly", base,
                       "Between 0.5 and 0.7 importance sampling still converges, but more slowly than its standard "
                       "error assumes.", "a larger --k tightens it")
    return None


def unreliable(khat_max: float | None, fraction_above: float | None = None) -> bool:
    """True when the mean log p(x) must not be shown as a precise number: k̂ above KHAT_BAD and (when the
    share of such images is known) more than KHAT_BAD_FRACTION of the images above it."""
    if khat_max is None or not khat_max > T.KHAT_BAD:
        return False
    return fraction_above is None or fraction_above > T.KHAT_BAD_FRACTION


def format_log_px(value: float | None, se: float | None, khat_max: float | None,
                  fraction_above: float | None = None) -> str:
    """log p(x) as it may be printed: three decimals ± se when k̂ ≤ 0.7 (or unknown), two between 0.5 and
    0.7, and when :func:`unreliable` the rounded value marked unreliable (no standard error: it does not
    hold). ``fraction_above``: share of images with k̂ > 0.7 (None: judge by ``khat_max`` alone)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if unreliable(khat_max, fraction_above):
        return f"≈ {value:.0f} (unreliable: PSIS k̂ {khat_max:.2f} > {T.KHAT_BAD})"
    digits = 2 if khat_max is not None and khat_max > T.KHAT_GOOD else 3
    text = f"{value:.{digits}f}"
    if se is not None and math.isfinite(se):
        text += f" ± {se:.{digits}f}"
    return text + (f" (k̂ {khat_max:.2f})" if khat_max is not None and khat_max > T.KHAT_GOOD else "")


def shown_log_px(evidence: dict | None) -> str | None:
    """The evidence block's log p(x) as :func:`format_log_px` prints it when its k̂ is known, else None."""
    summary = khat_summary(evidence)
    if summary is None or not evidence or evidence.get("log_px") is None:
        return None
    n = summary["n_images"]
    share = summary["n_above"] / n if isinstance(n, int) and n else None
    return format_log_px(evidence["log_px"], evidence.get("log_px_se"), summary["khat_max"], share)

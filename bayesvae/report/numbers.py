"""Numbers as the page prints them: fixed decimals, "—" for a quantity that is not defined, and the
evidence log p(x) with its reliability, formatted by the findings layer's own rule
(:func:`bayesvae.analysis.findings.format_log_px`: PSIS k̂ > 0.7 on too many images → "≈ −139 (unreliable …)",
never three decimals), so the page and ``diagnose`` print the same thing."""

from __future__ import annotations

from bayesvae.analysis.findings import format_log_px, khat_summary, unreliable

from .inputs import RunResults, finite

KHAT_UNRELIABLE = 0.7   # Yao et al. (2018): above it the importance weights' variance is (nearly) infinite


def num(value, digits: int = 2) -> str:
    value = finite(value)
    return "—" if value is None else f"{value:.{digits}f}"


def percent(part, whole) -> str | None:
    part, whole = finite(part), finite(whole)
    return None if part is None or not whole else f"{100 * part / whole:.0f} %"


def evidence_text(run: RunResults) -> tuple[str, bool]:
    """log p(x) as the page shows it and whether it can be read to its printed precision ('—' when not defined)."""
    evidence = (run.anatomy or {}).get("evidence", {})
    value, se = finite(evidence.get("log_px")), finite(evidence.get("log_px_se"))
    if value is None:
        return "—", False
    summary = khat_summary(evidence, run.posterior)
    if summary is None:
        return format_log_px(value, se, None) + " (PSIS k̂ not measured)", True
    khat, n_above, n = summary["khat_max"], summary["n_above"], summary["n_images"]
    share = n_above / n if isinstance(n, int) and n else None
    where = f"; k̂ from the {summary['source']}: {n_above} of {n} images above {KHAT_UNRELIABLE}"
    text = format_log_px(value, se, khat, share)
    return text + where, not unreliable(khat, share) and khat <= KHAT_UNRELIABLE

"""Numbers as the page prints them: fixed decimals, "—" for a quantity that is not defined, and the
evidence log p(x) with its reliability (PSIS k̂ > 0.7: the importance-sampled estimate cannot be trusted,
so it is not printed to three decimals)."""

from __future__ import annotations

from .inputs import RunResults, finite

KHAT_UNRELIABLE = 0.7   # Yao et al. (2018): above it the importance weights' variance is (nearly) infinite


def num(value, digits: int = 2) -> str:
    value = finite(value)
    return "—" if value is None else f"{value:.{digits}f}"


def percent(part, whole) -> str | None:
    part, whole = finite(part), finite(whole)
    return None if part is None or not whole else f"{100 * part / whole:.0f} %"


def khat_max(run: RunResults) -> tuple[float | None, str]:
    """The largest PSIS k̂ known for the run's evidence weights and where it comes from."""
    evidence = (run.anatomy or {}).get("evidence", {})
    if finite(evidence.get("khat_max")) is not None:
        return finite(evidence["khat_max"]), f"over the {run.anatomy.get('n_images', 'scored')} images of the estimate"
    for item in run.findings:
        value = finite((item.get("evidence") or {}).get("khat_max"))
        if value is not None:
            return value, f"from the finding {item.get('id', '')!r}"
    values = [finite(row.get("khat")) for row in (run.posterior or {}).get("table", [])]
    values = [v for v in values if v is not None]
    if values:
        return max(values), f"over the {len(values)} images of the MCMC check only"
    return None, "not measured"


def evidence_text(run: RunResults) -> tuple[str, bool]:
    """log p(x) ± s.e. as the page shows it, and whether it is reliable (None-safe: '—' when not defined)."""
    evidence = (run.anatomy or {}).get("evidence", {})
    value, se = finite(evidence.get("log_px")), finite(evidence.get("log_px_se"))
    if value is None:
        return "—", False
    khat, where = khat_max(run)
    subset = "MCMC check only" in where
    if khat is not None and khat > KHAT_UNRELIABLE and not subset:
        return f"≈ {value:.0f} (unreliable: PSIS k̂ up to {khat:.2f} > {KHAT_UNRELIABLE}, {where})", False
    text = f"{value:.3f} ± {se:.3f}" if se is not None else f"{value:.3f}"
    if khat is not None and khat > KHAT_UNRELIABLE:
        return text + (f" (caution: PSIS k̂ up to {khat:.2f} > {KHAT_UNRELIABLE} {where}: for some images the "
                       f"importance weights are too heavy-tailed to trust)"), False
    return text + (f" (PSIS k̂ max {khat:.2f}, {where})" if khat is not None else " (PSIS k̂ not measured)"), True

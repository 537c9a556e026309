"""``diagnose_findings``: everything ``diagnose`` measured, read as findings (RUN/diagnostics/findings.json).

Inputs are the dicts ``diagnose`` writes (anatomy.json's content, posterior.json's or None), the run's
config.json as a dict and its training history. Training-curve findings are included; where the same
finding is measured both from the curves and on the diagnosed images, the diagnose measurement wins.
"""

from __future__ import annotations

from .evidence import evidence_finding
from .finding import Finding, sort_findings
from .latent import collapse_findings, surgery_findings
from .posterior import beta_gap_finding, mcmc_finding
from .scale import gaussian_scale_finding
from .training import train_findings

_SAME = {"kl-vanished-under-warmup": "posterior-collapse"}  # a curve finding the diagnose one replaces


def diagnose_findings(anatomy: dict, posterior: dict | None, config: dict, history: list[dict]) -> list[Finding]:
    """The findings of one diagnosed run, problems first (see the module docstring)."""
    anatomy, config = anatomy or {}, config or {}
    found: list[Finding | None] = []
    found += collapse_findings(anatomy, config)
    found += surgery_findings(anatomy)
    found.append(evidence_finding(anatomy.get("evidence"), posterior))
    terms = anatomy.get("anatomy") or {}
    found.append(gaussian_scale_finding(config, (terms.get("log_likelihood") or {}).get("value"),
                                        f"E_q[log p(x|z)] on the {anatomy.get('n_images', '?')} diagnosed images"))
    found.append(mcmc_finding(posterior))
    found.append(beta_gap_finding(posterior, config))
    measured = [f for f in found if f is not None]
    ids = {f.id for f in measured}
    for f in train_findings(history or [], config):
        if f.id not in ids and _SAME.get(f.id) not in ids:
            measured.append(f)
    return sort_findings(measured)

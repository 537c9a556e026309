"""Findings from diagnose part 2 (posterior.json): MCMC convergence with its probable cause, the gap split.

MCMC: per image R-hat and bulk/tail ESS (``table``), per NUTS state the mean tree depth, step size and
divergences (``nuts``), the settings (``settings``). The probable cause of poor mixing is named by
the first that applies: trajectories cut at the tree-depth cap, divergent transitions, else too few draws.
"""

from __future__ import annotations

import bayesvae.analysis.findings.thresholds as T  # absolute: "from . import" would make the package a dependency
from .finding import Finding


def mcmc_finding(posterior: dict | None) -> Finding | None:
    """A warning when any image's chains have not converged, with the cause and the option that addresses it."""
    if not posterior or "skipped" in posterior or not posterior.get("table"):
        return None
    rows, nuts, settings = posterior["table"], posterior.get("nuts", {}), posterior.get("settings", {})
    bad = [r for r in rows if not (r["r_hat"] <= T.R_HAT_MAX and min(r["ess_bulk"], r["ess_tail"]) >= T.ESS_MIN)]
    if not bad:
        return None
    r_hat, ess = max(r["r_hat"] for r in rows), min(r["ess_bulk"] for r in rows)
    depth = max(nuts.get("mean_tree_depth") or [0.0])
    cap = settings.get("max_tree_depth")
    divergences = sum(nuts.get("divergences") or [0])
    evidence = {"images_not_converged": len(bad), "images": len(rows), "max_r_hat": r_hat, "min_ess_bulk": ess,
                "mean_tree_depth": depth, "max_tree_depth": cap if cap is not None else "?",
                "divergences": divergences, "draws": settings.get("draws", "?")}
    if cap and depth >= T.TREE_DEPTH_AT_CAP * cap:
        cause = (f"the mean tree depth {depth:.1f} is at the cap {cap}: NUTS cut every trajectory short, so the "
                 f"chains move in small random steps")
        remedy = f"--mcmc-max-tree-depth {cap + 3} (or more); more --draws will not fix it"
    elif divergences:
        cause = (f"{divergences} divergent transitions: the step size is too large for the posterior's curvature "
                 f"and the chains miss parts of it")
        remedy = f"--mcmc-target-accept 0.95 (now {settings.get('target_accept', '?')}), which shrinks the step size"
    else:
        cause = "no depth cap or divergence: the chains are simply too short for this posterior"
        remedy = f"more --draws (now {settings.get('draws', '?')}) and --warmup"
    return Finding("mcmc-not-converged", "warning",
                   f"MCMC not converged for {len(bad)} of {len(rows)} images (R-hat up to {r_hat:.2f}, ESS down to "
                   f"{ess:.0f})", evidence,
                   f"The draws do not yet represent p(z|x): moments, KLs and the check against q(z|x) are unreliable. "
                   f"Probable cause: {cause}.", remedy)


def beta_gap_finding(posterior: dict | None, config: dict) -> Finding | None:
    """At β ≠ 1, say how much of the gap to the true posterior is β's and how much amortization's."""
    beta = (config or {}).get("training", {}).get("beta", 1.0)
    gap = (posterior or {}).get("amortization") or {}
    split = gap.get("beta_split")
    if beta == 1.0 or not split or "skipped" in split:
        return None
    mean = split["mean"]
    return Finding("beta-gap-split", "note",
                   f"at β = {beta:g} the gap to p(z|x) is {mean['total_gap']:.2f} nats: {mean['beta_part']:.2f} from β, "
                   f"{mean['amortization_part']:.2f} from amortization",
                   {"beta": beta, "total_gap_nats": mean["total_gap"], "beta_part_nats": mean["beta_part"],
                    "amortization_part_nats": mean["amortization_part"],
                    "approximation_gap_nats": mean["approximation_gap"]},
                   "The encoder was trained for the tempered target p(x|z)^(1/β) p(z), not for p(z|x): the β part "
                   "(ELBO[q*] − ELBO[q*_β]) is what that choice costs even with per-image optimization; only the "
                   "amortization part (ELBO[q*_β] − ELBO[q]) is the cost of one shared encoder.",
                   "nothing to fix if β was chosen on purpose; at β = 1 the β part vanishes")

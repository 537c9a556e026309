"""Section 6, true vs amortized posterior: MCMC draws of p(z|x) against q(z|x), the R-hat / ESS / k̂ table
and the approximation and amortization gaps (RUN/diagnostics/posterior.json, written by ``diagnose``)."""

from __future__ import annotations

from .html import Section, each_run, figure, para, table
from .inputs import ResultSet, RunResults, finite
from .numbers import num

RHAT_MAX, ESS_MIN = 1.01, 400


def _table(posterior: dict) -> str:
    rows = [[row.get("image"), row.get("label", "—"), num(row.get("r_hat"), 3), num(row.get("ess_bulk"), 0),
             row.get("divergences"), num(row.get("kl_q_phat")), num(row.get("khat")),
             " ".join(row.get("flags") or []) or "—"] for row in posterior.get("table", [])]
    return table(["image", "label", "R-hat", "ESS bulk", "divergences", "KL(q ‖ p̂), nats", "PSIS k̂", "flags"], rows)


def _convergence(posterior: dict) -> str:
    bad = [row["image"] for row in posterior.get("table", [])
           if (finite(row.get("r_hat")) or 0) > RHAT_MAX or (finite(row.get("ess_bulk")) or 1e9) < ESS_MIN]
    divergent = sum(int(row.get("divergences") or 0) for row in posterior.get("table", []))
    if not bad and not divergent:
        return (f"Every chain converged by the usual checks (R-hat ≤ {RHAT_MAX}, bulk ESS ≥ {ESS_MIN}, no divergent "
                f"transitions), so the dots can be read as draws from the true posterior p(z | x).")
    return (f"Not every chain converged (images {', '.join(map(str, bad)) or 'none'} fail R-hat ≤ {RHAT_MAX} or ESS ≥ "
            f"{ESS_MIN}; {divergent} divergent transitions): for those images the dots may not be p(z | x); see the "
            f"flags and rerun diagnose with more --draws / --warmup.")


def _gaps(run: RunResults) -> str:
    amortization = run.posterior.get("amortization", {})
    if "skipped" in amortization:
        return para(f"Approximation and amortization gaps: {amortization['skipped']}.")
    mean = amortization.get("mean", {})
    approx, amort = finite(mean.get("approximation_gap")), finite(mean.get("amortization_gap"))
    log_px, elbo = finite(mean.get("log_px")), finite(mean.get("elbo_amortized"))
    total = None if log_px is None or elbo is None else log_px - elbo
    text = (f"On these images the guide's ELBO is {num(total)} nats below log p(x): the approximation gap "
            f"{num(approx)} nats is what the best member q* of the guide's family still misses (KL(q* ‖ p(z | x))), "
            f"the amortization gap {num(amort)} nats is what one encoder for all images costs on top "
            f"(ELBO[q*] − ELBO[q]).")
    if run.beta != 1:
        split = [f for f in run.findings if "beta" in str(f.get("id", "")).lower()]
        text += (f" This run was trained with β = {run.beta:g} while q* is fitted to the β = 1 target, so the "
                 f"amortization gap here also holds the cost of β, not only of amortization"
                 + (": the findings above split the two." if split else "."))
    return para(text)


def posterior_section(results: ResultSet) -> Section:
    section = Section("posterior", "True vs amortized posterior")
    section.add(para("MCMC (NUTS) samples the true posterior p(z | x) ∝ p(x | z) p(z) of a few test images directly, "
                     "with no guide; comparing those draws with q(z | x) shows where the guide is wrong."))
    each_run(section, results.runs, lambda run: run.posterior, "MCMC check (no diagnostics/posterior.json)",
             _run_parts)
    return section


def _run_parts(run: RunResults) -> list[str]:
    parts = []
    pairs = run.file("posterior_pairs.png")
    if pairs is not None:
        q_text = ("red: the guide's single code (a point mass has no ellipse)" if run.point_mass else
                  "red: the guide's q(z | x), its mean (×) and 1σ (solid) / 2σ (dashed) ellipses")
        parts.append(figure(pairs, f"{run.name}: MCMC clouds vs q(z | x)",
                            f"One panel per test image, in the two most active latent dimensions (latent units): "
                            f"dots are MCMC draws of p(z | x); {q_text}. Where the ellipse matches the cloud, the "
                            f"guide is right for that image."))
    parts += [para(_convergence(run.posterior)), _table(run.posterior), _gaps(run)]
    forest = run.file("posterior_forest.png")
    if forest is not None:
        parts.append(figure(forest, f"{run.name}: posterior intervals per dimension",
                            "For each image (panel) and latent dimension (row): the MCMC posterior's and the "
                            "guide's mean and credible interval (x axis, latent units)."))
    return parts

"""Part 2's renderings: the printed report and the files (netCDF, plots, text) of :mod:`bayesvae.posterior`."""

from __future__ import annotations

from pathlib import Path

from bayesvae.inference.files import atomic_write_text

from bayesvae.analysis.render import write_json

FILES = {"mcmc": "posterior_mcmc.nc", "guide": "posterior_guide.nc", "json": "posterior.json",
         "table": "posterior.txt", "trace": "posterior_trace.png", "pairs": "posterior_pairs.png",
         "forest": "posterior_forest.png"}

__all__ = ["FILES", "report_text", "write_files", "write_json"]


def report_text(result: dict, posterior_table: str, amortization) -> str:
    """The printed report: the per-image table, NUTS figures, the notes on each estimator, the gap table."""
    nuts, notes, gap = result["nuts"], result["notes"], result["amortization"]
    lines = [
        "true posterior p(z|x) (MCMC) vs approximate posterior q(z|x) (guide), per image:",
        "",
        posterior_table,
        "",
        f"NUTS: {sum(nuts['seconds']):.1f} s wall ({sum(nuts['cpu_seconds']):.1f} s CPU), "
        f"{sum(nuts['gradient_evaluations'])} gradient evaluations after warm-up, "
        f"step size {', '.join(f'{s:.3g}' for s in nuts['step_size'])}, "
        f"mean tree depth {', '.join(f'{d:.1f}' for d in nuts['mean_tree_depth'])}, "
        f"{sum(nuts['divergences'])} divergent transitions; {nuts['seconds_per_effective_sample'] * 1000:.1f} ms per "
        f"effective sample (min bulk ESS over dimensions, summed over images).",
        "ESS/s = that image's min bulk ESS / wall time of its NUTS run (all images were sampled at once).",
        "Δmean/sd = max over dimensions of |E_q z − E_p z| / sd_p; sd q/p = range over dimensions of sd_q / sd_p.",
        notes["kl"] + f" Here: {notes['kl_method']}.",
        notes["khat"],
        notes["mcmc"],
        "",
    ]
    if "skipped" in gap:
        lines.append(f"amortization gap: skipped ({gap['skipped']})")
    else:
        lines += [
            f"amortization gap (Cremer et al. 2018), nats per image, ± one standard error; q* = per-image "
            f"{gap['family']} fitted by {gap['steps']} Adam steps from the encoder's output:",
            "",
            amortization.format_gap_table(gap["rows"]),
            "",
            f"log p(x): importance sampling with q* as proposal, K = {gap['k']} (a stochastic lower bound); ELBOs: "
            f"mean of log w over the same K draws.",
            "approximation gap = log p(x) − ELBO[q*] = KL(q*‖p(z|x)): the family's limit; amortization gap = "
            + ("ELBO[q*] − ELBO[q]: the cost of one encoder for all images." if not gap.get("beta_split") else
               "ELBO[q*] − ELBO[q]: at β ≠ 1 the encoder's β target plus the cost of one encoder (split below)."),
        ]
        if gap.get("beta_split"):  # β ≠ 1: the encoder was trained for the tempered target, say which part is which
            lines += ["", amortization.format_beta_split(gap["beta_split"])]
        behind = [r["image"] for r in gap["rows"] if r["amortization_gap"] < -2 * r["amortization_gap_se"]]
        if behind:
            lines.append(f"warning: q* is worse than q by more than 2 standard errors for image(s) "
                         f"{', '.join(map(str, behind))}: the per-image optimization has not converged; "
                         f"raise --gap-steps (or lower --gap-lr).")
    return "\n".join(lines)


def write_files(out_dir: Path, text: str, mcmc_idata, guide_idata, draws, q, q_z, indices, labels) -> list[str]:
    """netCDF (ArviZ), plots and the text report into ``out_dir``; returns every path, the JSON's included."""
    from bayesvae.analysis import arviz_io, plots_posterior, posterior_check

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file for name, file in FILES.items()}
    arviz_io.save_netcdf(mcmc_idata, paths["mcmc"])
    arviz_io.save_netcdf(guide_idata, paths["guide"])
    dims = plots_posterior.most_active_dimensions(draws.z)
    written = [paths["mcmc"], paths["guide"]]
    written.append(plots_posterior.plot_trace(mcmc_idata, indices, dims, paths["trace"]))
    if len(dims) == 2:
        mean, cov = posterior_check.q_mean_covariance(q, q_z)
        written.append(plots_posterior.plot_pairs(mcmc_idata, mean, cov, indices, dims, paths["pairs"], labels))
    written.append(plots_posterior.plot_forest(mcmc_idata, guide_idata, indices, paths["forest"]))
    atomic_write_text(paths["table"], text + "\n")
    written.append(paths["table"])
    return [str(p) for p in written] + [str(paths["json"])]

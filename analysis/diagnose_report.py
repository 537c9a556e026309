"""``bayesvae diagnose``, part 1: every ELBO-anatomy quantity of a fitted pair in one dict, one table, four plots.

One table line per quantity, named by its Bayes role, in nats per image (summed over pixels or latent
dimensions, averaged over the N images):

    evidence            log p(x) by importance sampling (IWAE_K), the ELBO from the same draws, and the gap
                        log p(x) − ELBO = KL(q(z|x) ‖ p(z|x)): how far the guide is from the true posterior
    ELBO terms          E_q[log p(x|z)] (likelihood), E_q[log p(z)] (prior), H[q(z|x)] (entropy),
                        KL(q(z|x) ‖ p(z)) = −(prior term + entropy): how far each q(z|x) is from the prior
    latent dimensions   Σ_u KL_u, active units, posterior std and spread of posterior means (active/inactive)
    ELBO surgery        average KL = I_q(x; z) + KL(q(z) ‖ p(z)), I_q ≤ log N

The pieces live in :mod:`bayesvae.inference.evidence`, :mod:`.anatomy`, :mod:`.latent_stats`,
:mod:`.aggregate` and :mod:`.plots_anatomy`; this module only runs them and lays out the results.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from bayesvae.inference.enumerated_terms import discrete_site_of
from bayesvae.inference.terms import trace_terms
from bayesvae.models.errors import BadInput
from bayesvae.models.families import unregistered_note
from bayesvae.models.pair import Pair

from . import answers, plots_anatomy, quantities
from .findings.evidence import shown_log_px
from .render import text_table

UNITS = "nats per image (summed over pixels or latent dimensions, averaged over images)"
PLOTS = ("kl_per_dimension.png", "latent_means.png", "posterior_stds.png", "aggregate_posterior.png")


@dataclass
class Part1:
    """The JSON-ready ``results`` and the tensors the plots need."""

    results: dict
    means: torch.Tensor
    stds: torch.Tensor
    aggregate_samples: torch.Tensor
    prior: torch.distributions.Distribution
    labels: torch.Tensor | None = None
    evidence: object | None = None          # the per-image EvidenceEstimate (None for a point-mass guide)


def check_image_count(x: torch.Tensor) -> None:
    if x.shape[0] < 2:
        raise BadInput(f"diagnose needs at least 2 images, got {x.shape[0]}")


def _skipped(error: BadInput) -> dict:
    return {"skipped": str(error)}


def measure(pair: Pair, x: torch.Tensor, labels: torch.Tensor | None = None, k: int = 1000,
            anatomy_samples: int = quantities.ANATOMY_SAMPLES, progress: bool | None = None, seed: int = 0,
            beta: float | None = None, estimate=None) -> Part1:
    """Run every part-1 measurement on the images ``x`` (see module docstring); each quantity's draws start
    from ``seed`` (:mod:`.quantities`), so compare and the sweep summary print the same values. ``beta``:
    the KL weight the pair was trained with, for the answer sentence (None: not known). ``estimate``: the
    evidence already estimated on these images with this seed (sharded over ranks), else it is estimated here."""
    check_image_count(x)
    site = discrete_site_of(pair, x)
    if site is not None:  # these estimators would miss log p(c) − log q(c|x): never a silent wrong number
        raise BadInput(f"the pair has a discrete site {site!r}: measure it with "
                       f"bayesvae.analysis.discrete_report.measure_any (the class summed exactly)")
    with torch.no_grad():
        first = trace_terms(pair, x[:1], 1)
    prior = first.p_z
    notes = [unregistered_note(first.q, "guide"), unregistered_note(prior, "prior")]
    results: dict = {"units": UNITS, "n_images": x.shape[0], "k": k, "pixels": int(x[0].numel()),
                     "prior": answers.prior_scale(prior), "notes": [n for n in notes if n]}
    try:
        estimate = estimate if estimate is not None else quantities.evidence(pair, x, k, seed, progress)
        results["evidence"] = {**estimate.summary(),   # log_px, log_px_se, se_method, gap, khat, khat_max, ...
                               "seconds": estimate.seconds, "images_per_second": x.shape[0] / estimate.seconds}
    except BadInput as error:
        results["evidence"] = _skipped(error)
    results["anatomy"] = quantities.anatomy(pair, x, seed, anatomy_samples, progress)
    moments = quantities.moments(pair, x, seed)
    results["latent"] = quantities.latent(pair, x, seed, moments)
    samples = moments.means
    try:
        surgery = quantities.surgery(pair, x, seed, progress, return_samples=True)
        samples = surgery.pop("samples")
        results["surgery"] = surgery
    except BadInput as error:
        results["surgery"] = _skipped(error)
    results["table"] = table_rows(results)
    results["answer"] = answers.kl_answer(results, beta)
    return Part1(results, moments.means, moments.stds, samples, prior, labels, estimate)


def _row(quantity: str, value, se=None, how: str = "") -> dict:
    return {"quantity": quantity, "value": value, "se": se, "how": how}


def table_rows(results: dict) -> list[dict]:
    """One row per quantity: ``quantity`` (its Bayes role), ``value`` (nats/image or a count; None = not
    defined), ``se`` (Monte Carlo standard error or None), ``how`` (estimator, or why it is not defined)."""
    rows = []
    evidence, k = results["evidence"], results["k"]
    if "skipped" in evidence:
        for quantity in (f"evidence log p(x) (IS, K={k})", "gap log p(x) − ELBO = KL(q(z|x) ‖ p(z|x))"):
            rows.append(_row(quantity, None, None, f"not defined: {evidence['skipped']}"))
    else:
        rows += [
            _row(f"evidence log p(x) (IS, K={k})", evidence["log_px"], evidence["log_px_se"],
                 f"importance sampling, proposal q(z|x), {k} draws/image; se: {evidence['se_method']}"),
            _row("ELBO from the same K draws, mean_k log w_k", evidence["elbo"], evidence["elbo_se"],
                 "log w = log p(x,z) − log q(z|x), z ~ q(z|x)"),
            _row("gap log p(x) − ELBO = KL(q(z|x) ‖ p(z|x))", evidence["gap"], evidence["gap_se"],
                 "distance of the guide to the true posterior"),
        ]
    rows += _anatomy_rows(results["anatomy"])
    rows += _latent_rows(results["latent"], answers.prior_std_hint(results))
    rows += _surgery_rows(results["surgery"])
    return rows


def _anatomy_rows(anatomy: dict) -> list[dict]:
    s = anatomy["num_samples"]
    rows = [
        _row("likelihood term E_q[log p(x|z)]", anatomy["log_likelihood"]["value"], anatomy["log_likelihood"]["se"],
             f"Monte Carlo, {s} draws/image" if anatomy["entropy"]["value"] is not None else "at the code z = f(x)"),
        _row("prior term E_q[log p(z)]", anatomy["log_prior"]["value"], anatomy["log_prior"]["se"],
             f"Monte Carlo, {s} draws/image" if anatomy["entropy"]["value"] is not None else "at the code z = f(x)"),
    ]
    undefined = "not defined: point-mass guide (no density)"
    for key, quantity in (("entropy", f"entropy H[q(z|x)] ({anatomy['guide']} guide)"),
                          ("kl", "KL(q(z|x) ‖ p(z)) = −(prior term + entropy)"),
                          ("elbo", "ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))")):
        term = anatomy[key]
        rows.append(_row(quantity, term["value"], term["se"], term["method"] or undefined))
    if "log_joint_at_code" in anatomy:
        rows.append(_row("log p(x, z) at the code z = f(x) (what a Delta guide maximizes)",
                         anatomy["log_joint_at_code"]["value"], None, "exact at the code"))
    return rows


def _latent_rows(latent: dict, prior_hint: str) -> list[dict]:
    d = latent["latent_dim"]
    rows = [
        _row("Σ_u KL(q_u(z_u|x) ‖ p_u(z_u)) over latent dimensions", latent["kl_total"], None, latent["kl_method"]),
        _row(f"active units, Var_x(E_q[z_u|x]) > {latent['threshold']:g}", latent["active_units"], None,
             f"of {d} dimensions (Burda et al. 2015)"),
    ]
    for group in ("active", "inactive"):
        summary = latent["summary"][group]
        if summary is None:
            continue
        label = f"{summary['dims']} {group} dim{'s' if summary['dims'] != 1 else ''}"
        rows.append(_row(f"posterior std Std_q[z_u|x], mean over images and {label}", summary["mean_std"], None,
                         prior_hint))
        rows.append(_row(f"spread of posterior means Std_x(E_q[z_u|x]), {label}", summary["std_of_means"], None,
                         "0: q(z_u|x) does not depend on x"))
    return rows


def _surgery_rows(surgery: dict) -> list[dict]:
    quantities = ("average KL (1/N) Σ_n KL(q(z|x_n) ‖ p(z))", "mutual information I_q(x;z) = average KL − marginal KL",
                  "marginal KL(q(z) ‖ p(z)), aggregate posterior vs prior")
    if "skipped" in surgery:
        return [_row(q, None, None, f"not defined: {surgery['skipped']}") for q in quantities]
    return [
        _row(quantities[0], surgery["average_kl"], surgery["average_kl_se"], surgery["kl_method"]),
        _row(quantities[1], surgery["mutual_information"], surgery["mutual_information_se"],
             f"≤ log N = {surgery['log_n']:.2f}; direct estimate {surgery['mutual_information_direct']:.3f}"),
        _row(quantities[2], surgery["marginal_kl"], surgery["marginal_kl_se"],
             f"log q(z) exact over all {surgery['n_images']} encodings, {surgery['seconds']:.1f} s"),
    ]


def _number(value, se=None) -> tuple[str, str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a", ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), ""
    exact = se is None or se == 0 or (isinstance(se, float) and math.isnan(se))  # analytic values have se 0
    return f"{value:.3f}", ("" if exact else f"± {se:.3f}")


def format_table(results: dict, per_dimension: bool = True) -> str:
    """The printed table: one line per quantity, then (optionally) one line per latent dimension."""
    shown = shown_log_px(results.get("evidence"))  # with PSIS k̂ known: unreliable evidence loses its decimals
    cells = []
    for r in results["table"]:
        value, se = _number(r["value"], r["se"])
        if shown is not None and r["quantity"].startswith("evidence log p(x)") and "unreliable" in shown:
            value, se = shown, ""
        cells.append({"quantity": r["quantity"], "value": value, "se": se, "how": r["how"]})
    columns = (("quantity", "quantity (Bayes role)", "{}"), ("value", "nats/image", "{}"), ("se", "± s.e.", "{}"),
               ("how", "how", "{}"))
    lines = [text_table(cells, columns, left=("how",))]
    if per_dimension and "skipped" not in results["latent"]:
        lines += ["", per_dimension_table(results["latent"])]
    lines += ["", results["answer"]]
    return "\n".join(lines)


def per_dimension_table(latent: dict) -> str:
    """One line per latent dimension: KL_u, A_u, active, spread of E_q[z_u|x] and of Std_q[z_u|x] over images."""
    lines = [f"{'dim':>4}  {'KL_u':>7}  {'A_u':>9}  {'active':>6}  {'mean E[z_u]':>11}  {'std E[z_u]':>10}  "
             f"{'mean Std[z_u]':>13}  {'std Std[z_u]':>12}"]
    for r in latent["per_dimension"]:
        kl = "n/a" if r["kl"] is None else f"{r['kl']:.3f}"
        lines.append(f"{r['dim']:>4}  {kl:>7}  {r['activity']:>9.4f}  {'yes' if r['active'] else 'no':>6}  "
                     f"{r['mean_of_means']:>11.3f}  {r['std_of_means']:>10.3f}  {r['mean_std']:>13.3f}  "
                     f"{r['std_of_stds']:>12.3f}")
    return "\n".join(lines)


def write_plots(part: Part1, out_dir: Path) -> list[Path]:
    """The four PNGs of :mod:`.plots_anatomy` in ``out_dir`` (posterior stds skipped for a point-mass guide)."""
    latent = part.results["latent"]
    if "skipped" in latent:  # a discrete pair without q(c|x): no z diagnostics to draw
        return []
    order = latent["dims_by_activity"]
    written = [
        plots_anatomy.plot_kl_per_dimension(latent, out_dir / PLOTS[0]),
        plots_anatomy.plot_latent_means(part.means, part.labels, order, part.prior, out_dir / PLOTS[1]),
    ]
    if not latent["point_mass"]:
        written.append(plots_anatomy.plot_posterior_stds(part.stds, order, part.prior, out_dir / PLOTS[2]))
    written.append(plots_anatomy.plot_aggregate_posterior(part.aggregate_samples, part.prior, order,
                                                          out_dir / PLOTS[3]))
    return written

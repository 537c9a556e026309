"""``bayesvae diagnose`` for a pair with an enumerated discrete latent c (mixture VAE, M2, a user's script).

What changes against :mod:`.diagnose_report` (nats per image, averaged over the images):

    evidence        log p(x) with c summed exactly and z importance-sampled per class
                    (:mod:`bayesvae.inference.evidence_discrete`); the ELBO is the enumerated one
    ELBO anatomy    E log p(x|z,c) − Σ_c q(c|x) KL(q(z|x,c) ‖ p(z|c)) − KL(q(c|x) ‖ p(c)): the class's KL
                    is a term of its own (:mod:`bayesvae.inference.enumerated_terms`)
    class posterior per image q(c|x) and the importance-weighted p̂(c|x): entropy, top class, and against the
                    labels (analysis only) accuracy (M2) or Hungarian cluster accuracy and purity (mixture),
                    each next to its chance level (:mod:`.clusters`)
    z diagnostics   latent dimensions, ELBO surgery, the ELBO's z-terms: measured on z given the most probable
                    class c* = argmax q(c|x) (:func:`~bayesvae.inference.enumerated_terms.most_probable_class_pair`);
                    read q(z|x) there as q(z|x,c*) and p(z) as p(z|c*). With model-side enumeration (no q(c|x))
                    they are skipped, with the reason.
"""

from __future__ import annotations

import math

import torch

import pyro
import pyro.distributions as dist
from pyro import poutine

from bayesvae.inference.enumerated_terms import class_terms, discrete_site_of, most_probable_class_pair
from bayesvae.inference.evidence_discrete import estimate_log_evidence_discrete

from bayesvae.models.discrete_sites import LABEL
from bayesvae.models.families import base_distribution
from bayesvae.models.pair import Pair
from bayesvae.models.priors import Mixture
from bayesvae.models.sites import LATENT

from .aggregate import elbo_surgery
from .anatomy import elbo_anatomy
from .clusters import class_agreement
from .diagnose_report import UNITS, Part1, _anatomy_rows, _latent_rows, _row, _surgery_rows, measure
from .latent_stats import latent_statistics, posterior_moments
from .quantities import ANATOMY_SAMPLES


@torch.no_grad()
def enumerated_anatomy(pair: Pair, x: torch.Tensor, site: str, num_samples: int = 64, batch_size: int = 100) -> dict:
    """The enumerated ELBO's terms, each ``{"value", "se"}`` (se over images of the per-image Monte Carlo means)."""
    parts: dict[str, list[torch.Tensor]] = {}
    for xb in x.split(batch_size):
        for name, value in class_terms(pair, xb, site, num_samples).anatomy().items():
            parts.setdefault(name, []).append(value)
    out = {}
    for name, values in parts.items():
        v = torch.cat(values).double()
        out[name] = {"value": float(v.mean()), "se": None}
    out["num_samples"] = num_samples
    return out


def measure_any(pair: Pair, x: torch.Tensor, labels: torch.Tensor | None = None, k: int = 1000,
                anatomy_samples: int = ANATOMY_SAMPLES, progress: bool | None = None, seed: int = 0,
                beta: float | None = None) -> Part1:
    """Part 1 of ``diagnose`` for any pair: :func:`measure_discrete` when it has a discrete site, else
    :func:`.diagnose_report.measure` (``beta``: the training KL weight, for its answer sentence); the
    draws start from ``seed`` either way."""
    site = discrete_site_of(pair, x) if x.shape[0] >= 2 else None
    if site is None:
        return measure(pair, x, labels, k=k, anatomy_samples=anatomy_samples, progress=progress, seed=seed,
                       beta=beta)
    pyro.set_rng_seed(seed)
    return measure_discrete(pair, x, site, labels, k=k, anatomy_samples=anatomy_samples, progress=progress)


def measure_discrete(pair: Pair, x: torch.Tensor, site: str, labels: torch.Tensor | None = None, k: int = 1000,
                     anatomy_samples: int = 64, progress: bool | None = None) -> Part1:
    """Every part-1 measurement of a pair with the discrete ``site`` (see module docstring)."""
    estimate = estimate_log_evidence_discrete(pair, x, k=k)
    results: dict = {"units": UNITS, "n_images": x.shape[0], "k": k, "discrete_site": site, "notes": []}
    results["evidence"] = {
        "log_px": estimate.mean_log_px, "log_px_se": estimate.se_mean, "se_method": "delta method, per class",
        "elbo": estimate.mean_elbo, "elbo_se": estimate.elbo_se_mean, "gap": estimate.mean_gap,
        "gap_se": math.hypot(estimate.se_mean, estimate.elbo_se_mean), "k": k, "seconds": estimate.seconds,
        "images_per_second": x.shape[0] / estimate.seconds, "method": f"{site!r} summed exactly, z sampled per class",
    }
    results["enumerated_anatomy"] = enumerated_anatomy(pair, x, site, anatomy_samples)
    classifier = site == LABEL
    results["classes"] = {"importance_weighted": class_agreement(estimate.posterior, labels, classifier)}
    if estimate.q_class is not None:
        results["classes"]["guide"] = class_agreement(estimate.q_class, labels, classifier)
    try:
        z_pair = most_probable_class_pair(pair, site, x)
    except ValueError as error:
        reason = {"skipped": f"{error}; the z diagnostics need q(c|x) (guide-side enumeration)"}
        results.update(anatomy=reason, latent={**reason, "latent_dim": None}, surgery=reason, given_class=None)
        results["table"] = table_rows(results)
        results["answer"] = class_answer(results)
        return Part1(results, None, None, None, None, labels)
    results["given_class"] = "most probable class c* = argmax q(c|x)"
    results["anatomy"] = elbo_anatomy(z_pair, x, num_samples=anatomy_samples, progress=progress)
    moments = posterior_moments(z_pair, x)
    results["latent"] = latent_statistics(z_pair, x, moments=moments)
    surgery = elbo_surgery(z_pair, x, progress=progress, return_samples=True)
    samples = surgery.pop("samples")
    results["surgery"] = surgery
    results["table"] = table_rows(results)
    results["answer"] = class_answer(results)
    return Part1(results, moments.means, moments.stds, samples, marginal_code_prior(pair, x, site), labels)


@torch.no_grad()
def marginal_code_prior(pair: Pair, x: torch.Tensor, site: str) -> torch.distributions.Distribution:
    """p(z) = Σ_c p(c) p(z | c) for the plots' prior contours, built from the model run at each class (one
    image); when p(z|c) is not a diagonal Normal it falls back to p(z | c) of the first value of c."""
    parts = [(terms_at(pair, x[:1], site, value)) for value in class_terms(pair, x[:1], site).values]
    fns = [fn for fn, _ in parts]
    if not all(isinstance(base_distribution(fn), torch.distributions.Normal) for fn in fns):
        return fns[0]
    locs = torch.stack([base_distribution(fn).loc.reshape(-1) for fn in fns])
    scales = torch.stack([base_distribution(fn).scale.reshape(-1) for fn in fns])
    log_weights = torch.stack([log_pc for _, log_pc in parts])
    if bool((locs == locs[0]).all() and (scales == scales[0]).all()):   # M2: p(z) does not depend on y
        return fns[0]
    return Mixture(dist.Categorical(logits=log_weights), dist.Normal(locs, scales).to_event(1))


def terms_at(pair: Pair, x: torch.Tensor, site: str, value: torch.Tensor):
    """(p(z | c = value), log p(c = value)) from the model run with the class conditioned."""
    with pair.active():
        trace = poutine.trace(poutine.condition(pair.model, {site: value.expand(x.shape[0])})).get_trace(x)
    trace.compute_log_prob()
    return trace.nodes[LATENT]["fn"], trace.nodes[site]["log_prob"].reshape(-1)[0]


def table_rows(results: dict) -> list[dict]:
    """The printed rows: evidence and enumerated anatomy, the class posterior, then z given c*."""
    ev, an, k, site = results["evidence"], results["enumerated_anatomy"], results["k"], results["discrete_site"]
    c = site
    guide_side = "guide" in results["classes"]
    proposal = f"q(z|x,{c})" if guide_side else "q(z|x)"
    elbo = f"Σ_{c} q({c}|x)[E log w_{c} − log q({c}|x)]" if guide_side else f"E_q(z|x)[log Σ_{c} w_{c}]"
    gap = f"KL(q({c},z|x) ‖ p({c},z|x))" if guide_side else "KL(q(z|x) ‖ p(z|x))"
    rows = [
        _row(f"evidence log p(x) (IS over z, {c} summed, K={k})", ev["log_px"], ev["log_px_se"],
             f"Σ_{c} of importance-sampled p(x,{c}), proposal {proposal}, {k} draws/class/image; se: delta method"),
        _row(f"enumerated ELBO, {elbo}", ev["elbo"], ev["elbo_se"],
             f"{c} summed exactly, z from the same draws"),
        _row(f"gap log p(x) − ELBO = {gap}", ev["gap"], ev["gap_se"],
             "distance of the guide to the true posterior"),
    ]
    if guide_side:
        rows += [
            _row(f"likelihood term Σ_{c} q({c}|x) E[log p(x|z,{c})]", an["log_likelihood"]["value"], None,
                 f"Monte Carlo, {an['num_samples']} z-draws per class/image"),
            _row(f"code KL Σ_{c} q({c}|x) KL(q(z|x,{c}) ‖ p(z|{c}))", an["kl_code"]["value"], None, "Monte Carlo"),
            _row(f"class KL(q({c}|x) ‖ p({c}))", an["kl_class"]["value"], None, f"exact sum over the values of {c}"),
        ]
    else:  # model-side: q(z|x) only, c summed in the model
        rows += [
            _row(f"likelihood term E_q(z|x)[Σ_{c} p({c}|z,x) log p(x|z,{c})]", an["log_likelihood"]["value"], None,
                 f"Monte Carlo, {an['num_samples']} z-draws/image, p({c}|z,x) exact"),
            _row(f"KL(q(z|x) ‖ p(z)), p(z) = Σ_{c} p({c}) p(z|{c}) (with any p(x|z,{c}) dependence)",
                 an["kl_code"]["value"], None, "likelihood term − ELBO"),
            _row(f"class KL(q({c}|x) ‖ p({c}))", None, None,
                 f"not defined: the guide has no q({c}|x); {c} is summed out in the model"),
        ]
    for source, name in (("guide", f"q({c}|x)"), ("importance_weighted", f"p̂({c}|x)")):
        summary = results["classes"].get(source)
        if summary is None:
            continue
        rows.append(_row(f"entropy H[{name}], mean over images", summary["mean_entropy_nats"], None,
                         f"0: certain; log K = {summary['max_entropy_nats']:.3f}: uniform; "
                         f"{summary['classes_used']} of {summary['classes']} values are some image's top class"))
        for key, what in (("accuracy", "accuracy of the top class against the labels"),
                          ("cluster_accuracy", "cluster accuracy (Hungarian matching to the labels)"),
                          ("purity", "cluster purity (majority label per cluster)")):
            if key in summary:
                rows.append(_row(f"{what}, {name}", summary[key], None,
                                 f"chance (labels shuffled): {summary[key + '_chance']:.3f}; labels used only here"
                                 + (" and in training with --labels" if key == "accuracy" else "")))
    if results["given_class"] is None:
        reason = results["latent"]["skipped"]
        return rows + [_row("latent dimensions, ELBO surgery, z-terms", None, None, f"not defined: {reason}")]
    rows.append(_row(f"— rows below: z given c* = argmax q({c}|x); read q(z|x) as q(z|x,c*), p(z) as p(z|c*)",
                     None, None, "what a diagnostic for one continuous latent can measure"))
    return rows + _anatomy_rows(results["anatomy"]) + _latent_rows(results["latent"], "compare with the std of p(z|c*)") + \
        _surgery_rows(results["surgery"])


def class_answer(results: dict) -> str:
    """Where the classes live, from the measured numbers."""
    c = results["discrete_site"]
    summary = results["classes"].get("guide") or results["classes"]["importance_weighted"]
    text = (f"The class {c!r} is a latent variable here: per image its posterior has entropy "
            f"{summary['mean_entropy_nats']:.2f} nats (uniform: {summary['max_entropy_nats']:.2f})")
    kl_class = results["enumerated_anatomy"]["kl_class"]["value"]
    text += (f"; KL(q({c}|x) ‖ p({c})) = {kl_class:.2f} nats of the ELBO is spent on telling the class."
             if "guide" in results["classes"] else " (p̂(c|x), importance-weighted: the guide has no q(c|x)).")
    for key, what in (("accuracy", "its top class is the label for"),
                      ("cluster_accuracy", "matched one-to-one to the labels, its clusters are right for")):
        if key in summary:
            text += (f" {what.capitalize()} {100 * summary[key]:.1f} % of the images "
                     f"(chance {100 * summary[key + '_chance']:.1f} %).")
    return text

"""The "answer" sentences under the diagnose table, generated from the numbers (never a fixed template).

"Does the KL force every q(z|x) to N(0, 1)?" has a different true answer for a collapsed, an exploded,
a point-mass and a healthy run, so :func:`kl_answer` builds it clause by clause from measured values:
active units and the posterior std of active/inactive dimensions against **the prior's own std**
(:func:`prior_scale`, read from the prior's distribution, e.g. 1.41 for a unit Laplace), the KL, and
ELBO surgery (average KL = I_q + marginal KL, I_q ≤ log N). Each clause states only what its numbers show.
"""

from __future__ import annotations

import math

import torch

from bayesvae.models.families import family_name

from .findings import thresholds as T


def prior_scale(prior: torch.distributions.Distribution, draws: int = 4096) -> dict:
    """The prior's standard deviation per latent dimension: ``{"std", "std_per_dim", "method", "family"}``.

    Analytic (``prior.stddev``, e.g. √2·b for a Laplace(0, b), mixtures by the law of total variance) where
    torch has it, else the spread of ``draws`` samples."""
    family = family_name(prior)
    try:
        std, method = prior.stddev, "analytic (the prior's stddev)"
    except NotImplementedError:
        std, method = None, ""
    if std is None or not bool(torch.isfinite(std).all()):
        with torch.no_grad():
            std, method = prior.sample((draws,)).double().std(0), f"monte carlo ({draws} draws of p(z))"
    per_dim = std.detach().double().reshape(-1, std.shape[-1]).mean(0).cpu().tolist() if std.dim() else [float(std)]
    return {"std": sum(per_dim) / len(per_dim), "std_per_dim": per_dim, "method": method, "family": family}


def _prior_std(results: dict, dims: list[int]) -> float | None:
    prior = results.get("prior") or {}
    per_dim = prior.get("std_per_dim")
    if not per_dim:
        return prior.get("std")
    values = [per_dim[u] for u in dims if u < len(per_dim)] or per_dim
    return sum(values) / len(values)


def _width(std: float, prior_std: float | None) -> str:
    """How a posterior std compares with the prior's, in words that hold for the numbers."""
    if prior_std is None or prior_std <= 0:
        return f"posterior std {std:.2f}"
    ratio = std / prior_std
    if T.PRIOR_STD_MATCH <= ratio <= 1 / T.PRIOR_STD_MATCH:
        word = "about the prior's"
    elif ratio < 0.5:
        word = "much narrower than the prior's"
    elif ratio < 1:
        word = "narrower than the prior's"
    else:
        word = "wider than the prior's"
    return f"posterior std {std:.2f}, {word} {prior_std:.2f}"


def _group_dims(latent: dict, active: bool) -> list[int]:
    return [r["dim"] for r in latent.get("per_dimension", []) if r["active"] == active]


def _pull(beta: float | None) -> str:
    """What pulled each q(z|x) toward p(z) in this run's objective."""
    if beta == 0:
        return "This run was trained with β = 0, so the KL was not in its objective and nothing pulled q(z|x) toward p(z)"
    weight = "" if beta is None or beta == 1 else f" (weighted by β = {beta:g})"
    return f"Per image the KL{weight} pulls q(z|x) toward p(z)"


def _latent_clauses(results: dict, kl: float | None, beta: float | None = None) -> list[str]:
    latent = results["latent"]
    active, inactive = latent["summary"]["active"], latent["summary"]["inactive"]
    d = latent["latent_dim"]
    if active is None:
        prior_std = _prior_std(results, _group_dims(latent, False))
        spread = inactive["std_of_means"]
        head = (f"No latent dimension is active: E_q[z|x] barely varies over images (spread {spread:.3f}), so "
                f"q(z|x) does not depend on x")
        if kl is not None and kl < T.KL_COLLAPSED_NATS:
            pulled = ("though with β = 0 nothing in the objective pulled it there" if beta == 0 else
                      "here the KL did pull every q(z|x) to p(z)")
            return [head + f", and each q(z|x) is the prior ({_width(inactive['mean_std'], prior_std)}; KL "
                    f"{kl:.2f} nats): {pulled}, and the model does not use z (posterior collapse)"]
        kl_text = f"KL {kl:.2f} nats" if kl is not None else "KL not measured"
        return [head + f"; yet each q(z|x) is not the prior ({_width(inactive['mean_std'], prior_std)}; {kl_text}): "
                f"{'nothing' if beta == 0 else 'the KL did not'} pull it to p(z), and it buys no information about x"]
    parts = []
    a_std = _prior_std(results, _group_dims(latent, True))
    parts.append(f"in the {active['dims']} active dimension{'s' if active['dims'] != 1 else ''} of {d} each q(z|x) "
                 f"is not the prior ({_width(active['mean_std'], a_std)}; means spread {active['std_of_means']:.2f} "
                 f"over images)")
    if inactive is not None:
        i_std = _prior_std(results, _group_dims(latent, False))
        ratio = inactive["mean_std"] / i_std if i_std else math.nan
        at_prior = T.PRIOR_STD_MATCH <= ratio <= 1 / T.PRIOR_STD_MATCH
        kl_i = inactive.get("kl")
        kl_text = "" if kl_i is None else f"; KL {kl_i:.2f} nats"
        if at_prior:
            parts.append(f"the {inactive['dims']} inactive one{'s' if inactive['dims'] != 1 else ''} sit at the prior "
                         f"for every image ({_width(inactive['mean_std'], i_std)}{kl_text})")
        else:
            parts.append(f"the {inactive['dims']} inactive one{'s' if inactive['dims'] != 1 else ''} do not depend on x "
                         f"but are not at the prior either ({_width(inactive['mean_std'], i_std)}{kl_text}, paid for "
                         f"no information)")
    return [_pull(beta) + ", but " + "; ".join(parts)]


def _surgery_clause(surgery: dict) -> str | None:
    if not surgery or "skipped" in surgery:
        return None
    average, mi, marginal, log_n = (surgery["average_kl"], surgery["mutual_information"], surgery["marginal_kl"],
                                    surgery["log_n"])
    n = surgery.get("n_images")
    if average < T.KL_COLLAPSED_NATS:
        return f"The average KL is {average:.2f} nats: there is (almost) nothing to split into information and marginal KL."
    if mi >= T.MI_AT_BOUND_FRACTION * log_n:
        return (f"I_q = {mi:.2f} nats has reached its bound log N = {log_n:.2f}: the encoder tells every one of the "
                f"{n} images apart, so how the average KL {average:.2f} nats splits into information and marginal KL "
                f"(here {marginal:.2f}) is limited by N, not by the model; on more images I_q could be larger.")
    share = max(mi, 0.0) / average
    if share >= 0.5:
        return (f"Of the average KL {average:.2f} nats, I_q = {mi:.2f} ({share:.0%}) is information about x and the "
                f"marginal KL {marginal:.2f} nats is the aggregate q(z)'s mismatch with p(z): what must match the "
                f"prior is q(z), not each q(z|x).")
    return (f"Of the average KL {average:.2f} nats only I_q = {mi:.2f} ({share:.0%}) is information about x; most of it "
            f"is the marginal KL {marginal:.2f} nats: the aggregate q(z) does not match p(z).")


def kl_answer(results: dict, beta: float | None = None) -> str:
    """One paragraph answering "does the KL force every q(z|x) to the prior?", true for the measured numbers
    and for the KL weight ``beta`` the run was trained with (None: not known, no clause depends on it)."""
    latent = results["latent"]
    if latent["point_mass"]:
        prior = ("with β = 0 the prior is not in the objective at all" if beta == 0 else
                 "the prior only enters through log p(z) at the code" if beta is None else
                 f"the prior enters only as β·log p(z) at the code (β = {beta:g}), which pulls the codes toward "
                 f"its densest region without comparing any distribution with it")
        return ("The guide is a point mass: there is no KL term, since q(z|x) has no density to compare with p(z); "
                f"{prior}. The codes' spread over images is in the per-dimension table.")
    kl = (results.get("anatomy") or {}).get("kl", {}).get("value")
    kl = kl if kl is not None else latent.get("kl_total")
    pixels = results.get("pixels")
    if kl is not None and pixels and kl > T.KL_NATS_PER_PIXEL_MAX * pixels:
        return (f"The KL to the prior is {kl:,.0f} nats per image, more than an 8-bit image of {pixels} pixels holds "
                f"({T.KL_NATS_PER_PIXEL_MAX * pixels:.0f} nats): the encoder has diverged, and no statement about what "
                f"the KL does to q(z|x) would describe the data.")
    sentences = _latent_clauses(results, kl, beta)
    surgery = _surgery_clause(results.get("surgery"))
    text = sentences[0] + "."
    return text + (" " + surgery if surgery else "")


def prior_std_hint(results: dict) -> str:
    """The table's hint next to the posterior stds: the prior's own std, read from the prior."""
    prior = results.get("prior")
    if not prior:
        return "compare with the prior's std"
    return f"compare with the prior's std ({prior['std']:.2f}, {prior['family']})"

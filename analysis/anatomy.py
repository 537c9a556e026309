"""The ELBO term by term: which Bayes term each number is, read from Pyro traces of the pair.

Per image x, with z ~ q(z | x) (S draws), averaged over the N images, in nats per image:

    likelihood term   E_q[log p(x | z)]     summed over pixels              Monte Carlo
    prior term        E_q[log p(z)]         summed over latent dimensions   Monte Carlo
    entropy           H[q(z | x)] = −E_q[log q(z | x)]                      analytic (``q.entropy()``) or MC
    KL to the prior   KL(q(z | x) ‖ p(z)) = −(prior term + entropy)         analytic (torch's ``kl_divergence``) or MC

    ELBO = E_q[log p(x|z)] + E_q[log p(z)] + H[q] = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))

The KL term compares each image's q(z | x) with the prior p(z) — not with the true posterior p(z | x);
that distance is the gap log p(x) − ELBO (:mod:`bayesvae.inference.evidence`).

A point-mass (Delta) guide has no density: H[q] = −∞ and KL(q ‖ p(z)) = +∞ mathematically; Pyro scores
log q = 0, which would print finite, wrong numbers. They are reported as not defined (``None``) with a note;
the likelihood and prior terms at the code z = f(x) (the autoencoder's MAP objective) are still reported.
Standard errors are Monte Carlo only (the images are the population), sqrt(Σ_n Var_s[f] / S) / N.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from bayesvae.inference.terms import Terms, trace_terms
from bayesvae.models.errors import BadInput
from bayesvae.models.families import family_name
from bayesvae.models.pair import Pair

ANALYTIC, MONTE_CARLO = "analytic", "monte carlo"
POINT_MASS_NOTE = ("the guide is a point mass (Delta): q(z|x) has no density, so the entropy H[q] (−∞), "
                   "KL(q‖p(z)) (+∞) and the ELBO are not defined; log q = 0 in Pyro is not an entropy")


def analytic_entropy(q: torch.distributions.Distribution) -> torch.Tensor | None:
    """H[q(z | x)] in closed form, broadcast like ``q``'s batch, or None when the family has no ``.entropy()``."""
    try:
        return q.entropy()
    except NotImplementedError:
        return None


class TermSums:
    """Running sums over image batches of per-image means Σ_n mean_s f and Monte Carlo variances Σ_n Var_s[f] / S."""

    def __init__(self):
        self.total: dict[str, float] = {}
        self.mc_var: dict[str, float] = {}

    def add(self, name: str, values: torch.Tensor, exact: bool = False) -> None:
        """``values`` (S, B) per draw and image (MC, se from the spread over draws) or (B,) exact per image."""
        if exact:
            mean, var = values, torch.zeros_like(values)
        else:
            s = values.shape[0]
            mean = values.mean(0)
            var = values.var(0) / s if s > 1 else torch.full_like(mean, math.nan)
        self.total[name] = self.total.get(name, 0.0) + float(mean.double().sum())
        self.mc_var[name] = self.mc_var.get(name, 0.0) + float(var.double().sum())

    def mean_and_se(self, name: str, n: int) -> tuple[float, float]:
        return self.total[name] / n, math.sqrt(self.mc_var[name]) / n


def _batch_terms(terms: Terms, sums: TermSums, methods: dict) -> None:
    sums.add("log_likelihood", terms.log_likelihood)
    sums.add("log_prior", terms.log_prior)
    if terms.point_mass:
        return
    entropy = analytic_entropy(terms.q)
    if entropy is None:
        sums.add("entropy", -terms.log_q)
        methods["entropy"] = MONTE_CARLO
    else:
        sums.add("entropy", entropy.expand(terms.log_q.shape)[0], exact=True)
        methods.setdefault("entropy", ANALYTIC)
    kl = terms.analytic_kl()
    if kl is None:
        kl_draws = terms.log_q - terms.log_prior
        sums.add("kl", kl_draws)
        sums.add("elbo", terms.log_likelihood - kl_draws)
        methods["kl"] = MONTE_CARLO
    else:
        sums.add("kl", kl, exact=True)
        sums.add("elbo", terms.log_likelihood - kl)  # only the likelihood term is Monte Carlo
        methods.setdefault("kl", ANALYTIC)


@torch.no_grad()
def elbo_anatomy(pair: Pair, x: torch.Tensor, num_samples: int = 64, batch_size: int = 100,
                 progress: bool | None = False) -> dict:
    """The ELBO's terms averaged over the images ``x`` (nats per image), with Monte Carlo standard errors.

    Returns ``{name: {"value", "se", "method"}}`` for ``log_likelihood`` (E_q[log p(x|z)]),
    ``log_prior`` (E_q[log p(z)]), ``entropy`` (H[q(z|x)]), ``kl`` (KL(q(z|x) ‖ p(z))) and ``elbo``,
    plus ``guide``/``prior`` (distribution families), ``num_samples``, ``n_images`` and ``notes``.
    Undefined terms (point-mass guide) have ``value`` None. ``method`` is "analytic" or "monte carlo".
    ``progress``: a tqdm bar over image batches (None: only on a terminal).
    """
    if num_samples < 1:
        raise BadInput(f"num_samples must be ≥ 1, got {num_samples}")
    if x.shape[0] == 0:
        raise BadInput("no images to measure the ELBO on")
    sums, methods = TermSums(), {"log_likelihood": MONTE_CARLO, "log_prior": MONTE_CARLO}
    point_mass, families = False, ("?", "?")
    for xb in tqdm(x.split(batch_size), desc=f"ELBO terms, {num_samples} draws/image", unit="batch", leave=False,
                   disable=None if progress is None else not progress):
        terms = trace_terms(pair, xb, num_samples)
        point_mass = terms.point_mass
        families = (family_name(terms.q), family_name(terms.p_z))
        _batch_terms(terms, sums, methods)
    n = x.shape[0]
    out: dict = {"n_images": n, "num_samples": num_samples, "guide": families[0], "prior": families[1], "notes": []}
    for name in ("log_likelihood", "log_prior", "entropy", "kl", "elbo"):
        if name in sums.total:
            value, se = sums.mean_and_se(name, n)
            out[name] = {"value": value, "se": se, "method": methods.get(name)}
        else:
            out[name] = {"value": None, "se": None, "method": None}
    if point_mass:
        out["notes"].append(POINT_MASS_NOTE)
        out["log_joint_at_code"] = {
            "value": out["log_likelihood"]["value"] + out["log_prior"]["value"], "se": 0.0, "method": "exact",
        }
    else:
        out["elbo"]["method"] = f"likelihood term MC, KL {methods['kl']}"
    return out

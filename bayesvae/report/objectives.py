"""What each run optimized and what its pictures show, in sentences generated from its configuration and
numbers (true for stochastic guides, point masses, β = 0 and warm-up alike)."""

from __future__ import annotations

from .inputs import RunResults, finite
from .numbers import num


def objective_text(run: RunResults) -> str:
    """The objective the run was trained with, in words."""
    training = run.config["training"]
    beta, kind = run.beta, training.get("elbo", "analytic")
    warmup = (f" (β rose from {training.get('beta0', 0):g} to {beta:g} over the first {training['warmup_epochs']} "
              f"epochs)" if training.get("warmup_epochs") else "")
    if run.point_mass:
        if beta == 0:
            return ("maximizes log p(x | z) at the code z = f(x) alone: a plain deterministic autoencoder. There is no "
                    "KL term (a point mass has no density), and with β = 0 the prior is not in the objective at all.")
        return (f"maximizes log p(x | z) + {'' if beta == 1 else f'{beta:g}·'}log p(z) at the code z = f(x): there is "
                f"no KL term (a point mass has no density, so no entropy and no KL(q ‖ p)); with the prior kept this is "
                f"{'amortized MAP estimation' if beta == 1 else 'a β-weighted MAP estimate'} of each image's code"
                f"{warmup}.")
    if kind == "iwae":
        bound = f"the importance-weighted bound IWAE_K with K = {training.get('particles')} draws of q per image"
    else:
        closed = run.guide == "normal" and run.config["model"].get("prior") == "normal" and not run.config.get("code")
        bound = "the ELBO, with " + ("the KL in closed form" if kind == "analytic" and closed else
                                     "the KL in closed form where Pyro has one, else by Monte Carlo"
                                     if kind == "analytic" else "a Monte Carlo KL")
    if beta == 0:
        return (f"maximizes E_q[log p(x | z)] only: the KL term of {bound} is weighted by β = 0, so the prior does not "
                f"enter the objective (a noisy autoencoder){warmup}.")
    if beta == 1:
        return f"maximizes {bound}: E_q[log p(x | z)] − KL(q(z | x) ‖ p(z)), a lower bound on log p(x){warmup}."
    return (f"maximizes E_q[log p(x | z)] − {beta:g}·KL(q(z | x) ‖ p(z)) ({bound}, the KL weighted by β = {beta:g}): it "
            f"charges {'more' if beta > 1 else 'less'} for information in the code than the bound on log p(x) does"
            f"{warmup}.")


def reconstruction_caption(run: RunResults) -> str:
    code = "z = f(x), the guide's single code" if run.point_mass else "one draw z ~ q(z | x)"
    return (f"Rows 1 and 3: 16 test images; rows 2 and 4, under each: its reconstruction E[x | z] with {code}. "
            f"Pixel grey level 0–1.")


def prior_samples_caption(run: RunResults, spread: float | None) -> str:
    """Why prior samples look as they do, from the guide, β and the codes' spread across images."""
    head = "64 images E[x | z] for z drawn from the prior p(z), 8 per row. "
    spread_text = f" (its codes spread {num(spread)} across images per dimension)" if spread is not None else ""
    if run.point_mass:
        return head + (f"This autoencoder's decoder was trained only at the codes f(x_n), single points with no "
                       f"spread around them{spread_text}; nothing asked it to turn the region between and around "
                       f"those points into digits, and a draw from p(z) lands there almost surely (a set of points has "
                       f"no volume), so nothing guarantees these look like digits, however good the reconstructions.")
    if run.beta == 0:
        return head + (f"With β = 0 nothing kept the codes near p(z){spread_text}, so prior draws may land where the "
                       f"decoder was never trained.")
    marginal = finite(((run.anatomy or {}).get("surgery") or {}).get("marginal_kl"))
    measured = f" (KL(q(z) ‖ p(z)) = {num(marginal)} nats here)" if marginal is not None else ""
    return head + (f"The decoder was trained on draws z ~ q(z | x) that cover a region around each code, and the KL "
                   f"(weight β = {run.beta:g}) pulls the aggregate of those regions toward p(z){measured}: the closer "
                   f"they match, the more prior draws land where the decoder was trained.")


def mean_spread(row: dict | None, run: RunResults) -> float | None:
    if row and finite(row.get("mean_spread")) is not None:
        return finite(row["mean_spread"])
    active = ((run.anatomy or {}).get("latent", {}).get("summary", {}) or {}).get("active") or {}
    return finite(active.get("std_of_means"))

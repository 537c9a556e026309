"""Section 3, what the KL compares: each q(z|x) with the prior p(z) (never images with each other), per image
and in aggregate (average KL = I_q(x; z) + KL(q(z) ‖ p(z))), per latent dimension against the prior's own
std, and the answer to "does the KL force every q(z|x) to N(0, 1)?", generated from this run's numbers."""

from __future__ import annotations

from .html import Section, each_run, figure, para, table
from .inputs import ResultSet, RunResults, finite
from .numbers import num, percent

AT_PRIOR_KL = 0.01   # nats per dimension: below it q_u(z_u|x) and p_u(z_u) are practically the same distribution


def prior_std(run: RunResults) -> list[float] | None:
    """The prior's std per latent dimension, read from the trained prior (built-in definitions only: a user
    script is never run by the report); None when it cannot be read."""
    if run.config.get("code"):
        return None
    try:
        import torch

        from bayesvae.analysis.samples import prior_trace
        from bayesvae.run import load_run

        trained = load_run(run.path, device="cpu")
        like = torch.zeros(1, *run.config["image_shape"])
        prior = prior_trace(trained.pair, like, 1).nodes["z"]["fn"]
        return [float(s) for s in prior.stddev.detach().reshape(-1, prior.event_shape[-1])[0]]
    except Exception:  # noqa: BLE001 - a prior without a std (or an unreadable run) simply shows none
        return None


def kl_answer(run: RunResults, stds: list[float] | None) -> str:
    """Does the KL force every q(z|x) to the prior? Answered from the per-dimension KL, the posterior stds
    and the spread of the means — true for collapsed, healthy, point-mass and exploded runs alike."""
    a = run.anatomy
    latent, surgery = a.get("latent", {}), a.get("surgery", {})
    d, active = latent.get("latent_dim"), latent.get("active_units", 0)
    if run.point_mass:
        weight = ("the prior is not in the objective at all (β = 0)" if run.beta == 0 else
                  f"the prior enters only as β·log p(z) at the code (β = {run.beta:g}), which pulls the codes "
                  f"toward the prior's densest region without comparing any distribution with it")
        spread = num(((latent.get("summary") or {}).get("active") or {}).get("std_of_means"))
        codes = (f"The codes spread {spread} across images in the {active} active dimension(s)." if active else
                 "No dimension is active: the codes hardly change from image to image.")
        return (f"There is no KL term to force anything: this guide is a point mass, so q(z | x) has no density to "
                f"compare with p(z); {weight}. {codes}")
    per_dim = latent.get("per_dimension", [])
    kl = finite(a.get("anatomy", {}).get("kl", {}).get("value"))
    at_prior = [row for row in per_dim if finite(row.get("kl")) is not None and row["kl"] < AT_PRIOR_KL]
    if active == 0 and kl is not None and d and kl < AT_PRIOR_KL * d:
        return (f"Here, in effect, yes: no dimension is active and the average KL is {num(kl, 3)} nats per image "
                f"(under {AT_PRIOR_KL} per dimension), so every q(z | x) is practically the prior itself and the code "
                f"carries no information about the image — posterior collapse. The decoder gets practically the same "
                f"code distribution for every image.")
    if active == 0:
        return (f"No dimension is active (the posterior means hardly move from image to image), yet the average KL is "
                f"{num(kl)} nats per image: every q(z | x) differs from the prior in nearly the same way (its centre "
                f"or width), which tells nothing about the image. So q(z | x) is not N(0, 1), and not informative "
                f"either.")
    act = (latent.get("summary") or {}).get("active") or {}
    prior_part = ""
    if stds:
        ratio = finite(act.get("mean_std"))
        mean_prior = sum(stds[row["dim"]] for row in per_dim if row.get("active")) / max(active, 1)
        if ratio is not None and mean_prior:
            ratio /= mean_prior
            prior_part = (f" — {ratio:.2f} times the prior's own std ({mean_prior:.2f}), so each posterior is "
                          f"{'narrower than' if ratio < 0.9 else 'wider than' if ratio > 1.1 else 'about as wide as'}"
                          f" the prior")
    if run.beta == 0:
        charge = (f"No. This run was trained with β = 0, so the KL (measured here: {num(kl)} nats per image) was not in "
                  f"its objective: nothing pulled q(z | x) toward p(z)")
    else:
        weighted = f"{num(kl)} nats" if run.beta == 1 else f"β × {num(kl)} nats (β = {run.beta:g})"
        charge = (f"No. The KL term compares each q(z | x) with p(z) one image at a time and charges {weighted} per image "
                  f"for the difference, but the likelihood pays for information about x")
    answer = (f"{charge}: in the {active} active dimension(s) of {d} the posterior std averages "
              f"{num(act.get('mean_std'))}{prior_part}, and the posterior means move across images by "
              f"{num(act.get('std_of_means'))}.")
    if at_prior:
        answer += (f" In {len(at_prior)} dimension(s) the KL is below {AT_PRIOR_KL} nats: there q(z | x) is practically "
                   f"the prior, whatever the image.")
    marginal = finite(surgery.get("marginal_kl"))
    if marginal is not None:
        answer += (f" What the prior constrains overall is the aggregate posterior q(z) = (1/N) Σ_n q(z | x_n): its "
                   f"KL to p(z) is {num(marginal)} nats.")
    return answer


def _surgery(run: RunResults) -> str:
    s = run.anatomy.get("surgery", {})
    if "skipped" in s:
        return para(f"ELBO surgery: {s['skipped']}.")
    avg, mi, marginal = finite(s.get("average_kl")), finite(s.get("mutual_information")), finite(s.get("marginal_kl"))
    log_n = finite(s.get("log_n"))
    share = f", {percent(mi, avg)} of the KL" if mi is not None and mi > 0 and percent(mi, avg) else \
        (", i.e. about zero: Monte Carlo noise puts the estimate below 0" if mi is not None and mi <= 0 else "")
    text = (f"ELBO surgery (Hoffman & Johnson 2016): the average KL {num(avg)} nats = I_q(x; z) {num(mi)} "
            f"(information the code carries about which image it came from{share}) + KL(q(z) ‖ p(z)) {num(marginal)} "
            f"(how far the aggregate of all posteriors is from the prior).")
    if mi is not None and log_n is not None and mi >= 0.95 * log_n:
        text += (f" I_q is at its ceiling log N = {num(log_n)} for N = {s.get('n_images')} images: the codes tell "
                 f"every image apart, so this estimate is limited by N, not by the encoder.")
    return para(text)


def _dimension_table(run: RunResults, stds: list[float] | None) -> str:
    latent = run.anatomy.get("latent", {})
    rows = []
    order = {dim: n for n, dim in enumerate(latent.get("dims_by_activity", []))}
    for row in sorted(latent.get("per_dimension", []), key=lambda r: order.get(r["dim"], r["dim"])):
        rows.append([f"z{row['dim']}", num(row.get("kl"), 3), f"{row.get('activity', 0):.3g}",
                     "yes" if row.get("active") else "no", num(row.get("mean_std")), num(row.get("std_of_means")),
                     num(stds[row["dim"]]) if stds else "not read"])
    return table(["dimension", "KL, nats/image", "activity Var_x E_q[z_u|x]", "active (> 0.01)",
                  "posterior std (mean over images)", "spread of posterior means", "prior std"], rows)


def _figures(run: RunResults) -> list[str]:
    out = []
    specs = (("kl_per_dimension.png", "KL and activity per latent dimension",
              "Each bar is one latent dimension u: its KL(q_u(z_u|x) ‖ p_u(z_u)) in nats per image and its activity "
              "(how much its posterior mean varies across images, log scale, dashed line: the 0.01 threshold). A "
              "dimension below the threshold carries almost no information about the image."),
             ("posterior_stds.png", "posterior std per dimension against the prior's",
              "For each dimension (panel), the histogram over test images of the std of q(z_u | x) (x axis, latent "
              "units; y axis, number of images); the red line is the prior's own std. Narrower than the prior means "
              "the image pinned that coordinate down."),
             ("aggregate_posterior.png", "aggregate posterior q(z) against the prior p(z)",
              "Histogram of one draw from q(z | x_n) per test image (x axis, latent units; y axis, density) beside the "
              "prior's density, in the most active dimensions. This mixture of all posteriors is what the prior is "
              "matched against, not any single q(z | x)."))
    for name, title, caption in specs:
        if run.point_mass:
            caption = caption.replace("one draw from q(z | x_n) per test image", "the code f(x_n) of each test image") \
                .replace("This mixture of all posteriors is what the prior is matched against, not any single q(z | x).",
                         "Nothing in this autoencoder's objective matches this distribution of codes to the prior.")
        path = run.file(name)
        if path is not None:
            out.append(figure(path, f"{run.name}: {title}", caption))
    return out


def kl_section(results: ResultSet) -> Section:
    section = Section("kl", "What the KL compares")
    section.add(para("The KL term of the ELBO, KL(q(z | x) ‖ p(z)), compares each image's posterior q(z | x) with "
                     "the prior p(z). It does not compare images with each other, and p(z) is not a picture: it is a "
                     "distribution over codes."))
    each_run(section, results.runs, lambda run: run.anatomy,
             "per-dimension KL or ELBO surgery (no diagnostics/anatomy.json)", _run_parts)
    return section


def _run_parts(run: RunResults) -> list[str]:
    stds = prior_std(run)
    parts = [para("Does the KL force every q(z|x) to N(0, 1)? " + kl_answer(run, stds)), _surgery(run),
             _dimension_table(run, stds), *_figures(run)]
    if stds is None:
        parts.append(para("Prior std: not read (the report never runs a user's script)."))
    return parts

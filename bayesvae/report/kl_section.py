"""Section 3, what the KL compares: each q(z|x) with the prior p(z) (never images with each other), per image
and in aggregate (average KL = I_q(x; z) + KL(q(z) ‖ p(z))), per latent dimension against the prior's own
std, and the answer to "does the KL force every q(z|x) to N(0, 1)?", generated from this run's numbers."""

from __future__ import annotations

from .html import Section, each_run, figure, para, table
from .inputs import ResultSet, RunResults, finite
from .numbers import num, percent


def prior_std(run: RunResults) -> list[float] | None:
    """The prior's std per latent dimension as diagnose read it from the prior (``anatomy.json``'s
    ``prior.std_per_dim``; a user's prior too, since diagnose ran it); None when not recorded."""
    return (run.anatomy.get("prior") or {}).get("std_per_dim") or None


def kl_answer(run: RunResults) -> str:
    """Does the KL force every q(z|x) to the prior? The answer diagnose wrote from this run's numbers and β
    (:func:`bayesvae.analysis.answers.kl_answer`, tested on collapsed, exploded, point-mass and β = 0 runs):
    one generator, so the report and ``diagnose`` cannot say different things."""
    site = run.anatomy.get("discrete_site")
    if site:  # diagnose's answer there is about the class (class_answer), not this question
        return (f"With the discrete latent {site!r} the KL term has two parts: KL(q({site}|x) ‖ p({site})) for the class "
                f"and, per class, KL(q(z|x,{site}) ‖ p(z|{site})) for z. The table below measures z given the most "
                f"probable class. {run.anatomy.get('answer') or ''}").strip()
    answer = run.anatomy.get("answer")
    return answer or "Not answered: this run's diagnostics hold no answer sentence (run bayesvae diagnose again)."


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
                     num(stds[row["dim"]]) if stds and row["dim"] < len(stds) else "not recorded"])
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
    parts = [para("Does the KL force every q(z|x) to N(0, 1)? " + kl_answer(run)), _surgery(run),
             _dimension_table(run, stds), *_figures(run)]
    if stds is None:
        parts.append(para("Prior std: not recorded in this run's diagnostics (run bayesvae diagnose again)."))
    return parts

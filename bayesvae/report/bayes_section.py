"""Section 2, Bayes' theorem term by term: p(z|x) = p(x|z) p(z) / p(x), each term named, the lines of
this run's code that define it, and its measured value (nats per image, from RUN/diagnostics/anatomy.json)."""

from __future__ import annotations

import json

from .html import Section, code, esc, missing, para, table
from .inputs import ResultSet, RunResults, finite
from .numbers import evidence_text, num
from .source import term_lines

INTRO = ("Bayes' theorem, p(z | x) = p(x | z) · p(z) / p(x), is what a VAE is built on. The hypothesis is the "
         "latent code z of an image (a short vector of numbers); the evidence is the observed image x. "
         "p(z) is the prior (which codes are plausible before seeing any image), p(x | z) the likelihood (how "
         "probable this image is if its code were z), p(x) = ∫ p(x | z) p(z) dz the marginal probability of the "
         "image under the model, and p(z | x) the posterior (what the image says about its code). p(x) has no "
         "closed form, so the guide q(z | x) stands in for p(z | x) and training maximizes the ELBO, a lower "
         "bound on log p(x). All values are in nats per image (summed over pixels or latent dimensions, averaged "
         "over images); higher log-probabilities are better.")


def _value(anatomy: dict, key: str) -> float | None:
    return finite((anatomy.get("anatomy", {}).get(key) or {}).get("value"))


def _measured(run: RunResults) -> dict[str, str]:
    a = run.anatomy
    if a is None:
        return {}
    evidence = a.get("evidence", {})
    at_code = run.point_mass
    where = "at the code z = f(x)" if at_code else "E_q"
    out = {"prior": f"{where} log p(z) = {num(_value(a, 'log_prior'))}",
           "likelihood": f"{where} log p(x | z) = {num(_value(a, 'log_likelihood'))}"}
    text, _ = evidence_text(run)
    out["evidence"] = (f"log p(x) {text if text.startswith('≈') else '= ' + text}" if "skipped" not in evidence else
                       f"not defined with this guide: {evidence['skipped']}")
    if at_code:
        out["posterior"] = (f"q(z | x) is a point mass: no density, so no ELBO and no gap to p(z | x); "
                            f"log p(x, z) at the code = {num(_value(a, 'log_joint_at_code'))}")
    else:
        gap, gap_se = finite(evidence.get("gap")), finite(evidence.get("gap_se"))
        out["posterior"] = (f"ELBO = {num(_value(a, 'elbo'))}; gap log p(x) − ELBO = {num(gap, 3)}"
                            + (f" ± {num(gap_se, 3)}" if gap_se is not None else "") + " = KL(q(z|x) ‖ p(z|x))")
    return out


def _summary(run: RunResults) -> str:
    """The run's evidence, bound and gap in one or two sentences, generated from its numbers."""
    a = run.anatomy
    evidence = a.get("evidence", {})
    n, split = a.get("n_images", "the"), a.get("split", "test")
    beta = "" if run.beta == 1 else (f" The run was trained with β = {run.beta:g}; these are the β = 1 quantities, "
                                     f"the ones that bound log p(x).")
    if run.point_mass:
        return (f"On the {n} {split} images this autoencoder's guide puts all of q(z | x) on one code, so Bayes' "
                f"posterior is replaced by a single point: log p(x), the ELBO and their gap cannot be measured "
                f"with it" + (" (the MCMC section shows the true p(z | x) instead)." if run.posterior else ".") + beta)
    text, reliable = evidence_text(run)
    gap = finite(evidence.get("gap"))
    sentence = (f"On the {n} {split} images, log p(x) {text if text.startswith('≈') else '= ' + text} and the ELBO = {num(finite(evidence.get('elbo')))}: "
                f"the ELBO lies {num(gap, 3)} nats below, and that gap is KL(q(z | x) ‖ p(z | x)) averaged over "
                f"images — how far this guide is from the true posterior.")
    if not reliable and text.startswith("≈"):
        sentence += " The importance weights are too heavy-tailed to trust log p(x) or the gap beyond a rough value."
    elif not reliable:
        sentence += (" For some images the importance weights are heavy-tailed (PSIS k̂ > 0.7): their log p(x) is "
                     "uncertain beyond its standard error.")
    return sentence + beta


TERMS = (("prior", "p(z)", "prior: the codes plausible before any image is seen"),
         ("likelihood", "p(x | z)", "likelihood: how probable the image is given its code"),
         ("evidence", "p(x)", "evidence: the image's marginal probability ∫ p(x|z) p(z) dz"),
         ("posterior", "p(z | x) ≈ q(z | x)", "posterior: what the image says about its code, approximated by the guide"))


def _code_table(run: RunResults) -> str:
    lines = term_lines(run)
    body = []
    for key, symbol, words in TERMS:
        listing = code([line for s in lines[key] for line in s.listing()]) if key in lines else \
            "<p>no line of code: p(x) is the integral over z of the two lines above (estimated by importance " \
            "sampling in <code>bayesvae diagnose</code>)</p>"
        body.append(f'<tr><td class="text"><b>{esc(symbol)}</b><br>{esc(words)}</td><td class="text">{listing}</td></tr>')
    return ('<table class="terms"><thead><tr><th class="text" style="width:25%">term</th><th class="text">the lines '
            'of this run\'s code that define it</th></tr></thead><tbody>' + "".join(body) + "</tbody></table>")


def _definition_key(run: RunResults) -> str:
    return json.dumps([run.config["model"], run.config.get("code", {})], sort_keys=True)


def bayes_section(results: ResultSet) -> Section:
    section = Section("bayes", "Bayes' theorem, term by term")
    section.add(para(INTRO))
    groups: dict[str, list[RunResults]] = {}
    for run in results.runs:
        groups.setdefault(_definition_key(run), []).append(run)
    for runs in groups.values():
        if len(results.runs) > 1:
            section.add(f"<h3>The code of {esc(', '.join(r.name for r in runs))}</h3>")
        section.add(_code_table(runs[0]))
    measured = [run for run in results.runs if run.anatomy is not None]
    if measured:
        section.add("<h3>Measured</h3>", table(["run"] + [f"{symbol}" for _, symbol, _ in TERMS],
                                                [[run.name] + [_measured(run)[key] for key, _, _ in TERMS]
                                                 for run in measured], tuple(range(1, 5))))
        section.add(*(para(f"{run.name}: {_summary(run)}" if len(results.runs) > 1 else _summary(run))
                      for run in measured))
    pending = [run for run in results.runs if run.anatomy is None]
    if pending:
        section.add(missing(f"No measured values for {', '.join(r.name for r in pending)} (no diagnostics/anatomy.json)",
                            " && ".join(f"bayesvae diagnose {r.path}" for r in pending)))
    return section

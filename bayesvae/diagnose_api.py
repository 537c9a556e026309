"""``bayesvae.diagnose``: measure a trained run's Bayes terms and return them as data.

    import bayesvae
    result = bayesvae.diagnose("runs/my-vae", k=1000)          # or a Run from bayesvae.fit(...)
    result["evidence"]["log_px"], result["anatomy"]["kl"]["value"], result["surgery"]["mutual_information"]
    result["posterior"]["inference_data"]["mcmc"]               # NUTS draws of p(z|x), ArviZ InferenceData

Part 1 (ELBO anatomy, evidence, latent dimensions, ELBO surgery; :mod:`bayesvae.analysis.diagnose_report`)
always runs; part 2 (MCMC on p(z|x), ArviZ diagnostics, amortization gap; :mod:`bayesvae.posterior`) runs
too unless ``mcmc=False``, as on the command line (``--no-mcmc``). Files go to ``out`` (default RUN/diagnostics/):

    anatomy.json   every number below (nats per image), the table rows and the settings
    anatomy.txt    the printed table
    kl_per_dimension.png, latent_means.png, posterior_stds.png, aggregate_posterior.png
    posterior.*    part 2 (see bayesvae.posterior)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bayesvae.analysis.render import json_safe, write_json
from bayesvae.inference.evidence import check_k
from bayesvae.inference.files import atomic_write_text
from bayesvae.inference.interrupts import deferred_interrupts
from bayesvae.inference.options import SEED_LIMIT
from bayesvae.inference.scale_options import ScaleOptions
from bayesvae.models.checks import check_declared, declare, declared
from bayesvae.models.errors import BadInput

from .options import check_keywords
from .posterior import PosteriorOptions, check_options as check_posterior_options, run_posterior
from .diagnose_shards import scale_options, shard_evidence
from .results import DiagnoseResult
from .run import CHECKPOINT, Run, load_run

DIAGNOSTICS = "diagnostics"
JSON_NAME, TABLE_NAME = "anatomy.json", "anatomy.txt"
SPLITS = ("test", "train")

__all__ = ["MeasureOptions", "diagnose", "diagnose_part1", "json_safe", "load_trained"]


@dataclass(frozen=True)
class MeasureOptions:
    """Which images are measured and how (shared by ``diagnose`` and ``compare``)."""

    split: str = declare("test", "images to measure", kind="choice", choices=SPLITS)
    k: int = declare(1000, "importance samples per image for log p(x)", kind="whole", metavar="K")
    max_images: int | None = declare(None, "use only the first N images of the split", kind="whole", low=2,
                                     optional=True, metavar="N")
    seed: int = declare(0, "seed of every Monte Carlo draw", kind="whole", low=0, below=SEED_LIMIT)

    def __post_init__(self):
        check_declared(self)
        check_k(self.k)


def check_options(split: str, k: int, max_images: int | None, seed: int = 0) -> None:
    """Refuse bad settings before anything is loaded or computed."""
    MeasureOptions(split, k, max_images, seed)


def load_trained(path: str | Path, trust_code: bool = False, device: str | None = None) -> Run:
    """The run in ``path``; refused unless it holds a checkpoint (there is nothing to diagnose before training)."""
    run = load_run(path, trust_code=trust_code, device=device)
    if run.state is None:
        raise BadInput(f"{path} has no {CHECKPOINT}: it was never trained (or training stopped before the first "
                       f"save); train it first: bayesvae train --resume {path}")
    return run


def diagnostics_dir(run: Run, out: str | Path | None) -> Path | None:
    if out is not None:
        return Path(out)
    return None if run.path is None else Path(run.path) / DIAGNOSTICS


def diagnose(run: Run | str | Path, split: str = "test", k: int = 1000, max_images: int | None = None,
             mcmc: bool = True, out: str | Path | None = None, *, trust_code: bool = False,
             device: str | None = None, seed: int = 0, progress: bool | None = None,
             log: Callable[[str], None] | None = None, posterior: PosteriorOptions | None = None,
             devices: int = 1, strategy: str = "ddp", num_nodes: int = 1, **posterior_options) -> DiagnoseResult | None:
    """Diagnose ``run`` (a :class:`~bayesvae.run.Run` or its folder) on ``split`` and return the results as data.

    Part 1 measures, per image and averaged over the first ``max_images`` images of the split (all by
    default), in nats: ``evidence`` (importance-sampled log p(x) with K = ``k`` draws, the ELBO and the gap
    KL(q ‖ p(z|x))), ``anatomy`` (the ELBO's terms), ``latent`` (per-dimension KL, active units, posterior
    moments), ``surgery`` (average KL = I_q + marginal KL); ``table`` holds the printed rows as dicts and
    ``answer`` a sentence on what the KL does. Quantities a Delta guide does not define are None (with
    the reason). ``seed`` seeds Pyro's RNG; ``log`` receives the printed table (default: print).

    Part 2 runs unless ``mcmc=False`` (as the command line unless ``--no-mcmc``); its settings are
    ``posterior`` (a :class:`~bayesvae.posterior.PosteriorOptions`) or the same fields as keywords
    (``n_images=3, chains=2, ...``); its result is under ``"posterior"``.
    Files are written to ``out`` (default RUN/diagnostics/; nothing is written for an in-memory run).
    ``devices`` (``strategy``, ``num_nodes``) > 1 shard the evidence estimate over data-parallel processes
    with the same numbers (:mod:`bayesvae.diagnose_shards`; a script is re-run per extra process, as for
    ``fit``); rank 0 returns the result, the other ranks None.
    The result is a dict (the JSON's keys) with tables as data: ``.table``, ``.per_dimension``,
    ``.per_image`` (xarray), ``.mcmc`` (ArviZ InferenceData); see :mod:`bayesvae.results`.
    """
    log = log or print
    check_options(split, k, max_images, seed)
    check_keywords(posterior_options, declared(PosteriorOptions), "posterior option")
    if (posterior_options or posterior is not None) and not mcmc:
        raise BadInput(f"posterior options ({', '.join(sorted(posterior_options)) or 'posterior='}) need mcmc=True")
    if posterior is not None and posterior_options:
        raise BadInput("give the posterior options either as posterior=PosteriorOptions(...) or as keywords, not both")
    options = (posterior or PosteriorOptions(**posterior_options)) if mcmc else None
    scale = scale_options(devices, strategy, num_nodes, device if not isinstance(run, Run) else run.device)
    if not isinstance(run, Run):
        run = load_trained(run, trust_code=trust_code, device=device)
    elif run.state is None:
        raise BadInput("this run was never trained: there is nothing to diagnose")
    return diagnose_run(run, split, k, max_images, out, seed, options, progress, log, scale)


def diagnose_run(run: Run, split: str, k: int, max_images: int | None, out: str | Path | None, seed: int,
                 posterior: PosteriorOptions | None, progress: bool | None, log: Callable[[str], None],
                 scale: ScaleOptions | None = None) -> dict | None:
    """Both parts on a loaded run (the command line and :func:`diagnose` call this); ``posterior`` None: part 1
    only; ``scale`` (parallel): the evidence sharded over its ranks, None returned on every rank but 0."""
    if posterior is not None:
        check_posterior_options(run, posterior, split)  # refuse bad part-2 options before part 1 writes anything
    results = diagnose_part1(run, split, k, max_images, out, seed, progress, log, scale)   # a DiagnoseResult
    if results is None:   # a rank > 0 of a sharded evidence: its part is done
        return None
    if posterior is not None and posterior_skip_reason(results):
        results["posterior"] = {"skipped": posterior_skip_reason(results)}
        log(f"\npart 2 skipped: {results['posterior']['skipped']}")
    elif posterior is not None:
        results["posterior"] = run_posterior(run, posterior, diagnostics_dir(run, out), log, split=split, k=k,
                                             seed=seed)
        part2_findings(run, results, results["posterior"], out, log)
    return results


def part2_findings(run: Run, results: dict, posterior: dict, out: str | Path | None,
                   log: Callable[[str], None]) -> None:
    """Findings again with part 2's measurements: rewrite findings.json, print the ones part 1 did not show."""
    from bayesvae.analysis.findings import diagnose_findings, render_findings
    from bayesvae.analysis.findings.wiring import config_dict, write_findings

    shown = {f["id"] for f in results.get("findings", [])}
    findings = diagnose_findings(results, posterior, config_dict(run.config), run.history_rows)
    results["findings"] = [f.to_dict() for f in findings]
    folder = diagnostics_dir(run, out)
    if folder is not None:
        write_findings(folder, findings)
    new = [f for f in findings if f.id not in shown]
    if new:
        log("\n" + render_findings(new, "findings from part 2"))


def posterior_skip_reason(results: dict) -> str | None:
    """Why part 2 (NUTS on p(z|x), PSIS, amortization gap) cannot run for these part-1 results, or None."""
    site = results.get("discrete_site")
    if site is None:
        return None
    instead = ("part 1 shows z given the most probable class instead" if results.get("given_class")
               else "the class is summed in the model, so part 1 has no z-only diagnostics either")
    return (f"NUTS samples continuous latents only and part 2 compares it with q(z|x); this pair's discrete site "
            f"{site!r} is summed out exactly ({instead})")


def guide_name(spec) -> str:
    """The guide as the header names it: the --guide option, or M2's own guide."""
    return "of --model m2 (q(y|x) q(z|x,y))" if spec.model == "m2" else spec.guide


def diagnose_part1(run: Run, split: str, k: int, max_images: int | None, out: str | Path | None, seed: int,
                   progress: bool | None, log: Callable[[str], None], scale: ScaleOptions | None = None) -> dict | None:
    """Measure (see :func:`diagnose`), write anatomy.json/anatomy.txt/PNGs, log the table; returns the results
    (None on a rank > 0 when ``scale`` shards the evidence, :mod:`.diagnose_shards`)."""
    from bayesvae.analysis.diagnose_report import format_table, write_plots  # matplotlib: load on use
    from bayesvae.analysis.diagnose_report import measure as measure_continuous
    from bayesvae.analysis.discrete_report import measure_any as measure
    from bayesvae.analysis.findings import diagnose_findings, render_findings
    from bayesvae.analysis.findings.wiring import config_dict, write_findings

    x, labels = run.images(split, max_images)
    shared = None
    if scale is not None and scale.parallel:
        goes_on, shared = shard_evidence(run, x, k, seed, scale, progress)
        if not goes_on:
            return None
    beta = run.config.training.beta
    part = (measure_continuous(run.pair, x, labels, k=k, progress=progress, seed=seed, beta=beta, estimate=shared)
            if shared is not None else measure(run.pair, x, labels, k=k, progress=progress, seed=seed, beta=beta))
    results = part.results
    results.update({"split": split, "seed": seed, "max_images": max_images,
                    "trained_epochs": run.state.epoch if run.state is not None else None,
                    "guide": guide_name(run.config.model), "latent_dim": results["latent"]["latent_dim"]})
    findings = diagnose_findings(results, None, config_dict(run.config), run.history_rows)
    results["findings"] = [f.to_dict() for f in findings]
    table = (render_findings(findings) + "\n\n" + format_table(results)  # findings before the tables
             + "".join(f"\nnote: {note}" for note in results["notes"]))
    header = (f"diagnose {run.path or '(in-memory run)'}: {results['n_images']} {split} images, "
              f"guide {results['guide']}; all values in {results['units']}")
    folder = diagnostics_dir(run, out)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        with deferred_interrupts():   # Ctrl-C waits for the whole set: never new plots beside an old table
            written = write_plots(part, folder)
            atomic_write_text(folder / TABLE_NAME, header + "\n\n" + table + "\n")
            write_json(folder / JSON_NAME, results)
            findings_file = write_findings(folder, findings)
        results["files"] = [str(p) for p in (*written, folder / TABLE_NAME, folder / JSON_NAME, findings_file)]
    log(header + "\n\n" + table)
    if folder is not None:
        log(f"\nwrote {folder}/ ({JSON_NAME}, {TABLE_NAME}, findings.json, {len(results['files']) - 3} plots)")
    estimate = part.evidence
    arrays = {"means": part.means, "stds": part.stds, **({"log_px": estimate.log_px, "elbo": estimate.elbo,
                                                          "gap": estimate.gap} if estimate is not None else {})}
    return DiagnoseResult(results, arrays)

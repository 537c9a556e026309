"""``bayesvae.diagnose``: measure a trained run's Bayes terms and return them as data.

    import bayesvae
    result = bayesvae.diagnose("runs/my-vae", k=1000)          # or a Run from bayesvae.fit(...)
    result["evidence"]["log_px"], result["anatomy"]["kl"]["value"], result["surgery"]["mutual_information"]

Part 1 (ELBO anatomy, evidence, latent dimensions, ELBO surgery; :mod:`bayesvae.analysis.diagnose_report`)
always runs; part 2 (MCMC on p(z|x), ArviZ diagnostics, amortization gap) runs with ``mcmc=True`` when
``bayesvae.commands.posterior_options`` is installed. Files go to ``out`` (default RUN/diagnostics/):

    anatomy.json   every number below (nats per image), the table rows and the settings
    anatomy.txt    the printed table
    kl_per_dimension.png, latent_means.png, posterior_stds.png, aggregate_posterior.png
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
from pathlib import Path
from typing import Callable

import pyro

from bayesvae.inference.evidence import check_k
from bayesvae.inference.files import atomic_write_text
from bayesvae.models.errors import BadInput

from .checks import check_seed
from .run import CHECKPOINT, Run, load_run

DIAGNOSTICS = "diagnostics"
JSON_NAME, TABLE_NAME = "anatomy.json", "anatomy.txt"
SPLITS = ("test", "train")


def posterior_module():
    """``bayesvae.commands.posterior_options`` (part 2: MCMC, ArviZ, amortization gap) or None when not installed."""
    try:
        return importlib.import_module("bayesvae.commands.posterior_options")
    except ModuleNotFoundError as error:
        if error.name == "bayesvae.commands.posterior_options":
            return None
        raise


def check_options(split: str, k: int, max_images: int | None, seed: int = 0) -> None:
    """Refuse bad settings before anything is loaded or computed."""
    check_seed(seed)
    if split not in SPLITS:
        raise BadInput(f"unknown split {split!r}: choose {' or '.join(SPLITS)}")
    check_k(k)
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 2):
        raise BadInput(f"--max-images must be a whole number ≥ 2, got {max_images!r}")


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


def json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def diagnose(run: Run | str | Path, split: str = "test", k: int = 1000, max_images: int | None = None,
             mcmc: bool = False, out: str | Path | None = None, *, trust_code: bool = False,
             device: str | None = None, seed: int = 0, progress: bool | None = None,
             log: Callable[[str], None] | None = None, **posterior_options) -> dict:
    """Diagnose ``run`` (a :class:`~bayesvae.run.Run` or its folder) on ``split`` and return the results as data.

    Part 1 measures, per image and averaged over the first ``max_images`` images of the split (all by
    default), in nats: ``evidence`` (importance-sampled log p(x) with K = ``k`` draws, the ELBO and the gap
    KL(q ‖ p(z|x))), ``anatomy`` (the ELBO's terms), ``latent`` (per-dimension KL, active units, posterior
    moments), ``surgery`` (average KL = I_q + marginal KL); ``table`` holds the printed rows as dicts and
    ``answer`` a sentence on what the KL does. Quantities a Delta guide does not define are None (with
    the reason). ``seed`` seeds Pyro's RNG; ``log`` receives the printed table (default: print).

    With ``mcmc=True`` part 2 runs too (``posterior_options`` are its settings, the command line's
    --images, --chains, ... with dashes as underscores) and its result is under ``"posterior"``.
    Files are written to ``out`` (default RUN/diagnostics/; nothing is written for an in-memory run).
    """
    log = log or print
    check_options(split, k, max_images, seed)
    module = posterior_module() if mcmc else None
    if posterior_options and not mcmc:
        raise BadInput(f"posterior options ({', '.join(sorted(posterior_options))}) need mcmc=True")
    if mcmc and module is None:
        raise BadInput("mcmc=True needs part 2 (bayesvae.commands.posterior_options), which is not installed")
    if not isinstance(run, Run):
        run = load_trained(run, trust_code=trust_code, device=device)
    elif run.state is None:
        raise BadInput("this run was never trained: there is nothing to diagnose")
    posterior_args = _posterior_args(module, posterior_options, split=split, k=k, seed=seed) if mcmc else None
    if posterior_args is not None and hasattr(module, "check_arguments"):
        module.check_arguments(run, posterior_args)
    results = diagnose_part1(run, split, k, max_images, out, seed, progress, log)
    if posterior_args is not None:
        results["posterior"] = module.run_posterior(run, posterior_args, diagnostics_dir(run, out), log)
    return results


def diagnose_part1(run: Run, split: str, k: int, max_images: int | None, out: str | Path | None, seed: int,
                   progress: bool | None, log: Callable[[str], None]) -> dict:
    """Measure (see :func:`diagnose`), write anatomy.json/anatomy.txt/PNGs, log the table; returns the results."""
    from bayesvae.analysis.diagnose_report import format_table, measure, write_plots  # matplotlib: load on use

    x, labels = run.images(split, max_images)
    pyro.set_rng_seed(seed)
    part = measure(run.pair, x, labels, k=k, progress=progress)
    results = part.results
    results.update({"split": split, "seed": seed, "max_images": max_images,
                    "trained_epochs": run.state.epoch if run.state is not None else None,
                    "guide": run.config.model.guide, "latent_dim": results["latent"]["latent_dim"]})
    table = format_table(results)
    header = (f"diagnose {run.path or '(in-memory run)'}: {results['n_images']} {split} images, "
              f"guide {run.config.model.guide}; all values in {results['units']}")
    folder = diagnostics_dir(run, out)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        written = write_plots(part, folder)
        atomic_write_text(folder / TABLE_NAME, header + "\n\n" + table + "\n")
        atomic_write_text(folder / JSON_NAME, json.dumps(json_safe(results), indent=1, ensure_ascii=False) + "\n")
        results["files"] = [str(p) for p in (*written, folder / TABLE_NAME, folder / JSON_NAME)]
    log(header + "\n\n" + table)
    if folder is not None:
        log(f"\nwrote {folder}/ ({JSON_NAME}, {TABLE_NAME}, {len(results['files']) - 2} plots)")
    return results


def _posterior_args(module, options: dict, **shared) -> argparse.Namespace:
    """Part 2's settings: its own defaults (from its ``add_arguments``) overridden by ``options``, plus the
    settings both parts share (``split``, ``k``, ``seed``), as the command line's namespace would hold them."""
    parser = argparse.ArgumentParser(add_help=False)
    module.add_arguments(parser)
    args = parser.parse_args([])
    unknown = sorted(set(options) - set(vars(args)))
    if unknown:
        raise BadInput(f"unknown posterior option(s) {', '.join(unknown)}; known: {', '.join(sorted(vars(args)))}")
    for name, value in options.items():
        setattr(args, name, value)
    args.no_mcmc = False
    for name, value in shared.items():
        setattr(args, name, value)
    return args

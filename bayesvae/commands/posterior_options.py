"""``bayesvae diagnose``, part 2: the true posterior p(z | x) by NUTS beside the guide's q(z | x).

For a few images of the split (``--images 0,5,17`` or the first ``--n-images N``):

1. NUTS on p(z | x) ∝ p(z) p(x | z) from the run's own model (decoder frozen), ``--chains`` chains
   per image, all images and chains in one vectorized state (:mod:`bayesvae.inference.mcmc`);
2. draws of q(z | x) in the same shape; both saved as ArviZ InferenceData (netCDF);
3. per image: R-hat, bulk/tail ESS, divergences, ESS per second, moments of p vs q, KL between q and a
   Gaussian fit of p, PSIS k̂ of the guide's importance weights (:mod:`bayesvae.analysis.posterior_check`);
4. the amortization gap: a per-image q* of the guide's family, log p(x), ELBO[q*], ELBO[q]
   (:mod:`bayesvae.analysis.amortization`).

Files in the diagnostics folder: posterior_mcmc.nc, posterior_guide.nc (open with ``arviz.from_netcdf``),
posterior.json, posterior.txt, posterior_trace.png, posterior_pairs.png, posterior_forest.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import torch

import pyro

from bayesvae.models.errors import BadInput

from .train import int_list, number, whole

DEFAULT_IMAGES = 16
FILES = {"mcmc": "posterior_mcmc.nc", "guide": "posterior_guide.nc", "json": "posterior.json",
         "table": "posterior.txt", "trace": "posterior_trace.png", "pairs": "posterior_pairs.png",
         "forest": "posterior_forest.png"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Part-2 options of ``bayesvae diagnose`` (defaults: 16 images, 4 chains, 200 warm-up, 1200 draws each)."""
    from bayesvae.inference.mcmc import NUTSOptions

    d = NUTSOptions()
    group = parser.add_argument_group("part 2: true posterior p(z|x) by MCMC (NUTS) vs the guide q(z|x)")
    group.add_argument("--images", type=int_list, metavar="LIST", help="indices of the images in the split, e.g. 0,5,17")
    group.add_argument("--n-images", type=whole, metavar="N", help=f"use the first N images of the split "
                       f"(default: {DEFAULT_IMAGES})")
    group.add_argument("--chains", type=whole, metavar="R", default=d.chains, help=f"chains per image (default: {d.chains})")
    group.add_argument("--warmup", type=whole, metavar="N", default=d.warmup, help=f"NUTS warm-up iterations (default: {d.warmup})")
    group.add_argument("--draws", type=whole, metavar="N", default=d.draws, help=f"draws per chain after warm-up "
                       f"(default: {d.draws})")
    group.add_argument("--no-mcmc", action="store_true", help="skip part 2 (MCMC, PSIS, amortization gap)")
    group.add_argument("--mcmc-group-size", type=whole, metavar="N", help="images per NUTS state (default: all in one)")
    group.add_argument("--mcmc-target-accept", type=number, metavar="P", default=d.target_accept,
                       help=f"NUTS target acceptance probability (default: {d.target_accept})")
    group.add_argument("--mcmc-max-tree-depth", type=whole, metavar="D", default=d.max_tree_depth,
                       help=f"NUTS maximum tree depth (default: {d.max_tree_depth})")
    group.add_argument("--gap-steps", type=whole, metavar="N", default=300, help="Adam steps of the per-image q* "
                       "(amortization gap; 0 skips it; default: 300)")
    group.add_argument("--gap-particles", type=whole, metavar="S", default=16, help="z-samples per image and step for q* "
                       "(default: 16)")
    group.add_argument("--gap-lr", type=number, metavar="LR", default=0.02, help="initial Adam learning rate for q* "
                       "(default: 0.02, decays to a tenth)")


def _options(args: argparse.Namespace):
    from bayesvae.inference.mcmc import NUTSOptions

    return NUTSOptions(chains=args.chains, warmup=args.warmup, draws=args.draws, group_size=args.mcmc_group_size,
                       target_accept=args.mcmc_target_accept, max_tree_depth=args.mcmc_max_tree_depth,
                       progress=sys.stderr.isatty()).check()


def _image_indices(args: argparse.Namespace, available: int) -> list[int]:
    if args.images is not None and args.n_images is not None:
        raise BadInput("give either --images or --n-images, not both")
    if args.images is not None:
        indices = list(args.images)
        bad = [i for i in indices if not 0 <= i < available]
        if bad:
            raise BadInput(f"--images: index {bad[0]} is out of range: the split has {available} images "
                           f"(0-{available - 1})")
        if len(set(indices)) != len(indices):
            raise BadInput("--images lists an image twice")
        return indices
    n = DEFAULT_IMAGES if args.n_images is None else args.n_images
    if n < 1:
        raise BadInput(f"--n-images must be a whole number ≥ 1, got {n}")
    if n > available:
        raise BadInput(f"--n-images {n}: the split has only {available} images")
    return list(range(n))


def check_arguments(run, args: argparse.Namespace) -> list[int]:
    """Refuse bad part-2 options (before part 1 writes anything); returns the image indices."""
    _options(args)
    for name, low in (("gap_steps", 0), ("gap_particles", 1)):
        if getattr(args, name) < low:
            raise BadInput(f"--{name.replace('_', '-')} must be a whole number ≥ {low}, got {getattr(args, name)}")
    if not args.gap_lr > 0:
        raise BadInput(f"--gap-lr must be a number > 0, got {args.gap_lr}")
    x, _ = run.images(getattr(args, "split", "test"))
    return _image_indices(args, x.shape[0])


def run_posterior(run, args: argparse.Namespace, out_dir: Path | None, log: Callable[[str], None]) -> dict:
    """Part 2 on ``run`` (see module docstring): writes the files to ``out_dir`` (None: write nothing), logs the
    tables, returns them as data."""
    if getattr(args, "no_mcmc", False):
        return {"skipped": "--no-mcmc"}
    from bayesvae.inference.mcmc import torch_threads

    with torch_threads(_options(args).threads):  # small tensors: see bayesvae.inference.mcmc on threads
        return _run_posterior(run, args, out_dir, log)


def _run_posterior(run, args: argparse.Namespace, out_dir: Path | None, log: Callable[[str], None]) -> dict:
    from bayesvae.analysis import amortization, arviz_io, posterior_check
    from bayesvae.inference.local_posterior import amortized_posterior
    from bayesvae.inference.mcmc import check_finite_draws, sample_posterior

    indices = check_arguments(run, args)
    options = _options(args)
    split, k, seed = getattr(args, "split", "test"), getattr(args, "k", 1000), getattr(args, "seed", 0)
    x_all, y_all = run.images(split)
    x = x_all[indices]
    labels = None if y_all is None else [int(y_all[i]) for i in indices]
    q = amortized_posterior(run.pair, x)
    if len(q.event_shape) != 1:
        raise BadInput(f"MCMC on p(z|x) needs a vector latent (event shape (d,)); the guide's z has "
                       f"{tuple(q.event_shape)}")
    clock = {}
    started, cpu_started = time.perf_counter(), time.process_time()
    log(f"\npart 2: NUTS on the true posterior p(z|x) for {len(indices)} {split} images, {options.chains} chains "
        f"each, {options.warmup} warm-up + {options.draws} draws (all images and chains in "
        f"{'one NUTS state' if not options.group_size else f'states of {options.group_size} images'})")
    draws = sample_posterior(run.pair, x, options, seed=seed)
    check_finite_draws(draws)
    clock["nuts"] = sum(draws.seconds)

    t = time.perf_counter()
    pyro.set_rng_seed(seed + 1)
    q_z = posterior_check.guide_draws(run.pair, x, options.chains, options.draws)
    stats = _sample_stats(draws)
    attrs = {"split": split, "model": "true posterior p(z|x), NUTS", "vectorized": _VECTORIZED_NOTE}
    mcmc_idata = arviz_io.posterior_idata(draws.z.numpy(), indices, stats, attrs=attrs)
    guide_idata = arviz_io.posterior_idata(q_z.numpy(), indices, attrs={
        "split": split, "model": "approximate posterior q(z|x), independent draws of the guide"})
    khat = posterior_check.psis_khat(run.pair, x, num_samples=k)
    rows, notes = posterior_check.posterior_rows(draws, mcmc_idata, q, q_z, khat, indices, labels)
    clock["diagnostics"] = time.perf_counter() - t

    t = time.perf_counter()
    gap = _amortization(run.pair, x, indices, args, k, options.progress)
    clock["amortization_gap"] = time.perf_counter() - t

    total_ess = sum(r["ess_bulk"] for r in rows)
    nuts = {"seconds": draws.seconds, "cpu_seconds": draws.cpu_seconds, "step_size": draws.step_size,
            "gradient_evaluations": [int(n.sum()) for n in draws.n_leapfrog],
            "mean_tree_depth": [float(td.double().mean()) for td in draws.tree_depth],
            "divergences": [int(dv.sum()) for dv in draws.diverging],
            "ess_per_second_all_images": total_ess / clock["nuts"],
            "seconds_per_effective_sample": clock["nuts"] / total_ess}
    result = {"split": split, "images": indices, "labels": labels, "seed": seed, "k": k,
              "settings": {"chains": options.chains, "warmup": options.warmup, "draws": options.draws,
                           "group_size": options.group_size, "target_accept": options.target_accept,
                           "max_tree_depth": options.max_tree_depth},
              "nuts": nuts, "table": rows, "notes": notes, "amortization": gap}
    text = _report_text(result, posterior_check.format_posterior_table(rows), amortization)
    result["seconds"] = clock
    if out_dir is not None:
        t = time.perf_counter()
        result["files"] = _write(out_dir, text, mcmc_idata, guide_idata, draws, q, q_z, indices, labels)
        clock["files_and_plots"] = time.perf_counter() - t
    clock["total"] = time.perf_counter() - started
    clock["total_cpu"] = time.process_time() - cpu_started
    if out_dir is not None:
        _write_json(Path(out_dir) / FILES["json"], result)
    log(text)
    written = f"; wrote {out_dir}/ ({', '.join(Path(f).name for f in result['files'])})" if out_dir is not None else ""
    log(f"part 2 took {clock['total']:.1f} s wall, {clock['total_cpu']:.1f} s CPU (NUTS {clock['nuts']:.1f} s, "
        f"amortization gap {clock['amortization_gap']:.1f} s){written}")
    return result


_VECTORIZED_NOTE = ("chains are copies of each image through the data plate of one NUTS state; sample_stats "
                    "(diverging, tree_depth, n_steps) belong to that joint state and are repeated per chain and image")


def _sample_stats(draws) -> dict:
    """diverging / tree_depth / n_steps of each image's NUTS state, shaped (chain, draw, image)."""
    R, N = draws.z.shape[0], draws.z.shape[2]
    stats = {}
    for name, per_group in (("diverging", draws.diverging), ("tree_depth", draws.tree_depth),
                            ("n_steps", draws.n_leapfrog)):
        column = torch.stack([per_group[g] for g in draws.group], dim=-1)       # (draws, N)
        stats[name] = column.unsqueeze(0).expand(R, *column.shape).numpy()
    return stats


def _amortization(pair, x, indices: list[int], args: argparse.Namespace, k: int, progress: bool) -> dict:
    """Fit the per-image q* and measure log p(x), ELBO[q*], ELBO[q] (or say why it is skipped)."""
    from tqdm.auto import tqdm

    from bayesvae.analysis import amortization
    from bayesvae.inference.local_posterior import UnsupportedGuide, fit_local_posterior

    if args.gap_steps == 0:
        return {"skipped": "--gap-steps 0"}
    try:
        local = fit_local_posterior(pair, x, steps=args.gap_steps, particles=args.gap_particles, lr=args.gap_lr,
                                    progress=lambda r: tqdm(r, desc="per-image q* (amortization gap)",
                                                            disable=not progress, leave=False))
    except UnsupportedGuide as reason:
        return {"skipped": str(reason)}
    gaps = amortization.measure_gaps(pair, local, x, k=k, progress=progress)
    rows = amortization.gap_rows(gaps, indices)
    return {"family": local.family, "steps": local.steps, "k": k, "rows": rows,
            "final_loss": local.losses[-1] if local.losses else None,
            "mean": {key: sum(r[key] for r in rows) / len(rows)
                     for key in ("log_px", "elbo_local", "elbo_amortized", "approximation_gap", "amortization_gap")}}


def _report_text(result: dict, posterior_table: str, amortization) -> str:
    """The printed report: the per-image table, NUTS figures, the notes on each estimator, the gap table."""
    nuts, notes, gap = result["nuts"], result["notes"], result["amortization"]
    lines = [
        "true posterior p(z|x) (MCMC) vs approximate posterior q(z|x) (guide), per image:",
        "",
        posterior_table,
        "",
        f"NUTS: {sum(nuts['seconds']):.1f} s wall ({sum(nuts['cpu_seconds']):.1f} s CPU), "
        f"{sum(nuts['gradient_evaluations'])} gradient evaluations after warm-up, "
        f"step size {', '.join(f'{s:.3g}' for s in nuts['step_size'])}, "
        f"mean tree depth {', '.join(f'{d:.1f}' for d in nuts['mean_tree_depth'])}, "
        f"{sum(nuts['divergences'])} divergent transitions; {nuts['seconds_per_effective_sample'] * 1000:.1f} ms per "
        f"effective sample (min bulk ESS over dimensions, summed over images).",
        "ESS/s = that image's min bulk ESS / wall time of its NUTS run (all images were sampled at once).",
        "Δmean/sd = max over dimensions of |E_q z − E_p z| / sd_p; sd q/p = range over dimensions of sd_q / sd_p.",
        notes["kl"] + f" Here: {notes['kl_method']}.",
        notes["khat"],
        notes["mcmc"],
        "",
    ]
    if "skipped" in gap:
        lines.append(f"amortization gap: skipped ({gap['skipped']})")
    else:
        lines += [
            f"amortization gap (Cremer et al. 2018), nats per image, ± one standard error; q* = per-image "
            f"{gap['family']} fitted by {gap['steps']} Adam steps from the encoder's output:",
            "",
            amortization.format_gap_table(gap["rows"]),
            "",
            f"log p(x): importance sampling with q* as proposal, K = {gap['k']} (a stochastic lower bound); ELBOs: "
            f"mean of log w over the same K draws.",
            "approximation gap = log p(x) − ELBO[q*] = KL(q*‖p(z|x)): the family's limit; amortization gap = "
            "ELBO[q*] − ELBO[q]: the cost of one encoder for all images.",
        ]
        behind = [r["image"] for r in gap["rows"] if r["amortization_gap"] < -2 * r["amortization_gap_se"]]
        if behind:
            lines.append(f"warning: q* is worse than q by more than 2 standard errors for image(s) "
                         f"{', '.join(map(str, behind))}: the per-image optimization has not converged; "
                         f"raise --gap-steps (or lower --gap-lr).")
    return "\n".join(lines)


def _write(out_dir: Path, text: str, mcmc_idata, guide_idata, draws, q, q_z, indices, labels) -> list[str]:
    """netCDF (ArviZ), plots and the text report into ``out_dir``; returns every path, the JSON's included."""
    from bayesvae.analysis import arviz_io, plots_posterior, posterior_check
    from bayesvae.inference.files import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file for name, file in FILES.items()}
    arviz_io.save_netcdf(mcmc_idata, paths["mcmc"])
    arviz_io.save_netcdf(guide_idata, paths["guide"])
    dims = plots_posterior.most_active_dimensions(draws.z)
    written = [paths["mcmc"], paths["guide"]]
    written.append(plots_posterior.plot_trace(mcmc_idata, indices, dims, paths["trace"]))
    if len(dims) == 2:
        mean, cov = posterior_check.q_mean_covariance(q, q_z)
        written.append(plots_posterior.plot_pairs(mcmc_idata, mean, cov, indices, dims, paths["pairs"], labels))
    written.append(plots_posterior.plot_forest(mcmc_idata, guide_idata, indices, paths["forest"]))
    atomic_write_text(paths["table"], text + "\n")
    written.append(paths["table"])
    return [str(p) for p in written] + [str(paths["json"])]


def _write_json(path: Path, result: dict) -> None:
    from bayesvae.diagnose_api import json_safe
    from bayesvae.inference.files import atomic_write_text

    atomic_write_text(path, json.dumps(json_safe(result), indent=1, ensure_ascii=False) + "\n")

"""Diagnose, part 2: the true posterior p(z | x) by NUTS beside the guide's q(z | x), and the amortization gap.

For a few images of the split (``images=[0, 5, 17]`` / ``--images 0,5,17`` or the first ``n_images``):

1. NUTS on p(z | x) ∝ p(z) p(x | z) from the run's own model (decoder frozen), ``chains`` chains
   per image, all images and chains in one vectorized state (:mod:`bayesvae.inference.mcmc`);
2. draws of q(z | x) in the same shape; both as ArviZ InferenceData (in memory, and saved as netCDF);
3. per image: R-hat, bulk/tail ESS, divergences, ESS per second, moments of p vs q, KL between q and a
   Gaussian fit of p, PSIS k̂ of the guide's importance weights (:mod:`bayesvae.analysis.posterior_check`);
4. the amortization gap: a per-image q* of the guide's family, log p(x), ELBO[q*], ELBO[q]
   (:mod:`bayesvae.analysis.amortization`).

The settings are :class:`PosteriorOptions` (declared once: the command line's flags and the keyword
arguments of ``bayesvae.diagnose`` come from it). Files (:mod:`bayesvae.posterior_report`):
posterior_mcmc.nc, posterior_guide.nc, posterior.json, posterior.txt, posterior_trace.png,
posterior_pairs.png, posterior_forest.png.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

import pyro

from bayesvae.inference.interrupts import deferred_interrupts
from bayesvae.models.checks import check_declared, declare
from bayesvae.models.errors import BadInput

from .posterior_report import FILES, report_text, write_files, write_json

DEFAULT_IMAGES = 16


@dataclass(frozen=True)
class PosteriorOptions:
    """Settings of part 2 (defaults: 16 images, 4 chains, 200 warm-up and 1200 draws each, a 300-step q*)."""

    images: tuple[int, ...] | None = declare(None, "indices of the images in the split, e.g. 0,5,17",
                                             kind="whole_list", optional=True, metavar="LIST")
    n_images: int | None = declare(None, f"use the first N images of the split (default: {DEFAULT_IMAGES})",
                                   kind="whole", low=1, optional=True, metavar="N")
    chains: int = declare(4, "chains per image", kind="whole", low=1, metavar="R")
    warmup: int = declare(200, "NUTS warm-up iterations", kind="whole", low=0, metavar="N")
    draws: int = declare(1200, "draws per chain after warm-up", kind="whole", low=1, metavar="N")
    mcmc_group_size: int | None = declare(None, "images per NUTS state (default: all in one)", kind="whole",
                                          low=1, optional=True, metavar="N")
    mcmc_target_accept: float = declare(0.8, "NUTS target acceptance probability", kind="number", above=0,
                                        below=1, metavar="P")
    # 5, not 3: at 3 the demo VAE's chains sat at the cap (mean depth 3.0, R-hat up to 1.02, bulk ESS ~700);
    # at 5 they use depth 4.0, R-hat ≤ 1.005 and ~4000 ESS per image, 2× the ESS per second (make demo)
    mcmc_max_tree_depth: int = declare(5, "NUTS maximum tree depth", kind="whole", low=1, metavar="D")
    gap_steps: int = declare(300, "Adam steps of the per-image q* (amortization gap; 0 skips it)", kind="whole",
                             low=0, metavar="N")
    gap_particles: int = declare(16, "z-samples per image and step for q*", kind="whole", low=1, metavar="S")
    gap_lr: float = declare(0.02, "initial Adam learning rate for q* (decays to a tenth)", kind="number",
                            above=0, metavar="LR")

    def __post_init__(self):
        if self.images is not None and self.n_images is not None:
            raise BadInput("give either --images or --n-images, not both")
        check_declared(self)

    def nuts(self):
        """The sampler's settings (:class:`bayesvae.inference.mcmc.NUTSOptions`)."""
        from bayesvae.inference.mcmc import NUTSOptions

        return NUTSOptions(chains=self.chains, warmup=self.warmup, draws=self.draws, group_size=self.mcmc_group_size,
                           target_accept=self.mcmc_target_accept, max_tree_depth=self.mcmc_max_tree_depth,
                           progress=sys.stderr.isatty()).check()

    def to_dict(self) -> dict:
        return asdict(self)


def image_indices(options: PosteriorOptions, available: int) -> list[int]:
    """The split's images part 2 samples: ``images`` (each once, in range) or the first ``n_images``."""
    if options.images is not None:
        indices = list(options.images)
        bad = [i for i in indices if not 0 <= i < available]
        if bad:
            raise BadInput(f"--images: index {bad[0]} is out of range: the split has {available} images "
                           f"(0-{available - 1})")
        if len(set(indices)) != len(indices):
            raise BadInput("--images lists an image twice")
        return indices
    n = DEFAULT_IMAGES if options.n_images is None else options.n_images
    if n > available:
        raise BadInput(f"--n-images {n}: the split has only {available} images")
    return list(range(n))


def check_options(run, options: PosteriorOptions, split: str = "test") -> list[int]:
    """Refuse settings that do not fit ``run`` (before part 1 writes anything); returns the image indices."""
    options.nuts()
    x, _ = run.images(split)
    return image_indices(options, x.shape[0])


def run_posterior(run, options: PosteriorOptions | None = None, out_dir: Path | None = None,
                  log: Callable[[str], None] = print, *, split: str = "test", k: int = 1000, seed: int = 0) -> dict:
    """Part 2 on ``run`` (see module docstring): writes the files to ``out_dir`` (None: write nothing), logs the
    tables, returns them as data (``inference_data``: the MCMC and guide draws as ArviZ InferenceData)."""
    from bayesvae.inference.mcmc import torch_threads

    options = options or PosteriorOptions()
    with torch_threads(options.nuts().threads):  # small tensors: see bayesvae.inference.mcmc on threads
        return _run_posterior(run, options, split, k, seed, out_dir, log)


def _run_posterior(run, options: "PosteriorOptions", split: str, k: int, seed: int, out_dir: Path | None,
                   log: Callable[[str], None]) -> dict:
    from bayesvae.analysis import amortization, arviz_io, posterior_check
    from bayesvae.inference.local_posterior import amortized_posterior
    from bayesvae.inference.mcmc import check_finite_draws, sample_posterior

    indices = check_options(run, options, split)
    nuts_options = options.nuts()
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
        f"{'one NUTS state' if not options.mcmc_group_size else f'states of {options.mcmc_group_size} images'})")
    draws = sample_posterior(run.pair, x, nuts_options, seed=seed)
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
    gap = _amortization(run.pair, x, indices, options, k, nuts_options.progress, beta=run.config.training.beta)
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
                           "group_size": options.mcmc_group_size, "target_accept": options.mcmc_target_accept,
                           "max_tree_depth": options.mcmc_max_tree_depth},
              "nuts": nuts, "table": rows, "notes": notes, "amortization": gap}
    text = report_text(result, posterior_check.format_posterior_table(rows), amortization)
    result["seconds"] = clock
    with deferred_interrupts():   # Ctrl-C waits for the whole set of part-2 files
        if out_dir is not None:
            t = time.perf_counter()
            result["files"] = write_files(out_dir, text, mcmc_idata, guide_idata, draws, q, q_z, indices, labels)
            clock["files_and_plots"] = time.perf_counter() - t
        clock["total"] = time.perf_counter() - started
        clock["total_cpu"] = time.process_time() - cpu_started
        if out_dir is not None:
            write_json(Path(out_dir) / FILES["json"], result)
    log(text)
    written = f"; wrote {out_dir}/ ({', '.join(Path(f).name for f in result['files'])})" if out_dir is not None else ""
    log(f"part 2 took {clock['total']:.1f} s wall, {clock['total_cpu']:.1f} s CPU (NUTS {clock['nuts']:.1f} s, "
        f"amortization gap {clock['amortization_gap']:.1f} s){written}")
    result["inference_data"] = {"mcmc": mcmc_idata, "guide": guide_idata}   # in memory only (not in the JSON)
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


def _amortization(pair, x, indices: list[int], options: "PosteriorOptions", k: int, progress: bool,
                  beta: float = 1.0) -> dict:
    """Fit the per-image q* and measure log p(x), ELBO[q*], ELBO[q] (or say why it is skipped)."""
    from tqdm.auto import tqdm

    from bayesvae.analysis import amortization
    from bayesvae.inference.local_posterior import UnsupportedGuide, fit_local_posterior

    if options.gap_steps == 0:
        return {"skipped": "--gap-steps 0"}
    try:
        local = fit_local_posterior(pair, x, steps=options.gap_steps, particles=options.gap_particles, lr=options.gap_lr,
                                    progress=lambda r: tqdm(r, desc="per-image q* (amortization gap)",
                                                            disable=not progress, leave=False))
    except UnsupportedGuide as reason:
        return {"skipped": str(reason)}
    gaps = amortization.measure_gaps(pair, local, x, k=k, progress=progress)
    rows = amortization.gap_rows(gaps, indices)
    split = amortization.fit_beta_split(pair, gaps, x, beta, indices, k=k, steps=options.gap_steps,  # β ≠ 1 only
                                        particles=options.gap_particles, lr=options.gap_lr)
    return {"family": local.family, "steps": local.steps, "k": k, "rows": rows, "beta_split": split,
            "final_loss": local.losses[-1] if local.losses else None,
            "mean": {key: sum(r[key] for r in rows) / len(rows)
                     for key in ("log_px", "elbo_local", "elbo_amortized", "approximation_gap", "amortization_gap")}}



"""``bayesvae.compare(runs)``: the numbers and pictures that tell model/guide definitions apart.

For every run, on its test split (nats per image, β = 1, whatever β it was trained with):

    rate R, distortion D, ELBO = −(D + R)           rate–distortion plane   analysis.rate_distortion
    log p(x) (IWAE, K draws) ± se, gap to the ELBO  evidence                inference.evidence
    active units, I_q(x; z), KL(q(z) ‖ p(z))        latent usage            analysis.latent_stats, .aggregate
    k-NN / logistic probe accuracy, silhouette      class grouping          analysis.probes

and, with ``out``, a comparison folder: comparison.{txt,json,csv}, rate_distortion.png, latent.png
(latent_tsne.png with ``tsne=True``), class_grouping.png and per run <run>-reconstructions.png,
<run>-prior-samples.png and <run>-manifold.png (d = 2) or <run>-traversal.png (d > 2).

Every run is loaded and checked before anything is measured or written.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pyro
import torch

from bayesvae.analysis import quantities
from bayesvae.analysis.compare_report import report_text, write_report
from bayesvae.analysis.findings.wiring import attach_compare_findings, label_compare_row
from bayesvae.analysis.discrete_compare import discrete_columns, discrete_rate_distortion, z_pair_of
from bayesvae.analysis.latent_stats import posterior_moments
from bayesvae.analysis.probes import class_grouping
from bayesvae.analysis.rate_distortion import POINT_MASS_RATE_NOTE
from bayesvae.analysis.render import json_safe
from bayesvae.inference.enumerated_terms import discrete_site_of
from bayesvae.inference.files import atomic_dir
from bayesvae.models.checks import check_declared, declare
from bayesvae.models.errors import BadInput

from .diagnose_api import MeasureOptions
from .results import CompareResult
from .run import Run, is_run_dir, load_run

REPORT = "comparison.json"


def check_out(out: Path) -> None:
    """``out`` must be new, empty or an earlier comparison (which is replaced whole), and writable."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / REPORT).is_file():
        raise BadInput(f"--out {out} holds other files (no {REPORT}): choose a new folder for the comparison")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write the comparison to {out}: {probe} is not a writable folder")


def resolve_runs(runs: Iterable, trust_code: bool = False, device: str | None = None) -> list[tuple[str, Run]]:
    """(name, Run) for each entry: a Run, a run folder, or a folder of runs (a sweep: every run inside).

    Refuses, with one line, a path that is not a run, a run never trained (no checkpoint) and a run
    holding user code unless ``trust_code``.
    """
    entries: list[tuple[Path | None, Run | None]] = []
    for item in ([runs] if isinstance(runs, (str, Path, Run)) else list(runs)):
        if isinstance(item, Run):
            entries.append((item.path, item))
            continue
        path = Path(item)
        children = sorted(p for p in path.iterdir() if is_run_dir(p)) if path.is_dir() and not is_run_dir(path) else []
        entries.extend((child, None) for child in (children or [path]))
    if not entries:
        raise BadInput("no runs to compare")
    loaded = []
    for path, run in entries:
        run = run or load_run(path, trust_code=trust_code, device=device)
        if run.state is None or not run.state.history:
            raise BadInput(f"{path} has no trained checkpoint (no finished epoch): train it first "
                           f"(bayesvae train --resume {path})")
        loaded.append(run)
    names = [run.path.name if run.path else f"run{i + 1}" for i, run in enumerate(loaded)]
    if len(set(names)) < len(names):  # same folder name in two places: add the parent
        names = [f"{run.path.parent.name}/{run.path.name}" if run.path else name for name, run in zip(names, loaded)]
    if len(set(names)) < len(names):
        raise BadInput("the same run is listed twice")
    return list(zip(names, loaded))


def _evidence_columns(pair, x: torch.Tensor, k: int, seed: int, progress: bool | None) -> dict:
    """log p(x) (IWAE_K) ± se, the gap log p(x) − ELBO from the same draws, and ELBO surgery's two terms."""
    evidence = quantities.evidence(pair, x, k, seed, progress)
    surgery = quantities.surgery(pair, x, seed)
    summary = evidence.summary()   # the keys diagnose writes too, PSIS k̂ included (the evidence findings read them)
    return {"log_px": evidence.mean_log_px, "log_px_se": evidence.se_mean, "gap": evidence.mean_gap,
            "khat_max": summary["khat_max"], "n_khat_above_0_7": summary["n_khat_above_0_7"],
            "mutual_information": surgery["mutual_information"], "marginal_kl": surgery["marginal_kl"]}


def _class_grouping(run: Run, split: str, means: torch.Tensor, labels, max_images: int | None,
                    pair=None) -> dict | None:
    """Probes fitted on the training split's means and scored on the test split's (None without labels);
    ``pair``: the pair whose q(z|x) gives the means (default: the run's)."""
    pair = pair or run.pair
    train_x, train_labels = run.images("train", max_images)
    test_x, test_labels = run.images("test", max_images) if split != "test" else (None, labels)
    if train_labels is None or test_labels is None:
        return None
    test_means = means if split == "test" else posterior_moments(pair, test_x).means
    return class_grouping(posterior_moments(pair, train_x).means, train_labels, test_means, test_labels)


@torch.no_grad()
def measure(name: str, run: Run, k: int, split: str, max_images: int | None, num_samples: int,
            progress: bool | None, seed: int = 0) -> tuple[dict, dict]:
    """The table row of one run (plain numbers, None where not defined) and what its pictures need; the
    quantities diagnose also prints come from the same functions and seed (analysis.quantities)."""
    config = run.config
    x, labels = run.images(split, max_images)
    site = discrete_site_of(run.pair, x)   # a class summed exactly: its own rate, distortion and log p(x)
    z_pair = run.pair if site is None else z_pair_of(run.pair, site, x)   # z given the most probable class
    terms = quantities.anatomy(run.pair, x, seed, num_samples) if site is None else None
    point = quantities.rate_point(terms) if site is None else discrete_rate_distortion(run.pair, x, site, num_samples)
    moments = quantities.moments(z_pair, x, seed)
    means, latent = moments.means, quantities.latent(z_pair, x, seed, moments)
    count, activity = latent["active_units"], torch.tensor([r["activity"] for r in latent["per_dimension"]])
    grouping = _class_grouping(run, split, means, labels, max_images, z_pair)
    row = {
        "name": name, "path": str(run.path) if run.path else None, "guide": config.model.guide,
        "prior": config.model.prior, "likelihood": config.model.likelihood, "objective": config.training.elbo
        + (f" K={config.training.particles}" if config.training.elbo == "iwae" else ""),
        "particles": config.training.particles, "beta": config.training.beta, "latent_dim": config.model.latent_dim,
        "epochs": run.state.epoch, "dataset": config.data.dataset, "n_images": int(x.shape[0]),
        "train_labels": config.training.labels,   # M2's labelled training images (0: labels unused in training)
        **{key: point.to_dict()[key] for key in ("rate", "rate_se", "rate_method", "distortion", "distortion_se")},
        # the ELBO diagnose prints (= −(D + R) up to rounding); a discrete pair's sums the class exactly
        "elbo": terms["elbo"]["value"] if terms is not None else point.to_dict()["elbo"],
        "log_px": None, "log_px_se": None, "gap": None, "mutual_information": None, "marginal_kl": None,
        "log_n": math.log(x.shape[0]), "active_units": count,
        "mean_spread": quantities.spread_of_means(latent),
        **{key: None if grouping is None else grouping[key]
           for key in ("knn_accuracy", "logistic_accuracy", "silhouette", "chance")},
    }
    notes = []
    if site is not None:
        columns, note = discrete_columns(run.pair, x, labels, site, k)
        row.update(columns)
        notes.append(f"{name}: {note}")
    elif point.rate is None:
        notes.append(f"{name}: {POINT_MASS_RATE_NOTE}; no ELBO, log p(x), I_q or marginal KL either")
    else:
        row.update(_evidence_columns(run.pair, x, k, seed, progress))
    if grouping is None:
        notes.append(f"{name}: the data set has no labels: class grouping not measured")
    row = label_compare_row(json_safe(row), config)  # user's prior named
    extras = {"x": x, "labels": labels, "means": means, "activity": activity, "point": point,
              "grouping": grouping, "notes": notes, "discrete_site": site, "given_class": z_pair is not run.pair}
    return row, extras


@dataclass(frozen=True)
class CompareOptions:
    """What compare measures beyond diagnose's :class:`MeasureOptions` (split, k, seed); flags and keywords."""

    samples: int = declare(quantities.ANATOMY_SAMPLES, "draws of q(z|x) per image for rate and distortion, as "
                           "diagnose's ELBO terms", kind="whole", low=1, metavar="S")
    max_images: int | None = declare(2000, "first N images of each split (0 or None: all)", kind="whole", low=0,
                                     optional=True, metavar="N")
    tsne: bool = declare(False, "also draw the posterior means with t-SNE", kind="switch")

    def __post_init__(self):
        check_declared(self)


def compare(runs, out: str | Path | None = None, *, k: int = MeasureOptions.k, tsne: bool = CompareOptions.tsne,
            split: str = MeasureOptions.split, max_images: int | None = CompareOptions.max_images,
            samples: int = CompareOptions.samples, seed: int = MeasureOptions.seed,
            trust_code: bool = False, device: str | None = None, progress: bool | None = None,
            log: Callable[[str], None] | None = None) -> CompareResult:
    """Measure and (with ``out``) draw a set of runs side by side; returns the table as data.

    ``runs``: Run objects, run folders, or folders of runs (a sweep). ``k``: importance samples per image
    for log p(x); ``max_images``: first N images of each split (None: all); ``samples``: draws of q per
    image for rate and distortion; ``seed``: where every quantity's draws start (as in diagnose). Returns ``{"runs": [row, ...], "notes": [...], "split", "k", "n_images",
    "seconds", "out", "files"}``; each row holds the quantities of the module docstring (None: not defined).
    """
    log = log or print
    CompareOptions(samples, max_images, tsne)
    max_images = max_images or None   # 0: all images, on the command line and here alike
    MeasureOptions(split, k, max_images, seed)   # the same declared checks as diagnose's
    named = resolve_runs(runs, trust_code, device)
    if out is not None:
        check_out(Path(out))
    started = time.perf_counter()
    rows, extras, notes = [], [], []
    for i, (name, run) in enumerate(named, 1):
        log(f"measuring {name} ({i}/{len(named)})")
        pyro.set_rng_seed(seed)  # the same Monte Carlo draws whenever a comparison is repeated
        row, extra = measure(name, run, k, split, max_images, samples, progress, seed)
        rows.append(row)
        extras.append(extra)
        notes.extend(extra["notes"])
    capped = [row["name"] for row in rows if (row["mutual_information"] or 0) >= 0.95 * row["log_n"]]
    if capped:
        notes.append(f"I_q(x;z) ≤ log N for N images ({rows[0]['log_n']:.2f} nats here): {', '.join(capped)} {'sits' if len(capped) == 1 else 'sit'} at "
                     f"that cap — the codes tell every image apart; Monte Carlo noise can put the estimate past it")
    if len({row["dataset"] for row in rows}) > 1:
        notes.append("the runs were trained on different data sets: their numbers are not comparable")
    found = attach_compare_findings({"runs": rows})  # per-run findings column, and log p(x) ranked only within kind
    notes += [f"{f.title}: {f.evidence['groups']}" for f in found["comparison"]]
    sizes = {row["n_images"] for row in rows}
    result = CompareResult({"runs": rows, "notes": notes, "split": split, "k": k, "findings": {
                  "comparison": [f.to_dict() for f in found["comparison"]], "rankable": found["rankable"],
                  "groups": found["groups"]},
              "n_images": sizes.pop() if len(sizes) == 1 else "varies", "tsne": tsne,
              "seconds": time.perf_counter() - started, "out": None if out is None else str(out), "files": []})
    if out is not None:
        write_folder(Path(out), result, named, extras, tsne)
    return result


def write_folder(out: Path, result: dict, named: list[tuple[str, Run]], extras: list[dict], tsne: bool) -> None:
    from .compare_pictures import draw

    """Draw and write everything into a hidden staging folder, then swap it in for ``out``: the comparison
    folder is complete or absent, never a mix of two comparisons."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out) as staging:
        files = draw(staging, named, extras, tsne)   # compare_pictures: matplotlib loads on use
        result["files"] = [f.name for f in files] + [REPORT, "comparison.csv", "comparison.txt"]
        write_report(staging, result)


__all__ = ["compare", "report_text", "resolve_runs"]

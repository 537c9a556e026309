"""``bayesvae report``: one self-contained HTML page that answers the VAE questions from a user's own runs.

    from bayesvae.report import write_report
    write_report(["runs/beta"], "report.html")      # a run, a sweep folder, several runs or a comparison

It reads what ``train``, ``diagnose`` and ``compare`` wrote (:mod:`.inputs`) and measures nothing itself
(only the training curves are drawn here, from metrics.csv). Sections, in order: findings; Bayes' theorem
term by term; what the KL compares; autoencoder vs VAE vs β; why classes group without labels; true vs
amortized posterior; training. A section whose results are missing says which command writes them.
Images are embedded as base64 ``data:`` URIs and styles inline: the file fetches nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from bayesvae.inference.files import atomic_write_text
from bayesvae.models.errors import BadInput

from .bayes_section import bayes_section
from .compare_section import ae_vae_section, grouping_section
from .findings_section import findings_section
from .html import page
from .inputs import ResultSet, resolve
from .kl_section import kl_section
from .posterior_section import posterior_section
from .training_section import training_section

SECTIONS = (findings_section, bayes_section, kl_section, ae_vae_section, grouping_section, posterior_section,
            training_section)
REPORT = "report.html"


def default_out(results: ResultSet, items: list) -> Path:
    """RUN/report.html for one run; <sweep or comparison folder>/report.html for one folder of runs; else the
    runs' common parent."""
    if len(items) == 1:
        return Path(items[0]) / REPORT
    parents = [run.path.resolve().parent for run in results.runs]
    return Path(os.path.commonpath(parents)) / REPORT


def check_out(out: Path) -> None:
    """``out`` must be a file path in an existing, writable folder (refused before anything is read)."""
    if out.is_dir():
        raise BadInput(f"--out {out} is a folder: give the report's file name, e.g. {out / REPORT}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"cannot write the report to {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise BadInput(f"cannot write the report to {out}: {parent} is not writable")


def render_report(results: ResultSet) -> str:
    names = ", ".join(run.name for run in results.runs)
    datasets = ", ".join(results.datasets)
    subtitle = (f"{len(results.runs)} run(s): {names} · data: {datasets}"
                + (" — different data sets: numbers are not compared across them" if len(results.datasets) > 1 else "")
                + " · all values in nats per image")
    return page("bayesvae report", subtitle, [make(results) for make in SECTIONS])


def write_report(runs, out: str | Path | None = None) -> Path:
    """Write the report on ``runs`` (run folders, sweep folders or comparison folders; one or a list) to
    ``out`` (default: see :func:`default_out`) atomically; returns its path."""
    items = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if out is not None:
        check_out(Path(out))
    results = resolve(items)
    out = Path(out) if out is not None else default_out(results, items)
    check_out(out)
    atomic_write_text(out, render_report(results))
    return out


__all__ = ["render_report", "write_report"]

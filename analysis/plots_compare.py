"""Plots of a comparison of runs: the rate–distortion plane, latent spaces by class, class-grouping scores.

Matplotlib's object API (``Figure``, no pyplot): no global backend is switched and nothing opens a
window; PNGs are written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bayesvae.inference.files import atomic_path

from .rate_distortion import RatePoint, constant_elbo_levels


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)


def _merged_labels(named: list[tuple[str, RatePoint]], tolerance: tuple[float, float]) -> list[tuple[str, RatePoint]]:
    """One label per cluster of points closer than ``tolerance`` (rate, distortion): "a, b" instead of overprinting."""
    groups: list[list[tuple[str, RatePoint]]] = []
    for name, p in named:
        for group in groups:
            q = group[0][1]
            if abs(p.rate - q.rate) < tolerance[0] and abs(p.distortion - q.distortion) < tolerance[1]:
                group.append((name, p))
                break
        else:
            groups.append([(name, p)])
    return [(", ".join(n for n, _ in group), group[0][1]) for group in groups]


def plot_rate_distortion(names: list[str], points: list[RatePoint], path: Path) -> None:
    """One point per run at (rate R, distortion D), dotted lines of constant ELBO = −(D + R); runs without
    a rate (point-mass guides) as dashed horizontal lines at their distortion."""
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    with_rate = [(n, p) for n, p in zip(names, points) if p.rate is not None]
    rates = [p.rate for _, p in with_rate] or [0.0, 1.0]
    distortions = [p.distortion for p in points]
    r_low, r_high = min(0.0, min(rates)), max(rates) * 1.15 + 0.5
    pad = 0.1 * (max(distortions) - min(distortions)) + 1.0
    d_low, d_high = min(distortions) - pad, max(distortions) + pad
    r = np.linspace(r_low, r_high, 2)
    for level in constant_elbo_levels([p for _, p in with_rate]):
        ax.plot(r, -level - r, ":", color="0.6", lw=1)
        at = min(max(-level - d_high, r_low), r_high)  # where the line enters the plot at the top (or the left edge)
        ax.annotate(f"ELBO {level:.1f}", (at, -level - at), fontsize=7, color="0.45", ha="left", va="top",
                    textcoords="offset points", xytext=(4, -4))
    for name, p in with_rate:
        ax.errorbar(p.rate, p.distortion, xerr=p.rate_se or 0, yerr=p.distortion_se, fmt="o", ms=6, capsize=2)
    for label, p in _merged_labels(with_rate, (0.02 * (r_high - r_low), 0.02 * (d_high - d_low))):
        ax.annotate(label, (p.rate, p.distortion), textcoords="offset points", xytext=(5, 4), fontsize=8)
    without = [(n, p) for n, p in zip(names, points) if p.rate is None]
    for i, (name, p) in enumerate(without):  # labels staggered along the line so that close ones stay legible
        ax.axhline(p.distortion, ls="--", color="C3", lw=1)
        ax.annotate(f"{name}: no rate (point-mass guide)", (r_low + (r_high - r_low) * 0.5 * i / len(without),
                    p.distortion), textcoords="offset points", xytext=(3, 3), fontsize=7, color="C3")
    ax.set_xlim(r_low, r_high)
    ax.set_ylim(d_low, d_high)
    ax.set_xlabel("rate R = E_x KL(q(z|x) ‖ p(z))  [nats / image]")
    ax.set_ylabel("distortion D = −E_x E_q log p(x|z)  [nats / image]")
    ax.set_title("rate–distortion plane (Alemi et al. 2018); −ELBO = D + R")
    _save(fig, path)


def plot_latent_panels(panels: list[dict], path: Path, title: str, shared: bool = False,
                       legend: str = "class (never used in training)") -> None:
    """One scatter per run of 2-D coordinates coloured by class.

    Each panel dict: ``name``, ``xy`` (N, 2), ``labels`` (N,) or None, ``axes`` (what the axes are),
    optional ``prior_xy`` (draws from p(z) in the same projection, drawn in grey underneath) and ``note``.
    ``shared``: every panel on the same axis limits (for coordinates in the units of z, e.g. PCA), so a spread
    that one run has and another lacks is seen, not rescaled away. ``legend``: the title of the class legend.
    """
    points = [p[key] for p in panels for key in ("xy", "prior_xy") if p.get(key) is not None and len(p[key])]
    limits = None
    if shared and points:
        stacked = np.concatenate(points)
        low, high = stacked.min(0), stacked.max(0)
        pad = 0.05 * np.maximum(high - low, 1e-6)
        limits = (low - pad, high + pad)
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.2 * cols, 4.0 * rows + 0.8), layout="constrained")
    classes = sorted({int(c) for p in panels if p["labels"] is not None for c in p["labels"]})
    handles = {}
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        if panel.get("prior_xy") is not None:
            ax.scatter(*panel["prior_xy"].T, s=2, c="0.85", label="p(z) draws", rasterized=True)
        xy, labels = panel["xy"], panel["labels"]
        if labels is None:
            ax.scatter(*xy.T, s=4, c="C0", rasterized=True)
        else:
            for c in classes:
                mask = labels == c
                handles[c] = ax.scatter(*xy[mask].T, s=4, color=f"C{c % 10}", rasterized=True)
        ax.set_title(f"{panel['name']}\n{panel.get('note', '')}".strip(), fontsize=9)
        ax.set_xlabel(panel["axes"], fontsize=7)
        if limits is not None:
            ax.set_xlim(limits[0][0], limits[1][0])
            ax.set_ylim(limits[0][1], limits[1][1])
        ax.tick_params(labelsize=7)
    if handles:
        fig.legend([handles[c] for c in classes], [str(c) for c in classes], loc="outside lower center",
                   ncol=min(len(classes), 10), markerscale=3, fontsize=8, title=legend)
    fig.suptitle(title, fontsize=11)
    _save(fig, path)


def plot_class_grouping(names: list[str], scores: list[dict | None], path: Path) -> None:
    """Grouped bars per run: k-NN and logistic-regression probe accuracy and silhouette, chance as a line."""
    fig = Figure(figsize=(max(5.0, 1.3 * len(names) + 2), 4.0), layout="constrained")
    ax = fig.add_subplot()
    keys = (("knn_accuracy", "k-NN (k=5) accuracy"), ("logistic_accuracy", "logistic probe accuracy"),
            ("silhouette", "silhouette by class"))
    x = np.arange(len(names))
    for j, (key, label) in enumerate(keys):
        values = [s[key] if s else np.nan for s in scores]
        ax.bar(x + (j - 1) * 0.27, values, 0.27, label=label)
    chances = [s["chance"] for s in scores if s]
    if chances:
        ax.axhline(max(chances), color="k", ls=":", lw=1, label="chance (majority class)")
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(min(-0.1, np.nanmin([s["silhouette"] for s in scores if s] or [0]) - 0.05), 1.0)
    ax.set_ylabel("test split score")
    ax.set_title("how strongly classes group in the posterior means")
    ax.legend(fontsize=7, loc="upper right")
    _save(fig, path)

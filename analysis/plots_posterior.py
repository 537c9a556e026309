"""Plots of the true posterior p(z | x) (MCMC) beside the approximate posterior q(z | x) (matplotlib, Agg).

* ``posterior_trace.png``  ArviZ trace plots (density, trace per chain; divergences marked) of the two most
                           active latent dimensions for the first few images.
* ``posterior_pairs.png``  per image, the MCMC cloud of p(z | x) in the two most active dimensions with
                           q(z | x)'s 1σ and 2σ ellipses (q's mean and covariance in those dimensions).
* ``posterior_forest.png`` ArviZ forest plot per image: 94 % HDI and quartiles of every latent dimension under
                           MCMC and under q.

"Most active" = the largest variance over the chosen images of the MCMC posterior mean E[z_u | x]
(Burda et al.'s activity, measured on the true posterior); with one image, the smallest posterior
variance (the dimensions the image informs most).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from . import arviz_io  # noqa: E402
from .plots_anatomy import save_figure  # noqa: E402

MAX_TRACE_IMAGES = 4
MAX_PAIR_IMAGES = 16
MAX_FOREST_IMAGES = 4


def most_active_dimensions(z: torch.Tensor, count: int = 2) -> list[int]:
    """The ``count`` latent dimensions whose MCMC posterior mean varies most across images (z: chains, draws, N, d)."""
    flat = z.reshape(-1, *z.shape[2:])
    means = flat.mean(0)                                   # (N, d)
    activity = means.var(0) if means.shape[0] > 1 else -flat.var(0)[0]
    return [int(u) for u in torch.argsort(activity, descending=True)[:count]]


def _ellipse(ax, mean: np.ndarray, cov: np.ndarray, radius: float, **style) -> None:
    values, vectors = np.linalg.eigh(cov)
    angle = math.degrees(math.atan2(vectors[1, -1], vectors[0, -1]))
    width, height = 2 * radius * np.sqrt(np.maximum(values[::-1], 0))
    ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, **style))


def plot_trace(mcmc_idata, image_ids: list[int], dims: list[int], path: Path) -> Path:
    """Trace plots of z[image, dims] for the first :data:`MAX_TRACE_IMAGES` images (one row each)."""
    images = image_ids[:MAX_TRACE_IMAGES]
    fig, axes = plt.subplots(len(images), 2, figsize=(10, 2.2 * len(images)), squeeze=False)
    for row, image in zip(axes, images):
        arviz_io.plot_trace_image(mcmc_idata, image, dims, row)
        row[0].set_title(f"image {image}: density of p(z|x) in z{dims[0]} (blue), z{dims[-1]} (orange)", fontsize=9)
        row[1].set_title(f"image {image}: trace, one line style per chain", fontsize=9)
    fig.suptitle("NUTS on the true posterior p(z|x)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_pairs(mcmc_idata, q_mean: torch.Tensor, q_cov: torch.Tensor | None, image_ids: list[int],
               dims: list[int], path: Path, labels: list | None = None) -> Path:
    """MCMC cloud of p(z|x) with q(z|x)'s 1σ/2σ ellipses in dimensions ``dims`` (q_mean (N, d), q_cov (N, d, d))."""
    images = image_ids[:MAX_PAIR_IMAGES]
    cols = min(4, len(images))
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for n, (ax, image) in enumerate(zip(axes.flat, images)):
        arviz_io.plot_pair_scatter(mcmc_idata, image, (dims[0], dims[1]), ax)
        mean = q_mean[n, dims].numpy()
        if q_cov is not None:
            cov = q_cov[n][np.ix_(dims, dims)].numpy()
            for radius, style in ((1.0, "-"), (2.0, "--")):
                _ellipse(ax, mean, cov, radius, color="C3", linestyle=style, linewidth=1.4)
        ax.plot(*mean, "x", color="C3", markersize=7)
        title = f"image {image}" + ("" if labels is None else f" (label {labels[n]})")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"z{dims[0]}", fontsize=8)
        ax.set_ylabel(f"z{dims[1]}", fontsize=8)
    for ax in list(axes.flat)[len(images):]:
        ax.axis("off")
    fig.suptitle("dots: MCMC draws of p(z|x); red: q(z|x) mean (x), 1σ (solid) and 2σ (dashed) ellipses",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_forest(mcmc_idata, guide_idata, image_ids: list[int], path: Path) -> Path:
    """Forest plots (94 % HDI, quartiles) of every latent dimension under MCMC and q, one panel per image."""
    images = image_ids[:MAX_FOREST_IMAGES]
    d = mcmc_idata.posterior.sizes["latent"]
    fig, axes = plt.subplots(1, len(images), figsize=(3.6 * len(images), 1.8 + 0.5 * d), squeeze=False)
    for ax, image in zip(axes[0], images):
        arviz_io.plot_forest_compare([mcmc_idata, guide_idata], ["MCMC p(z|x)", "guide q(z|x)"], image, ax)
        ax.set_title(f"image {image}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)

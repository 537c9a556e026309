"""Plots of the ELBO's anatomy (matplotlib, Agg; PNG files written atomically).

* ``kl_per_dimension.png``    KL(q_u(z_u|x) ‖ p_u(z_u)) per latent dimension (nats per image) and the
                              activity A_u = Var_x(E_q[z_u]) on a log scale with the 0.01 threshold.
* ``latent_means.png``        E_q[z | x] of every image in the two most active dimensions, coloured by
                              class, over the prior's density contours.
* ``posterior_stds.png``      per dimension, the histogram over images of Std_q[z_u | x] next to the prior's std.
* ``aggregate_posterior.png`` the aggregate posterior q(z) = (1/N) Σ_n q(z|x_n) (histogram of z_n ~ q(z|x_n))
                              against the prior p(z) in the most active dimensions.

The prior's marginals come from its own distribution (``log_prob`` of its univariate factors, or of a
mixture's factorized components) and otherwise from a kernel density estimate of prior samples.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch.distributions import Distribution, MixtureSameFamily  # noqa: E402

from bayesvae.inference.files import atomic_path  # noqa: E402
from bayesvae.models.families import base_distribution  # noqa: E402

from .latent_stats import is_factorized  # noqa: E402

MAX_PANELS = 16
PRIOR_SAMPLES = 20000
KDE_SAMPLES = 3000


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (PNG) atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


MarginalLogDensity = Callable[[torch.Tensor], torch.Tensor]
"""values (G, k) of z in k chosen dimensions → log p of the prior's marginal over them, (G,)."""


def _factorized_marginal(fn: Distribution, dims: list[int], extra_batch: int = 0) -> MarginalLogDensity:
    """Σ_{u ∈ dims} log p_u(z_u) for a product of univariates; ``extra_batch`` trailing batch axes (mixture
    components) are kept in the result."""
    base = base_distribution(fn)
    d = fn.event_shape[-1]
    leading = len(base.batch_shape) - 1 - extra_batch

    def log_density(values: torch.Tensor) -> torch.Tensor:
        full = values.new_zeros(values.shape[0], d)
        full[:, dims] = values
        full = full.reshape(values.shape[0], *[1] * leading, *[1] * extra_batch, d)
        per_dim = base.log_prob(full.to(base.mean.dtype))[..., dims].sum(-1)
        return per_dim.reshape(values.shape[0], -1, *per_dim.shape[per_dim.ndim - extra_batch:])[:, 0]
    return log_density


def prior_marginal(prior: Distribution, dims: list[int]) -> tuple[MarginalLogDensity, str]:
    """The log-density of the prior's marginal over ``dims`` and how it is obtained.

    Exact for a product of univariate factors (the standard Normal) and for a mixture of such products
    (mixture-of-Gaussians and VampPrior over a mean-field guide): log Σ_k π_k Π_{u∈dims} p_ku(z_u).
    Otherwise a Gaussian kernel density estimate of prior samples (scipy), said so in the legend.
    """
    if is_factorized(prior):
        return _factorized_marginal(prior, dims), "p(z) prior"
    mixture = base_distribution(prior)
    if isinstance(mixture, MixtureSameFamily) and is_factorized(mixture.component_distribution):
        components = _factorized_marginal(mixture.component_distribution, dims, extra_batch=1)
        log_weights = mixture.mixture_distribution.logits.reshape(-1, mixture.mixture_distribution.logits.shape[-1])[0]
        return (lambda values: (components(values) + log_weights).logsumexp(-1)), "p(z) prior"
    from scipy.stats import gaussian_kde  # a prior with no closed-form marginal: smooth its samples

    kde = gaussian_kde(_prior_draws(prior, dims)[:KDE_SAMPLES].double().numpy().T)
    return (lambda values: torch.from_numpy(kde.logpdf(values.double().numpy().T))), "p(z) prior (KDE of samples)"


def _prior_draws(prior: Distribution, dims: list[int]) -> torch.Tensor:
    return prior.sample((PRIOR_SAMPLES,)).reshape(-1, prior.event_shape[-1])[:PRIOR_SAMPLES, dims]


def plot_kl_per_dimension(stats: dict, path: Path) -> Path:
    """Bars of KL per dimension (when defined) and of the activity A_u with the active-unit threshold."""
    rows = stats["per_dimension"]
    dims = [r["dim"] for r in rows]
    active = ["tab:blue" if r["active"] else "tab:gray" for r in rows]
    has_kl = stats["kl_total"] is not None
    fig, axes = plt.subplots(2 if has_kl else 1, 1, figsize=(max(6, 0.35 * len(dims) + 2), 6 if has_kl else 3.2),
                             sharex=True, squeeze=False)
    axes = axes[:, 0]
    if has_kl:
        axes[0].bar(dims, [r["kl"] for r in rows], color=active)
        axes[0].set_ylabel("KL(q_u ‖ p_u), nats/image")
        axes[0].set_title(f"KL per latent dimension: total {stats['kl_total']:.2f} nats/image, "
                          f"{stats['active_units']} of {len(dims)} active (blue)")
    ax = axes[-1]
    ax.bar(dims, [max(r["activity"], 1e-12) for r in rows], color=active)
    ax.axhline(stats["threshold"], color="tab:red", lw=1, ls="--", label=f"active if > {stats['threshold']:g}")
    ax.set_yscale("log")
    ax.set_ylabel("A_u = Var_x(E_q[z_u])")
    ax.set_xlabel("latent dimension u")
    ax.legend(loc="best", fontsize=8)
    if not has_kl:
        ax.set_title(f"activity per dimension ({stats['active_units']} of {len(dims)} active); "
                     f"KL per dimension: {stats['kl_method']}")
    return save_figure(fig, path)


@torch.no_grad()
def plot_latent_means(means: torch.Tensor, labels: torch.Tensor | None, dims: list[int], prior: Distribution,
                      path: Path) -> Path:
    """E_q[z | x] per image in dimensions ``dims[:2]`` coloured by class, with the prior's contours."""
    means = means.detach().cpu().double()
    contours = "none: one latent dimension"
    fig, ax = plt.subplots(figsize=(6, 5.4))
    colours = None if labels is None else labels.detach().cpu().numpy()
    if means.shape[1] < 2:
        u = dims[0]
        jitter = torch.rand(means.shape[0], generator=torch.Generator().manual_seed(0)) - 0.5
        y = (labels.cpu().double() if labels is not None else torch.zeros(means.shape[0])) + 0.6 * jitter
        points = ax.scatter(means[:, u], y, c=colours, cmap="tab10", s=6, alpha=0.7)
        ax.set_xlabel(f"E_q[z_{u} | x]")
        ax.set_ylabel("class" if labels is not None else "")
    else:
        u, v = dims[:2]
        points = ax.scatter(means[:, u], means[:, v], c=colours, cmap="tab10", s=6, alpha=0.7)
        contours = _prior_contours(ax, prior, [u, v], means[:, [u, v]])
        ax.set_xlabel(f"E_q[z_{u} | x]")
        ax.set_ylabel(f"E_q[z_{v} | x]")
        ax.set_aspect("equal", adjustable="datalim")
    if labels is not None:
        fig.colorbar(points, ax=ax, label="class")
    ax.set_title(f"posterior means of the most active dimensions\n(contours: {contours})", fontsize=10)
    return save_figure(fig, path)


def _prior_contours(ax, prior: Distribution, dims: list[int], points: torch.Tensor) -> str:
    reach = max(3.0, float(points.abs().max()) * 1.05) if points.numel() else 3.0
    grid = torch.linspace(-reach, reach, 121, dtype=torch.float64)
    log_density, label = prior_marginal(prior, dims)
    zu, zv = torch.meshgrid(grid, grid, indexing="xy")                     # rows: z_v, columns: z_u
    density = log_density(torch.stack([zu.reshape(-1), zv.reshape(-1)], -1)).exp().reshape(zu.shape)
    ax.contour(grid.numpy(), grid.numpy(), density.double().numpy(), levels=5, colors="k", linewidths=0.8, alpha=0.6)
    return label


@torch.no_grad()
def plot_posterior_stds(stds: torch.Tensor, dims: list[int], prior: Distribution, path: Path) -> Path:
    """Small multiples: histogram over images of Std_q[z_u | x] for the dimensions ``dims`` (most active first)."""
    stds = stds.detach().cpu().double()
    dims = dims[:MAX_PANELS]
    columns = min(4, len(dims))
    rows = math.ceil(len(dims) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2.3 * rows), squeeze=False, sharex=True)
    prior_std = _prior_std(prior)
    top = max(1.1, float(stds[:, dims].max()) * 1.05, float(prior_std.max()) * 1.05 if prior_std is not None else 0)
    for ax, u in zip(axes.flat, dims):
        ax.hist(stds[:, u].numpy(), bins=60, range=(0, top), color="tab:blue", alpha=0.8)
        if prior_std is not None:
            ax.axvline(float(prior_std[u]), color="tab:red", lw=1, ls="--")
        ax.set_title(f"z_{u}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(dims):]:
        ax.axis("off")
    fig.suptitle("posterior std Std_q[z_u | x] over images (red: prior std)", fontsize=10)
    fig.supxlabel("Std_q[z_u | x], latent units", fontsize=9)
    fig.supylabel("number of images", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _prior_std(prior: Distribution) -> torch.Tensor | None:
    try:
        return prior.stddev.detach().cpu().reshape(-1, prior.event_shape[-1])[0]
    except NotImplementedError:
        return None


@torch.no_grad()
def plot_aggregate_posterior(samples: torch.Tensor, prior: Distribution, dims: list[int], path: Path,
                             panels: int = 4) -> Path:
    """Histogram of z ~ q(z) (the aggregate posterior) against the prior's marginal in up to ``panels`` dimensions."""
    samples = samples.detach().cpu().double()
    dims = dims[:panels]
    fig, axes = plt.subplots(1, len(dims), figsize=(3.3 * len(dims), 2.8), squeeze=False)
    reach = max(4.0, float(samples[:, dims].abs().max()) * 1.05)
    grid = torch.linspace(-reach, reach, 400, dtype=torch.float64)
    for ax, u in zip(axes[0], dims):
        ax.hist(samples[:, u].numpy(), bins=60, range=(-reach, reach), density=True, color="tab:blue", alpha=0.6,
                label="q(z) aggregate")
        log_density, label = prior_marginal(prior, [u])
        ax.plot(grid.numpy(), log_density(grid.unsqueeze(-1)).exp().double().numpy(), color="tab:red", lw=1.2,
                label=label)
        ax.set_title(f"z_{u}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("aggregate posterior q(z) = (1/N) Σ_n q(z|x_n) vs prior p(z), most active dimensions", fontsize=10)
    fig.supxlabel("z_u, latent units", fontsize=9)
    fig.supylabel("density per latent unit", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)

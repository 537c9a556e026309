"""Every ArviZ call of the analysis, in one place (ArviZ 0.23; a move to ArviZ 1.x changes this file, the
evidence's k̂ in inference/psis.py, and the import in inference/arviz_import.py).

Two InferenceData objects describe one set of images with the same dims and coords:

* the true posterior p(z | x), sampled by NUTS: group ``posterior`` with ``z`` of dims
  (chain, draw, image, latent), and ``sample_stats`` ``diverging``, ``tree_depth``, ``n_steps``
  (leapfrog steps) of dims (chain, draw, image);
* the approximate posterior q(z | x), drawn from the guide: group ``posterior`` with ``z`` of the
  same dims (its "chains" are independent draws, so its R-hat and ESS are those of iid samples).

Coordinates: ``image`` holds the images' indices in the data split, ``latent`` the dimension
numbers 0..d−1. Both are saved as netCDF (``idata.to_netcdf``) and open with plain
``arviz.from_netcdf``.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from bayesvae.inference.arviz_import import az
from bayesvae.inference.files import atomic_path

InferenceData = az.InferenceData
DIMS = ["image", "latent"]


def _coords(image_ids: Sequence[int], latent_dim: int) -> dict:
    return {"image": [int(i) for i in image_ids], "latent": list(range(latent_dim))}


def posterior_idata(z: np.ndarray, image_ids: Sequence[int], stats: dict[str, np.ndarray] | None = None,
                    attrs: dict | None = None) -> InferenceData:
    """InferenceData of draws ``z`` (chain, draw, image, latent) with per-image sample stats (chain, draw, image)."""
    stats = stats or {}
    return az.from_dict(
        posterior={"z": np.asarray(z)},
        sample_stats={name: np.asarray(value) for name, value in stats.items()} or None,
        coords=_coords(image_ids, z.shape[-1]),
        dims={"z": DIMS, **{name: ["image"] for name in stats}},
        attrs=attrs or {},
    )


def save_netcdf(idata: InferenceData, path: Path) -> Path:
    """Write ``idata`` to ``path`` (.nc) atomically; readable with ``arviz.from_netcdf(path)``."""
    with atomic_path(path) as tmp:
        idata.to_netcdf(str(tmp))
    return Path(path)


def load_netcdf(path: Path) -> InferenceData:
    return az.from_netcdf(str(path))


def convergence(idata: InferenceData) -> dict[str, np.ndarray]:
    """Per (image, latent): rank-normalized split R-hat, bulk and tail ESS, MCSE of the mean (Vehtari et al. 2021).

    Arrays of shape (N, d); ESS in effective draws (all chains together), MCSE in units of z.
    """
    return {
        "r_hat": az.rhat(idata)["z"].values,
        "ess_bulk": az.ess(idata, method="bulk")["z"].values,
        "ess_tail": az.ess(idata, method="tail")["z"].values,
        "mcse_mean": az.mcse(idata, method="mean")["z"].values,
    }


def summary_table(idata: InferenceData):
    """``az.summary`` (pandas DataFrame, one row per z[image, latent]): mean, sd, HDI, MCSE, ESS, R-hat."""
    return az.summary(idata)


def psis_khat(log_weights: np.ndarray) -> np.ndarray:
    """Pareto k̂ of importance weights, one per row of ``log_weights`` (N, S): samples last.

    ``az.psislw`` fits a generalized Pareto distribution to the largest weights (Vehtari et al. 2015/2024).
    """
    _, khat = az.psislw(np.asarray(log_weights, dtype=np.float64))
    return np.atleast_1d(np.asarray(khat))


@contextmanager
def _quiet_plotting() -> Iterator[None]:
    """ArviZ 0.23 calls a matplotlib API deprecated in 3.11 on every plot; the warning is theirs, not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Passing a dict or None as alias_mapping")
        yield


def plot_trace_image(idata: InferenceData, image: int, latent: Sequence[int], axes) -> None:
    """ArviZ trace plot (density, trace) of z[image, latent] on a row of two ``axes``, divergences marked."""
    sub = az.InferenceData(posterior=idata.posterior.sel(image=image, latent=list(latent)),
                           sample_stats=idata.sample_stats.sel(image=image))
    with _quiet_plotting():
        az.plot_trace(sub, var_names=["z"], compact=True, axes=np.atleast_2d(axes), divergences="bottom",
                      legend=False)


def plot_pair_scatter(idata: InferenceData, image: int, latent: tuple[int, int], ax) -> None:
    """ArviZ pair plot (scatter) of two latent dimensions of one image on ``ax``."""
    with _quiet_plotting():
        az.plot_pair(idata, var_names=["z"], coords={"image": [image], "latent": list(latent)}, kind="scatter",
                     ax=ax, scatter_kwargs={"alpha": 0.3, "s": 4, "color": "C0"}, textsize=8)


def plot_forest_compare(idatas: Sequence[InferenceData], names: Sequence[str], image: int, ax) -> None:
    """ArviZ forest plot of every latent dimension of one image, one row per model (94 % HDI, quartiles)."""
    with _quiet_plotting():
        az.plot_forest(list(idatas), model_names=list(names), var_names=["z"], coords={"image": [image]},
                       combined=True, ax=ax, textsize=8, legend=True)

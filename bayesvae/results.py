"""Typed results of ``bayesvae.diagnose`` and ``bayesvae.compare``: the JSON-ready dict, plus tables as data.

Both results are the dicts the commands write as JSON (every key stays), with views for analysis:

    result = bayesvae.diagnose(run)
    result.table            # pandas DataFrame, one row per quantity (value, se, how), nats per image
    result.per_dimension    # pandas DataFrame indexed by latent dimension (KL_u, activity, spread, ...)
    result.per_image        # xarray Dataset, dims (image, latent): log p(x), ELBO, gap, E_q[z], Std_q[z]
    result.mcmc, result.guide_draws   # part 2's draws as ArviZ InferenceData (None when part 2 did not run)

    comparison = bayesvae.compare(["runs/a", "runs/b"])
    comparison.table        # pandas DataFrame indexed by run name, the printed columns and more

The printed tables and the JSON files are renderings of these same numbers (analysis.render).
"""

from __future__ import annotations


class DiagnoseResult(dict):
    """diagnose's results (see the module docstring); ``_arrays`` holds the per-image tensors of part 1."""

    def __init__(self, results: dict, arrays: dict | None = None, image_ids=None):
        super().__init__(results)
        self._arrays = arrays or {}
        self._image_ids = list(image_ids) if image_ids is not None else None

    @property
    def table(self):
        import pandas as pd

        return pd.DataFrame(self["table"]).set_index("quantity")

    @property
    def per_dimension(self):
        import pandas as pd

        frame = pd.DataFrame(self["latent"]["per_dimension"]).set_index("dim")
        frame.index.name = "latent"
        return frame

    @property
    def per_image(self):
        """Per-image evidence (image) and posterior moments (image, latent) as an xarray Dataset, nats."""
        import xarray as xr

        means = self._arrays["means"]
        images = self._image_ids if self._image_ids is not None else list(range(means.shape[0]))
        data = {"mean_q": (("image", "latent"), means.cpu().numpy()),
                "std_q": (("image", "latent"), self._arrays["stds"].cpu().numpy())}
        for name in ("log_px", "elbo", "gap"):
            if self._arrays.get(name) is not None:
                data[name] = (("image",), self._arrays[name].cpu().numpy())
        return xr.Dataset(data, coords={"image": images, "latent": list(range(means.shape[1]))},
                          attrs={"units": "nats per image", "split": self.get("split")})

    def _idata(self, which: str):
        return (self.get("posterior") or {}).get("inference_data", {}).get(which)

    @property
    def mcmc(self):
        """NUTS draws of p(z|x) as ArviZ InferenceData (chain, draw, image, latent), or None."""
        return self._idata("mcmc")

    @property
    def guide_draws(self):
        """Draws of q(z|x) in the same shape as :attr:`mcmc`, or None."""
        return self._idata("guide")


class CompareResult(dict):
    """compare's results: ``runs`` (rows), ``notes``, ... and :attr:`table`."""

    @property
    def table(self):
        import pandas as pd

        return pd.DataFrame(self["runs"]).set_index("name")

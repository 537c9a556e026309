"""What a notebook asks of a trained :class:`~bayesvae.run.Run`: the guide and the model as distributions.

    run = bayesvae.load_run("runs/vae")
    q = run.encode(x)              # q(z|x): a torch Distribution, batch shape (N,), for any guide (traced)
    p = run.decode(q.mean)         # p(x|z): the likelihood at z, batch shape (N,)
    run.sample(16)                 # E[x|z], z ~ p(z)
    run.reconstruct(x)             # E[x|z], z ~ q(z|x)
    run.interpolate(x[0], x[1])    # E[x|z] along the line between the two posterior means
    run.log_evidence(x, k=1000)    # importance-sampled log p(x) per image, nats (with ELBO and s.e.)
    run.history                    # the training history as a pandas DataFrame, one row per epoch

Every method reads the pair through Pyro traces (the guide's site ``z``, the model's site ``x``), so user
guides and models work as the built-in ones do. Images may be one image ``(C, H, W)`` or a batch.
"""

from __future__ import annotations

import torch
from pyro import poutine
from torch.distributions import Distribution

from bayesvae.analysis.samples import likelihood_mean, prior_samples, reconstruct
from bayesvae.inference.evidence import EvidenceEstimate, estimate_log_evidence
from bayesvae.inference.local_posterior import amortized_posterior
from bayesvae.models.errors import BadInput
from bayesvae.models.sites import LATENT, OBSERVED


class NotebookViews:
    """Methods of :class:`~bayesvae.run.Run` for interactive use (the run provides ``pair``, ``config``, ``device``)."""

    def _batch(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.get_default_dtype()).to(self.device)
        shape = tuple(self.config.image_shape)
        if tuple(x.shape) == shape:
            return x.unsqueeze(0)
        if tuple(x.shape[1:]) != shape:
            raise BadInput(f"expected images of shape {shape} (or a batch of them), got {tuple(x.shape)}")
        return x

    def encode(self, x) -> Distribution:
        """q(z | x) for the images ``x``: the guide's distribution at ``z`` (batch shape (N,))."""
        return amortized_posterior(self.pair, self._batch(x))

    @torch.no_grad()
    def _decoded(self, z) -> poutine.Trace:
        """The model traced with its latent site fixed at ``z`` (N, d)."""
        z = torch.as_tensor(z, dtype=torch.get_default_dtype()).to(self.device)
        z = z.unsqueeze(0) if z.dim() == 1 else z
        like = torch.zeros(z.shape[0], *self.config.image_shape, device=self.device)
        with self.pair.active():
            return poutine.trace(poutine.condition(self.pair.model, data={LATENT: z})).get_trace(like)

    def decode(self, z) -> Distribution:
        """p(x | z) for latents ``z`` of shape (N, d): the model's likelihood at ``x`` with z fixed."""
        return self._decoded(z).nodes[OBSERVED]["fn"]

    def sample(self, n: int = 16) -> torch.Tensor:
        """``n`` images E[x | z] at z ~ p(z) (shape (n, C, H, W))."""
        return prior_samples(self.pair, torch.zeros(1, *self.config.image_shape, device=self.device), n)

    def reconstruct(self, x) -> torch.Tensor:
        """E[x | z] at one z ~ q(z | x) per image."""
        return reconstruct(self.pair, self._batch(x))

    @torch.no_grad()
    def interpolate(self, x_a, x_b, steps: int = 8) -> torch.Tensor:
        """E[x | z_t] at z_t = (1 − t) m_a + t m_b, t = 0 … 1 in ``steps`` steps, m = E_q[z | x] (the
        posterior means; a Monte Carlo mean of 256 draws for a guide without ``.mean``)."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise BadInput(f"steps must be a whole number ≥ 2, got {steps!r}")
        q = self.encode(torch.cat([self._batch(x_a), self._batch(x_b)]))
        try:
            means = q.mean
        except NotImplementedError:
            means = q.sample((256,)).mean(0)
        t = torch.linspace(0, 1, steps, device=means.device).unsqueeze(1)
        return likelihood_mean(self._decoded((1 - t) * means[0] + t * means[1]))

    def log_evidence(self, x, k: int = 1000) -> EvidenceEstimate:
        """log p(x) per image by importance sampling with K = ``k`` draws of q (nats; ``.elbo``, ``.se``, ``.gap``)."""
        return estimate_log_evidence(self.pair, self._batch(x), k=k)

    @property
    def history(self):
        """The training history as a pandas DataFrame indexed by epoch (the columns of metrics.csv)."""
        import pandas as pd

        frame = pd.DataFrame(list(self.state.history) if self.state else [])
        return frame.set_index("epoch") if "epoch" in frame else frame

    def __repr__(self) -> str:
        model, training = self.config.model, self.config.training
        parts = [f"model {model.model}" + (f" ({model.prior} prior, {model.likelihood} likelihood)"
                                           if model.builtin_model else ""),
                 f"guide {model.guide}", f"z {model.latent_dim}",
                 f"data {self.config.data.dataset} {tuple(self.config.image_shape)}"]
        done = self.state.epoch if self.state else 0
        last = self.state.history[-1]["test_elbo"] if self.state and self.state.history else None
        trained = f"trained {done}/{training.epochs} epochs" + (f", test ELBO {last:.2f} nats" if last is not None else "")
        where = str(self.path) if self.path else "in memory"
        return f"Run({where}: {', '.join(parts)}; {trained}; elbo {training.elbo}, β {training.beta:g}; {self.device})"

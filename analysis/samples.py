"""Pictures of what the model has learned: reconstructions through q(z|x) and p(x|z), and draws from the prior.

Both read the likelihood's mean E[x | z] from a trace of the model (for a Bernoulli likelihood, the
pixel probabilities), so they work for any pair that follows the protocol.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from pyro import poutine

from bayesvae.inference.files import atomic_path
from bayesvae.models.pair import Pair
from bayesvae.models.sites import OBSERVED


def likelihood_mean(trace: poutine.Trace) -> torch.Tensor:
    site = trace.nodes[OBSERVED]
    try:
        return site["fn"].mean.clamp(0, 1)
    except NotImplementedError:  # a likelihood without a mean: show a draw instead
        return site["fn"].sample().clamp(0, 1)


@torch.no_grad()
def reconstruct(pair: Pair, x: torch.Tensor) -> torch.Tensor:
    """E[x | z] at z ~ q(z | x): one reconstruction per image, shape of ``x``."""
    with pair.active():
        guide_trace = poutine.trace(pair.guide).get_trace(x)
        model_trace = poutine.trace(poutine.replay(pair.model, trace=guide_trace)).get_trace(x)
    return likelihood_mean(model_trace)


@torch.no_grad()
def prior_trace(pair: Pair, like: torch.Tensor, n: int) -> poutine.Trace:
    """A trace of the model run unconditioned on a batch of ``n`` images shaped like ``like[0]``:
    z ~ p(z) at the latent site (learned priors included), p(x | z) at the observed site."""
    x = like[:1].expand(n, *like.shape[1:])
    with pair.active():
        return poutine.trace(poutine.uncondition(pair.model)).get_trace(x)


def prior_samples(pair: Pair, like: torch.Tensor, n: int = 64) -> torch.Tensor:
    """E[x | z] at z ~ p(z): ``n`` images shaped like ``like[0]``."""
    return likelihood_mean(prior_trace(pair, like, n))


def _upscaled(images: torch.Tensor, min_side: int = 56) -> torch.Tensor:
    factor = max(1, min_side // images.shape[-1])
    return F.interpolate(images, scale_factor=factor, mode="nearest") if factor > 1 else images


def save_grid(images: torch.Tensor, path: Path, nrow: int) -> None:
    """An image grid (small images upscaled, nearest neighbour) written atomically to ``path``."""
    from torchvision.utils import make_grid, save_image  # torchvision takes ~1.5 s to import: only when drawing

    grid = make_grid(_upscaled(images.detach().float().cpu()), nrow=nrow, padding=2, pad_value=0.5)
    with atomic_path(path) as tmp:
        save_image(grid, tmp)


def save_reconstructions(pair: Pair, x: torch.Tensor, path: Path, n: int = 16) -> None:
    """Originals (odd rows) above their reconstructions (even rows), ``n`` test images."""
    x = x[:n]
    save_grid(_interleave_rows(x, reconstruct(pair, x), 8), path, nrow=8)


def _interleave_rows(x: torch.Tensor, recon: torch.Tensor, per_row: int) -> torch.Tensor:
    blocks = []
    for start in range(0, x.shape[0], per_row):
        blocks += [x[start:start + per_row], recon[start:start + per_row]]
    return torch.cat(blocks)


def save_prior_samples(pair: Pair, like: torch.Tensor, path: Path, n: int = 64) -> None:
    """An 8-wide grid of E[x | z], z ~ p(z)."""
    save_grid(prior_samples(pair, like, n), path, nrow=8)

"""Coverage of the evidence error bar over Monte Carlo seeds on the linear-Gaussian model (exact log p(x)).

For guides q = the exact posterior shifted by ``shift`` and with its standard deviations scaled by ``s``
(weights with a Pareto tail of shape k = 1 − s² when s < 1), the fraction of intervals log p̂ ± 2 se
that hold the exact log p(x), over seeds × images, for the block-jackknife se (what bayesvae reports)
and the delta-method one; and, since every miss of a heavy tail is the same side, how many of the
misses have the truth above the interval. Not a speed: no ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import torch

GUIDES = ((1.3, 0.2), (0.7, 0.0), (0.6, 0.0), (0.5, 0.0))   # (s, shift)


@dataclass
class Row:
    scale: float
    shift: float
    khat_max: float
    jackknife: float
    delta: float
    misses_above: float


def measure(seeds: int, k: int = 1000, images: int = 20) -> list[Row]:
    from bayesvae.inference.evidence import estimate_log_evidence
    from bayesvae.models.linear_gaussian import exact_guide, linear_gaussian_pair, random_linear_gaussian

    model = random_linear_gaussian(D=6, d=2, sigma=0.5, seed=1)
    x = model.sample_images(images, torch.Generator().manual_seed(2))
    exact = model.log_evidence(x).detach().double()
    rows = []
    for scale, shift in GUIDES:
        pair = linear_gaussian_pair(model, exact_guide(model, shift=shift, scale_factor=scale))
        error, se, delta, khat = [], [], [], []
        for seed in range(seeds):
            pyro.set_rng_seed(seed)
            e = estimate_log_evidence(pair, x, k=k, chunk=k, batch_size=images)
            error.append(exact - e.log_px.double())
            se.append(e.se.double())
            delta.append(e.delta_se.double())
            khat.append(e.khat_max)
        error, se, delta = torch.stack(error), torch.stack(se), torch.stack(delta)
        missed = error.abs() > 2 * se
        rows.append(Row(scale, shift, max(khat), float((~missed).double().mean()),
                        float((error.abs() <= 2 * delta).double().mean()),
                        float((missed & (error > 0)).sum() / missed.sum().clamp(min=1))))
    return rows


def markdown(rows: list[Row], seeds: int, k: int = 1000, images: int = 20) -> list[str]:
    lines = [f"{seeds} seeds × {images} images, K = {k}, nominal 95 % (±2 se):", "",
             "| guide s (shift) | tail k = 1 − s² | largest k̂ | **coverage, jackknife se** | coverage, delta-method se "
             "| misses with the truth above |", "|---|---|---|---|---|---|"]
    for r in rows:
        tail = f"{1 - r.scale ** 2:.2f}" if r.scale < 1 else "none (bounded weights)"
        lines.append(f"| {r.scale} ({r.shift}) | {tail} | {r.khat_max:.2f} | **{r.jackknife:.3f}** | {r.delta:.3f} | "
                     f"{100 * r.misses_above:.0f} % |")
    return lines

"""Evaluation throughput: images per second, and the ratio to a compute floor timed in the same run.

* Evidence: ``bayesvae.inference.evidence.estimate_log_evidence`` (importance-sampled log p(x), K draws of
  q(z | x) per image, streamed in blocks). Its floor is the decoder alone on the same N × K latents in
  the same blocks, as one plain batched chain of matmuls (no Pyro, no likelihood, no encoder): the
  work no implementation of the estimate can skip.
* Aggregate posterior: ``bayesvae.analysis.aggregate.elbo_surgery`` (mutual information and marginal KL:
  log q(z) by a log-sum-exp over all N encodings for each of N draws). Its floor is the same float64
  matrix products and log-sum-exps over the N × N pairs, as one plain loop (encoder and draws excluded).

A ratio of 1.0 means no overhead beyond the floor; the floors are lower bounds, not alternatives
(the evidence also scores the likelihood and runs the encoder, the floor does not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .common import Ratio, interleaved, median


@dataclass
class Row:
    quantity: str
    n: int
    k: int
    seconds: float
    floor_seconds: float
    ratio: Ratio
    note: str = ""

    @property
    def images_per_second(self) -> float:
        return self.n / self.seconds


def _decoder_floor(decoder: torch.nn.Module, latent_dim: int, n: int, k: int, batch_size: int, chunk: int):
    """The decoder on n × k latents in blocks of (chunk draws × batch_size images), nothing else."""
    z = torch.randn(chunk * batch_size, latent_dim)

    @torch.no_grad()
    def run() -> None:
        for start in range(0, n, batch_size):
            rows = min(batch_size, n - start)
            for drawn in range(0, k, chunk):
                decoder(z[: min(chunk, k - drawn) * rows])
    return run


def evidence(pair, x: torch.Tensor, k: int, repetitions: int, chunk: int = 25, batch_size: int = 100) -> Row:
    from bayesvae.inference.evidence import estimate_log_evidence

    latent_dim = _latent_dim(pair, x)
    contenders = {
        "estimate": lambda: estimate_log_evidence(pair, x, k=k, chunk=chunk, batch_size=batch_size),
        "floor": _decoder_floor(pair.model.decoder, latent_dim, x.shape[0], k, batch_size, chunk),
    }
    timings = interleaved(contenders, repetitions, warmup=0)
    return Row("log p(x), importance sampling", x.shape[0], k, median(timings.wall["estimate"]),
               median(timings.wall["floor"]), Ratio.of(timings.wall["estimate"], timings.wall["floor"]),
               f"floor: decoder forward on N·K = {x.shape[0] * k:,} latents")


def _surgery_floor(n: int, latent_dim: int, batch_size: int, chunk: int):
    """log q(z_m) = logsumexp_n [features(z_m) · weights(x_n)] − log N for N draws, blocks as in aggregate.py."""
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(n, 2 * latent_dim + 1, dtype=torch.float64, generator=generator)
    weights = torch.randn(n, 2 * latent_dim + 1, dtype=torch.float64, generator=generator) / latent_dim

    @torch.no_grad()
    def run() -> None:
        for start in range(0, n, chunk):
            block = features[start:start + chunk]
            total = torch.full((block.shape[0],), -math.inf, dtype=torch.float64)
            for first in range(0, n, batch_size):
                total = torch.logaddexp(total, (block @ weights[first:first + batch_size].T).logsumexp(-1))
    return run


def aggregate_posterior(pair, x: torch.Tensor, repetitions: int, batch_size: int = 1000, chunk: int = 1000) -> Row:
    from bayesvae.analysis.aggregate import elbo_surgery

    latent_dim = _latent_dim(pair, x)
    contenders = {
        "surgery": lambda: elbo_surgery(pair, x, batch_size=batch_size, chunk=chunk),
        "floor": _surgery_floor(x.shape[0], latent_dim, batch_size, chunk),
    }
    timings = interleaved(contenders, repetitions, warmup=0)
    return Row("aggregate posterior (MI, marginal KL)", x.shape[0], 1, median(timings.wall["surgery"]),
               median(timings.wall["floor"]), Ratio.of(timings.wall["surgery"], timings.wall["floor"]),
               f"floor: float64 products and log-sum-exps over N² = {x.shape[0] ** 2:,} pairs")


def _latent_dim(pair, x: torch.Tensor) -> int:
    from bayesvae.inference.terms import trace_terms

    with torch.no_grad():
        return trace_terms(pair, x[:2]).z.shape[-1]


def markdown(rows: list[Row]) -> list[str]:
    lines = ["| quantity | images N | draws K | seconds | images/s | floor seconds | **ratio to floor** median "
             "[min–max] | floor |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.quantity} | {r.n:,} | {r.k:,} | {r.seconds:.2f} | {r.images_per_second:,.1f} | "
                     f"{r.floor_seconds:.2f} | **{r.ratio}** | {r.note} |")
    return lines

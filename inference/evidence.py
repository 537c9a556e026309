"""The evidence log p(x) by importance sampling with the guide as proposal (the IWAE_K estimate).

For each image x, with K draws z_k ~ q(z | x) and importance weights w_k = p(x, z_k) / q(z_k | x):

    log p̂(x) = log (1/K) Σ_k w_k          IWAE_K bound: E[log p̂(x)] ≤ log p(x), increasing in K
    ELBO     ≈ (1/K) Σ_k log w_k          the same draws, averaged in log space
    log p̂(x) − ELBO  estimates  KL(q(z|x) ‖ p(z|x)), the gap to the true posterior

(Burda et al. 2015).

Standard error of log p̂(x): block jackknife. The K draws are split into J = min(20, K) blocks of
consecutive (independent) draws; with θ₋ⱼ the estimate from all draws except block j,

    se² = (J−1)/J Σ_j (θ₋ⱼ − θ̄)²,

which is conservative in expectation (the Efron–Stein inequality, for the estimate on J−1 blocks), also
where the weights are heavy-tailed. The delta-method error Var[w] / (K E[w]²), estimated from the sample
variance of the weights (``delta_se``), linearizes the log and on heavy-tailed weights is too small
(about half the spread over seeds on MNIST). Neither contains the downward bias of log p̂ (≈ se²/2).
Coverage of both is checked against the exact log p(x) of the linear-Gaussian model in
tests/test_evidence_coverage.py. Heavy tails are measured per image by the PSIS k̂ (:mod:`.psis`):
above 0.7 no error bar from the draws can be trusted.

The draws are streamed: ``chunk`` draws for a block of images at a time, so memory is the traces of
``batch_size`` images × ``chunk`` draws plus the K log-weights of each image of the block (kept for the
jackknife and k̂; the block of images shrinks so that at most 2·10⁶ log-weights are held), whatever N is.
Densities come from Pyro traces (:func:`~bayesvae.inference.terms.trace_terms`) at β = 1. All values
in nats per image.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import pyro
import pyro.distributions
import torch
from tqdm.auto import tqdm

from bayesvae.models.errors import BadInput
from bayesvae.models.pair import Pair

from .allocator import keep_freed_blocks
from .compiled import CompiledLogWeights, traceable
from .distributed import SINGLE_PROCESS, SingleProcess
from .psis import KHAT_UNRELIABLE, pareto_khat
from .terms import trace_terms

BLOCKS = 20
"""Blocks of draws of the jackknife standard error."""
MAX_HELD_WEIGHTS = 2_000_000
"""At most this many log-weights (16 MB) are held at once: K per image of a block of images."""

POINT_MASS_MESSAGE = ("the guide is a point mass (Delta): it has no density q(z|x), so there are no importance "
                      "weights p(x,z)/q(z|x) and log p(x) cannot be estimated with it as proposal")


@dataclass
class EvidenceEstimate:
    """Per-image importance-sampling estimates from K draws of q(z | x), nats, shape ``(N,)``.

    ``se`` is the block-jackknife standard error of ``log_px`` and ``delta_se`` the delta-method one
    (see the module docstring); ``elbo_se`` the standard error of ``elbo`` (sample std of log w_k over
    √K); ``khat`` the PSIS k̂ of each image's K weights (NaN where it cannot be fitted, see :mod:`.psis`).
    """

    log_px: torch.Tensor
    elbo: torch.Tensor
    se: torch.Tensor
    elbo_se: torch.Tensor
    k: int
    seconds: float = math.nan
    delta_se: torch.Tensor | None = None
    khat: torch.Tensor | None = None

    se_method = f"block jackknife over {BLOCKS} blocks of draws"

    @property
    def n(self) -> int:
        return self.log_px.shape[0]

    @property
    def mean_log_px(self) -> float:
        """(1/N) Σ_n log p̂(x_n): the evidence per image, averaged over the images."""
        return float(self.log_px.mean())

    @property
    def mean_elbo(self) -> float:
        return float(self.elbo.mean())

    @property
    def gap(self) -> torch.Tensor:
        """log p̂(x) − ELBO per image: the estimate of KL(q(z|x) ‖ p(z|x))."""
        return self.log_px - self.elbo

    @property
    def mean_gap(self) -> float:
        return float(self.gap.mean())

    @property
    def se_mean(self) -> float:
        """Standard error of :attr:`mean_log_px` (independent draws per image): sqrt(Σ se_n²) / N."""
        return _mean_se(self.se)

    @property
    def delta_se_mean(self) -> float:
        return _mean_se(self.delta_se)

    @property
    def elbo_se_mean(self) -> float:
        return _mean_se(self.elbo_se)

    @property
    def khat_max(self) -> float:
        """The largest k̂ over the images (NaN when none could be fitted)."""
        finite = self.khat[~self.khat.isnan()]
        return float(finite.max()) if finite.numel() else math.nan

    @property
    def n_khat_above_0_7(self) -> int:
        """How many images have k̂ > 0.7: their log p̂ (and its error bar) cannot be trusted."""
        return int((self.khat > KHAT_UNRELIABLE).sum())

    def summary(self) -> dict:
        """The JSON-ready means over images (nats per image) with their errors and the k̂ per image."""
        return {"log_px": self.mean_log_px, "log_px_se": self.se_mean, "se_method": self.se_method,
                "log_px_delta_se": self.delta_se_mean, "elbo": self.mean_elbo, "elbo_se": self.elbo_se_mean,
                "gap": self.mean_gap, "gap_se": math.hypot(self.se_mean, self.elbo_se_mean), "k": self.k,
                "khat": [None if math.isnan(v) else v for v in self.khat.tolist()],
                "khat_max": None if math.isnan(self.khat_max) else self.khat_max,
                "n_khat_above_0_7": self.n_khat_above_0_7}


def _mean_se(se: torch.Tensor) -> float:
    return float(se.double().square().sum().sqrt() / se.shape[0])


def summarize_log_weights(log_w: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """From log-weights ``(K, B)`` of B images: (log p̂, ELBO, jackknife se, delta se, ELBO se, k̂), each ``(B,)``.

    Computed in float64 and in log space (no overflow); the standard errors are NaN for K = 1.
    """
    log_w = log_w.to(torch.float64)
    k = log_w.shape[0]
    log_sum_w = log_w.logsumexp(0)
    log_px = log_sum_w - math.log(k)
    elbo = log_w.mean(0)
    khat = pareto_khat(log_w).to(log_w.device)
    if k < 2:
        nan = torch.full_like(elbo, math.nan)
        return log_px.float(), elbo.float(), nan.float(), nan.float(), nan.float(), khat
    # K Σw²/(Σw)² − 1 ∈ [0, K − 1]: the relative variance of w
    ratio = torch.exp((2 * log_w).logsumexp(0) - 2 * log_sum_w + math.log(k)) - 1
    delta_se = (ratio.clamp(min=0) / (k - 1)).sqrt()
    elbo_se = log_w.std(0) / math.sqrt(k)
    return log_px.float(), elbo.float(), block_jackknife_se(log_w).float(), delta_se.float(), elbo_se.float(), khat


def block_jackknife_se(log_w: torch.Tensor, blocks: int = BLOCKS) -> torch.Tensor:
    """Jackknife standard error of log((1/K) Σ_k w_k) over ``min(blocks, K)`` blocks of draws, ``(B,)``.

    Leave-one-block-out sums are log-sum-exps over the other blocks (exact, also when one block holds
    nearly all the weight).
    """
    parts = log_w.tensor_split(min(blocks, log_w.shape[0]), dim=0)
    j = len(parts)
    log_block = torch.stack([part.logsumexp(0) for part in parts])                   # (J, B)
    counts = torch.tensor([part.shape[0] for part in parts], dtype=log_w.dtype, device=log_w.device)
    others = log_block.expand(j, j, -1).masked_fill(torch.eye(j, dtype=torch.bool, device=log_w.device)[..., None],
                                                    -math.inf)
    loo = others.logsumexp(1) - (log_w.shape[0] - counts).log()[:, None]              # θ₋ⱼ, (J, B)
    return ((j - 1) / j * (loo - loo.mean(0)).square().sum(0)).sqrt()


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise BadInput(f"--k must be a whole number ≥ 2 (importance samples per image; the standard error "
                       f"needs two), got {k!r}")
    return k


def _check_arguments(pair: Pair, x: torch.Tensor, rows: int, devices: list) -> None:
    """What the first chunk's Pyro trace checks where the chunks are compiled: one draw per image, traced
    by Pyro with validation as set (pixels in the likelihood's support, ...), and that the guide has a
    density. ``rows`` images at a time (a chunk's rows: no more memory than a chunk); the draws come from
    a forked generator, so the estimate's draws are those it would make without the check.

    Why not check in each block's first chunk, as the interpreted path does: that chunk then runs through
    Pyro (about 1.4 times the compiled chunk's time), once per block of images; this costs one
    one-draw trace per ``rows`` images."""
    with torch.random.fork_rng(devices=devices):
        for start in range(0, x.shape[0], rows):
            if trace_terms(pair, x[start:start + rows], num_samples=1).point_mass:
                raise BadInput(POINT_MASS_MESSAGE)


def draw_counts(k: int, chunk: int) -> Iterator[int]:
    """Chunk sizes that add up to ``k``: ``chunk, chunk, ..., remainder``."""
    for start in range(0, k, chunk):
        yield min(chunk, k - start)


def block_seed(seed: int, block: int) -> int:
    """The torch seed of image block ``block``'s draws: a function of the seed and the block only, so
    the draws of an image do not depend on which process or in which order its block is estimated."""
    return (seed * 1_000_003 + block * 0x9E3779B1) % 2**63


@torch.no_grad()
def estimate_log_evidence(pair: Pair, x: torch.Tensor, k: int = 1000, chunk: int = 25, batch_size: int = 100,
                          progress: bool | None = False, seed: int | None = None,
                          runtime: SingleProcess = SINGLE_PROCESS, compiled: bool | None = None) -> EvidenceEstimate:
    """Importance-sampled log p(x) for every image of ``x`` with K draws of the guide (see module docstring).

    ``chunk`` draws × ``batch_size`` images are traced at a time (vectorized in a particle plate);
    peak memory is that block's model trace plus its images' K log-weights, independent of N.
    Each block of images draws from torch's generator seeded with :func:`block_seed` (``seed``; default:
    one number drawn from torch's global RNG, so ``pyro.set_rng_seed`` still fixes the result), restored
    afterwards. With a data-parallel ``runtime`` each rank estimates a contiguous run of blocks and the
    per-image results are gathered in image order: the same numbers as one process for the same seed.
    ``progress``: True shows a tqdm bar over the N × K draws, None shows it only on a terminal.
    ``compiled``: score every chunk with :class:`.compiled.CompiledLogWeights` (default: when the pair
    is :func:`.compiled.traceable`); the same numbers either way (bit for bit, or within 10⁻⁶ nats for
    the low-rank and full-covariance guides, see that class). What Pyro's trace checks (the arguments,
    when validation is on, and that the guide has a density) is checked by Pyro either way: in each
    block's first chunk when interpreted, by a one-draw trace per image before the chunks when compiled.
    The first call in a process tunes glibc's allocator to keep freed large blocks (:mod:`.allocator`).
    Raises :class:`BadInput` for a point-mass guide (no importance weights) and for K < 2.
    """
    k = check_k(k)
    if x.shape[0] == 0:
        raise BadInput("no images to estimate log p(x) on")
    if chunk < 1 or batch_size < 1:
        raise BadInput(f"chunk and batch_size must be ≥ 1, got {chunk} and {batch_size}")
    started = time.perf_counter()
    keep_freed_blocks()   # the chunks free and re-allocate the same large blocks (see .allocator)
    seed = runtime.from_writer(int(torch.randint(2**31, ())) if seed is None else seed)
    size = max(1, min(batch_size, MAX_HELD_WEIGHTS // k))
    mine = runtime.share(torch.arange(math.ceil(x.shape[0] / size))).tolist()
    parts: list[tuple[torch.Tensor, ...]] = []
    validate = pyro.distributions.is_validation_enabled()
    devices = [x.device] if x.device.type == "cuda" else []
    compiled_log_weights = CompiledLogWeights(pair) if (traceable(pair) if compiled is None else compiled) else None
    if compiled_log_weights is not None and mine:   # every chunk compiled: check the arguments first, apart
        _check_arguments(pair, x[mine[0] * size:(mine[-1] + 1) * size], min(chunk, k) * size, devices)
    with tqdm(total=min(x.shape[0], len(mine) * size) * k, desc=f"evidence log p(x), K={k}", unit="draw",
              unit_scale=True, disable=None if progress is None else not progress, leave=False) as bar:
        for block in mine:
            xb = x[block * size:(block + 1) * size]
            log_w = []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(block_seed(seed, block))
                score = None if compiled_log_weights is None else compiled_log_weights.for_images(xb)
                for i, count in enumerate(draw_counts(k, chunk)):
                    if score is not None:
                        with pair.active():
                            log_w.append(score(count))
                    else:
                        # argument checks (pixels in the likelihood's support, ...) once per batch of images
                        with pyro.validation_enabled(validate and i == 0):
                            terms = trace_terms(pair, xb, num_samples=count)
                        if terms.point_mass:
                            raise BadInput(POINT_MASS_MESSAGE)
                        log_w.append(terms.log_weight)
                    bar.update(count * xb.shape[0])
            parts.append(summarize_log_weights(torch.cat(log_w)))
    columns = [torch.cat(column) for column in zip(*parts)]
    if runtime.synchronizes:   # one gather of all six columns in float64; then float32 as summarized, k̂ float64
        gathered = runtime.gather_blocks(torch.stack([c.double().to(x.device) for c in columns]) if parts else
                                         torch.empty(6, 0, dtype=torch.float64, device=x.device), x.shape[0], size)
        columns = [column.float() for column in gathered[:5]] + [gathered[5]]
    log_px, elbo, se, delta_se, elbo_se, khat = columns
    return EvidenceEstimate(log_px, elbo, se, elbo_se, k, time.perf_counter() - started, delta_se=delta_se, khat=khat)

"""Reading a run's own training curves: the per-epoch metrics rows (``TrainState.history``).

Each row holds ``epoch``, ``beta``, ``train_loss`` (−objective averaged over the epoch's batches,
nats/image, β-weighted), ``test_elbo``, ``test_log_likelihood``, ``test_kl`` (β = 1, nats/image).
Plain numbers in, plain numbers out: these helpers know nothing of models or tensors.
"""

from __future__ import annotations

import math
import statistics

import bayesvae.analysis.findings.thresholds as T  # absolute: "from . import" would make the package a dependency


def pixels(config: dict) -> int | None:
    """D = C·H·W of one image from config.json's ``image_shape`` (None when absent)."""
    shape = (config or {}).get("image_shape")
    return math.prod(int(s) for s in shape) if shape else None


def column(history: list[dict], key: str) -> list[float]:
    """The finite values of ``key`` over the epochs (NaN, None and ±inf dropped)."""
    out = []
    for row in history:
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            out.append(float(value))
    return out


def loss_outliers(history: list[dict], d: int | None) -> tuple[int, float, float, float] | None:
    """(epoch, its loss, ratio, median of the other epochs) for the epoch whose training loss sits furthest
    above the median of the *other* epochs (so two epochs suffice to see a first-epoch explosion), where

        ratio = (loss_e − median_others) / max(|median_others|, LOSS_FLOOR_NATS_PER_PIXEL · D),

    or None with fewer than 2 finite epochs."""
    losses = [(row["epoch"], float(row["train_loss"])) for row in history
              if isinstance(row.get("train_loss"), (int, float)) and math.isfinite(row["train_loss"])]
    if len(losses) < 2:
        return None
    best = None
    for i, (epoch, loss) in enumerate(losses):
        median = statistics.median(other for j, (_, other) in enumerate(losses) if j != i)
        ratio = (loss - median) / max(abs(median), T.LOSS_FLOOR_NATS_PER_PIXEL * (d or 1), 1e-12)
        if best is None or ratio > best[2]:
            best = (epoch, loss, ratio, median)
    return best


def tail_windows(values: list[float]) -> tuple[list[float], list[float]] | None:
    """(the window before the tail, the tail): the last max(TAIL_MIN_EPOCHS, TAIL_FRACTION · n) values
    and as many before them; None when the curve is too short to judge."""
    n = len(values)
    w = max(T.TAIL_MIN_EPOCHS, int(round(T.TAIL_FRACTION * n)))
    if n < 2 * w:
        return None
    return values[n - 2 * w:n - w], values[n - w:]


def window_se(values: list[float], w: int) -> float:
    """Standard error of a mean over ``w`` epochs, from the epoch-to-epoch differences of ``values``
    (a difference of two independent epochs has variance 2σ²; drifts inflate it, which is conservative)."""
    diffs = [b - a for a, b in zip(values, values[1:])]
    if len(diffs) < 2:
        return math.inf
    sigma = statistics.pstdev(diffs) / math.sqrt(2)
    return sigma / math.sqrt(w)


def beta_constant_tail(history: list[dict], w: int) -> bool:
    """True when β did not change over the last 2w epochs (warm-up over): train and test are comparable."""
    betas = [row.get("beta") for row in history[-2 * w:]]
    return len(set(betas)) == 1

"""Findings from a run's training curves alone (``train`` prints them; RUN/findings.json).

``train_findings(history, config)``: ``history`` is the list of per-epoch metrics rows
(:mod:`.curves`), ``config`` the run's config.json as a dict. Each check is one function returning a
:class:`~.finding.Finding` or None; the thresholds are in :mod:`.thresholds`.
"""

from __future__ import annotations

import statistics

import bayesvae.analysis.findings.thresholds as T  # absolute: "from . import" would make the package a dependency
from .curves import beta_constant_tail, column, loss_outliers, pixels, tail_windows, window_se
from .finding import Finding
from .remedies import collapse_remedies
from .scale import gaussian_scale_finding


def _kl_exploded(history: list[dict], d: int | None) -> Finding | None:
    kls = [(row["epoch"], row["test_kl"]) for row in history if isinstance(row.get("test_kl"), (int, float))
           and row["test_kl"] == row["test_kl"]]
    if not kls or d is None:
        return None
    bound = T.KL_NATS_PER_PIXEL_MAX * d
    epoch, kl = max(kls, key=lambda item: item[1])
    if not kl > bound:
        return None
    return Finding("kl-exploded", "problem", f"the KL to the prior reached {kl:,.0f} nats per image (epoch {epoch})",
                   {"max_test_kl": kl, "epoch": epoch, "bound_nats": bound, "pixels": d},
                   f"That is more information than an 8-bit image of {d} pixels holds ({bound:.0f} nats): no code of "
                   f"the data needs it. The encoder diverged; every number of this run (ELBO, log p(x), KL) "
                   f"describes the divergence, not the data.",
                   "lower --lr (by 10× or more) and train again; for a Gaussian likelihood also try a larger "
                   "--likelihood-scale")


def _loss_explosion(history: list[dict], d: int | None, lr) -> Finding | None:
    found = loss_outliers(history, d)
    if found is None:
        return None
    epoch, loss, ratio, median = found
    if ratio < T.LOSS_OUTLIER_WARNING:
        return None
    severity = "problem" if ratio >= T.LOSS_OUTLIER_PROBLEM else "warning"
    where = "the first epoch" if epoch == 1 else f"epoch {epoch}"
    return Finding("loss-explosion", severity,
                   f"the training loss exploded in {where}: {loss:,.4g} nats per image against a median of {median:,.4g} over the other epochs",
                   {"epoch": epoch, "train_loss": loss, "median_train_loss": median, "ratio_to_median": ratio,
                    "lr": lr if lr is not None else "?"},
                   f"An epoch {ratio:,.0f}× the run's typical loss scale above its median: the optimizer took steps "
                   f"too large for the objective. Parameters thrown that far often do not come back (a frozen "
                   f"decoder, a KL stuck high), even when the loss later looks calm.",
                   f"lower --lr (now {lr}); a 10× smaller value is the usual first try")


def _collapse(history: list[dict], config: dict) -> Finding | None:
    kls = column(history, "test_kl")
    if not kls or kls[-1] >= T.KL_COLLAPSED_NATS:
        return None
    training = config.get("training", {})
    peak = max(kls)
    warmup = training.get("warmup_epochs", 0) or 0
    evidence = {"final_test_kl": kls[-1], "threshold_nats": T.KL_COLLAPSED_NATS, "epochs": len(history)}
    remedies = collapse_remedies(config)
    if warmup > 0 and peak > T.WARMUP_KL_PEAK_FACTOR * T.KL_COLLAPSED_NATS:
        epoch = max((row for row in history if row.get("test_kl") == peak), key=lambda r: r["epoch"])["epoch"]
        evidence.update({"peak_test_kl": peak, "peak_epoch": epoch, "warmup_epochs": warmup})
        return Finding("kl-vanished-under-warmup", "problem",
                       f"the KL vanished as warm-up raised β: {peak:.2f} nats at epoch {epoch}, {kls[-1]:.2f} at the end",
                       evidence,
                       "While β was small the codes carried information; once the KL was paid in full the model "
                       "found it cheaper to ignore z (posterior collapse after warm-up).",
                       "; ".join(["free bits or a longer --warmup-epochs"] + remedies))
    return Finding("posterior-collapse", "problem",
                   f"posterior collapse: the test KL ended at {kls[-1]:.2f} nats per image",
                   evidence,
                   "q(z|x) is (almost) the prior for every image: the code carries no information about x and the "
                   "decoder draws the same images whatever z is. Latent plots, probes and the amortization gap "
                   "of this run describe an unused latent space.",
                   "; ".join(remedies))


def _not_converged(history: list[dict]) -> Finding | None:
    elbo = column(history, "test_elbo")
    windows = tail_windows(elbo)
    if windows is None:
        return None
    before, tail = windows
    gain = statistics.fmean(tail) - statistics.fmean(before)
    se = window_se(elbo[-2 * len(tail):], len(tail)) * 2 ** 0.5
    tol = T.NOT_CONVERGED_RELATIVE * abs(elbo[-1])
    if not (gain > tol and gain > T.NOISE_FACTOR * se):
        return None
    return Finding("not-converged", "warning",
                   f"not converged: the test ELBO rose {gain:.2f} nats per image over the last {len(tail)} epochs",
                   {"gain_nats": gain, "tail_epochs": len(tail), "final_test_elbo": elbo[-1], "noise_se": se,
                    "tolerance_nats": tol},
                   "The test ELBO was still improving when training stopped; the run's numbers (ELBO, KL, active "
                   "units) are not yet the model's.",
                   f"train longer: bayesvae train --resume RUN --epochs {2 * len(history)}")


def _overfitting(history: list[dict]) -> Finding | None:
    elbo = column(history, "test_elbo")
    train = [-row["train_loss"] for row in history if isinstance(row.get("train_loss"), (int, float))]
    windows = tail_windows(elbo)
    if windows is None or len(train) != len(elbo) or not beta_constant_tail(history, len(windows[1])):
        return None
    w = len(windows[1])
    means = [statistics.fmean(elbo[i:i + w]) for i in range(len(elbo) - w + 1)]
    best = max(range(len(means)), key=means.__getitem__)
    drop = means[best] - means[-1]
    gap = [t - e for t, e in zip(train, elbo)]
    growth = statistics.fmean(gap[-w:]) - statistics.fmean(gap[best:best + w])
    se = window_se(elbo, w) * 2 ** 0.5
    tol = T.OVERFIT_RELATIVE * abs(elbo[-1])
    if not (drop > tol and drop > T.NOISE_FACTOR * se and growth > tol):
        return None
    return Finding("overfitting", "warning",
                   f"overfitting: the test ELBO fell {drop:.2f} nats per image from its best while the train/test gap "
                   f"grew {growth:.2f}",
                   {"test_elbo_drop_nats": drop, "gap_growth_nats": growth, "best_epochs_from": best + 1,
                    "final_test_elbo": elbo[-1], "noise_se": se},
                   "The training objective kept improving while the test ELBO got worse: the model (decoder and "
                   "encoder) is memorizing the training images.",
                   "stop earlier (--epochs), use more training data or a smaller network (--hidden)")


def train_findings(history: list[dict], config: dict) -> list:
    """Every finding the training curves support (list of :class:`Finding`; empty for a healthy run)."""
    if not history:
        return []
    config = config or {}
    d = pixels(config)
    lr = config.get("training", {}).get("lr")
    found = [_kl_exploded(history, d), _loss_explosion(history, d, lr), _collapse(history, config),
             _not_converged(history), _overfitting(history)]
    ll = column(history, "test_log_likelihood")
    if ll:
        found.append(gaussian_scale_finding(config, ll[-1], "the test set's E_q[log p(x|z)] at the last epoch"))
    return [f for f in found if f is not None]


def live_finding(history: list[dict], config: dict) -> Finding | None:
    """The explosion finding (``kl-exploded`` or ``loss-explosion``) of the epoch just finished, or None.

    A first-epoch explosion is seen once the second epoch gives a reference to compare it with."""
    if not history:
        return None
    d = pixels(config or {})
    recent = {history[-1]["epoch"]} | ({history[0]["epoch"]} if len(history) == 2 else set())
    for finding in (_kl_exploded(history[-1:], d), _loss_explosion(history, d, (config or {}).get("training", {}).get("lr"))):
        if finding is not None and finding.evidence.get("epoch") in recent:
            return finding
    return None


def live_warning(history: list[dict], config: dict) -> str | None:
    """One line to print during training when the epoch just finished exploded (None otherwise)."""
    finding = live_finding(history, config)
    return None if finding is None else f"warning: {finding.title}; {finding.remedy}"

"""Training curves from metrics.csv rows (one per epoch), all in nats per image.

Three panels, one line per run:

* objective: the training loss (the β-weighted −ELBO minimized on the training batches) solid, and
  −ELBO on the test split at β = 1 dashed (lower is better for both);
* KL(q(z|x) ‖ p(z)) on the test split (the rate), with the KL weight β of each epoch on a second axis
  when it changes (warm-up);
* E_q[log p(x | z)] on the test split (the reconstruction term; higher is better).

A point-mass guide (autoencoder) has no KL and no ELBO: its rows hold NaN there, and the panels say so.
Matplotlib's object API (``Figure``), so no global backend is switched.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.figure import Figure

from bayesvae.inference.files import atomic_path

History = list[dict]


def _series(rows: History, key: str) -> tuple[list[float], list[float]]:
    points = [(row["epoch"], row[key]) for row in rows if key in row and math.isfinite(row[key])]
    return [p[0] for p in points], [p[1] for p in points]


def training_figure(histories: list[tuple[str, History]]) -> Figure:
    """The figure of the module docstring for ``(run name, metrics rows)`` pairs."""
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    loss, kl, likelihood = fig.subplots(1, 3)
    for n, (name, rows) in enumerate(histories):
        colour = f"C{n % 10}"
        loss.plot(*_series(rows, "train_loss"), color=colour, label=f"{name}: training loss")
        epochs, elbo = _series(rows, "test_elbo")
        loss.plot(epochs, [-v for v in elbo], "--", color=colour, label=f"{name}: −test ELBO")
        kl.plot(*_series(rows, "test_kl"), color=colour, label=name)
        likelihood.plot(*_series(rows, "test_log_likelihood"), color=colour, label=name)
    betas = [_series(rows, "beta") for _, rows in histories]
    if any(len(set(values)) > 1 for _, values in betas):
        twin = kl.twinx()
        for n, (epochs, values) in enumerate(betas):
            twin.plot(epochs, values, ":", color=f"C{n % 10}", lw=1)
        twin.set_ylabel("KL weight β (dotted)")
    if not any(_series(rows, "test_kl")[0] for _, rows in histories):
        kl.text(0.5, 0.5, "no KL: point-mass guide", ha="center", va="center", transform=kl.transAxes)
    loss.set_title("objective (lower is better)")
    loss.set_ylabel("nats per image")
    kl.set_title("test KL(q(z|x) ‖ p(z))")
    kl.set_ylabel("KL, nats per image")
    likelihood.set_title("test E_q[log p(x|z)] (higher is better)")
    likelihood.set_ylabel("log-likelihood, nats per image")
    for ax in (loss, kl, likelihood):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    loss.legend(fontsize=7)
    if len(histories) > 1:
        kl.legend(fontsize=7)
    return fig


def training_png(histories: list[tuple[str, History]]) -> bytes:
    """The training-curve figure as PNG bytes (for embedding)."""
    buffer = io.BytesIO()
    training_figure(histories).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def save_training_curves(histories: list[tuple[str, History]], path: Path) -> Path:
    """The training-curve figure written atomically to ``path`` (PNG)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(training_png(histories))
    return Path(path)

"""Section 7, training: loss, test ELBO, KL and reconstruction term per epoch (RUN/metrics.csv, from ``train``)."""

from __future__ import annotations

from .html import Section, figure, missing, para
from .inputs import ResultSet, finite
from .numbers import num


def _summary(name: str, rows: list[dict]) -> str:
    last = rows[-1]
    elbos = [(row["epoch"], finite(row.get("test_elbo"))) for row in rows if finite(row.get("test_elbo")) is not None]
    if not elbos:
        return (f"{name}: {len(rows)} epochs; final training loss {num(last.get('train_loss'))}, test E_q log p(x|z) "
                f"{num(last.get('test_log_likelihood'))} (no ELBO or KL: point-mass guide).")
    best = max(elbos, key=lambda item: item[1])
    return (f"{name}: {len(rows)} epochs; final test ELBO {num(last.get('test_elbo'))} (best {num(best[1])} at epoch "
            f"{int(best[0])}), test KL {num(last.get('test_kl'))}, training loss {num(last.get('train_loss'))}.")


def training_section(results: ResultSet) -> Section:
    from bayesvae.analysis.plots_training import training_png

    section = Section("training", "Training")
    histories = [(run.name, run.metrics) for run in results.runs if run.metrics]
    untrained = [run for run in results.runs if not run.metrics]
    if histories:
        section.add(figure(training_png(histories), "training curves",
                           "Per epoch (x axis): left, the training loss (the β-weighted −ELBO on training batches, "
                           "solid) and −ELBO on the test split at β = 1 (dashed); middle, the test KL; right, the test "
                           "reconstruction term E_q log p(x|z); all in nats per image. Curves still falling at the "
                           "last epoch mean more epochs may help."))
        section.add(*(para(_summary(name, rows)) for name, rows in histories))
    for run in untrained:
        section.add(missing(f"{run.name} has no finished epoch (no metrics.csv)", f"bayesvae train --resume {run.path}"))
    return section

"""The comparison table as text, and the comparison folder's data files (JSON, CSV, text), written atomically.

Rows are plain dicts (one per run, see ``bayesvae.compare``); a value of None is a quantity that is
not defined for that run (a point-mass guide has no rate, no ELBO, no importance weights) and prints as "—".
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from bayesvae.inference.files import atomic_write_text

from .render import json_text, text_table

BOUNDS_COLUMNS = (
    ("name", "run", "{}"), ("guide", "guide", "{}"), ("prior", "prior", "{}"), ("likelihood", "likelihood", "{}"),
    ("binarize", "binarize", "{}"), ("objective", "fit by", "{}"),
    ("beta", "β", "{:g}"),
    ("elbo", "ELBO", "{:.2f}"), ("log_px", "log p(x)", "{:.2f}"), ("log_px_se", "±se", "{:.3f}"),
    ("gap", "gap", "{:.2f}"), ("rate", "rate R", "{:.2f}"), ("distortion", "distortion D", "{:.2f}"),
    ("active_units", "active", "{}"), ("mutual_information", "I_q(x;z)", "{:.2f}"),
    ("marginal_kl", "KL(q(z)‖p)", "{:.2f}"),
)
LATENT_COLUMNS = (
    ("name", "run", "{}"), ("latent_dim", "d", "{}"), ("mean_spread", "spread of E_q[z]", "{:.2f}"),
    ("knn_accuracy", "k-NN acc", "{:.3f}"), ("logistic_accuracy", "logistic acc", "{:.3f}"),
    ("silhouette", "silhouette", "{:.3f}"), ("chance", "chance", "{:.3f}"),
)

CLASS_COLUMNS = (
    ("class_accuracy", "q(y|x) acc", "{:.3f}"), ("class_accuracy_chance", "(chance)", "{:.3f}"),
    ("class_cluster_accuracy", "cluster acc", "{:.3f}"), ("class_cluster_accuracy_chance", "(chance)", "{:.3f}"),
)
"""Added to the latent table when a run has a discrete class (M2: its classifier; mixture: Hungarian-matched
clusters); each beside the same predictions scored against shuffled labels."""

FINDINGS_COLUMNS = (("name", "run", "{}"), ("findings_summary", "findings", "{}"))


def format_table(rows: list[dict], columns=BOUNDS_COLUMNS) -> str:
    """Right-aligned columns (the first left-aligned), a header and a rule."""
    return text_table(rows, columns)


def report_text(result: dict) -> str:
    """The printed report: both tables, what the columns mean, and the notes."""
    rows = result["runs"]
    class_columns = tuple(c for c in CLASS_COLUMNS if any(row.get(c[0]) is not None for row in rows))
    parts = [
        f"Bounds and rate–distortion on the {result['split']} split ({result['n_images']} images; nats per image)",
        format_table(rows, BOUNDS_COLUMNS),
        bounds_legend(rows, result["k"]),
        "",
        f"Latent space and class grouping (posterior means; {labels_used(rows)})",
        format_table(rows, LATENT_COLUMNS + class_columns),
        "spread of E_q[z]: Std over images of the posterior means E_q[z_u|x], averaged over the active "
        "dimensions (over all when none is active), as diagnose prints it; probes are fitted on the training "
        "split and scored on the test split."
        + (" q(y|x) acc: M2's classifier, its top class against the label; cluster acc: the mixture's most "
           "probable cluster, matched one-to-one to the labels (Hungarian); (chance): the same predictions "
           "against shuffled labels." if class_columns else ""),
    ]
    if any("findings_summary" in row for row in rows):
        parts += ["", "Findings per run (details in comparison.json; `bayesvae diagnose RUN` for causes and remedies)",
                  format_table(rows, FINDINGS_COLUMNS)]
    if result["notes"]:
        parts += [""] + [f"note: {note}" for note in result["notes"]]
    return "\n".join(parts)


def labels_used(rows: list[dict]) -> str:
    """Where the labels entered: only in these scores, unless a run (M2 --labels N) was trained with some."""
    trained = [f"{row['name']} ({row['train_labels']} labelled images)" for row in rows if row.get("train_labels")]
    if not trained:
        return "labels used only here, never in training"
    return f"labels used only here, except in the training of {', '.join(trained)}"


def bounds_legend(rows: list[dict], k: int) -> str:
    """What the bounds columns mean: for plain runs, and for runs whose discrete class is summed exactly."""
    discrete = [row["name"] for row in rows if row.get("discrete_site")]
    text = "ELBO = −(D + R)"
    if len(discrete) < len(rows):
        text += (f"; log p(x): importance-sampled with K = {k} draws of q (IWAE_K); gap = log p(x) − ELBO ≈ "
                 f"KL(q(z|x) ‖ p(z|x)); I_q + KL(q(z)‖p) = R (ELBO surgery)"
                 + (" — for the runs without a discrete latent" if discrete else ""))
    text += "."
    if discrete:
        text += (f" {', '.join(discrete)}: the discrete class c summed exactly; log p(x) = log Σ_c p̂(x, c), K = {k} "
                 f"draws of z per class; gap ≈ KL(q(c,z|x) ‖ p(c,z|x)); R includes the class's KL; I_q and "
                 f"KL(q(z)‖p) not measured.")
    return text


def write_report(out: Path, result: dict) -> list[Path]:
    """comparison.json (everything), comparison.csv (one row per run), comparison.txt (the printed report)."""
    out = Path(out)
    text = report_text(result)
    keys = [key for key in result["runs"][0] if not isinstance(result["runs"][0][key], (dict, list))]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(result["runs"])
    files = {"comparison.json": json_text(result, indent=2),
             "comparison.csv": buffer.getvalue(), "comparison.txt": text + "\n"}
    for name, content in files.items():
        atomic_write_text(out / name, content)
    return [out / name for name in files]

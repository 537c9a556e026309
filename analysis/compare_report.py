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

FINDINGS_COLUMNS = (("name", "run", "{}"), ("findings_summary", "findings", "{}"))


def format_table(rows: list[dict], columns=BOUNDS_COLUMNS) -> str:
    """Right-aligned columns (the first left-aligned), a header and a rule."""
    return text_table(rows, columns)


def report_text(result: dict) -> str:
    """The printed report: both tables, what the columns mean, and the notes."""
    rows = result["runs"]
    parts = [
        f"Bounds and rate–distortion on the {result['split']} split ({result['n_images']} images; nats per image)",
        format_table(rows, BOUNDS_COLUMNS),
        "ELBO = −(D + R); log p(x): importance-sampled with K = {k} draws of q (IWAE_K); gap = log p(x) − ELBO ≈ "
        "KL(q(z|x) ‖ p(z|x)); I_q + KL(q(z)‖p) = R (ELBO surgery).".format(k=result["k"]),
        "",
        "Latent space and class grouping (posterior means; labels used only here, never in training)",
        format_table(rows, LATENT_COLUMNS),
        "spread of E_q[z]: Std over images of the posterior means E_q[z_u|x], averaged over the active "
        "dimensions (over all when none is active), as diagnose prints it; probes are fitted on the training "
        "split and scored on the test split.",
    ]
    if any("findings_summary" in row for row in rows):
        parts += ["", "Findings per run (details in comparison.json; `bayesvae diagnose RUN` for causes and remedies)",
                  format_table(rows, FINDINGS_COLUMNS)]
    if result["notes"]:
        parts += [""] + [f"note: {note}" for note in result["notes"]]
    return "\n".join(parts)


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

"""``bayesvae report RUN... [--out report.html]``: one self-contained HTML page from the results already written.

    bayesvae report runs/demo                    runs/demo/report.html
    bayesvae report runs/beta --out beta.html    a sweep (with its comparison/ when compared)

Sections: findings, Bayes' theorem term by term, what the KL compares, autoencoder vs VAE vs β, why
classes group without labels, true vs amortized posterior, training. Reads what train/diagnose/compare
wrote; a missing part names the command that fills it.
"""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from bayesvae.report import write_report

    path = write_report(args.runs, args.out)
    print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    parser = sub.add_parser("report", help="write one self-contained HTML page from runs' results",
                            description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders, sweep folders or comparison folders")
    parser.add_argument("--out", help="the HTML file (default: RUN/report.html, or report.html in the runs' folder)")
    parser.set_defaults(run=run)

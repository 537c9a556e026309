"""``bayesvae compare RUN...``: runs side by side — rate–distortion, evidence, latent space by class — in a folder.

    bayesvae compare runs/beta                      every run of a sweep folder
    bayesvae compare runs/ae runs/vae --tsne --out cmp

Prints the table and writes comparison.{txt,json,csv} and the PNGs (see ``bayesvae.compare_api``)
to --out (default: <the runs' common folder>/comparison). Every run is checked before anything is
measured; a bad one ends the command with one line and nothing written.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_out(paths: list[str]) -> Path:
    """<common parent of the runs>/comparison (a sweep folder given itself gets its own comparison/)."""
    from bayesvae.run import is_run_dir

    parents = [Path(p).resolve() if not is_run_dir(p) else Path(p).resolve().parent for p in paths]
    try:
        common = Path(os.path.commonpath(parents))
    except ValueError:
        common = Path.cwd()
    return common / "comparison"


OPTIONS = ("split", "k", "seed", "samples", "max_images", "tsne")   # declared in MeasureOptions / CompareOptions


def run(args: argparse.Namespace) -> int:
    from bayesvae.compare_api import compare, report_text
    from bayesvae.options import given

    out = Path(args.out) if args.out else default_out(args.runs)
    result = compare(args.runs, out, **given(args, OPTIONS), trust_code=args.trust_code, device=args.device,
                     progress=None, log=print)
    print()
    print(report_text(result))
    print(f"\nwrote {len(result['files'])} files to {out} in {result['seconds']:.1f} s")
    return 0


def add_parser(sub) -> None:
    from bayesvae.compare_api import CompareOptions
    from bayesvae.diagnose_api import MeasureOptions
    from bayesvae.options import add_flags

    parser = sub.add_parser("compare", help="compare runs: rate–distortion, evidence, latent space by class",
                            description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders, or a folder of runs (a sweep)")
    parser.add_argument("--out", help="comparison folder (default: <the runs' common folder>/comparison)")
    add_flags(parser, MeasureOptions, ("split", "k", "seed"))   # diagnose's declarations
    add_flags(parser, CompareOptions)
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--trust-code", action="store_true", help="allow runs holding user scripts (loading "
                        "them runs that code)")
    parser.set_defaults(run=run)

"""``bayesvae sweep``: one run per KL weight β (and per guide, prior, objective), trained one after another.

    bayesvae sweep --beta 0,0.5,1,2,4,8 --latent-dim 2 --out runs/beta
    bayesvae sweep --guide normal,delta --beta 0,1 --out runs/ae-vs-vae
    bayesvae sweep --guide normal,iaf --prior normal,vamp --elbo analytic,iwae --beta 1 --out runs/zoo

``--beta``, ``--guide``, ``--prior`` and ``--elbo`` take comma-separated lists; the sweep trains every
combination, each into OUT/<guide>[-<prior>][-<elbo>]-beta<β> (prior and objective named when not the
defaults, normal and analytic). Every other option is the ``train`` command's and applies to every run. Re-running the same command
continues the sweep: finished runs are skipped, a run cut short (Ctrl-C, a killed process) is resumed
from its last checkpoint, missing runs are trained. A run folder whose settings differ from the
command's is refused before anything trains (a sweep never mixes two configurations under one name).
Then ``bayesvae compare OUT`` puts the runs side by side.
"""

from __future__ import annotations

import argparse
import math
import sys

from .train import add_run_options, given_options


def float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0,0.5,1,4; got {text!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"every β must be a finite number ≥ 0, got {text!r}")
    return values


def name_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, e.g. normal,delta; got {text!r}")
    return names


def _axes(args: argparse.Namespace) -> dict:
    return {"beta": args.beta, "guide": args.guide or ("normal",), "prior": args.prior or ("normal",),
            "elbo": args.elbo or ("analytic",)}


def _options(args: argparse.Namespace) -> dict:
    """``fit``'s options given on the command line, the sweep's axes excepted."""
    return {k: v for k, v in given_options(args).items() if k not in ("beta", "guide", "prior", "elbo")}


def plan(args: argparse.Namespace):
    """The sweep's plan for parsed command-line ``args`` (see bayesvae.sweep_api.plan_sweep)."""
    from bayesvae.sweep_api import plan_sweep

    axes = _axes(args)
    return plan_sweep(args.out, axes["beta"], axes["guide"], axes["prior"], axes["elbo"], args.model,
                      args.dataset or "digits", args.trust_code, **_options(args))


def _without_epoch_rows(line: str) -> None:
    """Print notes and summaries; leave the per-epoch rows to the progress bar."""
    first = line.split()[0] if line.split() else ""
    if not (first.isdigit() or first == "epoch"):
        print(line)


def run(args: argparse.Namespace) -> int:
    from bayesvae.analysis.render import text_table
    from bayesvae.inference.train import Interrupted
    from bayesvae.sweep_api import sweep

    try:
        table = sweep(args.out, **_axes(args), model=args.model, data=args.dataset or "digits", data_dir=args.data_dir,
                      download=not args.no_download, device=args.device, trust_code=args.trust_code,
                      log=print if args.verbose else _without_epoch_rows, report=print, **_options(args))
    except Interrupted as stop:
        where = getattr(stop, "run_dir", None) or args.out
        sys.stderr.write(f"bayesvae: interrupted in {where} after epoch {stop.state.epoch}; saved. "
                         f"Run the same command again to continue the sweep\n")
        return 128 + stop.signal  # 130 for Ctrl-C, 143 for SIGTERM (saved the same way)
    print(text_table(table.reset_index().to_dict("records"), SUMMARY_COLUMNS))
    print(f"compare them: bayesvae compare {args.out}")
    return 0


SUMMARY_COLUMNS = (("name", "run", "{}"), ("elbo", "test ELBO", "{:.2f}"),
                   ("log_likelihood", "E_q log p(x|z)", "{:.2f}"), ("kl", "KL(q||p)", "{:.2f}"))


def add_parser(sub) -> None:
    parser = sub.add_parser("sweep", help="train one run per β (and guide, prior, objective), resumably",
                            description=__doc__.splitlines()[0].split(": ", 1)[1], conflict_handler="resolve")
    add_run_options(parser)
    # the train command's --beta/--guide/--prior/--elbo take one value; here lists (conflict_handler="resolve")
    parser.add_argument("--beta", type=float_list, required=True, help="KL weights β, comma-separated, e.g. 0,0.5,1,2,4,8")
    parser.add_argument("--guide", type=name_list, help="guides, comma-separated, e.g. normal,delta (default: normal)")
    parser.add_argument("--prior", type=name_list, help="priors, comma-separated, e.g. normal,vamp (default: normal)")
    parser.add_argument("--elbo", type=name_list, help="objectives, comma-separated, e.g. analytic,iwae "
                        "(default: analytic)")
    parser.add_argument("--out", required=True, help="folder for the runs (one sub-folder per run)")
    parser.add_argument("--trust-code", action="store_true", help="allow resuming runs that hold user scripts")
    parser.add_argument("--verbose", action="store_true", help="print every epoch's row, as bayesvae train does")
    parser.set_defaults(run=run)

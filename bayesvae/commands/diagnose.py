"""bayesvae diagnose RUN: what each Bayes term of a trained run measures, in nats per image.

Part 1 (always): importance-sampled evidence log p(x) next to the ELBO and their gap KL(q(z|x) ‖ p(z|x));
the ELBO term by term; KL per latent dimension and active units; ELBO surgery (average KL = I_q(x;z) +
KL(q(z) ‖ p(z))). Part 2 (unless --no-mcmc): MCMC on the true posterior p(z|x) beside q(z|x).
Writes RUN/diagnostics/ (JSON, table, PNGs) and prints the table.
"""

from __future__ import annotations

import argparse

from bayesvae.options import add_flags

from .posterior_options import add_arguments, from_args


def run(args: argparse.Namespace) -> int:
    from bayesvae.diagnose_api import check_options, diagnose_run, load_trained
    from bayesvae.diagnose_shards import scale_options

    check_options(args.split, args.k, args.max_images, args.seed)
    posterior = from_args(args)
    scale = scale_options(args.devices, args.strategy, args.num_nodes, args.device)
    run_ = load_trained(args.run_dir, trust_code=args.trust_code, device=args.device)
    diagnose_run(run_, args.split, args.k, args.max_images, args.out, args.seed, posterior, progress=None, log=print,
                 scale=scale)
    return 0


def add_parser(sub) -> None:
    from bayesvae.diagnose_api import MeasureOptions
    from bayesvae.diagnose_shards import SHARD_NAMES
    from bayesvae.inference.scale_options import ScaleOptions

    parser = sub.add_parser("diagnose", help="measure a trained run: evidence, ELBO terms, KL per dimension, "
                            "ELBO surgery (and MCMC on p(z|x))", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", metavar="RUN", help="a trained run folder (from bayesvae train)")
    part1 = parser.add_argument_group("part 1: evidence and ELBO anatomy")
    add_flags(part1, MeasureOptions, split="test", k=1000, seed=0)
    part1.add_argument("--out", help="folder for the results (default: RUN/diagnostics)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--trust-code", action="store_true", help="allow loading a run holding user scripts")
    add_flags(parser.add_argument_group("scale-out: the evidence estimate sharded over data-parallel processes "
                                        "(Lightning Fabric; see README)"), ScaleOptions, SHARD_NAMES,
              devices=1, strategy="ddp", num_nodes=1)
    add_arguments(parser)
    parser.set_defaults(run=run)

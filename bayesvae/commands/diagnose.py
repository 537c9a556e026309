"""bayesvae diagnose RUN: what each Bayes term of a trained run measures, in nats per image.

Part 1 (always): importance-sampled evidence log p(x) next to the ELBO and their gap KL(q(z|x) ‖ p(z|x));
the ELBO term by term; KL per latent dimension and active units; ELBO surgery (average KL = I_q(x;z) +
KL(q(z) ‖ p(z))). Part 2 (when installed, unless --no-mcmc): MCMC on the true posterior p(z|x) beside q(z|x).
Writes RUN/diagnostics/ (JSON, table, PNGs) and prints the table.
"""

from __future__ import annotations

import argparse

from .train import whole


def run(args: argparse.Namespace) -> int:
    from bayesvae.diagnose_api import check_options, diagnose_part1, diagnostics_dir, load_trained, posterior_module

    check_options(args.split, args.k, args.max_images, args.seed)
    run_ = load_trained(args.run_dir, trust_code=args.trust_code, device=args.device)
    module = posterior_module()
    mcmc = module is not None and not getattr(args, "no_mcmc", False)
    if mcmc and hasattr(module, "check_arguments"):
        module.check_arguments(run_, args)  # refuse bad part-2 options before part 1 writes anything
    diagnose_part1(run_, args.split, args.k, args.max_images, args.out, args.seed, progress=None, log=print)
    if mcmc:
        module.run_posterior(run_, args, diagnostics_dir(run_, args.out), print)
    return 0


def add_parser(sub) -> None:
    from bayesvae.diagnose_api import posterior_module

    parser = sub.add_parser("diagnose", help="measure a trained run: evidence, ELBO terms, KL per dimension, "
                            "ELBO surgery (and MCMC on p(z|x))", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", metavar="RUN", help="a trained run folder (from bayesvae train)")
    part1 = parser.add_argument_group("part 1: evidence and ELBO anatomy")
    part1.add_argument("--split", choices=("test", "train"), default="test", help="images to measure (default: test)")
    part1.add_argument("--k", type=whole, default=1000, help="importance samples per image for log p(x) "
                       "(default: 1000)")
    part1.add_argument("--max-images", type=whole, help="use only the first N images of the split")
    part1.add_argument("--seed", type=whole, default=0, help="seed of every Monte Carlo draw (default: 0)")
    part1.add_argument("--out", help="folder for the results (default: RUN/diagnostics)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--trust-code", action="store_true", help="allow loading a run holding user scripts")
    module = posterior_module()
    if module is not None:
        module.add_arguments(parser)
    parser.set_defaults(run=run)

"""``bayesvae train``: fit a model/guide pair by SVI and write a run directory (see bayesvae.run)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from bayesvae.inference.batches import BINARIZE
from bayesvae.inference.objectives import OBJECTIVES
from bayesvae.inference.options import TrainOptions
from bayesvae.inference.train import Interrupted
from bayesvae.models.build import ModelSpec
from bayesvae.models.errors import BadInput
from bayesvae.models.guides import GUIDES
from bayesvae.models.likelihoods import LIKELIHOODS
from bayesvae.models.networks import NETWORKS
from bayesvae.models.priors import PRIORS

MODEL_DEFAULTS, TRAIN_DEFAULTS = ModelSpec(), TrainOptions()


def int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options that define a run (shared by ``train`` and ``sweep``); defaults are None = not given."""
    d, t = MODEL_DEFAULTS, TRAIN_DEFAULTS
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="digits (default, offline), mnist, fashion-mnist, kmnist, a .npz file "
                      "(arrays 'images', optional 'labels') or a folder of images")
    data.add_argument("--data-dir", help="folder with the IDX files of mnist-like data sets (default: ./data; "
                      "downloaded there by torchvision when missing)")
    data.add_argument("--no-download", action="store_true", help="never download; fail if files are missing")
    data.add_argument("--binarize", choices=BINARIZE, help="pixels x ~ Bernoulli(grey level): dynamic (new draw "
                      "each epoch), fixed (one draw) or none (default: dynamic for a Bernoulli likelihood, else none)")
    model = parser.add_argument_group("model p(z) p(x|z) and guide q(z|x)")
    model.add_argument("--model", help=f"'builtin' (default: prior × decoder × likelihood below) or my_vae.py:model")
    model.add_argument("--guide", help=f"{', '.join(GUIDES)} or my_vae.py:guide (default: {d.guide})")
    model.add_argument("--prior", help=f"{', '.join(PRIORS)} (default: {d.prior})")
    model.add_argument("--likelihood", help=f"{', '.join(LIKELIHOODS)} (default: {d.likelihood})")
    model.add_argument("--likelihood-scale", type=number, help=f"pixel std of the Gaussian likelihoods "
                       f"(default: {d.likelihood_scale})")
    model.add_argument("--net", help=f"{', '.join(NETWORKS)} (default: {d.net})")
    model.add_argument("--latent-dim", type=whole, help=f"dimensions of z (default: {d.latent_dim})")
    model.add_argument("--hidden", type=int_list, help=f"hidden widths, comma-separated (default: "
                       f"{','.join(map(str, d.hidden))}; the conv net uses the last)")
    fit = parser.add_argument_group("inference (SVI)")
    fit.add_argument("--elbo", choices=OBJECTIVES, help=f"mc: Trace_ELBO; analytic: closed-form KL "
                     f"(TraceMeanField_ELBO); iwae: importance-weighted bound (default: {t.elbo})")
    fit.add_argument("--particles", type=whole, help="z-samples per image (default: 1; iwae: 5)")
    fit.add_argument("--beta", type=number, help=f"KL weight β (default: {t.beta})")
    fit.add_argument("--beta0", type=number, help=f"β at epoch 1 during warm-up (default: {t.beta0})")
    fit.add_argument("--warmup-epochs", type=whole, help=f"epochs of linear KL warm-up (default: {t.warmup_epochs})")
    fit.add_argument("--epochs", type=whole, help=f"training epochs (default: {t.epochs})")
    fit.add_argument("--batch-size", type=whole, help=f"images per step (default: {t.batch_size})")
    fit.add_argument("--lr", type=number, help=f"Adam learning rate (default: {t.lr})")
    fit.add_argument("--seed", type=whole, help=f"random seed (default: {t.seed})")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")


MODEL_OPTIONS = ("prior", "likelihood", "likelihood_scale", "net", "hidden", "latent_dim")
TRAIN_OPTIONS = ("elbo", "particles", "beta", "beta0", "warmup_epochs", "epochs", "batch_size", "lr", "seed",
                 "binarize")


def given_options(args: argparse.Namespace) -> dict:
    """The model/training options set on the command line (unset ones keep the library defaults)."""
    options = {name: getattr(args, name) for name in MODEL_OPTIONS + TRAIN_OPTIONS if getattr(args, name) is not None}
    if "binarize" not in options:
        options["binarize"] = "dynamic" if options.get("likelihood", MODEL_DEFAULTS.likelihood) == "bernoulli" \
            else "none"
    return options


def default_out(args: argparse.Namespace) -> Path:
    dataset = Path(args.dataset or "digits").stem
    guide = Path((args.guide or MODEL_DEFAULTS.guide).split(":")[0]).stem
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{dataset}-{guide}-z{args.latent_dim or MODEL_DEFAULTS.latent_dim}-{stamp}"
    suffix = 2
    while out.exists():
        out = out.with_name(f"{out.name.rsplit('_', 1)[0]}_{suffix}")
        suffix += 1
    return out


def run(args: argparse.Namespace) -> int:
    from bayesvae.api import fit, resume

    try:
        if args.resume:
            extra = [name for name in MODEL_OPTIONS + TRAIN_OPTIONS + ("dataset", "data_dir", "model", "guide", "out")
                     if getattr(args, name) not in (None, False) and name != "epochs"]
            if extra or args.force:
                names = ", ".join("--" + n.replace("_", "-") for n in extra + (["force"] if args.force else []))
                raise BadInput(f"--resume continues a run with its own config.json; {names} cannot change it "
                               f"(only --epochs and --device can)")
            out = Path(args.resume)
            resume(out, epochs=args.epochs, trust_code=args.trust_code, device=args.device)
        else:
            out = args.out if args.out is not None else default_out(args)  # '' is refused, not the default
            fit(args.model, args.guide, args.dataset or "digits", out, data_dir=args.data_dir,
                download=not args.no_download, device=args.device, force=args.force, **given_options(args))
    except Interrupted as stop:
        what = "terminated (SIGTERM)" if stop.signal == signal.SIGTERM else "interrupted"
        sys.stderr.write(f"bayesvae: {what} after epoch {stop.state.epoch}"
                         f"{f' (+{stop.state.step} steps)' if stop.state.step else ''}; saved. "
                         f"Resume with: bayesvae train --resume {out}\n")
        return 128 + stop.signal  # 130 for Ctrl-C, 143 for SIGTERM
    return 0


def add_parser(sub) -> None:
    parser = sub.add_parser("train", help="fit a VAE (or your own model/guide) by SVI",
                            description="Fit a model/guide pair by SVI. With no options: the default VAE on "
                            "scikit-learn's digits, in well under a minute on 2 CPU cores.")
    add_run_options(parser)
    parser.add_argument("--out", help="run folder (default: runs/<dataset>-<guide>-z<d>-<time>)")
    parser.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    parser.add_argument("--force", action="store_true", help="replace an existing run in --out")
    parser.add_argument("--trust-code", action="store_true", help="allow --resume of a run holding user scripts "
                        "(resuming imports them)")
    parser.set_defaults(run=run)

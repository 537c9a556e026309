"""``bayesvae train``: fit a model/guide pair by SVI and write a run directory (see bayesvae.run)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from bayesvae.config import DataSpec
from bayesvae.inference.options import TrainOptions
from bayesvae.inference.scale_options import ScaleOptions
from bayesvae.inference.train import Interrupted
from bayesvae.models.build import ModelSpec
from bayesvae.models.checks import declared
from bayesvae.models.errors import BadInput
from bayesvae.options import add_flags, given

MODEL_OPTIONS = tuple(name for name in declared(ModelSpec) if name not in ("model", "guide"))
TRAIN_OPTIONS = tuple(declared(TrainOptions))
DATA_OPTIONS = tuple(declared(DataSpec))  # stream, image_size, workers
SCALE_OPTIONS = tuple(declared(ScaleOptions))


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options that define a run (shared by ``train`` and ``sweep``); defaults are None = not given."""
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="digits (default, offline), mnist, fashion-mnist, kmnist, cifar10, celeba, "
                      "a .npz file (arrays 'images', optional 'labels'), a .npy array (memory-mapped) or a folder "
                      "of images")
    data.add_argument("--data-dir", help="folder with the files of mnist-like data sets, cifar10 and celeba "
                      "(default: ./data; downloaded there by torchvision when missing)")
    data.add_argument("--no-download", action="store_true", help="never download; fail if files are missing")
    add_flags(data, DataSpec, DATA_OPTIONS)
    add_flags(data, TrainOptions, ["binarize"])
    add_flags(parser.add_argument_group("model p(z) p(x|z) and guide q(z|x)"), ModelSpec)
    add_flags(parser.add_argument_group("inference (SVI)"), TrainOptions,
              [name for name in TRAIN_OPTIONS if name != "binarize"])
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")


def given_options(args: argparse.Namespace) -> dict:
    """The model/training options set on the command line; unset ones are resolved by bayesvae.fit
    exactly as for a Python caller (bayesvae.settings)."""
    options = given(args, MODEL_OPTIONS + TRAIN_OPTIONS + DATA_OPTIONS)
    if options.get("stream") is False:  # a switch not given: the default
        del options["stream"]
    return options


def run(args: argparse.Namespace) -> int:
    from bayesvae.api import NEW_RUN_DIR, fit, resume

    try:
        if args.resume:
            extra = [name for name in MODEL_OPTIONS + TRAIN_OPTIONS + DATA_OPTIONS
                     + ("dataset", "data_dir", "model", "guide", "out")
                     if getattr(args, name) not in (None, False) and name != "epochs"]
            if extra or args.force:
                names = ", ".join("--" + n.replace("_", "-") for n in extra + (["force"] if args.force else []))
                raise BadInput(f"--resume continues a run with its own config.json; {names} cannot change it "
                               f"(only --epochs, --device and the scale-out options can)")
            out = Path(args.resume)
            resume(out, epochs=args.epochs, trust_code=args.trust_code, device=args.device,
                   **given(args, SCALE_OPTIONS))
        else:
            out = args.out if args.out is not None else NEW_RUN_DIR  # '' is refused, not the default
            fit(args.model, args.guide, args.dataset or "digits", out, data_dir=args.data_dir,
                download=not args.no_download, device=args.device, force=args.force, **given_options(args),
                **given(args, SCALE_OPTIONS))
    except Interrupted as stop:
        if getattr(stop, "quiet", False):   # another rank than 0: rank 0 tells the user
            return 128 + stop.signal
        what = "terminated (SIGTERM)" if stop.signal == signal.SIGTERM else "interrupted"
        sys.stderr.write(f"bayesvae: {what} after epoch {stop.state.epoch}"
                         f"{f' (+{stop.state.step} steps)' if stop.state.step else ''}; saved. "
                         f"Resume with: bayesvae train --resume {getattr(stop, 'run_dir', None) or out}\n")
        return 128 + stop.signal  # 130 for Ctrl-C, 143 for SIGTERM
    return 0


def add_parser(sub) -> None:
    parser = sub.add_parser("train", help="fit a VAE (or your own model/guide) by SVI",
                            description="Fit a model/guide pair by SVI. With no options: the default VAE on "
                            "scikit-learn's digits, in well under a minute on 2 CPU cores.")
    add_run_options(parser)
    add_flags(parser.add_argument_group("scale-out (data-parallel processes, Lightning Fabric; see README)"),
              ScaleOptions)
    parser.add_argument("--out", help="run folder (default: runs/<dataset>-<guide>-z<d>-<time>)")
    parser.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    parser.add_argument("--force", action="store_true", help="replace an existing run in --out")
    parser.add_argument("--trust-code", action="store_true", help="allow --resume of a run holding user scripts "
                        "(resuming imports them)")
    parser.set_defaults(run=run)

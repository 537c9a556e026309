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
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from bayesvae.models.errors import BadInput

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


def run_name(guide: str, beta: float, prior: str = "normal", elbo: str = "analytic") -> str:
    """``normal-beta0.5``, ``iaf-vamp-iwae-beta1``; a script guide ``dir/my_vae.py:guide`` gives ``my_vae.guide-...``."""
    if ":" in guide:
        path, _, function = guide.rpartition(":")
        guide = f"{Path(path).stem}.{function}"
    parts = [guide, *([prior] if prior != "normal" else []), *([elbo] if elbo != "analytic" else [])]
    return "-".join(parts) + f"-beta{beta:g}"


@dataclass
class Planned:
    name: str
    path: Path
    guide: str
    prior: str
    elbo: str
    beta: float
    action: str = "train"       # train | resume | skip
    done_epochs: int = 0


def _differences(config, spec, training, dataset: str, derived: tuple[str, ...] = ()) -> list[str]:
    """Settings in which a run's config.json differs from what the sweep asks (epochs may only grow).
    ``derived``: settings not given that the run resolved from its model's trace (a user model's binarize
    and latent size): they follow from the compared settings and are not compared."""
    from bayesvae.models.user_code import is_code_ref, sha256_file, split_code_ref

    found = []
    saved, wanted = config.model.to_dict(), spec.to_dict()
    wanted = {k: v for k, v in wanted.items() if k not in derived}
    for role in ("model", "guide"):
        if is_code_ref(wanted[role]) and is_code_ref(saved[role]):
            path, name = split_code_ref(wanted[role])
            same = (split_code_ref(saved[role])[1] == name and path.is_file()
                    and config.code.get(role, {}).get("sha256") == sha256_file(path))
            if same:
                saved[role] = wanted[role]
    found += [f"{k} {saved.get(k)!r} vs {wanted[k]!r}" for k in wanted if saved.get(k) != wanted[k]]
    saved_t, wanted_t = config.training.to_dict(), training.to_dict()
    found += [f"{k} {saved_t[k]!r} vs {wanted_t[k]!r}" for k in wanted_t
              if k not in ("epochs", *derived) and saved_t[k] != wanted_t[k]]
    if wanted_t["epochs"] < saved_t["epochs"]:
        found.append(f"epochs {saved_t['epochs']} vs {wanted_t['epochs']} (a sweep only trains longer)")
    requested = str(Path(dataset).resolve()) if Path(dataset).suffix == ".npz" or Path(dataset).is_dir() else dataset
    if config.data.dataset != requested:
        found.append(f"dataset {config.data.dataset!r} vs {requested!r}")
    return found


def _check_existing(item: Planned, spec, training, args: argparse.Namespace, derived: tuple[str, ...]) -> None:
    """Set ``item.action``: a finished run is skipped, a partial one resumed; a run of other settings is refused."""
    from bayesvae.inference.train import TrainState
    from bayesvae.run import is_run_dir, load_run

    if is_run_dir(item.path):
        run = load_run(item.path, trust_code=args.trust_code, device="cpu")
        differences = _differences(run.config, spec, training, args.dataset or "digits", derived)
        if differences:
            raise BadInput(f"{item.path} holds a run with other settings ({'; '.join(differences[:3])}): "
                           f"use another --out for this sweep")
        state = run.state or TrainState()
        item.done_epochs = state.epoch
        item.action = "skip" if state.epoch >= training.epochs and state.step == 0 else "resume"
    elif item.path.is_dir() and any(item.path.iterdir()):
        raise BadInput(f"{item.path} already holds files that are not a bayesvae run")


def plan(args: argparse.Namespace) -> list[Planned]:
    """What each run of the sweep needs, checked before anything trains."""
    from bayesvae.inference.options import TrainOptions
    from bayesvae.models.build import ModelSpec
    from bayesvae.settings import builtin_binarize

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a folder")
    options = given_options(args)
    model_options = {k: v for k, v in options.items() if k in ModelSpec.__dataclass_fields__}
    train_options = {k: v for k, v in options.items() if k in TrainOptions.__dataclass_fields__}
    planned = []
    for guide, prior, elbo, beta in itertools.product(args.guide or ("normal",), args.prior or ("normal",),
                                                      args.elbo or ("analytic",), args.beta):
        spec = ModelSpec(model=args.model or "builtin", guide=guide, **{**model_options, "prior": prior})
        binarize = train_options.get("binarize") or builtin_binarize(spec)
        derived = (("binarize",) if binarize is None else ()) + (("latent_dim",) if not spec.builtin_model else ())
        training = TrainOptions(**{**train_options, "elbo": elbo, "beta": beta, "binarize": binarize or "none"})
        name = run_name(guide, beta, prior, elbo)
        item = Planned(name, out / name, guide, prior, elbo, beta)
        _check_existing(item, spec, training, args, derived)
        planned.append(item)
    if len({item.name for item in planned}) < len(planned):
        raise BadInput("two runs of this sweep would share a folder name: list each value once")
    return planned


def _without_epoch_rows(line: str) -> None:
    """Print notes and summaries; leave the per-epoch rows to the progress bar."""
    first = line.split()[0] if line.split() else ""
    if not (first.isdigit() or first == "epoch"):
        print(line)


def run(args: argparse.Namespace) -> int:
    from bayesvae.api import fit, resume
    from bayesvae.inference.train import Interrupted

    planned = plan(args)
    epochs = given_options(args).get("epochs")
    log = print if args.verbose else _without_epoch_rows
    for number, item in enumerate(planned, 1):
        head = f"[{number}/{len(planned)}] {item.path}:"
        try:
            if item.action == "skip":
                print(f"{head} done ({item.done_epochs} epochs), skipped")
                continue
            if item.action == "resume":
                print(f"{head} resuming after epoch {item.done_epochs}")
                resume(item.path, epochs=epochs, trust_code=args.trust_code, device=args.device, log=log)
            else:
                print(f"{head} training (guide {item.guide}, prior {item.prior}, --elbo {item.elbo}, β = {item.beta:g})")
                fit(args.model, item.guide, args.dataset or "digits", item.path, data_dir=args.data_dir,
                    download=not args.no_download, device=args.device, log=log,
                    **{**given_options(args), "prior": item.prior, "elbo": item.elbo, "beta": item.beta})
        except Interrupted as stop:
            sys.stderr.write(f"bayesvae: interrupted in {item.path} after epoch {stop.state.epoch}; saved. "
                             f"Run the same command again to continue the sweep\n")
            return 128 + stop.signal  # 130 for Ctrl-C, 143 for SIGTERM (saved the same way)
    print(summary(planned, args.trust_code, args.device))
    print(f"compare them: bayesvae compare {args.out}")
    return 0


SUMMARY_IMAGES = 2000   # the first test images, as bayesvae compare measures them by default


def summary_rows(planned: list[Planned], trust_code: bool = False, device: str | None = None,
                 seed: int = 0) -> list[dict]:
    """Per run: test ELBO and its two terms (nats per image, β = 1, the first 2000 test images), computed
    as ``bayesvae compare`` and ``diagnose`` compute them (analysis.quantities, same seed)."""
    from bayesvae.analysis import quantities
    from bayesvae.run import load_run

    rows = []
    for item in planned:
        run = load_run(item.path, trust_code=trust_code, device=device or "cpu")
        x, _ = run.images("test", SUMMARY_IMAGES)
        terms = quantities.anatomy(run.pair, x, seed)
        rows.append({"name": item.name, "elbo": terms["elbo"]["value"],
                     "log_likelihood": terms["log_likelihood"]["value"], "kl": terms["kl"]["value"]})
    return rows


def summary(planned: list[Planned], trust_code: bool = False, device: str | None = None) -> str:
    """The table printed after a sweep (see :func:`summary_rows`)."""
    from bayesvae.analysis.render import text_table

    return text_table(summary_rows(planned, trust_code, device), (("name", "run", "{}"), ("elbo", "test ELBO", "{:.2f}"),
                             ("log_likelihood", "E_q log p(x|z)", "{:.2f}"), ("kl", "KL(q||p)", "{:.2f}")))


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

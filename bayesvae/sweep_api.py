"""``bayesvae.sweep``: one run per KL weight β (and per guide, prior, objective), trained one after another.

    table = bayesvae.sweep("runs/beta", beta=[0, 0.5, 1, 2, 4, 8], latent_dim=2)     # a pandas DataFrame
    bayesvae.sweep("runs/zoo", beta=1, guide=["normal", "iaf"], prior=["normal", "vamp"], elbo=["analytic", "iwae"])

Every combination trains into OUT/<guide>[-<prior>][-<elbo>]-beta<β> (prior and objective named when not
the defaults). Calling it again continues the sweep: finished runs are skipped, a run cut short is
resumed from its last checkpoint, missing runs are trained; a run folder whose settings differ is refused
before anything trains. Every other keyword is ``bayesvae.fit``'s and applies to every run. The result
is the summary table (test ELBO and its two terms, nats per image, computed as ``compare`` computes them).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bayesvae.models.errors import BadInput

from .options import check_keywords


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


def _check_existing(item: Planned, spec, training, dataset: str, trust_code: bool, derived: tuple[str, ...]) -> None:
    """Set ``item.action``: a finished run is skipped, a partial one resumed; a run of other settings is refused."""
    from bayesvae.inference.train import TrainState
    from bayesvae.run import is_run_dir, load_run

    if is_run_dir(item.path):
        run = load_run(item.path, trust_code=trust_code, device="cpu")
        differences = _differences(run.config, spec, training, dataset, derived)
        if differences:
            raise BadInput(f"{item.path} holds a run with other settings ({'; '.join(differences[:3])}): "
                           f"use another --out for this sweep")
        state = run.state or TrainState()
        item.done_epochs = state.epoch
        item.action = "skip" if state.epoch >= training.epochs and state.step == 0 else "resume"
    elif item.path.is_dir() and any(item.path.iterdir()):
        raise BadInput(f"{item.path} already holds files that are not a bayesvae run")


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def plan_sweep(out, betas, guides=("normal",), priors=("normal",), elbos=("analytic",), model: str | None = None,
               dataset: str = "digits", trust_code: bool = False, **options) -> list[Planned]:
    """What each run of the sweep needs, checked before anything trains (``options``: ``fit``'s)."""
    from bayesvae.inference.options import TrainOptions
    from bayesvae.models.build import ModelSpec
    from bayesvae.settings import builtin_binarize

    from .api import OPTION_NAMES

    check_keywords(options, set(OPTION_NAMES) - {"beta", "prior", "elbo"})
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a folder")
    model_options = {k: v for k, v in options.items() if k in ModelSpec.__dataclass_fields__}
    train_options = {k: v for k, v in options.items() if k in TrainOptions.__dataclass_fields__}
    planned = []
    for guide, prior, elbo, beta in itertools.product(_as_tuple(guides), _as_tuple(priors), _as_tuple(elbos),
                                                      _as_tuple(betas)):
        spec = ModelSpec(model=model or "builtin", guide=guide, **{**model_options, "prior": prior})
        binarize = train_options.get("binarize") or builtin_binarize(spec)
        derived = (("binarize",) if binarize is None else ()) + (("latent_dim",) if not spec.builtin_model else ())
        training = TrainOptions(**{**train_options, "elbo": elbo, "beta": beta, "binarize": binarize or "none"})
        name = run_name(guide, beta, prior, elbo)
        item = Planned(name, out / name, guide, prior, elbo, beta)
        _check_existing(item, spec, training, dataset, trust_code, derived)
        planned.append(item)
    if len({item.name for item in planned}) < len(planned):
        raise BadInput("two runs of this sweep would share a folder name: list each value once")
    return planned


def sweep(out, beta, guide="normal", prior="normal", elbo="analytic", *, model: str | None = None,
          data: str = "digits", data_dir: str | None = None, download: bool = True, device: str | None = None,
          trust_code: bool = False, log: Callable[[str], None] | None = None, report: Callable[[str], None] | None = None,
          **options):
    """Train (or continue) every run of the sweep, then return the summary as a pandas DataFrame indexed by run.

    ``beta``, ``guide``, ``prior``, ``elbo``: one value or a list each; ``log`` receives the runs' own lines,
    ``report`` one line per run ("[2/6] runs/beta/normal-beta0.5: training ..."; default: ``log``).
    """
    import pandas as pd

    from .api import fit, resume

    log = log or print
    report = report or log
    planned = plan_sweep(out, beta, guide, prior, elbo, model, data, trust_code, **options)
    for number, item in enumerate(planned, 1):
        head = f"[{number}/{len(planned)}] {item.path}:"
        if item.action == "skip":
            report(f"{head} done ({item.done_epochs} epochs), skipped")
        elif item.action == "resume":
            report(f"{head} resuming after epoch {item.done_epochs}")
            resume(item.path, epochs=options.get("epochs"), trust_code=trust_code, device=device, log=log)
        else:
            report(f"{head} training (guide {item.guide}, prior {item.prior}, --elbo {item.elbo}, β = {item.beta:g})")
            fit(model, item.guide, data, item.path, data_dir=data_dir, download=download, device=device, log=log,
                **{**options, "prior": item.prior, "elbo": item.elbo, "beta": item.beta})
    return pd.DataFrame(summary_rows(planned, trust_code, device)).set_index("name")


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

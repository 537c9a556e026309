"""The Python API: ``fit`` trains a pair and returns the same :class:`~bayesvae.run.Run` that ``load_run`` gives.

``model``/``guide`` may be built-in names, ``"script.py:function"`` references, or functions defined
in a ``.py`` file (the file is copied into the run and imported afresh, exactly as the command line
does, so a run is reproducible after the file is edited). Functions without a file (a notebook cell)
train in memory only (``out=None``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pyro
from tqdm.auto import tqdm

from bayesvae.analysis.findings import render_findings, train_findings
from bayesvae.analysis.findings.wiring import FILE as FINDINGS_FILE
from bayesvae.analysis.findings.wiring import LiveWarnings, config_dict, write_findings
from bayesvae.inference.checkpoint import load_checkpoint
from bayesvae.inference.image_source import count, head
from bayesvae.inference.options import TrainOptions
from bayesvae.inference.pause_points import pause_point
from bayesvae.inference.precision import set_precision
from bayesvae.inference.resources import check_training_memory
from bayesvae.inference.run_lock import run_folder_lock
from bayesvae.inference.scale_options import ScaleOptions
from bayesvae.inference.state_schema import check_resume_epochs, check_resume_step
from bayesvae.inference.train import Interrupted, TrainState, train
from bayesvae.inference.training_setup import check_training_setup
from bayesvae.models.build import BUILTIN_MODEL, ModelSpec
from bayesvae.models.checks import declared
from bayesvae.models.errors import BadInput
from bayesvae.models.pair import Pair

from .checks import check_out_folder, resolve_device
from .config import DataSpec, RunConfig, read_config
from .definitions import code_entries, definition
from .data import NAMED, Dataset, load_dataset
from .data.mnist_like import MNIST_LIKE
from .data.torchvision_sets import TORCHVISION_SETS
from .launch import check_scale, launch
from .options import check_keywords
from .run import (CHECKPOINT, Run, build_run_pair, check_new_run_target, create_run_dir, load_run,
                  pictures_missing, remove_stale_temporaries, save_pictures, save_state, write_config)
from .settings import default_run_dir, resolve
from .tracking import Tracker, check_logger

_MODEL_KEYS = set(declared(ModelSpec)) - {"model", "guide"}   # model/guide are fit's own arguments
_TRAIN_KEYS = set(declared(TrainOptions))
_DATA_KEYS = set(declared(DataSpec))   # stream, image_size, workers
SCALE_NAMES = tuple(declared(ScaleOptions))   # how to run (devices, logger): never saved in config.json
OPTION_NAMES = tuple(sorted(_MODEL_KEYS | _TRAIN_KEYS | _DATA_KEYS))   # what config.json records


class _NewRunDir:
    """``out=NEW_RUN_DIR``: write the run to ``runs/<dataset>-<guide>-z<latent size>-<time>`` (the command line's default)."""

    def __repr__(self) -> str:
        return "NEW_RUN_DIR"


NEW_RUN_DIR = _NewRunDir()


def fit(model=None, guide=None, data: str | Dataset = "digits", out=None, *,
        data_dir: str | None = None, download: bool = True, device: str | None = None, force: bool = False,
        progress: bool | None = None, log: Callable[[str], None] | None = None, **options) -> Run:
    """Train a model/guide pair by SVI and return the :class:`Run`.

    ``options`` are the command line's (``bayesvae train --help``; :data:`OPTION_NAMES`): ``prior``,
    ``likelihood``, ``likelihood_scale``, ``net``, ``hidden``, ``latent_dim``, ``activation`` (built-in parts)
    and ``elbo``, ``particles``, ``beta``, ``beta0``, ``warmup_epochs``, ``epochs``, ``batch_size``, ``lr``,
    ``seed``, ``binarize`` (training); ``devices``, ``strategy``, ``num_nodes``, ``precision``, ``logger``
    (how to run: data-parallel processes through Lightning Fabric, README "Scale-out"). Unset ones follow the same rules as on the command line
    (:mod:`bayesvae.settings`: ``binarize`` follows the likelihood's support). With ``out`` the run is written
    there (``NEW_RUN_DIR``: a new folder under runs/, named as the command line names it) and can be resumed.
    """
    log = log or print
    check_keywords(options, _MODEL_KEYS | _TRAIN_KEYS | _DATA_KEYS | set(SCALE_NAMES))
    scale = ScaleOptions(**{k: v for k, v in options.items() if k in SCALE_NAMES})
    model_ref, model_fn = definition(model, "model")
    guide_ref, guide_fn = definition(guide, "guide")
    in_memory = model_fn is not None or guide_fn is not None
    if in_memory and out is not None:
        raise BadInput("a model/guide defined outside a .py file cannot be saved with its run: "
                       "put it in a script, or pass out=None")
    spec = ModelSpec(model=BUILTIN_MODEL if model_fn else model_ref, guide="normal" if guide_fn else guide_ref,
                     **{k: v for k, v in options.items() if k in _MODEL_KEYS})
    training = {k: v for k, v in options.items() if k in _TRAIN_KEYS}
    checked = TrainOptions(**{"binarize": "none", **training})  # every training option checked before slow work
    seed = checked.seed
    device = resolve_device(device)
    check_scale(scale, device)
    check_logger(scale.logger, None if out is None else Path("."))
    if out is not None and out is not NEW_RUN_DIR:
        check_out_folder(out)
        check_new_run_target(Path(out), force)  # before the (slow) work, so a bad --out fails at once

    reading = DataSpec(**{k: v for k, v in options.items() if k in _DATA_KEYS})  # checked before slow work
    dataset = data if isinstance(data, Dataset) else load_dataset(
        str(data), data_dir, download, stream=reading.stream, image_size=reading.image_size, workers=reading.workers)
    if dataset.note:
        log(f"note: {dataset.note}")
    dataset.to(device)
    data_spec = _data_spec(data, dataset, data_dir, saved=out is not None, reading=reading)

    check_training_memory(spec, dataset.image_shape, checked, device)  # before building: "needs about 36 TiB"
    if in_memory:
        pair = _in_memory_pair(spec, dataset.image_shape, device, model_fn, guide_fn, seed)
    else:
        pair = build_run_pair(spec, dataset.image_shape, seed, None, device)
    spec, training = resolve(spec, training, pair, head(dataset.train_x, 4))
    for note in check_training_setup(pair, dataset.train_x, dataset.test_x, training, dataset.train_y):
        log(note)
    runtime = launch(scale, device)   # several processes: the others start here, before anything is written
    if runtime.device not in (None, device):   # one GPU per rank
        device, pair, dataset = runtime.device, pair.to(runtime.device), dataset.to(runtime.device)
    set_precision(pair, scale.precision)   # after the checks, which ran in float32

    if out is NEW_RUN_DIR:
        out = default_run_dir(dataset.name if isinstance(data, Dataset) else str(data), spec)
    saved_spec, code, sources = code_entries(spec) if out is not None else (spec, {}, {})
    config = RunConfig(data_spec, saved_spec, training, dataset.image_shape, code)
    run_dir = None if out is None or not runtime.writer else Path(out)   # rank 0 alone writes
    with run_folder_lock(run_dir, "training"):  # one writer per run folder, until the pictures are drawn
        if run_dir is not None:
            pause_point("start")
            create_run_dir(run_dir, config, sources, force)
        run = Run(config, pair, None, run_dir, device, dataset)
        return _train_run(run, TrainState(), progress, log, runtime, scale)


def _data_spec(data, dataset: Dataset, data_dir: str | None, saved: bool, reading: DataSpec) -> DataSpec:
    """Where (and how: ``reading``'s stream, image size, workers) a later ``load_run`` finds the data again:
    names stay names, paths become absolute."""
    how = {"stream": reading.stream, "image_size": reading.image_size, "workers": reading.workers}
    if isinstance(data, Dataset):
        if saved and dataset.name not in NAMED:
            raise BadInput("a run saved to disk needs data it can load again: save the images to a .npz file "
                           "(arrays 'images', 'labels') and pass its path")
        return DataSpec(dataset.name)
    name = str(data)
    if name in MNIST_LIKE or name in TORCHVISION_SETS:
        return DataSpec(name, str(Path(data_dir or "data").resolve()), **how)
    path = Path(name)
    return DataSpec(str(path.resolve()) if path.suffix in (".npz", ".npy") or path.is_dir() else name, **how)


def _in_memory_pair(spec: ModelSpec, image_shape, device: str, model_fn, guide_fn, seed: int) -> Pair:
    built = build_run_pair(spec, image_shape, seed, None, "cpu")
    pair = Pair(model_fn or built.model, guide_fn or built.guide, modules=built.modules,
                definitions={"model": model_fn or built.definitions["model"],
                             "guide": guide_fn or built.definitions["guide"]})
    return pair.to(device)


def resume(path: str | Path, epochs: int | None = None, trust_code: bool = False, device: str | None = None,
           progress: bool | None = None, log: Callable[[str], None] | None = None, **scale) -> Run:
    """Continue the run in ``path`` from its last checkpoint (optionally to a new total of ``epochs``), on
    any number of processes (``scale``: ``devices``, ... as for :func:`fit`; not those it was trained with)."""
    check_keywords(scale, SCALE_NAMES)
    scale = ScaleOptions(**scale)
    read_config(Path(path))  # a run is there (one clear line if not) before its lock is taken
    device = resolve_device(device)
    check_scale(scale, device)
    check_logger(scale.logger, Path(path))
    runtime = launch(scale, device)   # before the lock: rank 0 alone takes it and writes
    with run_folder_lock(path if runtime.writer else None, "training"):
        return _resume_locked(path, epochs, trust_code, runtime.device or device, progress, log or print,
                              runtime, scale)


def _resume_locked(path, epochs: int | None, trust_code: bool, device: str | None, progress, log,
                   runtime, scale: ScaleOptions) -> Run:
    run = load_run(path, trust_code=trust_code, device=device)
    if not runtime.writer:   # reads the run; rank 0 writes it
        run.path, log = None, (lambda line: None)
    else:
        remove_stale_temporaries(run.path)
    check_resume_epochs(epochs, run.state, path, run.config.training.epochs)
    changed = epochs is not None and epochs != run.config.training.epochs
    if changed:  # written once every check below has passed
        training = TrainOptions.from_dict({**run.config.training.to_dict(), "epochs": epochs})
        run.config = RunConfig(run.config.data, run.config.model, training, run.config.image_shape, run.config.code)
    state = run.state or TrainState()
    if state.epoch >= run.config.training.epochs and state.step == 0:
        if run.path is None:
            return run
        if changed:
            write_config(run.path, run.config)
        if pictures_missing(run) or not (run.path / FINDINGS_FILE).is_file():  # killed after its last checkpoint
            save_pictures(run)
            write_findings(run.path, train_findings(run.history_rows, config_dict(run.config)))
            log(f"{path}: all {run.config.training.epochs} epochs were done; drew the missing pictures and findings")
        else:
            log(f"{path}: all {run.config.training.epochs} epochs are done; pass --epochs N to train longer")
        return run
    check_resume_step(run.state, count(run.data.train_x), run.config.training.batch_size, path)
    check_training_setup(run.pair, run.data.train_x, run.data.test_x, run.config.training, run.data.train_y)
    if changed and run.path is not None:
        write_config(run.path, run.config)
    set_precision(run.pair, scale.precision)
    if run.state is not None and scale.precision == "64-true":
        run.pair.load_unconstrained(load_checkpoint(Path(path) / CHECKPOINT)[0])   # float64 values, not float32 copies
    if run.state is not None and run.path is not None:
        save_state(run.path, run.pair, state)   # metrics.csv re-derived from the checkpoint
    return _train_run(run, state, progress, log, runtime, scale)


def _train_run(run: Run, state: TrainState, progress, log, runtime, scale: ScaleOptions) -> Run:
    if not runtime.writer:
        log = lambda line: None  # noqa: E731 - rank 0 reports
    tracker = Tracker(scale.logger if run.path else "csv", run.path, config_dict(run.config))

    def save(s: TrainState) -> None:
        save_state(run.path, run.pair, s)
        tracker.epochs(s.history)

    save = save if run.path else None
    if state.torch_rng is None:  # a fresh start draws the same numbers however it was set up
        pyro.set_rng_seed(run.config.training.seed)
    started, first_epoch = time.perf_counter(), state.epoch + 1
    config = config_dict(run.config)
    live = LiveWarnings(tqdm.write if log is print else log, state.history, config)  # + a line on explosion
    try:
        run.state = train(run.pair, run.data.train_x, run.data.test_x, run.config.training, state, save,
                          log=live, progress=progress, train_labels=run.data.train_y, runtime=runtime)
    except Interrupted as stop:
        run.state = stop.state
        stop.run_dir = run.path  # where to resume from (the command line names a new run only inside fit)
        stop.quiet = not runtime.writer   # rank 0 tells the user
        raise
    finally:
        run.data.close()   # streamed data: its workers stop now, not whenever the collector finds them
    if run.path is not None:
        save_pictures(run)
        epochs = run.config.training.epochs
        done = f"epochs {first_epoch}–{epochs}" if first_epoch > 1 else f"{epochs} epochs"
        log(f"trained {done} in {time.perf_counter() - started:.1f} s; run in {run.path}")
    findings = train_findings(run.history_rows, config)
    text = render_findings(findings, "findings from the training curves")
    if run.path is not None:
        write_findings(run.path, findings)
        tracker.findings(findings, text)
    log(text)
    return run

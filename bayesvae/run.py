"""Run directories: one folder per training run, readable without pickle.

    RUN/config.json              data, model/guide definition, training options (config.py)
    RUN/checkpoint.safetensors   parameters + optimizer + RNG state + metrics history, written atomically
    RUN/metrics.csv              one row per finished epoch (rewritten from the checkpoint)
    RUN/reconstructions.png      test images (odd rows) and E[x | z], z ~ q(z | x) (even rows)
    RUN/prior_samples.png        E[x | z], z ~ p(z)
    RUN/code/*.py                copies of the user's scripts (only for user-defined model/guide)
    RUN/diagnostics/             written by ``bayesvae diagnose``

Loading a run whose model or guide is a user script imports that script: :func:`load_run` refuses
unless ``trust_code=True``. Runs of built-in definitions never execute code from the folder.
"""

from __future__ import annotations

import csv
import errno
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

import pyro

from bayesvae.analysis.samples import save_prior_samples, save_reconstructions
from bayesvae.inference.batches import evaluation_images
from bayesvae.inference.image_source import is_streamed
from bayesvae.inference.checkpoint import load_checkpoint, save_checkpoint
from bayesvae.inference.files import (atomic_dir, atomic_write_bytes, atomic_write_text,
                                      remove_stale_temporaries)
from bayesvae.inference.pause_points import pause_point
from bayesvae.inference.resources import check_training_memory
from bayesvae.inference.state_schema import check_state_tree
from bayesvae.inference.train import TrainState
from bayesvae.models.build import ModelSpec, build_pair
from bayesvae.models.errors import BadInput
from bayesvae.models.pair import Pair
from bayesvae.models.user_code import sha256_file

from .checks import resolve_device
from .config import RunConfig, read_config
from .data import Dataset, load_dataset
from .run_views import NotebookViews

CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.csv"
METRIC_COLUMNS = ("epoch", "beta", "train_loss", "test_elbo", "test_log_likelihood", "test_kl", "test_log_prior")


def default_device() -> str:
    return resolve_device(None)


@dataclass(repr=False)
class Run(NotebookViews):
    """A trained (or training) pair with its configuration, history and data.

    ``model``/``guide`` are the pair's callables; use them inside ``run.pair.active()`` (the
    diagnostics do this for you). For notebooks: ``encode``, ``decode``, ``sample``, ``reconstruct``,
    ``interpolate``, ``log_evidence``, ``metrics`` (see :mod:`bayesvae.run_views`); ``repr`` is one line.
    """

    config: RunConfig
    pair: Pair
    state: TrainState | None
    path: Path | None = None
    device: str = "cpu"
    _dataset: Dataset | None = field(default=None, repr=False)

    @property
    def model(self):
        return self.pair.model

    @property
    def guide(self):
        return self.pair.guide

    @property
    def history_rows(self) -> list[dict]:
        """One dict per finished epoch (the checkpoint's history; ``run.history`` is the same as a DataFrame)."""
        return list(self.state.history) if self.state else []

    @property
    def data(self) -> Dataset:
        """The run's data set, loaded on first use, on the run's device."""
        if self._dataset is None:
            spec = self.config.data
            self._dataset = load_dataset(spec.dataset, spec.data_dir, download=False, stream=spec.stream,
                                         image_size=spec.image_size, workers=spec.workers).to(self.device)
            if self._dataset.image_shape != self.config.image_shape:
                raise BadInput(f"data set {spec.dataset} now has images of shape {self._dataset.image_shape}, "
                               f"the run was trained on {self.config.image_shape}")
        return self._dataset

    def images(self, split: str = "test", max_images: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images diagnostics score (fixed binarization when training binarized) and their labels, in memory.

        For streamed data the first ``max_images`` (all) of the split are read into memory, binarized as the
        per-epoch evaluation binarizes them (:mod:`bayesvae.data.streaming`): every diagnostic then works on
        tensors; the test split is small, and a split that does not fit is refused with one line."""
        x, y = self.data.split(split)
        y = y if y is None or max_images is None else y[:max_images]
        if is_streamed(x):
            return x.evaluation(self.config.training.binarize).load(max_images), y
        if max_images is not None:
            x = x[:max_images]
        return evaluation_images(x, self.config.training.binarize), y


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "config.json").is_file()


def check_new_run_target(path: Path, force: bool) -> None:
    """Refuse an ``--out`` that cannot take a new run: a file, a non-empty folder without ``force``, a folder
    that is not a bayesvae run even with ``force`` (it never empties an arbitrary folder), or no write access."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BadInput(f"--out {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise BadInput(f"{path} already holds files; pass --force to replace the run there, "
                           f"or --resume {path} to continue it")
        if not is_run_dir(path):
            raise BadInput(f"{path} is not a bayesvae run (no config.json); refusing to empty it even with --force")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise BadInput(f"cannot create run folder {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"cannot create run folder {path}: {probe} is not writable")


def create_run_dir(path: Path, config: RunConfig, sources: dict[str, Path], force: bool) -> None:
    """Write config.json and the code/ copies into a hidden staging folder, then rename it to ``path``:
    the run folder appears complete or not at all. With ``force`` an existing run there is replaced."""
    path = Path(path)
    check_new_run_target(path, force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInput(f"cannot create run folder {path}: {error.strerror or error}") from None
    remove_stale_temporaries(path.parent, path.name)
    try:
        with atomic_dir(path) as staging:
            atomic_write_text(staging / "config.json", config.to_json())
            for role, entry in config.code.items():
                (staging / entry["file"]).parent.mkdir(exist_ok=True)
                atomic_write_bytes(staging / entry["file"], Path(sources[role]).read_bytes())
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise BadInput(f"cannot create run folder {path}: {error.strerror or error}") from None


def write_config(run_dir: Path, config: RunConfig) -> None:
    """Rewrite config.json of an existing run (atomic)."""
    atomic_write_text(run_dir / "config.json", config.to_json())


def metrics_csv(history: list[dict]) -> str:
    """metrics.csv text: one row per epoch, floats written exactly (repr), NaN as 'nan'."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for row in history:
        writer.writerow([row[c] if c == "epoch" else repr(float(row[c])) for c in METRIC_COLUMNS])
    return out.getvalue()


def save_state(run_dir: Path, pair: Pair, state: TrainState) -> None:
    """The checkpoint first (atomic), then metrics.csv derived from it (also atomic)."""
    save_checkpoint(run_dir / CHECKPOINT, pair.unconstrained_parameters(), state.to_tree())
    atomic_write_text(run_dir / METRICS, metrics_csv(state.history))


PICTURES = ("reconstructions.png", "prior_samples.png")


def pictures_missing(run: Run) -> bool:
    """True when a run's pictures were never drawn (killed after its last checkpoint)."""
    return run.path is not None and not all((run.path / name).is_file() for name in PICTURES)


PICTURE_IMAGES = 64   # images the pictures show at most


def save_pictures(run: Run) -> None:
    pause_point("pictures")
    # streamed: only the first images are read (drawn per image, they are the whole split's first ones)
    x, _ = run.images("test", PICTURE_IMAGES if is_streamed(run.data.test_x) else None)
    save_reconstructions(run.pair, x, run.path / "reconstructions.png")
    save_prior_samples(run.pair, x, run.path / "prior_samples.png")


def verify_code(run_dir: Path, config: RunConfig, trust_code: bool) -> None:
    """Refuse to import a run's scripts unless trusted; a script changed since training is refused too."""
    if not config.code:
        return
    files = ", ".join(entry["file"] for entry in config.code.values())
    if not trust_code:
        raise BadInput(f"{run_dir} holds user code ({files}); loading it runs that code: pass --trust-code "
                       f"(load_run(path, trust_code=True)) only if you trust it")
    for role, entry in config.code.items():
        path = run_dir / entry["file"]
        if not path.resolve().is_relative_to(run_dir.resolve()):
            raise BadInput(f"{run_dir}: the {role} script {entry['file']} points outside the run folder")
        if not path.is_file():
            raise BadInput(f"{run_dir}: the {role} script {entry['file']} is missing")
        if sha256_file(path) != entry["sha256"]:
            raise BadInput(f"{path} changed since training (SHA-256 differs from config.json)")


def build_run_pair(spec: ModelSpec, image_shape, seed: int, run_dir: Path | None, device: str) -> Pair:
    """Seed, then build and place the pair: a fresh run and a reloaded one start from the same weights."""
    pyro.set_rng_seed(seed)
    return build_pair(spec, image_shape, base_dir=run_dir).to(device)


def load_run(path: str | Path, trust_code: bool = False, device: str | None = None) -> Run:
    """Load the run in ``path``: config, pair with its trained parameters, training state.

    A run holding user scripts loads only with ``trust_code=True`` (importing a script runs it).
    """
    run_dir = Path(path)
    config = read_config(run_dir)
    verify_code(run_dir, config, trust_code)
    device = resolve_device(device)
    check_training_memory(config.model, config.image_shape, config.training, device)
    pair = build_run_pair(config.model, config.image_shape, config.training.seed, run_dir, device)
    pair.initialize(torch.zeros(2, *config.image_shape, device=device))
    state = None
    if (run_dir / CHECKPOINT).exists():
        params, tree = load_checkpoint(run_dir / CHECKPOINT)
        check_state_tree(tree, params, str(run_dir / CHECKPOINT))
        pair.load_unconstrained(params)
        state = TrainState.from_tree(tree)
    return Run(config, pair, state, run_dir, device)

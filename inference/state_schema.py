"""The schema of a checkpoint's training state, checked whole on load, before anything is written.

A checkpoint edited or damaged into an impossible state (epoch −3 or ``"two"``, Adam moments of
another shape than their parameter, a 10-byte RNG state, history rows without their metrics) must
be refused with one line naming the field, not trained from ("epochs −2 …") nor crash after the
checkpoint was rewritten. The state is the tree of :class:`~bayesvae.inference.train.TrainState`:

    epoch          int ≥ 0, epochs complete        step          int ≥ 0, batches of the next epoch
    history        ``epoch`` rows {epoch: 1, 2, …; metrics: numbers (nats per image; NaN allowed)}
    optimizer      parameter name → a one-parameter Adam state dict, moments shaped like the parameter
    torch_rng      None or torch's CPU generator state      data_rng    None or a generator state
    partial_loss   finite number, nats summed over the ``step`` batches done
"""

from __future__ import annotations

import math

import torch

from bayesvae.models.errors import BadInput

STATE_KEYS = ("epoch", "step", "history", "optimizer", "torch_rng", "data_rng", "partial_loss")
HISTORY_KEYS = ("epoch", "beta", "train_loss", "test_elbo", "test_log_likelihood", "test_kl", "test_log_prior")
_CUDA_GENERATOR_STATE_BYTES = 16  # Philox seed + offset: a data generator of a run trained on a GPU


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_generator(value, name: str, cuda_allowed: bool) -> None:
    if value is None:
        return
    if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.dim() != 1:
        raise ValueError(f"{name} must be a byte tensor (a generator state)")
    if cuda_allowed and value.numel() == _CUDA_GENERATOR_STATE_BYTES:
        return
    try:
        torch.Generator().set_state(value)  # torch's own check of a CPU generator state
    except (RuntimeError, ValueError):
        raise ValueError(f"{name} is not a generator state ({value.numel()} bytes)") from None


def _check_history(history, epoch: int) -> None:
    if not isinstance(history, list) or len(history) != epoch:
        raise ValueError(f"history must hold one row per finished epoch ({epoch}), "
                         f"found {len(history) if isinstance(history, list) else type(history).__name__}")
    for i, row in enumerate(history, 1):
        if not isinstance(row, dict) or any(key not in row for key in HISTORY_KEYS):
            missing = [k for k in HISTORY_KEYS if not isinstance(row, dict) or k not in row]
            raise ValueError(f"history row {i} lacks {', '.join(missing)}")
        if row["epoch"] != i or not all(_number(row[key]) for key in HISTORY_KEYS):
            raise ValueError(f"history row {i} is malformed (epoch {row['epoch']!r}, metrics must be numbers)")


def _check_optimizer(optimizer, params: dict[str, torch.Tensor]) -> None:
    if not isinstance(optimizer, dict):
        raise ValueError("optimizer must map parameter names to Adam states")
    for name, saved in optimizer.items():
        if name not in params:
            raise ValueError(f"optimizer state for {name!r}, which is not a parameter of the checkpoint")
        if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) or \
                not isinstance(saved.get("param_groups"), list):
            raise ValueError(f"optimizer state of {name!r} is not an Adam state dict")
        try:  # torch's own checks of the state dict (parameter groups, keys), on a stand-in parameter
            torch.optim.Adam([torch.empty_like(params[name], requires_grad=True)]).load_state_dict(saved)
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as error:
            raise ValueError(f"optimizer state of {name!r} is not a one-parameter Adam state "
                             f"({type(error).__name__}: {error})") from None
        if set(saved["state"]) - {0}:
            raise ValueError(f"optimizer state of {name!r} holds entries for parameters {sorted(saved['state'])}")
        for moments in saved["state"].values():
            if not isinstance(moments, dict):
                raise ValueError(f"optimizer state of {name!r} is malformed")
            for key in ("exp_avg", "exp_avg_sq"):
                moment = moments.get(key)
                if not isinstance(moment, torch.Tensor) or moment.shape != params[name].shape:
                    found = tuple(moment.shape) if isinstance(moment, torch.Tensor) else type(moment).__name__
                    raise ValueError(f"Adam's {key} of {name!r} has shape {found}, the parameter "
                                     f"{tuple(params[name].shape)}")
                if not bool(torch.isfinite(moment).all()):
                    raise ValueError(f"Adam's {key} of {name!r} is not finite")


def check_state_tree(tree, params: dict[str, torch.Tensor], where: str) -> None:
    """Raise :class:`BadInput` naming ``where`` and the field unless ``tree`` is a valid training state
    for the parameters ``params`` (name → tensor), which must all be finite."""
    try:
        if not isinstance(tree, dict) or set(tree) != set(STATE_KEYS):
            keys = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
            raise ValueError(f"state fields {keys}, expected {list(STATE_KEYS)}")
        for key in ("epoch", "step"):
            if not _whole(tree[key]) or tree[key] < 0:
                raise ValueError(f"{key} is {tree[key]!r}, expected a whole number ≥ 0")
        if not _number(tree["partial_loss"]) or not math.isfinite(tree["partial_loss"]):
            raise ValueError(f"partial_loss is {tree['partial_loss']!r}, expected a finite number")
        _check_history(tree["history"], tree["epoch"])
        _check_optimizer(tree["optimizer"], params)
        _check_generator(tree["torch_rng"], "torch_rng", cuda_allowed=False)
        _check_generator(tree["data_rng"], "data_rng", cuda_allowed=True)
        for name, value in params.items():
            if not value.is_floating_point() or not bool(torch.isfinite(value).all()):
                raise ValueError(f"parameter {name!r} is not finite (NaN or ±inf)")
    except ValueError as error:
        raise BadInput(f"checkpoint {where} is corrupt: {error}") from None


def check_resume_step(state, images: int, batch_size: int, where) -> None:
    """A saved mid-epoch ``step`` must lie inside an epoch of this data: ceil(images / batch_size) steps."""
    steps = math.ceil(images / batch_size)
    if state is not None and state.step >= steps:
        raise BadInput(f"checkpoint of {where} is corrupt: step {state.step} of an epoch that has {steps} steps "
                       f"({images} images, batches of {batch_size})")


def check_resume_epochs(epochs: int | None, state, where, configured: int | None = None) -> None:
    """``--epochs N`` on resume is the new total: fewer than the epochs already done is refused
    (it would rewrite config.json below what the checkpoint holds); so is a config.json (``configured``)
    edited below them when no ``--epochs`` is given."""
    if state is None:
        return
    if epochs is not None and epochs < state.epoch:
        raise BadInput(f"--epochs {epochs} is fewer than the {state.epoch} epochs {where} has done; "
                       f"--epochs on --resume is the new total (at least {state.epoch})")
    if epochs is None and configured is not None and configured < state.epoch:
        raise BadInput(f"{where}: config.json says {configured} epochs but the checkpoint holds {state.epoch}; "
                       f"pass --epochs N (N ≥ {state.epoch}) to set the total")

"""Checkpoint files: parameters, optimizer and RNG state in one safetensors file, no pickle.

One file keeps the checkpoint atomic (see :mod:`.files`). Tensors are stored under
``param/<pyro name>`` (Pyro's unconstrained parameters) and ``state/<n>``; everything else (epoch,
metrics, the optimizer's hyper-parameters) is a JSON tree in the safetensors header's metadata,
with each tensor replaced by a reference to its key. Loading never unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors_bytes

from bayesvae.models.errors import BadInput

from .files import atomic_write_bytes

FORMAT = "bayesvae-checkpoint-1"


def _to_tree(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON tree of ``obj``; tensors go to ``tensors`` and are referenced by key. Dict keys keep their type."""
    if isinstance(obj, torch.Tensor):
        key = f"state/{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"tensor": key}
    if isinstance(obj, dict):
        return {"dict": [[k, _to_tree(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"tuple": [_to_tree(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_to_tree(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _from_tree(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, list):
        return [_from_tree(v, tensors) for v in tree]
    if isinstance(tree, dict):
        if set(tree) == {"tensor"}:
            return tensors[tree["tensor"]]
        if set(tree) == {"dict"}:
            return {k: _from_tree(v, tensors) for k, v in tree["dict"]}
        if set(tree) == {"tuple"}:
            return tuple(_from_tree(v, tensors) for v in tree["tuple"])
        raise ValueError(f"unknown node {sorted(tree)}")
    return tree


def save_checkpoint(path: str | Path, params: dict[str, torch.Tensor], state: dict) -> None:
    """Atomically write ``params`` (name → tensor) and ``state`` (JSON-able tree with tensors) to ``path``."""
    tensors = {f"param/{name}": value.detach().cpu().contiguous().clone() for name, value in params.items()}
    tree = _to_tree(state, tensors)
    data = save_safetensors_bytes(tensors, metadata={"format": FORMAT, "state": json.dumps(tree)})
    atomic_write_bytes(path, data)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(params, state)``; corrupt files raise BadInput."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"no checkpoint at {path}")
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}, expected {FORMAT!r}")
        state = _from_tree(json.loads(metadata["state"]), tensors)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise BadInput(f"checkpoint {path} is corrupt or not a bayesvae checkpoint ({reason})") from None
    params = {key[len("param/"):]: value for key, value in tensors.items() if key.startswith("param/")}
    return params, state

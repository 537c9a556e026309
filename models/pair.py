"""A model/guide pair with its own Pyro parameters.

Pyro keeps parameters in one global store keyed by name, so two pairs whose modules share names
(two runs compared in one process, a sweep, a notebook) would read each other's weights. A
:class:`Pair` owns a store state and every use of it runs inside :meth:`Pair.active`, Pyro's
``ParamStoreDict.scope``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

import pyro
from pyro import poutine

from .errors import BadInput


class Pair:
    """``model(x)`` (prior p(z) × likelihood p(x | z)) and ``guide(x)`` (q(z | x)), following :mod:`.sites`.

    ``modules`` are the ``nn.Module`` objects behind the two callables, moved by :meth:`to`;
    ``definitions`` maps ``"model"``/``"guide"`` to the object whose source defines it (for ``show``).
    """

    def __init__(self, model: Callable, guide: Callable, modules: list[nn.Module] | None = None,
                 definitions: Mapping[str, object] | None = None):
        self.model = model
        self.guide = guide
        self.modules = list(modules or [])
        self.definitions = dict(definitions or {"model": model, "guide": guide})
        self.param_state: dict = {"params": {}, "constraints": {}}

    @contextmanager
    def active(self) -> Iterator["Pair"]:
        """Make this pair's parameters the ones Pyro sees (nesting is allowed)."""
        with pyro.get_param_store().scope(self.param_state):
            yield self

    def initialize(self, x: torch.Tensor) -> None:
        """Run guide and model once on ``x`` so that every parameter exists in this pair's store."""
        with self.active(), torch.no_grad():
            guide_trace = poutine.trace(self.guide).get_trace(x)
            poutine.replay(self.model, trace=guide_trace)(x)

    def to(self, device: torch.device | str) -> "Pair":
        """Move modules and stored parameters to ``device`` in place (parameters keep their identity)."""
        for module in self.modules:
            module.to(device)
        with self.active(), torch.no_grad():
            for _, unconstrained in pyro.get_param_store().named_parameters():
                unconstrained.data = unconstrained.data.to(device)
        return self

    def unconstrained_parameters(self) -> dict[str, torch.Tensor]:
        """Name → unconstrained tensor of every parameter in this pair's store (call :meth:`initialize` first)."""
        with self.active():
            return dict(pyro.get_param_store().named_parameters())

    def load_unconstrained(self, saved: Mapping[str, torch.Tensor]) -> None:
        """Copy ``saved`` values into the store in place; names and shapes must match exactly."""
        current = self.unconstrained_parameters()
        missing, unexpected = sorted(set(current) - set(saved)), sorted(set(saved) - set(current))
        if missing or unexpected:
            raise BadInput(
                "the checkpoint's parameters do not match this model/guide "
                f"(missing: {', '.join(missing[:3]) or 'none'}; unexpected: {', '.join(unexpected[:3]) or 'none'})"
            )
        for name, tensor in current.items():
            if tensor.shape != saved[name].shape:
                raise BadInput(
                    f"the checkpoint's parameter {name} has shape {tuple(saved[name].shape)}, "
                    f"the model/guide expects {tuple(tensor.shape)}: it comes from another architecture"
                )
        with torch.no_grad():
            for name, tensor in current.items():
                tensor.copy_(saved[name])

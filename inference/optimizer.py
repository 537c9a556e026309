"""The optimizer of SVI training: Adam over all of a pair's parameters, recording each step's largest |gradient|."""

from __future__ import annotations

import math

import torch

import pyro
import pyro.optim


class CheckedAdam(pyro.optim.PyroOptim):
    """Adam on all parameters at once, recording the largest |gradient| of each step on the device.

    ``gradient_max`` (0-dim tensor) is max_i |g_i| over every gradient of the last step: NaN or ±inf
    exactly when some gradient element is (the ∞-norm propagates NaN and cannot overflow). It is not
    read here: reading it would make the host wait for the device at every step. The training loop
    reads it once per epoch (:meth:`.step.TrainingStep.read`) and stops at the first bad step, before
    any checkpoint of that epoch is written, so the last good checkpoint is kept.

    Pyro's ``PyroOptim`` keeps one torch optimizer per parameter; here one ``torch.optim.Adam`` holds
    them all (the same update of each tensor, one call per step instead of one per tensor). After the
    step the gradients are released (``grad = None``), so the next backward pass writes them instead
    of adding them to zeros. :meth:`get_state` keeps Pyro's format (parameter name → that parameter's
    Adam state dict), so checkpoints are unchanged.
    """

    def __init__(self, lr: float):
        super().__init__(torch.optim.Adam, {"lr": lr})
        self.lr = lr
        self.adam: torch.optim.Adam | None = None
        self.gradient_max = torch.zeros(())

    def __call__(self, params, *args, **kwargs) -> None:
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        self.gradient_max = torch.stack(torch._foreach_norm([p.grad for p in params], math.inf)).max()
        new = [p for p in params if p not in self.optim_objs]
        if new:
            self._adopt(new)
        self.adam.step()
        for p in params:
            p.grad = None

    def _adopt(self, params: list[torch.Tensor]) -> None:
        """Add parameters seen for the first time (in name order), with their saved state if any."""
        if not params:
            return
        store = pyro.get_param_store()
        params = sorted(params, key=store.param_name)
        if self.adam is None:
            self.adam = torch.optim.Adam(params, lr=self.lr)
        else:
            self.adam.add_param_group({"params": params})
        for p in params:
            self.optim_objs[p] = self.adam
            saved = self._state_waiting_to_be_consumed.pop(store.param_name(p), None)
            if saved is not None:
                single = torch.optim.Adam([p], lr=self.lr)
                single.load_state_dict(saved)  # torch's own checks and casts
                self.adam.state[p] = single.state[p]

    def get_state(self) -> dict:
        """Parameter name → the state dict a one-parameter Adam would have (Pyro's format)."""
        store = pyro.get_param_store()
        state = dict(self._state_waiting_to_be_consumed)
        for p in self.optim_objs:
            single = torch.optim.Adam([p], lr=self.lr)
            if p in self.adam.state:
                single.state[p] = self.adam.state[p]
            state[store.param_name(p)] = single.state_dict()
        return state

"""The floating-point precision of a training session (``--precision``, Lightning Fabric's names).

* ``32-true`` (default): float32 parameters, data and arithmetic; the compiled objective where it applies.
* ``64-true``: parameters (and Adam's moments) float64; model and guide run with their images cast to
  float64 and torch's default dtype float64 (what Fabric's ``DoublePrecision`` does around a module's
  forward), so every density, log-density and gradient is float64. The compiled objective still applies
  (it is traced in float64).
* ``bf16-mixed``: parameters stay float32 master weights, updated by float32 Adam; model and guide run
  under ``torch.autocast(dtype=bfloat16)`` (Fabric's ``MixedPrecision``): matrix products and convolutions
  in bfloat16, and every ``nn.Module``'s bfloat16 output cast back to float32 (Fabric's ``convert_output``,
  here at each module, as a Pyro program has no single forward): the distributions' parameters, the draws
  and the log-densities (computed by Pyro after the programs return) and the loss stay float32. Always the interpreted Pyro objective: tracing under autocast freezes autocast's
  bfloat16 copy of every weight into the TorchScript graph as a constant (torch.jit refuses it:
  "Cannot insert a Tensor that requires grad as a constant"), so no compiled graph can follow the weights.
* ``16-mixed``: refused. float16 gradients underflow without a gradient scaler, and bayesvae sums the
  ranks' gradients and applies Adam by hand (:mod:`.distributed`, :mod:`.optimizer`) with none; bfloat16
  has float32's exponent range and needs none.

Applied by wrapping the pair's model and guide (:class:`AtPrecision`), as Fabric wraps a module's forward,
so training steps, the test metrics and the pictures drawn after training all run at the same precision.
The precision is a property of the session, not of the run (never in config.json): a checkpoint holds
the parameters in the dtype they were trained in, and any precision resumes it (the values are cast).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

import pyro

from bayesvae.models.errors import BadInput
from bayesvae.models.pair import Pair

PRECISIONS = ("32-true", "64-true", "bf16-mixed", "16-mixed")
PARAMETER_DTYPE = {"32-true": torch.float32, "64-true": torch.float64, "bf16-mixed": torch.float32}
AUTOCAST = {"bf16-mixed": torch.bfloat16}


def check_precision(name: str, device_type: str | None = None) -> None:
    """Refuse (BadInput, before any work) a precision bayesvae cannot train at, or this device cannot run."""
    if name == "16-mixed":
        raise BadInput("--precision 16-mixed needs a gradient scaler, which bayesvae's own gradient sum and Adam "
                       "step do not apply: use bf16-mixed (same speed-up on GPUs with bfloat16) or 32-true")
    if name == "64-true" and device_type == "mps":
        raise BadInput("--precision 64-true: Apple's MPS devices have no float64; use --device cpu or 32-true")
    if name == "bf16-mixed" and device_type == "cuda" and not torch.cuda.is_bf16_supported():
        raise BadInput("--precision bf16-mixed: this CUDA device has no bfloat16; use 32-true")


class AtPrecision:
    """``fn`` (a model or guide) run at a precision: images cast to float64 under float64 as default dtype
    (``64-true``) or under bfloat16 autocast (``bf16-mixed``). Attributes are those of ``fn``."""

    def __init__(self, fn, precision: str):
        self.__wrapped__, self.precision = fn, precision
        self.dtype, self.autocast = PARAMETER_DTYPE[precision], AUTOCAST.get(precision)
        self.traceable = self.autocast is None   # see the module docstring (bf16-mixed runs interpreted)

    def __call__(self, x, *args, **kwargs):
        if self.autocast is not None:
            with torch.autocast(x.device.type, dtype=self.autocast), float32_module_outputs():
                return self.__wrapped__(x, *args, **kwargs)
        with default_dtype(self.dtype):
            return self.__wrapped__(_cast(x, self.dtype), *(_cast(a, self.dtype) for a in args), **kwargs)

    def __getattr__(self, name):
        return getattr(self.__dict__["__wrapped__"], name)


def set_precision(pair: Pair, precision: str) -> Pair:
    """Put ``pair`` at ``precision`` in place: its modules and stored parameters cast to the parameter dtype
    (parameters keep their identity), its model and guide wrapped in :class:`AtPrecision`."""
    if precision == "32-true" or isinstance(pair.model, AtPrecision):
        return pair
    dtype = PARAMETER_DTYPE[precision]
    for module in pair.modules:
        module.to(dtype)
    with pair.active(), torch.no_grad():
        for _, unconstrained in pyro.get_param_store().named_parameters():
            if unconstrained.is_floating_point():
                unconstrained.data = unconstrained.data.to(dtype)
    pair.model, pair.guide = AtPrecision(pair.model, precision), AtPrecision(pair.guide, precision)
    return pair


@contextmanager
def default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextmanager
def float32_module_outputs():
    """Every nn.Module's bfloat16/float16 outputs cast to float32 while active (a global forward hook)."""
    handle = torch.nn.modules.module.register_module_forward_hook(lambda _module, _args, out: _upcast(out))
    try:
        yield
    finally:
        handle.remove()


def _upcast(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype in (torch.bfloat16, torch.float16) else out
    if isinstance(out, (tuple, list)):
        return type(out)(_upcast(o) for o in out)
    return out


def _cast(x, dtype: torch.dtype):
    return x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x

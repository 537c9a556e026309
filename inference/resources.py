"""What a piece of work needs in memory, estimated before anything is allocated, and the refusal if it does not fit.

``--latent-dim 1000000000`` or ``--particles 100000000`` would otherwise fail deep inside torch
(or get the process killed) after the run folder was made. The estimate is deliberately simple
and says "about":

    training bytes ≈ 16 · P                                  parameters, gradients, Adam's two moments (float32)
                   + 12 · B · (E + S · D)                    activations: value, saved for backward, gradient

with P the parameter count (the built-in networks are built on torch's ``meta`` device, which
allocates nothing, and counted), B the batch size, S the particles, E the encoder's floats per image
(pixels + hidden widths + 2·latent) and D the decoder's per draw (latent + hidden widths + 3·pixels +
4·latent for z, its noise and the log-densities). A user's script is not imported for this, so its
own parameters are not counted (its activations are, from the image and latent sizes it must have).
"""

from __future__ import annotations

import math
import os

import torch

from bayesvae.models.errors import BadInput

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_bytes(n: float) -> str:
    """``36 TiB``, ``1.5 GiB``: two significant digits, binary units."""
    power = 0 if n < 1024 else min(int(math.log(n, 1024)), len(_UNITS) - 1)
    value = n / 1024 ** power
    return f"{value:.2g} {_UNITS[power]}" if value < 10 else f"{value:.0f} {_UNITS[power]}"


def available_bytes(device: str) -> int:
    """Total memory of ``device``: the GPU's for cuda, the machine's RAM otherwise."""
    parsed = torch.device(device)
    if parsed.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(parsed.index or 0).total_memory
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - no sysconf (Windows)
        return 2**63


def check_fits(needed: float, device: str, what: str, advice: str) -> None:
    """Refuse ``what`` (one line, with the estimate) when it needs more than the device has."""
    have = available_bytes(device)
    if needed > have:
        raise BadInput(f"{what} needs about {format_bytes(needed)} of memory, this machine's {device} has "
                       f"{format_bytes(have)}: {advice}")


def builtin_parameter_count(spec, image_shape) -> int:
    """Parameters of the built-in parts of ``spec`` (a user's script counts 0), built on the meta device."""
    from bayesvae.models.build import build_pair

    if spec.code_refs:
        return 0
    try:
        with torch.device("meta"):
            pair = build_pair(spec, image_shape)
    except BadInput:
        raise
    except Exception:  # noqa: BLE001 - a part that cannot be built on meta is simply not counted
        return 0
    return sum(p.numel() for module in pair.modules for p in module.parameters())


def training_bytes(spec, image_shape, batch_size: int, particles: int) -> float:
    """The estimate of the module docstring, in bytes."""
    pixels, latent, widths = math.prod(image_shape), spec.latent_dim, sum(spec.hidden)
    encoder = pixels + widths + 2 * latent
    decoder = latent + widths + 3 * pixels + 4 * latent
    return 16.0 * builtin_parameter_count(spec, image_shape) + 12.0 * batch_size * (encoder + particles * decoder)


def check_training_memory(spec, image_shape, options, device: str) -> None:
    """Refuse a model/training setting whose estimated memory exceeds the device's, before building it."""
    needed = training_bytes(spec, image_shape, options.batch_size, options.particles)
    check_fits(needed, device, f"training (--latent-dim {spec.latent_dim}, --hidden "
               f"{','.join(map(str, spec.hidden))}, --particles {options.particles}, --batch-size "
               f"{options.batch_size})", "lower them")

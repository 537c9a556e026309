"""Start the processes of a data-parallel run with Lightning Fabric and hand training its runtime.

``--devices N`` (N > 1, or ``--num-nodes`` > 1): :func:`check_scale` refuses a layout this machine cannot
run before any work, and :func:`launch` — called by ``fit``/``resume`` after every input check and before
the first write — builds ``lightning.fabric.Fabric(accelerator, devices, strategy="ddp", num_nodes)`` and
calls ``fabric.launch()``: on the first process that re-runs the same command line once per extra device
(Lightning's subprocess launcher; under ``torchrun`` or SLURM it joins the processes they started
instead), sets up the process group (gloo on CPUs, NCCL on GPUs) and returns. Each process then trains
as rank r of W (:class:`~bayesvae.inference.distributed.DataParallel`). One process (the default) never
imports Lightning.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from bayesvae.inference.distributed import SINGLE_PROCESS, DataParallel, SingleProcess
from bayesvae.inference.precision import check_precision
from bayesvae.inference.scale_options import ScaleOptions
from bayesvae.models.errors import BadInput

EXTRA = "pip install 'bayesvae[distributed]'"
_RANK = [0]   # this process's global rank once launched (0 until then, and with one process)


def reports_errors() -> bool:
    """True on the process that speaks for the run (rank 0): the others meet the same error at the same
    step (they run the same checks on the same numbers) and stay silent, so the user reads one line."""
    return _RANK[0] == 0


def available_devices(device_type: str) -> int:
    """Processes one node can give a device each: CPU cores, CUDA devices, one MPS device."""
    if device_type == "cuda":
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device_type == "mps":
        return 1
    return os.cpu_count() or 1


def check_scale(scale: ScaleOptions, device: str) -> None:
    """Refuse (BadInput, before any work) a layout this machine cannot start: more processes than devices,
    one named device for several processes, Lightning missing, or a precision this device has not."""
    parsed = torch.device(device)
    check_precision(scale.precision, parsed.type)
    if not scale.parallel:
        return
    count = available_devices(parsed.type)
    if scale.devices > count:
        unit = {"cpu": "CPU cores", "cuda": "CUDA devices"}.get(parsed.type, f"{parsed.type} devices")
        raise BadInput(f"--devices {scale.devices}: this machine has {count} {unit} (one process per device)")
    if parsed.index is not None and scale.devices > 1:
        raise BadInput(f"--device {device} names one device; with --devices {scale.devices} use --device "
                       f"{parsed.type} (each process takes its own)")
    if importlib.util.find_spec("lightning") is None:
        raise BadInput(f"--devices/--num-nodes need PyTorch Lightning: {EXTRA}")


def launch(scale: ScaleOptions, device: str) -> SingleProcess:
    """The runtime of this process: :data:`SINGLE_PROCESS`, or (several processes) this rank's, after
    Fabric started the others and the process group (see the module docstring)."""
    if not scale.parallel:
        return SINGLE_PROCESS
    from lightning.fabric import Fabric   # only here: the single-process path never loads Lightning
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        fabric = Fabric(accelerator=torch.device(device).type, devices=scale.devices, strategy=scale.strategy,
                        num_nodes=scale.num_nodes, precision=scale.precision)
    except (MisconfigurationException, ValueError, RuntimeError) as error:   # ddp in a notebook, a torchrun mismatch
        raise BadInput(f"cannot start {scale.devices * scale.num_nodes} processes: {error}") from None
    fabric.launch()
    _RANK[0] = int(fabric.global_rank)
    return DataParallel(fabric)

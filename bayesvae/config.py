"""A run's configuration (config.json): the data, the model/guide definition and the training options.

Everything needed to rebuild the pair and continue or analyse the run; the device is not part of it
(a run trained on a GPU can be analysed on a CPU). Values are validated on every load, so a
config.json edited into an impossible state is refused with one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bayesvae.inference.options import TrainOptions
from bayesvae.models.build import ModelSpec
from bayesvae.models.checks import check_declared, declare
from bayesvae.models.errors import BadInput

VERSION = 1
CODE_DIR = "code"


@dataclass(frozen=True)
class DataSpec:
    """Which data set: a name in ``bayesvae.data.NAMED``, a .npz/.npy path or an image folder, and how it is
    read. All of it is saved in config.json, so ``diagnose``, ``compare``, ``report`` and ``--resume`` reopen
    the run's data as it was trained on (``workers`` changes no number, only how fast batches arrive)."""

    dataset: str = "digits"
    data_dir: str | None = None
    stream: bool = declare(False, "read an image folder batch by batch with DataLoader workers instead of into "
                           "memory (RGB kept; cifar10, celeba and .npy arrays are always streamed)", kind="switch")
    image_size: int | None = declare(None, "resize streamed images: shorter side to S, centre crop S×S "
                                     "(torchvision)", kind="whole", low=1, optional=True, metavar="S")
    workers: int | None = declare(None, "DataLoader worker processes reading streamed data (default: 2; "
                                  "0: read in the training process)", kind="whole", low=0, optional=True,
                                  metavar="N")

    def __post_init__(self):
        check_declared(self)
        if not isinstance(self.dataset, str) or not self.dataset:
            raise BadInput(f"--dataset must be a name or a path, got {self.dataset!r}")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise BadInput(f"--data-dir must be a path, got {self.data_dir!r}")


@dataclass(frozen=True)
class RunConfig:
    """config.json: data, model, training, the image shape and the user scripts' SHA-256 (``code``)."""

    data: DataSpec
    model: ModelSpec
    training: TrainOptions
    image_shape: tuple[int, ...]
    code: dict = field(default_factory=dict)   # role -> {"file": "code/x.py", "sha256": "..."}

    def to_json(self) -> str:
        return json.dumps({
            "bayesvae_config": VERSION,
            "data": {"dataset": self.data.dataset, "data_dir": self.data.data_dir, "stream": self.data.stream,
                     "image_size": self.data.image_size, "workers": self.data.workers},
            "model": self.model.to_dict(),
            "training": self.training.to_dict(),
            "image_shape": list(self.image_shape),
            "code": self.code,
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> "RunConfig":
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as error:
            raise BadInput(f"{where} is not valid JSON ({'nested too deeply' if isinstance(error, RecursionError) else error})") from None
        try:
            if not isinstance(raw, dict) or raw.get("bayesvae_config") != VERSION:
                raise BadInput("not a bayesvae config (version 1)")
            config = cls(DataSpec(**raw["data"]), ModelSpec.from_dict(raw["model"]),
                         TrainOptions.from_dict(raw["training"]), _image_shape(raw["image_shape"]),
                         _code(raw.get("code", {})))
        except BadInput as error:
            raise BadInput(f"{where}: {error}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise BadInput(f"{where}: missing or malformed setting ({type(error).__name__}: {error})") from None
        for role, ref in config.model.code_refs.items():
            if role not in config.code or not ref.startswith(config.code[role]["file"] + ":"):
                raise BadInput(f"{where}: the {role} script {ref!r} is not among the run's code files")
        return config


def _image_shape(value) -> tuple[int, ...]:
    shape = tuple(value)
    if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise BadInput(f"image_shape must be three positive integers (C, H, W), got {value!r}")
    return shape


def _code(value) -> dict:
    """Script entries must name files inside the run's code folder: no absolute paths, no '..'."""
    if not isinstance(value, dict):
        raise BadInput("'code' must be a mapping")
    for role, entry in value.items():
        if role not in ("model", "guide") or not isinstance(entry, dict) or set(entry) != {"file", "sha256"}:
            raise BadInput(f"code entry {role!r} is malformed")
        path = PurePosixPath(entry["file"])
        if path.is_absolute() or ".." in path.parts or path.parts[:1] != (CODE_DIR,) or path.suffix != ".py":
            raise BadInput(f"code file {entry['file']!r} must be a .py file inside the run's {CODE_DIR}/ folder")
    return value


def read_config(run_dir: Path) -> RunConfig:
    """The validated config of the run in ``run_dir``."""
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise BadInput(f"{run_dir} is a file, not a run folder (RUN is the folder bayesvae train wrote)"
                       if Path(run_dir).exists() else f"run {run_dir} does not exist")
    if not path.is_file():
        raise BadInput(f"{run_dir} is not a bayesvae run (no config.json)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: cannot read ({error})") from None
    return RunConfig.from_json(text, str(path))

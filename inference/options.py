"""How to fit a pair: the training options saved in a run's config.json, validated on every load."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from bayesvae.models.errors import BadInput

from .batches import check_binarize
from .kl_weight import check_beta
from .objectives import check_objective

SEED_LIMIT = 2**32  # numpy's and torch's seeding accept [0, 2**32); Pyro seeds both from one value


@dataclass(frozen=True)
class TrainOptions:
    """How to fit a pair (saved in config.json). Defaults train a digits VAE in seconds."""

    elbo: str = "analytic"          # mc | analytic | iwae
    particles: int | None = None    # z-samples per image (default 1, IWAE 5)
    beta: float = 1.0               # KL weight β
    beta0: float = 0.0              # β at epoch 1 when warming up
    warmup_epochs: int = 0          # epochs of linear warm-up from beta0 to beta
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    binarize: str = "dynamic"       # dynamic | fixed | none (see batches.py)

    def __post_init__(self):
        object.__setattr__(self, "particles", check_objective(self.elbo, self.particles))
        object.__setattr__(self, "beta", check_beta(self.beta))
        object.__setattr__(self, "beta0", check_beta(self.beta0, "--beta0"))
        check_binarize(self.binarize)
        for name, low in (("epochs", 1), ("batch_size", 1), ("warmup_epochs", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise BadInput(f"--{name.replace('_', '-')} must be a whole number ≥ {low}, got {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not (math.isfinite(self.lr) and self.lr > 0):
            raise BadInput(f"--lr must be a finite number > 0, got {self.lr!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < SEED_LIMIT:
            raise BadInput(f"--seed must be a whole number from 0 to 2**32 - 1 = {SEED_LIMIT - 1}, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainOptions":
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise BadInput(f"unknown training settings {unknown}")
        return cls(**data)

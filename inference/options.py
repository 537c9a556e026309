"""How to fit a pair: the training options saved in a run's config.json, validated on every load.

Each option's help, kind and range are declared once on its field (:mod:`bayesvae.models.checks`);
the command line's flags and ``bayesvae.fit``'s keyword arguments are built from these declarations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from bayesvae.models.checks import check_declared, declare
from bayesvae.models.errors import BadInput

from .batches import BINARIZE
from .kl_weight import check_beta
from .objectives import OBJECTIVES, check_objective

SEED_LIMIT = 2**32  # numpy's and torch's seeding accept [0, 2**32); Pyro seeds both from one value


@dataclass(frozen=True)
class TrainOptions:
    """How to fit a pair (saved in config.json). Defaults train a digits VAE in seconds."""

    elbo: str = declare("analytic", "mc: Trace_ELBO; analytic: closed-form KL (TraceMeanField_ELBO); "
                        "iwae: importance-weighted bound", kind="choice", choices=OBJECTIVES)
    particles: int | None = declare(None, "z-samples per image (default: 1; iwae: 5)", kind="whole", low=1,
                                    optional=True, metavar="S")
    beta: float = declare(1.0, "KL weight β", kind="number", low=0)
    beta0: float = declare(0.0, "β at epoch 1 during warm-up", kind="number", low=0)
    warmup_epochs: int = declare(0, "epochs of linear KL warm-up from beta0 to beta", kind="whole", low=0,
                                 metavar="N")
    epochs: int = declare(100, "training epochs", kind="whole", low=1, metavar="N")
    batch_size: int = declare(128, "images per step", kind="whole", low=1, metavar="N")
    lr: float = declare(1e-3, "Adam learning rate", kind="number", above=0)
    seed: int = declare(0, "random seed (initial weights, batches, binarization)", kind="whole", low=0,
                        below=SEED_LIMIT)
    binarize: str = declare("dynamic", "pixels x ~ Bernoulli(grey level): dynamic (new draw each epoch), fixed "
                            "(one draw) or none (default: dynamic when the likelihood is over {0, 1} "
                            "pixels, e.g. Bernoulli, else none)", kind="choice", choices=BINARIZE)
    labels: int = declare(0, "labelled training images for --model m2, the same number per class, chosen with "
                          "--seed (0: none)", kind="whole", low=0, metavar="N")
    alpha: float = declare(10.0, "M2: weight α of log q(y|x) per labelled image (Kingma et al. 2014's J^α)",
                           kind="number", low=0)

    def __post_init__(self):
        check_declared(self)
        object.__setattr__(self, "particles", check_objective(self.elbo, self.particles))
        object.__setattr__(self, "beta", check_beta(self.beta))
        object.__setattr__(self, "beta0", check_beta(self.beta0, "--beta0"))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainOptions":
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise BadInput(f"unknown training settings {unknown}")
        return cls(**data)

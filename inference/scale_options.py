"""How a training run is executed, not what it fits: processes, nodes, precision and the metrics logger.

Declared like :class:`.options.TrainOptions` (one declaration per flag, :mod:`bayesvae.models.checks`) but
never saved in config.json: a run trained on N processes resumes on M (the data RNG and the global batches
do not depend on the number of ranks, :func:`.batches.rank_share`), and the logger can change between
sessions. The command line and ``bayesvae.fit``/``resume`` take the same names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bayesvae.models.checks import check_declared, declare

from .precision import PRECISIONS, check_precision

STRATEGIES = ("ddp",)
LOGGERS = ("csv", "tensorboard", "mlflow")


@dataclass(frozen=True)
class ScaleOptions:
    """Data-parallel layout and experiment tracking of one training session."""

    devices: int = declare(1, "data-parallel processes per node, one per device (CPU: per core); train: each trains "
                           "on its share of every global batch of --batch-size images; diagnose: each estimates "
                           "the evidence of its share of the images", kind="whole", low=1,
                           metavar="N")
    strategy: str = declare("ddp", "how the processes are started and talk (Lightning Fabric): ddp re-launches "
                            "this command once per extra device (or joins torchrun's processes)", kind="choice",
                            choices=STRATEGIES)
    num_nodes: int = declare(1, "machines taking part (each runs --devices processes; start them with torchrun "
                             "or a cluster launcher)", kind="whole", low=1, metavar="M")
    precision: str = declare("32-true", "floating-point precision of training (Lightning's names): 32-true; "
                             "64-true (float64 parameters, data and arithmetic); bf16-mixed (float32 weights, "
                             "model and guide under bfloat16 autocast; runs Pyro's interpreted objective, never "
                             "the compiled one); 16-mixed is refused (it needs a gradient scaler)",
                             kind="choice", choices=PRECISIONS)
    logger: str = declare("csv", "experiment tracking through Lightning's loggers: csv (metrics.csv only), "
                          "tensorboard (RUN/tensorboard/) or mlflow (RUN/mlruns/); csv is always written",
                          kind="choice", choices=LOGGERS)

    def __post_init__(self):
        check_declared(self)
        check_precision(self.precision)

    @property
    def parallel(self) -> bool:
        """True when more than one process trains (else the single-process path, which never loads Lightning)."""
        return self.devices * self.num_nodes > 1

    def to_dict(self) -> dict:
        return asdict(self)

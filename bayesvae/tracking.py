"""Experiment tracking of ``bayesvae train --logger``: the per-epoch metrics and the findings, through
Lightning's loggers (``lightning.fabric.loggers.TensorBoardLogger``, ``lightning.pytorch.loggers.MLFlowLogger``).

``csv`` (the default) is the run's own metrics.csv (:func:`bayesvae.run.metrics_csv`, rewritten from the
checkpoint after every epoch, format unchanged) and needs nothing more. ``tensorboard`` writes event files
to RUN/tensorboard/, ``mlflow`` a file store in RUN/mlruns/ (``mlflow ui --backend-store-uri RUN/mlruns``).
MLflow ≥ 3.7 refuses a file store unless ``MLFLOW_ALLOW_FILE_STORE`` is true ("maintenance mode"); it is set
(unless the user set it) because the alternative, a sqlite store, needs SQLAlchemy and Alembic and spends
~15 s migrating an empty database at the first epoch, and a file store is one folder that moves with the run;
both are optional extras, imported only when chosen, refused in one line when missing. Each epoch's row of
the history (nats per image; ``epoch`` is the step axis) and, at the end, the findings (as text and as the
count of problems/warnings) are logged; only the writing process (rank 0) logs.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

from bayesvae.models.errors import BadInput

PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}  # logger: (module, extra)


def check_logger(name: str, run_dir: Path | None) -> None:
    """Refuse (before any work) a logger whose package is missing, or a tracked run without a folder."""
    if name == "csv":
        return
    module, extra = PACKAGES[name]
    for needed, what in ((module, f"the {module} package"), ("lightning", "PyTorch Lightning")):
        if importlib.util.find_spec(needed) is None:
            raise BadInput(f"--logger {name} needs {what}: pip install 'bayesvae[{extra}]'")
    if run_dir is None:
        raise BadInput(f"--logger {name} writes into the run folder: pass out=... (a run kept in memory has none)")


class Tracker:
    """Logs history rows and findings to one Lightning logger (``csv``: nothing beyond metrics.csv)."""

    def __init__(self, name: str, run_dir: Path | None, run_config: dict | None = None):
        self.name, self.logger, self.logged = name, None, 0
        if name == "tensorboard":
            from lightning.fabric.loggers import TensorBoardLogger
            self.logger = TensorBoardLogger(root_dir=str(run_dir), name="tensorboard", version="")
        elif name == "mlflow":
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")   # see the module docstring
            from lightning.pytorch.loggers import MLFlowLogger
            self.logger = MLFlowLogger(experiment_name="bayesvae", run_name=Path(run_dir).name,
                                       tracking_uri=(Path(run_dir) / "mlruns").resolve().as_uri())
        if self.logger is not None and run_config:
            self.logger.log_hyperparams(_flat(run_config))

    def epochs(self, history: list[dict]) -> None:
        """Log the rows of ``history`` not logged yet (called after every saved epoch)."""
        for row in history[self.logged:]:
            if self.logger is not None:
                metrics = {k: float(v) for k, v in row.items() if k != "epoch" and math.isfinite(float(v))}
                self.logger.log_metrics(metrics, step=int(row["epoch"]))
        self.logged = len(history)

    def findings(self, findings: list, text: str) -> None:
        if self.logger is None:
            return
        counts = {f"findings_{severity}": float(sum(f.severity == severity for f in findings))
                  for severity in ("problem", "warning")}
        self.logger.log_metrics(counts, step=self.logged)
        if self.name == "tensorboard":
            self.logger.experiment.add_text("findings", f"```\n{text}\n```", global_step=self.logged)
        else:
            self.logger.experiment.log_text(self.logger.run_id, text, "findings.txt")
        self.logger.finalize("success")


def _flat(tree: dict, prefix: str = "") -> dict:
    """``{"training": {"lr": 0.001}}`` → ``{"training.lr": 0.001}`` (loggers take flat parameters)."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat

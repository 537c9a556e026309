"""What the report reads: the files that ``train``, ``diagnose`` and ``compare`` wrote (no measurement here).

    RUN/config.json, RUN/metrics.csv, RUN/reconstructions.png, RUN/prior_samples.png    bayesvae train
    RUN/diagnostics/anatomy.json (+ PNGs), posterior.json (+ PNGs)                      bayesvae diagnose
    RUN/findings.json, RUN/diagnostics/findings.json                                    the findings layer
    COMPARISON/comparison.json (+ PNGs)                                                 bayesvae compare

An argument is a run folder, a folder of runs (a sweep, with its ``comparison/`` when compared) or a
comparison folder (its runs are read from the paths it lists).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from bayesvae.models.errors import BadInput

COMPARISON = "comparison.json"


def read_json(path: Path) -> dict | None:
    """A JSON file as a dict, None when absent; a file that is not JSON is a bad input."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise BadInput(f"{path} is not valid JSON ({error}); rewrite it with the command that made it") from None


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv as one dict of floats per epoch ('nan' stays NaN; an absent file gives [])."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


@dataclass
class RunResults:
    """Everything one run folder holds for the report."""

    path: Path
    name: str
    config: dict
    metrics: list[dict]
    anatomy: dict | None
    posterior: dict | None
    findings: list[dict] = field(default_factory=list)

    @property
    def diagnostics(self) -> Path:
        return self.path / "diagnostics"

    def file(self, name: str) -> Path | None:
        """``name`` in the run folder or its diagnostics/, if present."""
        for folder in (self.path, self.diagnostics):
            if (folder / name).is_file():
                return folder / name
        return None

    @property
    def guide(self) -> str:
        return self.config["model"]["guide"]

    @property
    def beta(self) -> float:
        return float(self.config["training"]["beta"])

    @property
    def dataset(self) -> str:
        return self.config["data"]["dataset"]

    @property
    def point_mass(self) -> bool:
        """A Delta guide (the autoencoder), read from what diagnose measured or the built-in name."""
        if self.anatomy and "latent" in self.anatomy:
            return bool(self.anatomy["latent"].get("point_mass"))
        return self.guide == "delta"


@dataclass
class ResultSet:
    """The runs of one report and the comparison that covers them (None when ``compare`` was not run)."""

    runs: list[RunResults]
    comparison: dict | None = None
    comparison_dir: Path | None = None

    def row(self, run: RunResults) -> dict | None:
        """The comparison's row for ``run`` (matched by folder), if any."""
        for row in (self.comparison or {}).get("runs", []):
            if row.get("_resolved") == run.path.resolve():
                return row
        return None

    @property
    def datasets(self) -> list[str]:
        return sorted({run.dataset for run in self.runs})


def _findings(run_dir: Path) -> list[dict]:
    found = []
    for path in (run_dir / "findings.json", run_dir / "diagnostics" / "findings.json"):
        data = read_json(path)
        for item in (data or {}).get("findings", []):
            if item not in found:
                found.append(item)
    return found


def load_run_results(path: Path, name: str | None = None) -> RunResults:
    config = read_json(path / "config.json")
    if config is None or "model" not in config:
        raise BadInput(f"{path} is not a bayesvae run (no config.json): pass a run folder, a sweep folder or a "
                       f"comparison folder")
    return RunResults(path, name or path.name, config, read_metrics(path / "metrics.csv"),
                      read_json(path / "diagnostics" / "anatomy.json"),
                      read_json(path / "diagnostics" / "posterior.json"), _findings(path))


def _comparison_runs(folder: Path, comparison: dict) -> list[Path]:
    """The run folders a comparison lists, found relative to the working folder or to the comparison's parents."""
    paths = []
    for row in comparison.get("runs", []):
        candidates = [Path(row.get("path") or "")] + [parent / Path(row.get("path") or "").name
                                                      for parent in (folder.parent, folder.parent.parent)]
        found = next((c for c in candidates if row.get("path") and (c / "config.json").is_file()), None)
        row["_resolved"] = found.resolve() if found else None
        if found:
            paths.append(found)
    return paths


def _matching_comparison(paths: list[Path]) -> tuple[dict | None, Path | None]:
    """The comparison written by ``bayesvae compare`` for these runs (its default folder), if it covers them all."""
    parents = [p.resolve().parent for p in paths]
    folder = Path(os.path.commonpath(parents)) / "comparison"
    comparison = read_json(folder / COMPARISON)
    if comparison is None:
        return None, None
    listed = set(_comparison_runs(folder, comparison))
    covered = {p.resolve() for p in listed}
    return (comparison, folder) if all(p.resolve() in covered for p in paths) else (None, None)


def resolve(items: list[str | Path]) -> ResultSet:
    """Runs and comparison of the report's arguments; refuses (one line) what is not a run, sweep or comparison."""
    if not items:
        raise BadInput("no runs given: pass a run folder, a sweep folder or a comparison folder")
    paths, comparison, comparison_dir = [], None, None
    for item in map(Path, items):
        if not item.is_dir():
            raise BadInput(f"{item} is not a folder: pass a run folder, a sweep folder or a comparison folder")
        if (item / "config.json").is_file():
            paths.append(item)
        elif (item / COMPARISON).is_file():
            comparison, comparison_dir = read_json(item / COMPARISON), item
            found = _comparison_runs(item, comparison)
            if not found:
                raise BadInput(f"{item}: none of the runs its {COMPARISON} lists was found")
            paths.extend(found)
        else:
            children = sorted(p for p in item.iterdir() if (p / "config.json").is_file())
            if not children:
                raise BadInput(f"{item} is not a bayesvae run (no config.json) and holds no runs: pass a run "
                               f"folder, a sweep folder or a comparison folder")
            paths.extend(children)
            if comparison is None and (item / "comparison" / COMPARISON).is_file():
                comparison_dir = item / "comparison"
                comparison = read_json(comparison_dir / COMPARISON)
                _comparison_runs(comparison_dir, comparison)
    unique = list({p.resolve(): p for p in paths}.values())
    names = [p.name for p in unique]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}/{p.name}" for p in unique]
    runs = [load_run_results(p, n) for p, n in zip(unique, names)]
    if comparison is None:
        comparison, comparison_dir = _matching_comparison(unique)
    return ResultSet(runs, comparison, comparison_dir)


def finite(value) -> float | None:
    """A number, or None for absent / NaN / infinite values (JSON null, 'nan' in metrics.csv)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None

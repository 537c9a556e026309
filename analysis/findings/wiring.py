"""The few calls the commands make: config as a dict, findings.json, the live training warning, compare columns.

Kept here so that ``train``/``diagnose``/``compare`` add a handful of lines each (see the README's Findings
section for the files written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from bayesvae.inference.files import atomic_write_text

from .compare import compare_findings, definition_labels
from .finding import Finding, findings_json, short_list
from .training import live_finding

FILE = "findings.json"


def config_dict(config) -> dict:
    """config.json's content as a dict, from a ``RunConfig`` (anything with ``to_json``) or a dict."""
    return config if isinstance(config, dict) else json.loads(config.to_json())


def write_findings(folder: str | Path, findings: list[Finding]) -> Path:
    """``folder/findings.json`` = ``{"findings": [...]}``, written atomically; returns the path."""
    path = Path(folder) / FILE
    atomic_write_text(path, json.dumps(findings_json(findings), indent=1, ensure_ascii=False) + "\n")
    return path


class LiveWarnings:
    """A ``log`` for :func:`bayesvae.inference.train.train` that passes every line on and, after an epoch's
    line, adds one warning line when that epoch exploded (:func:`.training.live_finding`).

    ``history`` is the training state's list, which ``train`` appends to before it logs the epoch."""

    def __init__(self, log: Callable[[str], None], history: list[dict], config: dict):
        self.log, self.history, self.config = log, history, config
        self.seen = len(history)
        self.warned: set[str] = set()

    def __call__(self, line: str) -> None:
        self.log(line)
        if len(self.history) <= self.seen:
            return
        self.seen = len(self.history)
        finding = live_finding(self.history, self.config)
        if finding is not None and finding.id not in self.warned:  # one line per kind, not one per epoch
            self.warned.add(finding.id)
            self.log(f"warning: {finding.title}; {finding.remedy}")


def label_compare_row(row: dict, config) -> dict:
    """Add ``binarize``/``model`` to a compare row and name a user script's prior and likelihood as the user's."""
    config = config_dict(config)
    labels = definition_labels(config)
    return {**row, "prior": labels["prior"], "likelihood": labels["likelihood"], "model": labels["model"],
            "binarize": config.get("training", {}).get("binarize")}


def attach_compare_findings(result: dict) -> dict:
    """Per-run findings into each row (``findings``, ``findings_summary``) and the comparison's own into
    ``result["findings"]``; returns the :func:`.compare.compare_findings` output."""
    found = compare_findings(result["runs"])
    for row in result["runs"]:
        mine = found["runs"][row["name"]]
        row["findings"] = [f.to_dict() for f in mine]
        row["findings_summary"] = short_list([f for f in mine if f.id != "silhouette"])
    result["findings"] = {"comparison": [f.to_dict() for f in found["comparison"]], "rankable": found["rankable"],
                          "groups": found["groups"]}
    return found

"""A finding: a measured fact, the threshold it crossed, what it means and what to do.

    Finding(id, severity, title, evidence, meaning, remedy)

``severity`` is ``"problem"`` (the run's numbers are wrong or meaningless until fixed), ``"warning"``
(they are likely misleading) or ``"note"`` (true and worth knowing, nothing to fix). ``evidence`` holds
the measured numbers the finding rests on (plain floats, ints or strings, JSON-ready).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

SEVERITIES = ("problem", "warning", "note")


@dataclass(frozen=True)
class Finding:
    """One measured finding (see the module docstring)."""

    id: str
    severity: str
    title: str
    evidence: dict = field(default_factory=dict)
    meaning: str = ""
    remedy: str = ""

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["evidence"] = {key: _plain(value) for key, value in self.evidence.items()}
        return out


def _plain(value):
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    value = float(value)
    return value if math.isfinite(value) else str(value)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Problems first, then warnings, then notes (stable within a severity)."""
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def findings_json(findings: list[Finding]) -> dict:
    """``{"findings": [finding.to_dict(), ...]}``: the content of findings.json."""
    return {"findings": [f.to_dict() for f in sort_findings(findings)]}


def _evidence_text(evidence: dict) -> str:
    parts = []
    for key, value in evidence.items():
        if isinstance(value, float):
            value = f"{value:.3g}" if abs(value) < 1e4 else f"{value:.3e}"
        parts.append(f"{key} = {value}")
    return ", ".join(parts)


def render_findings(findings: list[Finding], header: str = "findings") -> str:
    """The terminal section: one block per finding, problems first; a single line when there are none."""
    if not findings:
        return f"{header}: no problem or warning found (thresholds: bayesvae.analysis.findings.thresholds)"
    lines = [f"{header}:"]
    for f in sort_findings(findings):
        lines.append(f"  [{f.severity}] {f.title} ({f.id})")
        if f.evidence:
            lines.append(f"      measured: {_evidence_text(f.evidence)}")
        if f.meaning:
            lines.append(f"      meaning: {f.meaning}")
        if f.remedy:
            lines.append(f"      what to do: {f.remedy}")
    return "\n".join(lines)


def worst(findings: list[Finding]) -> str | None:
    """The most severe severity among ``findings`` (None when empty)."""
    return sort_findings(findings)[0].severity if findings else None


def short_list(findings: list[Finding]) -> str:
    """One cell for a table column: ``problem: posterior-collapse; note: silhouette`` (``-`` when none)."""
    return "; ".join(f"{f.severity}: {f.id}" for f in sort_findings(findings)) or "-"

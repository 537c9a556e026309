"""Findings: measured facts with a threshold, a meaning and a remedy (``train``, ``diagnose``, ``compare``).

    from bayesvae.analysis.findings import train_findings, diagnose_findings, compare_findings, render_findings

Every function reads plain measured signals (metrics history, anatomy.json, posterior.json, compare
rows, config.json as dicts) and returns :class:`Finding` objects; thresholds live in :mod:`.thresholds`.
"""

from .compare import compare_findings, definition_labels
from .diagnose import diagnose_findings
from .evidence import evidence_finding, format_log_px, khat_summary, unreliable
from .finding import Finding, findings_json, render_findings, short_list, sort_findings, worst
from .training import live_warning, train_findings

__all__ = ["Finding", "compare_findings", "definition_labels", "diagnose_findings", "evidence_finding",
           "findings_json", "format_log_px", "khat_summary", "live_warning", "render_findings", "short_list",
           "sort_findings", "train_findings", "unreliable", "worst"]

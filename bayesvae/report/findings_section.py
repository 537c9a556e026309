"""Section 1, findings first: the problems and warnings the findings layer measured, with their fix.

Read from RUN/findings.json (training), RUN/diagnostics/findings.json (diagnose) and the comparison's
per-run ``findings`` lists; this module only orders and words them (problems, then warnings, then notes).
"""

from __future__ import annotations

from .html import Section, esc, missing, para
from .inputs import ResultSet, RunResults

ORDER = {"problem": 0, "warning": 1, "note": 2}
FILES = ("findings.json", "diagnostics/findings.json")


def _evidence(evidence: dict) -> str:
    items = []
    for key, value in (evidence or {}).items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        items.append(f"{key} = {shown}")
    return "; ".join(items)


def _card(run_name: str, item: dict) -> str:
    severity = str(item.get("severity", "note"))
    parts = [f"<p><b>{esc(severity)}</b> · {esc(run_name)} · <b>{esc(item.get('title', item.get('id', '')))}</b></p>"]
    if item.get("evidence"):
        parts.append(f"<p>measured: {esc(_evidence(item['evidence']))}</p>")
    if item.get("meaning"):
        parts.append(f"<p>what it means: {esc(item['meaning'])}</p>")
    if item.get("remedy"):
        parts.append(f"<p>what to do: {esc(item['remedy'])}</p>")
    return f'<div class="finding {esc(severity)}">{"".join(parts)}</div>'


def _all_findings(results: ResultSet, run: RunResults) -> list[dict]:
    found = list(run.findings)
    row = results.row(run) or {}
    ids = {item.get("id") for item in found}
    for item in row.get("findings") or []:    # compare's view of a finding the run's own files already hold: once
        if isinstance(item, dict) and item.get("id") not in ids:
            found.append(item)
    return found


def findings_section(results: ResultSet) -> Section:
    section = Section("findings", "Findings: what is wrong, in plain words, and the fix")
    cards, checked, unchecked = [], [], []
    for run in results.runs:
        found = _all_findings(results, run)
        has_files = any((run.path / f).is_file() for f in FILES) or bool(found)
        (checked if has_files else unchecked).append(run)
        cards += [(ORDER.get(str(item.get("severity")), 3), run.name, item) for item in found]
    own = ((results.comparison or {}).get("findings") or {})
    cards += [(ORDER.get(str(item.get("severity")), 3), "comparison", item)
              for item in (own.get("comparison") if isinstance(own, dict) else None) or [] if isinstance(item, dict)]
    cards.sort(key=lambda c: c[0])
    serious = sum(1 for c in cards if c[0] < 2)
    if checked:
        names = ", ".join(run.name for run in checked)
        section.add(para(f"{serious} problem(s) or warning(s) and {len(cards) - serious} note(s) were found in "
                         f"{names}." if cards else f"The findings layer raised nothing for {names}."))
        section.add(*(_card(name, item) for _, name, item in cards))
    if unchecked:
        section.add(missing(f"No findings were written for {', '.join(run.name for run in unchecked)} "
                            f"(no {' or '.join(FILES)})",
                            " && ".join(f"bayesvae diagnose {run.path}" for run in unchecked[:3])
                            + (" …" if len(unchecked) > 3 else "")))
    return section

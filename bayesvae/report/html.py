"""HTML building blocks of the report: escaped text, tables, figures with embedded images, sections, the page.

Written by hand (a few f-strings) rather than with a template engine: the page is one static file with
inline CSS and images as base64 ``data:`` URIs, so it opens anywhere and fetches nothing.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; margin: 0; background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5em 2em 4em; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: .2em; } h2 { border-bottom: 2px solid #dde3ea; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.4em; } .sub { color: #5b6577; margin-top: 0; }
nav ol { columns: 2; } nav a { color: #24508f; text-decoration: none; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #dde3ea; padding: .25em .6em; text-align: right; vertical-align: top; }
th { background: #eef2f6; } td:first-child, th:first-child { text-align: left; }
td.text, th.text { text-align: left; max-width: 28em; }
table.terms { width: 100%; } table.terms td.text { max-width: none; } td pre { white-space: pre-wrap; margin: 0; }
pre { background: #f3f5f8; border: 1px solid #dde3ea; padding: .6em .8em; overflow-x: auto; font-size: .85em; }
pre .add { color: #1a7f37; } pre .del { color: #b42318; } pre .hunk { color: #0b6e99; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #dde3ea; }
figcaption { color: #3d4656; font-size: .92em; margin-top: .3em; } figcaption b { color: #1d2330; }
.finding { border-left: 5px solid #999; padding: .4em .9em; margin: .6em 0; background: #fafbfc; }
.finding.problem { border-color: #b42318; } .finding.warning { border-color: #d98b00; } .finding.note { border-color: #24508f; }
.missing { color: #6b4e00; background: #fff7e0; border: 1px solid #f0d58a; padding: .4em .8em; }
.missing code, p code, li code { background: #f3f5f8; padding: 0 .25em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 0 1.5em; }
.unreliable { color: #b42318; font-weight: 600; }
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def para(text: str) -> str:
    """A paragraph of plain text (escaped)."""
    return f"<p>{esc(text)}</p>"


def missing(what: str, command: str) -> str:
    """The line a section shows where its results do not exist yet: what is missing and the command that writes it."""
    return f'<p class="missing">{esc(what)}: run <code>{esc(command)}</code>, then write the report again.</p>'


def table(header: list[str], rows: list[list], text_columns: tuple[int, ...] = ()) -> str:
    """A table of escaped cells; columns in ``text_columns`` are left-aligned prose."""
    head = "".join(f'<th class="text">{esc(h)}</th>' if i in text_columns else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="text">{esc(c)}</td>' if i in text_columns else f"<td>{esc(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def code(lines: list[str]) -> str:
    """A code listing; diff lines (+, -, @@) are coloured."""
    out = []
    for line in lines:
        kind = "hunk" if line.startswith("@@") else "add" if line.startswith("+") else \
            "del" if line.startswith("-") else ""
        out.append(f'<span class="{kind}">{esc(line)}</span>' if kind else esc(line))
    return "<pre>" + "\n".join(out) + "</pre>"


def compact_png(png: bytes) -> bytes:
    """The PNG re-encoded with an adaptive 256-colour palette when that is smaller (plots have few colours;
    a scatter of thousands of MCMC draws shrinks about threefold), else unchanged."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        if image.mode == "P":
            return png
        out = io.BytesIO()
        image.convert("RGB").quantize(256).save(out, format="PNG", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(compact_png(png)).decode("ascii")


def figure(image: Path | bytes, title: str, caption: str, alt: str | None = None) -> str:
    """An embedded PNG (a file or its bytes) with a bold title and a caption of one or two sentences."""
    png = image if isinstance(image, bytes) else Path(image).read_bytes()
    return (f'<figure><img src="{data_uri(png)}" alt="{esc(alt or title)}">'
            f"<figcaption><b>{esc(title)}.</b> {esc(caption)}</figcaption></figure>")


def grid(figures: list[str]) -> str:
    """Figures side by side (as many per row as fit), for small pictures of several runs."""
    return f'<div class="grid">{"".join(figures)}</div>' if figures else ""


@dataclass
class Section:
    """One numbered section of the page: an anchor id, a title, and its HTML body (never empty)."""

    key: str
    title: str
    parts: list[str] = field(default_factory=list)

    def add(self, *parts: str) -> "Section":
        self.parts.extend(p for p in parts if p)
        return self


def each_run(section: Section, runs: list, results_of, lacking: str, render) -> None:
    """Add ``render(run)``'s parts for every run (under its name when there are several), or, for a run whose
    ``results_of(run)`` is None, the line saying that ``bayesvae diagnose RUN`` writes what it lacks."""
    for run in runs:
        if len(runs) > 1:
            section.add(f"<h3>{esc(run.name)}</h3>")
        if results_of(run) is None:
            section.add(missing(f"{run.name} has no {lacking}", f"bayesvae diagnose {run.path}"))
        else:
            section.add(*render(run))


def page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole document: title, table of contents, the sections; styles inline, no script, no external URL."""
    toc = "".join(f'<li><a href="#{s.key}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(f'<section id="{s.key}" data-section="{s.key}"><h2>{n}. {esc(s.title)}</h2>{"".join(s.parts)}'
                   f"</section>" for n, s in enumerate(sections, 1))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f'<body><main><h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p><nav><ol>{toc}</ol></nav>'
            f"{body}</main></body></html>\n")

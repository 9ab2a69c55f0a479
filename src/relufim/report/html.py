"""Render a :class:`~relufim.report.document.Report` as one self-contained HTML page.

Everything is inline: the CSS in a ``<style>`` element, the figures as
``data:image/png;base64`` URIs. No scripts, fonts or links to fetch, so the page
reads the same offline, attached to an e-mail or years later.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from .document import Figure, Paragraph, Preformatted, Report, Section, Table, format_value

__all__ = ["render_html"]

_CSS = """
:root { --fg: #1d2433; --muted: #5b6475; --line: #d8dde6; --accent: #2f5d9e; --ok: #1b7f3b; --bad: #b3261e; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       max-width: 1100px; margin: 2rem auto; padding: 0 1.25rem; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 2px solid var(--line); padding-bottom: .2rem; }
.subtitle { color: var(--muted); margin-top: 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 1rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; font-family: ui-monospace, monospace; }
.table-wrap { overflow-x: auto; margin: .8rem 0 1.2rem; }
table { border-collapse: collapse; font-size: .9rem; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: .3rem; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f3f5f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, monospace; }
td.holds-yes { color: var(--ok); font-weight: 600; } td.holds-no { color: var(--bad); font-weight: 600; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .9rem; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: .7rem; overflow-x: auto; font-size: .85rem; }
p.warning { color: var(--bad); }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _cell(column: str, value: Any) -> str:
    text = format_value(value)
    cls = []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        cls.append("num")
    if column.lower() == "holds" and isinstance(value, bool):
        cls.append("holds-yes" if value else "holds-no")
    attr = f' class="{" ".join(cls)}"' if cls else ""
    return f"<td{attr}>{_e(text)}</td>"


def _table(t: Table) -> str:
    ident = f' id="{_e(t.id)}"' if t.id else ""
    cap = f"<caption>{_e(t.caption)}</caption>" if t.caption else ""
    head = "".join(f"<th scope=\"col\">{_e(c)}</th>" for c in t.columns)
    body = "\n".join("<tr>" + "".join(_cell(c, v) for c, v in zip(t.columns, row)) + "</tr>" for row in t.rows)
    return (f'<div class="table-wrap"><table{ident}>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")


def _figure(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    ident = f' id="{_e(f.id)}"' if f.id else ""
    return (f'<figure{ident}><img src="data:{f.mime};base64,{data}" alt="{_e(f.caption)}">'
            f"<figcaption>{_e(f.caption)}</figcaption></figure>")


def _block(b: Any) -> str:
    if isinstance(b, Paragraph):
        cls = ' class="warning"' if b.kind == "warning" else ""
        return f"<p{cls}>{_e(b.text)}</p>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return _figure(b)
    if isinstance(b, Preformatted):
        cap = f"<p>{_e(b.caption)}</p>" if b.caption else ""
        return f"{cap}<pre>{_e(b.text)}</pre>"
    raise TypeError(f"unknown report block {type(b).__name__}")  # pragma: no cover


def _section(s: Section) -> str:
    ident = f' id="{_e(s.id)}"' if s.id else ""
    return f"<section{ident}><h2>{_e(s.title)}</h2>\n" + "\n".join(_block(b) for b in s.blocks) + "</section>"


def render_html(report: Report) -> str:
    """The report as one HTML document (a string), with figures and styles inline.

    Examples
    --------
    >>> from relufim.report.document import Report, Section, Table
    >>> page = render_html(Report("T", "sub", [("a", 1)], [Section("S", [Table(["x"], [[0.5]], id="t")])]))
    >>> page.startswith("<!DOCTYPE html>"), 'id="t"' in page
    (True, True)
    """
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{_e(format_value(v))}</dd>" for k, v in report.facts)
    toc = "".join(f'<li><a href="#{_e(s.id)}">{_e(s.title)}</a></li>' for s in report.sections if s.id)
    body = "\n".join(_section(s) for s in report.sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(report.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_e(report.title)}</h1>
<p class="subtitle">{_e(report.subtitle)}</p>
<dl class="facts">{facts}</dl>
<nav><ul>{toc}</ul></nav>
</header>
<main>
{body}
</main>
<footer>Generated by relufim. This page is self-contained: figures and styles are embedded.</footer>
</body>
</html>
"""

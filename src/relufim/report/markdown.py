"""Render a :class:`~relufim.report.document.Report` as Markdown (figures linked by file name)."""

from __future__ import annotations

from typing import Any

from .document import Figure, Paragraph, Preformatted, Report, Table, format_value

__all__ = ["render_markdown"]


def _md_cell(value: Any) -> str:
    return format_value(value).replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> str:
    lines = []
    if t.caption:
        lines.append(f"*{t.caption}*\n")
    lines.append("| " + " | ".join(_md_cell(c) for c in t.columns) + " |")
    lines.append("|" + "|".join("---" for _ in t.columns) + "|")
    lines.extend("| " + " | ".join(_md_cell(v) for v in row) + " |" for row in t.rows)
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    """The report as Markdown; figures appear as links to their PNG files next to ``report.md``.

    Examples
    --------
    >>> from relufim.report.document import Report, Section, Table
    >>> print(render_markdown(Report("T", "s", [], [Section("S", [Table(["a", "b"], [[1, None]])])])))
    # T
    <BLANKLINE>
    s
    <BLANKLINE>
    ## S
    <BLANKLINE>
    | a | b |
    |---|---|
    | 1 | – |
    <BLANKLINE>
    """
    out = [f"# {report.title}", "", report.subtitle, ""]
    for k, v in report.facts:
        out.append(f"- **{k}**: {format_value(v)}")
    if report.facts:
        out.append("")
    for section in report.sections:
        out += [f"## {section.title}", ""]
        for b in section.blocks:
            if isinstance(b, Paragraph):
                out.append(("**Warning:** " if b.kind == "warning" else "") + b.text)
            elif isinstance(b, Table):
                out.append(_table(b))
            elif isinstance(b, Figure):
                out.append(f"![{b.caption}]({b.file})\n\n*{b.caption}*" if b.file else f"*{b.caption}* (figure)")
            elif isinstance(b, Preformatted):
                if b.caption:
                    out.append(b.caption + "\n")
                out.append("```\n" + b.text.rstrip("\n") + "\n```")
            out.append("")
    return "\n".join(out)

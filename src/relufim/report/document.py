"""A small document model that both renderers (HTML, Markdown) share.

A report is a title, a few header facts and a list of sections; a section holds
blocks: paragraphs, tables, figures (PNG bytes) and preformatted text. Building the
content once and rendering it twice keeps ``report.html`` and ``report.md`` in step.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["Paragraph", "Table", "Figure", "Preformatted", "Section", "Report", "format_value"]

_MAX_LIST = 8  # longer lists in a table cell are cut, with their length


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text (escaped by the renderers)."""

    text: str
    kind: str = "text"  # "text" or "warning"


@dataclass(frozen=True)
class Table:
    """A table: column names, rows of values (formatted by :func:`format_value`), an ``id`` for the HTML."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    id: str = ""
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A figure: its image bytes (embedded in the HTML) and the file it was saved as (linked from the Markdown)."""

    png: bytes
    caption: str
    file: str | None = None
    id: str = ""
    mime: str = "image/png"


@dataclass(frozen=True)
class Preformatted:
    """Text shown verbatim (a configuration file, a traceback)."""

    text: str
    caption: str = ""


Block = Paragraph | Table | Figure | Preformatted


@dataclass(frozen=True)
class Section:
    """A titled section of blocks; ``id`` is its anchor in the HTML (and its entry in the table of contents)."""

    title: str
    blocks: Sequence[Block] = field(default_factory=list)
    id: str = ""


@dataclass(frozen=True)
class Report:
    """The whole report: title, subtitle, header facts (label, value) and sections."""

    title: str
    subtitle: str
    facts: Sequence[tuple[str, Any]]
    sections: Sequence[Section]


def format_value(value: Any) -> str:
    """How a value reads in a table cell.

    Examples
    --------
    >>> [format_value(v) for v in (0.97746482, 12, True, None, float("nan"), [1, 3, 5])]
    ['0.9775', '12', 'yes', '–', '–', '[1, 3, 5]']
    >>> format_value(list(range(20)))
    '[0, 1, 2, 3, 4, 5, 6, 7, …] (20 values)'
    """
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value == 0:
            return "0"
        if 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    if isinstance(value, (list, tuple)) and len(value) > _MAX_LIST:
        head = ", ".join(format_value(v) for v in value[:_MAX_LIST])
        return f"[{head}, …] ({len(value)} values)"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)

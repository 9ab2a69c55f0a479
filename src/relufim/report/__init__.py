"""Reports people read: one self-contained ``report.html`` (and ``report.md``) per run directory.

:func:`build_report` accepts either a ``relufim reproduce`` run directory (it reads
``summary.json``) or a sweep directory (it reads the results store), and writes
``report.html`` with every figure embedded, the papers' claims next to the measured
values, the configuration and the versions; and ``report.md`` for plain-text use.

Modules: :mod:`~relufim.report.document` (the shared document model),
:mod:`~relufim.report.html` and :mod:`~relufim.report.markdown` (renderers),
:mod:`~relufim.report.reproduce` and :mod:`~relufim.report.sweep_report` (content),
:mod:`~relufim.report.sweep_figures` (aggregate figures of a sweep).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .._io import write_bytes_atomic
from ..sweep.store import DB_NAME
from .html import render_html
from .markdown import render_markdown
from .reproduce import SUMMARY_NAME, reproduce_report
from .sweep_report import sweep_report

__all__ = ["ReportFiles", "build_report", "report_kind", "render_html", "render_markdown", "MARKDOWN_MARKER"]

#: Last line of every ``report.md`` written here; a ``report.md`` without it is someone else's and is kept.
MARKDOWN_MARKER = "<!-- written by `relufim report`; regenerate with: relufim report DIR -->"


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`build_report` wrote."""

    kind: str
    html: Path
    markdown: Path
    figures: tuple[Path, ...]
    markdown_written: bool = True


def report_kind(directory: str | os.PathLike) -> str:
    """``"sweep"`` (has a results store), ``"reproduce"`` (has ``summary.json``), else a ValueError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    if (directory / DB_NAME).exists():
        return "sweep"
    if (directory / SUMMARY_NAME).exists():
        return "reproduce"
    raise ValueError(f"{directory} is neither a sweep directory (no {DB_NAME}) nor a reproduce run "
                     f"(no {SUMMARY_NAME}); pass the --out directory of `relufim sweep` or `relufim reproduce`.")


def build_report(directory: str | os.PathLike, *, markdown: bool = True) -> ReportFiles:
    """Write ``DIR/report.html`` (self-contained) and ``DIR/report.md`` for a reproduce or sweep directory.

    Parameters
    ----------
    directory : path
        A ``relufim reproduce`` run directory or a ``relufim sweep`` results directory.
    markdown : bool
        Also write ``report.md`` (figures linked as files next to it). A ``report.md`` that
        ``relufim report`` did not write (``relufim reproduce`` writes its own, with the
        sections' prose) is kept as it is; ``ReportFiles.markdown_written`` says which.

    Returns
    -------
    ReportFiles

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (run / "summary.json").write_text(json.dumps({"claims": [{"claim": "c", "holds": True}]}))
    >>> files = build_report(run)
    >>> files.kind, files.html.name, 'id="claims"' in files.html.read_text()
    ('reproduce', 'report.html', True)
    """
    directory = Path(directory)
    kind = report_kind(directory)
    figures: list[Path] = []
    if kind == "sweep":
        report, figs = sweep_report(directory)
        for rel, png in figs.items():
            figures.append(write_bytes_atomic(directory / rel, png))
    else:
        report = reproduce_report(directory)
    html_path = write_bytes_atomic(directory / "report.html", render_html(report).encode("utf-8"))
    md_path = directory / "report.md"
    written = False
    if markdown and not (kind == "reproduce" and _foreign_markdown(md_path)):
        write_bytes_atomic(md_path, (render_markdown(report) + "\n" + MARKDOWN_MARKER + "\n").encode("utf-8"))
        written = True
    return ReportFiles(kind=kind, html=html_path, markdown=md_path, figures=tuple(figures), markdown_written=written)


def _foreign_markdown(path: Path) -> bool:
    """A ``report.md`` that this module did not write (``relufim reproduce`` writes its own: keep it)."""
    try:
        return MARKDOWN_MARKER not in path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return False

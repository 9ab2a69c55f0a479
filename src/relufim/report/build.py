"""The files of a report: the one writer of ``report.md`` and ``report.html``, and of a reproduce run's folder.

:func:`build_report` renders a reproduce run or a sweep directory; :func:`write_reproduce_run`
turns what :func:`relufim.experiments.reproduce` returned into the run folder (figures,
``summary.json``) and then calls :func:`build_report`, so ``relufim reproduce`` and
``relufim report DIR`` write the same ``report.md`` and ``report.html``. Every file is
written atomically.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import write_bytes_atomic, write_json_atomic
from ..sweep.store import DB_NAME
from .figures import save_figure
from .html import render_html
from .markdown import render_markdown
from .reproduce import SUMMARY_NAME, reproduce_figures, reproduce_report
from .sweep_report import sweep_report

__all__ = ["ReportFiles", "build_report", "report_kind", "write_reproduce_run", "prepare_output_dir",
           "default_output_dir", "MARKDOWN_MARKER"]

#: Last line of every ``report.md``: where it came from and how to regenerate it.
MARKDOWN_MARKER = "<!-- written by `relufim report`; regenerate with: relufim report DIR -->"


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`build_report` (or :func:`write_reproduce_run`) wrote.

    Attributes
    ----------
    kind : str
        ``"reproduce"`` or ``"sweep"``.
    html, markdown : Path
        ``report.html`` and ``report.md``.
    figures : tuple of Path
        The figure files written (all of a reproduce run's with :func:`write_reproduce_run`;
        a sweep's aggregate figures with :func:`build_report`).
    markdown_written : bool
        Whether ``report.md`` was written (``markdown=False`` skips it).
    summary : Path or None
        ``summary.json`` when :func:`write_reproduce_run` wrote it.
    """

    kind: str
    html: Path
    markdown: Path
    figures: tuple[Path, ...]
    markdown_written: bool = True
    summary: Path | None = None


def default_output_dir() -> Path:
    """``./relufim-results/<UTC timestamp>``: where ``relufim reproduce`` writes without ``--out``."""
    return Path("relufim-results") / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def prepare_output_dir(out: str | os.PathLike | None, *, create: bool = True) -> Path:
    """The run folder (default :func:`default_output_dir`); a ValueError if the path is a file.

    Call it with ``create=False`` before a long computation, so a bad ``--out`` is refused at
    once and nothing is created before the inputs are known to be valid.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "x"
    >>> _ = f.write_text("keep me")
    >>> prepare_output_dir(f)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: --out .../x exists and is not a folder; choose another path.
    """
    out = Path(out) if out is not None else default_output_dir()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder; choose another path.")
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out


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

    The one writer of both files: the same document (:mod:`relufim.report.document`) rendered
    twice, from ``summary.json`` (a reproduce run) or the results store (a sweep).

    Parameters
    ----------
    directory : path
        A ``relufim reproduce`` run directory or a ``relufim sweep`` results directory.
    markdown : bool
        Also write ``report.md`` (figures linked as files next to it).

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
    if markdown:
        write_bytes_atomic(md_path, (render_markdown(report) + "\n" + MARKDOWN_MARKER + "\n").encode("utf-8"))
    return ReportFiles(kind=kind, html=html_path, markdown=md_path, figures=tuple(figures), markdown_written=markdown)


def write_reproduce_run(out: str | os.PathLike | None, summary: Mapping[str, Any], *,
                        log: Callable[[str], None] | None = None) -> ReportFiles:
    """Write a reproduce run: its figures, ``summary.json``, then ``report.md`` and ``report.html``.

    Parameters
    ----------
    out : path, optional
        The run folder (created; default ``./relufim-results/<timestamp>``). Files already in it
        with the same names are replaced atomically.
    summary : dict
        What :func:`relufim.experiments.reproduce` returned.
    log : callable(str), optional
        Receives one line per stage.

    Returns
    -------
    ReportFiles
        With ``summary`` and every figure written.
    """
    say = log or (lambda msg: None)
    out = prepare_output_dir(out)
    say("figures")
    drawn = reproduce_figures(summary)
    figures = [save_figure(f.figure, out / f.file) for f in drawn]
    record = {**summary, "figures": [f.entry() for f in drawn]}
    summary_path = write_json_atomic(out / SUMMARY_NAME, record)
    say("report.md and report.html")
    files = build_report(out)
    say(f"wrote {summary_path}, {files.markdown}, {files.html} and {len(figures)} figures")
    return ReportFiles(kind=files.kind, html=files.html, markdown=files.markdown, figures=tuple(figures),
                       markdown_written=files.markdown_written, summary=summary_path)

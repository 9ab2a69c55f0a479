"""``relufim report``: one self-contained report.html (and report.md) for a reproduce run or a sweep."""

from __future__ import annotations

from pathlib import Path

import click

from ..report import build_report
from ._common import emit_json, handle_errors

__all__ = ["report_command"]


@click.command("report")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-markdown", is_flag=True, help="Write report.html only (no report.md).")
@click.option("--json", "as_json", is_flag=True, help="Print the written paths as JSON on stdout.")
@handle_errors
def report_command(directory: Path, no_markdown: bool, as_json: bool) -> None:
    """Turn DIRECTORY (the output of `relufim reproduce` or `relufim sweep`) into DIRECTORY/report.html.

    The HTML page is self-contained (figures embedded as data URIs, no scripts, no
    external files), so it reads offline and can be mailed as one file. It shows the
    papers' claims next to the measured values, the tables, the figures, the
    configuration and the versions. report.md holds the same content as Markdown,
    with the figures linked as PNG files in the directory. For a reproduce run both are
    rendered from summary.json, exactly as `relufim reproduce` wrote them.
    """
    files = build_report(directory, markdown=not no_markdown)
    md_note = "" if no_markdown else f" and {files.markdown}"
    if as_json:
        emit_json({"kind": files.kind, "html": str(files.html),
                   "markdown": str(files.markdown) if files.markdown.exists() and not no_markdown else None,
                   "markdown_written": files.markdown_written, "figures": [str(f) for f in files.figures]})
    else:
        click.echo(f"wrote {files.html}{md_note}", err=True)


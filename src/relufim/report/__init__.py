"""Reports (application layer): figures, tables and documents made from what the experiments and sweeps computed.

Everything relufim shows is rendered here, from plain data:

* :mod:`~relufim.report.build`: the one writer of ``report.md`` and ``report.html``
  (:func:`build_report`), and of a reproduce run's folder (:func:`write_reproduce_run`);
* :mod:`~relufim.report.document` (the shared document model) with its renderers
  :mod:`~relufim.report.html` and :mod:`~relufim.report.markdown`;
* :mod:`~relufim.report.reproduce` and :mod:`~relufim.report.sweep_report` (the content of
  the two kinds of report), :mod:`~relufim.report.claims` (claims and their counts);
* :mod:`~relufim.report.figures` (every matplotlib figure) and :mod:`~relufim.report.tables`
  (every plain-text table the CLI prints).
"""

from __future__ import annotations

from .build import ReportFiles, build_report, default_output_dir, prepare_output_dir, report_kind, write_reproduce_run
from .claims import ClaimCounts, claims_table, count_claims
from .depth import (
    depth_shares_figure,
    digits_spectrum_figure,
    format_deep_spectrum_table,
    format_depth_limit_table,
    format_digits_table,
)
from .html import render_html
from .markdown import render_markdown
from .reproduce import reproduce_figures, reproduce_report
from .sweep_report import sweep_report
from .tables import (
    format_convergence_table,
    format_dynamics_table,
    format_functions_table,
    format_limit_table,
    format_ntk_table,
    format_spectrum_table,
)

__all__ = [
    "build_report",
    "write_reproduce_run",
    "ReportFiles",
    "report_kind",
    "prepare_output_dir",
    "default_output_dir",
    "reproduce_report",
    "reproduce_figures",
    "sweep_report",
    "render_html",
    "render_markdown",
    "ClaimCounts",
    "count_claims",
    "claims_table",
    "format_spectrum_table",
    "format_limit_table",
    "format_convergence_table",
    "format_functions_table",
    "format_ntk_table",
    "format_dynamics_table",
    "format_deep_spectrum_table",
    "format_digits_table",
    "format_depth_limit_table",
    "depth_shares_figure",
    "digits_spectrum_figure",
]

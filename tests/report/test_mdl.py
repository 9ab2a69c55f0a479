"""The MDL table, figures and report section render exactly the data they are given (theory §16)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure as MplFigure

from relufim.experiments.mdl import mdl_risk_grid, resolvability_vs_width
from relufim.report.document import Paragraph, Report, Section, Table
from relufim.report.figures import figure_png
from relufim.report.html import render_html
from relufim.report.markdown import render_markdown
from relufim.report.mdl import (
    FIGURE_FILES,
    format_mdl_table,
    mdl_risk_figure,
    resolvability_width_figure,
    section_blocks,
    section_figures,
)


@pytest.fixture(scope="module")
def summary():
    grid = mdl_risk_grid(2, (20, 30), (10, 100), reps=5, compare_reps=2, mc_samples=500)
    width = resolvability_vs_width(2, (20, 30), (10, 100))
    return {"settings": {"d": 2, "widths": [20, 30], "n_values": [10, 100], "beta": 2.0, "radius": 2.0,
                         "sigma": 1.0, "seed": 0}, "grid": grid, "width": width}


def test_table_shows_every_row_and_the_bound(summary):
    curve = summary["grid"]["curves"][-1]
    text = format_mdl_table(curve | {"figure": "x/mdl_risk.png"})
    for r in curve["rows"]:
        line = next(li for li in text.splitlines() if li.split() and li.split()[0] == str(r["n"]))
        assert f"{r['bound']:.4g}" in line and f"{r['code_length_nats']:.2f}" in line
        assert f"{r['risk_mean']:.3g}" in line and f"{r['methods']['exact']}/{r['reps']}" in line
        assert f"{r['ridge_kl_mean']:.3g}" in line
    assert "Kraft sums: [1.0]" in text and "figure: x/mdl_risk.png" in text
    assert "||x||" in text and "‖" not in text  # the CLI's tables are ASCII


def test_risk_figure_plots_the_given_data(summary):
    curve = summary["grid"]["curves"][-1]
    fig = mdl_risk_figure(curve)
    assert isinstance(fig, MplFigure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    bound = next(ln for label, ln in lines.items() if label.startswith("$R_n$"))
    assert np.allclose(bound.get_xdata(), [r["n"] for r in curve["rows"]])
    assert np.allclose(bound.get_ydata(), [r["bound"] for r in curve["rows"]])
    risk = [c for c in ax.containers if c.get_label().startswith("MDL: mean Rényi")][0]
    assert np.allclose(risk.lines[0].get_ydata(), [r["risk_mean"] for r in curve["rows"]])
    assert figure_png(fig, dpi=30)[:8] == b"\x89PNG\r\n\x1a\n"


def test_width_figure_has_one_curve_per_width_and_coding(summary):
    w = summary["width"]
    fig = resolvability_width_figure(w)
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert sum(lab.startswith("p = ") for lab in labels) == len(w["config"]["widths"]) * len(w["config"]["codings"])
    sel = [r for r in w["rows"] if r["p"] == 20 and r["coding"] == "clusters"]
    ln = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "p = 20, cluster code")
    assert np.allclose(ln.get_ydata(), [r["bound"] for r in sel])


def test_section_blocks_and_figures_render(summary, tmp_path):
    blocks = section_blocks(summary)
    assert isinstance(blocks[0], Paragraph)
    tables = [b for b in blocks if isinstance(b, Table)]
    risk = next(t for t in tables if t.id == "mdl-risk")
    assert len(risk.rows) == sum(len(c["rows"]) for c in summary["grid"]["curves"])
    width = next(t for t in tables if t.id == "mdl-width")
    assert len(width.rows) == len(summary["width"]["rows"])
    assert not any("|" in col for t in tables for col in t.columns)  # Markdown tables: no pipes in headers
    figs = section_figures(summary)
    assert [f for f, _, _ in figs] == [FIGURE_FILES["risk"], FIGURE_FILES["width"]]
    assert all(isinstance(fig, MplFigure) and caption for _, caption, fig in figs)
    report = Report(title="t", subtitle="s", facts=[], sections=[Section("MDL", blocks, id="mdl")])
    md = render_markdown(report)
    assert risk.caption in md and width.caption in md
    page = render_html(report)
    assert 'id="mdl-risk"' in page and 'id="mdl-width"' in page

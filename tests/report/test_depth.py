"""Tables and figures of deep networks and real inputs (relufim.report.depth): they show what was computed.

Oracle: the data passed in (a table or a figure must carry the experiment's numbers, nothing else); the PNG
signature; the shared renderers, which must accept the section's blocks.
"""

from __future__ import annotations

import numpy as np
import pytest

from relufim.experiments.depth import deep_spectrum_summary, depth_shares, digits_comparison, limit_by_depth
from relufim.report.depth import (
    SECTION_TITLE,
    depth_shares_figure,
    digits_spectrum_figure,
    format_deep_spectrum_table,
    format_depth_limit_table,
    format_digits_table,
    section_blocks,
    section_figures,
)
from relufim.report.document import Report, Section, Table
from relufim.report.figures import figure_png
from relufim.report.markdown import render_markdown
from relufim.theory.depth import depth_limit_spectrum


@pytest.fixture(scope="module")
def summary():
    pytest.importorskip("sklearn")
    return {"d": 3, "identity": {"p": 50, "max_abs_difference": 0.0, "bitwise_equal": True},
            "limit": limit_by_depth(3, [1, 2, 3], kmax=3), "limit_seconds": 0.001,
            "shares": [depth_shares(3, [1, 2], width=80, n=1500, seeds=2),
                       depth_shares(3, [1, 2], width=160, n=1500, seeds=2)],
            "deep": deep_spectrum_summary(3, (120, 60), method="monte-carlo", n=2000, extra=2),
            "digits": [digits_comparison(150, dim=3, n_gaussian=2000, spectrum_size=30)]}


def test_deep_table_shows_the_summary(summary):
    s = summary["deep"]
    text = format_deep_spectrum_table(s)
    assert f"widths = {s['widths']} (L = 2)" in text
    for c in s["clusters"][:3]:
        assert f"{c['mean']:.5g}" in text
    assert f"{s['limit']['cluster1']:.5g}" in text and "captured" in text


def test_digits_table_shows_the_comparison(summary):
    s = summary["digits"][0]
    text = format_digits_table(s)
    assert "1797 images" in text and "Gaussian prediction" in text
    for i in range(3):
        assert f"{s['cluster_mean_ratios'][i]:.3f}" in text
        assert f"{s['captured_gaussian_clusters'][i]:.4f}" in text


def test_depth_limit_table():
    lim = depth_limit_spectrum(10, 4, 5)
    text = format_depth_limit_table(lim)
    assert "depth-4 network" in text and f"{lim.top_fraction:.4%}" in text
    for row in lim.degrees:
        assert f"{row.eigenvalue:.6g}" in text


def test_figures_carry_the_data(summary):
    lim = summary["limit"]
    fig = depth_shares_figure(lim, summary["shares"])
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) == len(lim["depths"])]
    plotted = {tuple(np.round(ln.get_ydata(), 12)) for ln in lines}
    S = np.array(lim["shares"])
    for k in range(S.shape[1]):
        assert tuple(np.round(S[:, k], 12)) in plotted
    assert tuple(np.round(lim["top_fraction"], 12)) in plotted
    assert figure_png(fig, dpi=30).startswith(b"\x89PNG\r\n\x1a\n")
    dg = summary["digits"][0]
    fig2 = digits_spectrum_figure(dg)
    ys = [np.asarray(ln.get_ydata()) for ln in fig2.axes[0].get_lines() if len(ln.get_ydata()) > 2]
    assert any(np.array_equal(y, dg["gaussian"]["eigenvalues"]) for y in ys)
    assert any(np.array_equal(y, dg["empirical"]["eigenvalues"]) for y in ys)


def test_section_blocks_and_figures_render(summary):
    blocks = section_blocks(summary)
    tables = [b for b in blocks if isinstance(b, Table)]
    assert {t.id for t in tables} >= {"depth-limit", "depth-shares", "depth-deep", "depth-digits-L1"}
    limit_table = next(t for t in tables if t.id == "depth-limit")
    assert len(limit_table.rows) == len(summary["limit"]["depths"])
    md = render_markdown(Report(title="t", subtitle="s", facts=[], sections=[Section(SECTION_TITLE, blocks)]))
    assert SECTION_TITLE in md and "depth" in md
    figs = section_figures(summary)
    assert [f for f, _, _ in figs] == ["depth_shares.png", "digits_spectrum_L1.png"]
    assert all(isinstance(c, str) and c for _, c, _ in figs)

"""Tables and figures of the FIM of all parameters: they show the recorded numbers (theory §15)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from relufim.experiments.full_fisher import approximations_summary, full_spectrum_summary
from relufim.experiments.full_fisher_section import claims
from relufim.report.document import Paragraph, Table
from relufim.report.figures import figure_png
from relufim.report.full_fisher import (
    approximation_spectra_figure,
    approximations_figures,
    format_approximations_table,
    format_full_spectrum_table,
    full_distribution_figure,
    full_spectrum_figure,
    natural_gradient_figure,
    sampled_error_figure,
    section_blocks,
    section_figures,
)


@pytest.fixture(scope="module")
def records():
    sp = full_spectrum_summary(3, 40, seed=0, all_eigenvalues=True, density=True, density_vectors=4,
                               density_steps=20)
    ap = approximations_summary(3, 20, seed=0, n_values=(50, 200), seeds=2, damping=(1e-3, 1e-1))
    return sp, ap


def test_spectrum_table_shows_the_record(records):
    sp, _ = records
    text = format_full_spectrum_table(sp)
    assert f"P = p(d+1) = {sp['P']}" in text
    assert f"dimension {sp['null_space_dimension']} (p = 40" in text
    assert f"{sp['mean_eigenvalue']:.6g}" in text and f"{sp['second_moment']:.6g}" in text
    assert f"{sp['lambda_max_share']:.3%}" in text
    for c in sp["clusters"]:
        assert f"{c['mean']:.5g}" in text
    # the matrix-free record says how the null space was checked instead
    mf = dict(sp, null_space=dict(sp["null_space"], dimension=None), null_space_dimension=None)
    assert "--all-eigenvalues" in format_full_spectrum_table(mf)


def test_approximations_table_shows_the_record(records):
    _, ap = records
    text = format_approximations_table(ap)
    for r in ap["approximations"]:
        assert r["name"] in text and f"{r['relative_frobenius_error']:.4g}" in text
        assert f"{r['natural_gradient_angle']:.2f}" in text
    assert "natural-gradient angle (degrees) against the damping" in text
    for x in ap["sampled"]["predicted_monte_carlo"]:
        assert f"{x:.4g}" in text


def test_figures_draw_the_data(records):
    sp, ap = records
    fig = full_spectrum_figure(sp)
    ax = fig.axes[0]
    pts = [ln for ln in ax.lines if ln.get_marker() == "o"][0]
    assert np.allclose(pts.get_ydata(), sp["eigenvalues"])
    assert ax.get_yscale() == "log"
    fig = sampled_error_figure(ap)
    ydata = [ln.get_ydata() for ln in fig.axes[0].lines]
    assert any(np.allclose(y, ap["sampled"]["predicted_monte_carlo"]) for y in ydata)
    assert any(np.allclose(y, ap["sampled"]["monte-carlo"]["relative_frobenius_error"]) for y in ydata)
    fig = natural_gradient_figure(ap)
    kf = next(r for r in ap["approximations"] if r["name"] == "k-fac")
    order = np.argsort(ap["dampings"])
    angles = np.asarray(kf["natural_gradient_angles"])[order]
    assert any(np.allclose(ln.get_ydata(), angles) for ln in fig.axes[0].lines)
    for f in (full_distribution_figure(sp), approximation_spectra_figure(ap)):
        assert isinstance(f, Figure)
        assert figure_png(f, dpi=30)[:8] == b"\x89PNG\r\n\x1a\n"
    names = [name for name, _, _ in approximations_figures(ap)]
    assert len(names) == len(set(names)) == 3


def test_section_blocks_and_figures(records):
    sp, ap = records
    summary = {"spectrum": sp, "approximations": ap}
    blocks = section_blocks(summary)
    ids = [b.id for b in blocks if isinstance(b, Table)]
    assert ids == ["full-clusters", "full-statistics", "full-approximations", "full-sampled"]
    assert any(isinstance(b, Paragraph) for b in blocks)
    stats = dict(blocks[1].rows)
    assert stats["null space dimension (numerical)"] == sp["null_space_dimension"]
    figs = section_figures(summary)
    assert [f for f, _, _ in figs][:2] == ["full_fisher_spectrum.png", "full_fisher_distribution.png"]
    assert all(isinstance(fig, Figure) and cap for _, cap, fig in figs)
    # claims come from the same records and say what they measured
    cl = claims(sp, ap)
    assert cl[0]["holds"] is True and str(sp["null_space_dimension"]) in cl[0]["measured"]

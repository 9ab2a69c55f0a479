"""The CLI's text tables, the document's Markdown cells and the figures, each from small data."""

from __future__ import annotations

import re

import numpy as np
import pytest

import relufim as rf
from relufim.experiments.convergence import convergence
from relufim.experiments.function_space import circle_forms, dynamics_curves
from relufim.report import figures as F
from relufim.report import format_convergence_table, format_limit_table, render_markdown
from relufim.report.document import Report, Section, Table
from relufim.theory import TRACE_SHARE_BOUND, theorem3_bounds
from relufim.theory.dynamics import gradient_descent


def test_convergence_table_shows_each_statistic_and_its_rate_rule():
    res = convergence(d=2, p=[40, 80, 160], seeds=3)
    text = format_convergence_table(res)
    assert "beyond noise" in text and "std error" in text
    for s in res.statistics:
        assert s.rate_text in text  # the rate with its standard error, or why there is none
        for m, se in zip(s.mean, s.stderr):
            assert f"{m:>12.6g}" in text and f"{se:>10.3g}" in text
        if s.rate is not None:
            assert f"b = {s.rate:.2f} ± {s.rate_stderr:.2f} (3 widths, 3 seeds)" in text


def test_limit_table_lists_every_degree():
    lim = rf.limit_spectrum(d=5, kmax=6)
    text = format_limit_table(lim)
    for row in lim.degrees:
        assert f"{row.k:>4}  {row.eigenvalue:>13.6g}  {row.multiplicity:>14}" in text
    assert f"{lim.top_fraction:.6%}" in text and f"{TRACE_SHARE_BOUND:.4%}" in text


def test_markdown_cells_with_norms_and_pipes_keep_the_table_whole():
    """A cell holding ||x|| or a|b must not split its row (was: no '||' in the function-space markdown)."""
    md = render_markdown(Report("T", "", [], [Section("S", [Table(["a", "b", "c"], [["||x||", "a|b", 1.5]])])]))
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 3
    for row in rows:
        cells = re.split(r"(?<!\\)\|", row)[1:-1]
        assert len(cells) == 3, row


def _png(fig) -> bytes:
    data = F.figure_png(fig, dpi=40)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return data


def test_every_reproduce_figure_draws_from_plain_data(tmp_path):
    rng = np.random.default_rng(0)
    d = 3
    ev = np.sort(rng.exponential(0.1, 60))[::-1]
    clusters = [{"size": 1, "predicted_size": 1, "min": 0.9, "max": 0.9}, {"size": 3, "predicted_size": 3, "min": 0.2,
                                                                            "max": 0.3},
                {"size": 5, "predicted_size": 5, "min": 0.02, "max": 0.04}]
    limit = rf.limit_cluster_values(d)
    bounds = theorem3_bounds(d)
    _png(F.eigenvalue_distribution_figure({"exact": ev, "monte-carlo": ev * 1.01}, clusters, bounds, limit, d))
    edges = np.logspace(-4, 0, 11)
    hist = {"edges": edges, "fraction": np.full(10, 0.1), "fraction_2se": np.full(10, 0.01),
            "dense_fraction": np.full(10, 0.1), "dense_p": 60, "width_decades": 0.08}
    _png(F.density_figure(hist, d=d, p=120, n_vectors=3, lanczos_steps=5, limit=limit))
    _png(F.rayleigh_figure({"v0": [0.8], "rows": [0.2, 0.3], "v_ab": [0.02, 0.03], "v_gamma": []}, bounds))
    _png(F.principal_angles_figure({"exact": {"cluster1": [1.0], "cluster2": [0.99, 0.98], "cluster3": [0.9]}}))
    res = convergence(d=2, p=[40, 80], seeds=1)  # one seed: NaN spreads are drawn without bars
    _png(F.convergence_figure(res.to_dict()))
    _png(F.trace_share_figure([2, 3, 5, 10], rf.trace_share_curve([2, 3, 5, 10]), d_mark=5))
    W = rf.sample_weights(3, 200, seed=0)
    circle = circle_forms(W, m=13)
    _png(F.function_forms_figure(circle))
    _png(F.function_group_figure(circle, "rows"))
    with pytest.raises(KeyError, match="no group"):
        F.function_group_figure(circle, "nope")
    _png(F.dynamics_figure(dynamics_curves(gradient_descent(W, steps=30, seed=0)), title="t"))
    _png(F.fisher_ntk_figure({"fim_eigenvalues": [1.0, 0.5], "ntk_eigenvalues": [1.0, 0.5],
                              "max_eigenvalue_rel_diff": 1e-15, "d": 3, "p": 200, "n": 50}))
    _png(F.approximation_figure({"d": [2, 3], "measured": [0.005, 0.008], "stderr": [0.001, 0.001], "p": 100,
                                 "limit_curve": {"d": [1, 2, 3], "one_minus_F": [0.0, 0.0047, 0.0078]},
                                 "large_d_limit": 1 - TRACE_SHARE_BOUND}))
    path = F.save_figure(F.trace_share_figure([2, 3], [0.99, 0.985]), tmp_path / "sub" / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and [p.name for p in path.parent.iterdir()] == ["f.png"]

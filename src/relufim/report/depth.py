"""Tables and figures of deep random networks and real inputs (theory §14), from the data the experiments return.

* text tables for the CLI: :func:`format_deep_spectrum_table` (``relufim spectrum --widths ...``),
  :func:`format_digits_table` (``relufim spectrum --data digits``), :func:`format_depth_limit_table`
  (``relufim limit --depth L``);
* the two figures of the reproduce section "Depth and real inputs": :func:`depth_shares_figure` (per-degree
  shares against depth: the limit, with finite-width Monte Carlo points and error bars) and
  :func:`digits_spectrum_figure` (the digits' spectrum against its Gaussian prediction);
* :func:`section_blocks` and :func:`section_figures`: the section's content for the reproduce report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..theory.depth import DepthLimit
from .document import Paragraph, Table
from .figures import axes, style

__all__ = [
    "format_deep_spectrum_table",
    "format_digits_table",
    "format_depth_limit_table",
    "depth_shares_figure",
    "digits_spectrum_figure",
    "section_blocks",
    "section_figures",
    "SECTION_TITLE",
]

#: The section's title in the reproduce report.
SECTION_TITLE = "Depth and real inputs"

_DEGREE_COLORS = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _opt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _list(values: Sequence[float] | None, spec: str = ".4g") -> str:
    return "–" if values is None else ", ".join(format(float(v), spec) for v in values)


# ----------------------------------------------------------------------------- CLI tables

def format_deep_spectrum_table(s: Mapping[str, Any]) -> str:
    """The clusters of a deep network's FIM against the limit and the function-space spans.

    ``s``: :func:`relufim.experiments.depth.deep_spectrum_summary`.

    Examples
    --------
    >>> from relufim.experiments.depth import deep_spectrum_summary
    >>> print(format_deep_spectrum_table(deep_spectrum_summary(3, (200, 100), method="monte-carlo", n=3000,
    ...                                                         extra=2)).splitlines()[0])
    Deep network FIM: d = 3, widths = [200, 100] (L = 2), relu, scale 1/p, seed = 0, monte-carlo (n = 3000)
    """
    lines = [f"Deep network FIM: d = {s['d']}, widths = {s['widths']} (L = {s['depth']}), {s['activation']}, "
             f"scale {s['scale'] if s['scale'] is not None else 'explicit'}, seed = {s['seed']}, {s['method']}"
             + (f" (n = {s['n']})" if s.get("n") else ""), ""]
    if s.get("input_cov") is not None:
        ev = s["input_cov"]
        lines[-1:] = [f"inputs N(0, Sigma): eigenvalues of Sigma from {max(ev):.4g} to {min(ev):.4g}", ""]
    head = f"{'cluster':>7}  {'size':>4}  {'pred':>4}  {'mean':>11}  {'min':>11}  {'max':>11}  {'limit':>11}  " \
           f"{'min cos':>8}  {'captured':>8}"
    lines += [head, "-" * len(head)]
    lim = s.get("limit") or {}
    al = s.get("alignment") or {}
    means = s.get("cluster_means") or [None] * 3
    for i, c in enumerate(s["clusters"][:3]):
        lines.append(f"{i + 1:>7}  {c['size']:>4}  {s['predicted_sizes'][i]:>4}  {c['mean']:>11.5g}  "
                     f"{c['min']:>11.5g}  {c['max']:>11.5g}  {_opt(lim.get(f'cluster{i + 1}'), '11.5g'):>11}  "
                     f"{_opt((al.get('min_cosines') or [None] * 3)[i], '8.4f'):>8}  "
                     f"{_opt((al.get('captured') or [None] * 3)[i], '8.4f'):>8}")
    lines.append("")
    if means[0] is not None:
        lines.append(f"means cut at the predicted sizes  {_list(means, '.5g')}")
    if s.get("cluster_shares"):
        lines.append(f"shares of the trace                {_list(s['cluster_shares'], '.4f')}  (sum "
                     f"{sum(s['cluster_shares']):.4%}" + (f"; limit F_L = {lim['top_fraction']:.4%}" if lim else "")
                     + ")")
    lines.append(f"trace                              {s['trace']:.6g}")
    if not lim:
        lines.append("limit                              – (the infinite-width limit assumes isotropic inputs)")
    if al:
        lines.append(f"function-space vectors             {al['vector_samples']} inputs; relative sampling errors "
                     f"{_list(al['vector_relative_errors'], '.3f')}")
    n_pairs = sum(c["size"] for c in s["clusters"][:3])
    lines.append(f"max residual                       {s['max_cluster_residual']:.2e}   (the {n_pairs} cluster pairs "
                 f"{'converged' if s['clusters_converged'] else 'did NOT all converge'}; solver {s['solver']})")
    lines.append(f"time {s['seconds']:.1f} s, peak memory {s['memory_peak_bytes'] / 1e9:.2f} GB")
    return "\n".join(lines)


def format_digits_table(s: Mapping[str, Any]) -> str:
    """The digits' FIM next to its Gaussian prediction (``relufim spectrum --data digits``).

    ``s``: :func:`relufim.experiments.depth.digits_comparison`.
    """
    data = s["data"]
    lines = [f"Digits ({data['n']} images, {data['d']} principal components, {data['explained_variance']:.1%} of the "
             f"variance): widths = {s['widths']} (L = {s['depth']}), {s['activation']}, seed = {s['seed']}",
             f"Gaussian prediction: N(0, Sigma) with the data's covariance, {s['gaussian']['method']}", ""]
    head = f"{'cluster':>7}  {'pred':>4}  {'data size':>9}  {'gauss size':>10}  {'data mean':>11}  " \
           f"{'gauss mean':>11}  {'ratio':>7}  {'data share':>10}  {'gauss share':>11}  {'captured':>8}"
    lines += [head, "-" * len(head)]
    emp, gau = s["empirical"], s["gaussian"]
    for i in range(len(s["cluster_mean_ratios"])):
        ds = emp["cluster_sizes"][i] if i < len(emp["cluster_sizes"]) else None
        gs = gau["cluster_sizes"][i] if i < len(gau["cluster_sizes"]) else None
        lines.append(f"{i + 1:>7}  {s['predicted_sizes'][i]:>4}  {_opt(ds, '9d'):>9}  {_opt(gs, '10d'):>10}  "
                     f"{emp['cluster_means'][i]:>11.5g}  {gau['cluster_means'][i]:>11.5g}  "
                     f"{s['cluster_mean_ratios'][i]:>7.3f}  {emp['cluster_shares'][i]:>10.4f}  "
                     f"{gau['cluster_shares'][i]:>11.4f}  {s['captured_gaussian_clusters'][i]:>8.4f}")
    lines += ["", f"top d(d+3)/2 share: data {emp['top_fraction']:.4%}, Gaussian {gau['top_fraction']:.4%}",
              f"captured share of the function-space spans: {_list(s['captured_function_spans'], '.4f')}",
              f"time {s['seconds']:.1f} s"]
    return "\n".join(lines)


def format_depth_limit_table(lim: DepthLimit) -> str:
    """The infinite-width spectrum of a depth-``L`` network by harmonic degree (``relufim limit --depth L``).

    Examples
    --------
    >>> from relufim.theory.depth import depth_limit_spectrum
    >>> print(format_depth_limit_table(depth_limit_spectrum(d=3, depth=2, kmax=1)))  # doctest: +NORMALIZE_WHITESPACE
    Infinite-width FIM spectrum of a depth-2 network: d = 3, activation = relu, scale = 1/p
    <BLANKLINE>
       k     eigenvalue    multiplicity          share  cumulative share
    --------------------------------------------------------------------
       0       0.816193               1       0.544129        54.412869%
       1       0.161236               3       0.322473        86.660137%
    <BLANKLINE>
    F_L(d) = share of degrees <= 2: 97.2034%;  limit trace = 1.5
    """
    lines = [f"Infinite-width FIM spectrum of a depth-{lim.depth} network: d = {lim.d}, activation = {lim.activation}, "
             f"scale = {lim.scale if lim.scale is not None else 'explicit variances'}"
             + (f", widths = {list(lim.widths)}" if lim.widths is not None else ""), ""]
    head = f"{'k':>4}  {'eigenvalue':>13}  {'multiplicity':>14}  {'share':>13}  {'cumulative share':>16}"
    lines += [head, "-" * len(head)]
    for row in lim.degrees:
        lines.append(f"{row.k:>4}  {row.eigenvalue:>13.6g}  {row.multiplicity:>14}  {row.share:>13.6g}  "
                     f"{row.cumulative_share:>16.6%}")
    lines += ["", f"F_L(d) = share of degrees <= 2: {lim.top_fraction:.4%};  limit trace = {lim.trace:.6g}"]
    if lim.truncation_bound > 1e-10:
        lines.append(f"accuracy: eigenvalues within {lim.truncation_bound:.2g} of the trace (Mehler truncation)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures

def depth_shares_figure(limit: Mapping[str, Any], shares: Sequence[Mapping[str, Any]] = ()) -> Figure:
    """Share of the limit trace per harmonic degree against depth, with finite-width Monte Carlo points.

    ``limit``: :func:`relufim.experiments.depth.limit_by_depth`; ``shares``: any number of
    :func:`relufim.experiments.depth.depth_shares` (points with error bars of two standard errors, slightly
    offset per width). Lines: degrees ``k = 0..kmax`` and :math:`F_L` (degrees <= 2).

    Examples
    --------
    >>> from relufim.experiments.depth import limit_by_depth
    >>> depth_shares_figure(limit_by_depth(10, [1, 2, 3], kmax=3)).axes[0].get_xlabel()
    'depth L (hidden layers)'
    """
    depths = np.asarray(limit["depths"], dtype=float)
    S = np.asarray(limit["shares"], dtype=float)
    F = np.asarray(limit["top_fraction"], dtype=float)
    fig, ax = axes((7.2, 4.6))
    for k in range(S.shape[1]):
        ax.plot(depths, S[:, k], "-", color=_DEGREE_COLORS[k % len(_DEGREE_COLORS)], lw=1.5,
                label=f"degree {k} (limit, N = {limit['multiplicities'][k]})")
    ax.plot(depths, F, "k-", lw=2, label="$F_L$: degrees $\\leq 2$ (limit)")
    markers = ["o", "s", "^", "D"]
    for j, sh in enumerate(shares):
        L = np.asarray(sh["depths"], dtype=float) + 0.08 * (j - (len(shares) - 1) / 2)
        mean, se = np.asarray(sh["mean"], dtype=float), np.asarray(sh["stderr"], dtype=float)
        for c in range(mean.shape[1]):
            color = "k" if c == 3 else _DEGREE_COLORS[c]
            ax.errorbar(L, mean[:, c], yerr=2 * se[:, c], fmt=markers[j % len(markers)], ms=4, color=color,
                        mfc="white" if j == 0 else color, capsize=2, lw=1,
                        label=f"Monte Carlo, inner width {sh['width']} (±2 s.e., {sh['seeds']} networks)"
                        if c == 0 else None)
    ax.set_ylim(0, 1.02)
    style(ax, xlabel="depth L (hidden layers)", ylabel="share of the trace of J",
           title=f"Shares of the trace by harmonic degree against depth (d = {limit['d']}, {limit['activation']})",
           grid=True, legend=7, legend_loc="center right")
    fig.tight_layout()
    return fig


def digits_spectrum_figure(s: Mapping[str, Any]) -> Figure:
    """The digits' FIM eigenvalues against the Gaussian prediction with the data's covariance (log-log, by index).

    ``s``: :func:`relufim.experiments.depth.digits_comparison`. Dotted lines: the predicted cluster boundaries
    ``1, d + 1, d(d+3)/2``; the legend gives the captured share of each predicted cluster subspace.

    Examples
    --------
    >>> fig = digits_spectrum_figure({"d": 2, "widths": [50], "depth": 1, "predicted_sizes": [1, 2, 2],
    ...     "empirical": {"eigenvalues": [3.0, 1.0, 0.9, 0.1, 0.09, 0.01], "cluster_sizes": [1, 2, 2]},
    ...     "gaussian": {"eigenvalues": [3.1, 1.0, 1.0, 0.1, 0.1, 0.02], "cluster_sizes": [1, 2, 2],
    ...                  "method": "exact"}, "captured_gaussian_clusters": [1.0, 0.99, 0.9], "n": 1797})
    >>> len(fig.axes)
    1
    """
    emp = np.asarray(s["empirical"]["eigenvalues"], dtype=float)
    gau = np.asarray(s["gaussian"]["eigenvalues"], dtype=float)
    fig, ax = axes((7.2, 4.6))
    ax.plot(np.arange(1, gau.size + 1), gau, "-", color="C0", lw=1.8,
            label=f"Gaussian N(0, Σ) with the data's covariance ({s['gaussian']['method']})")
    ax.plot(np.arange(1, emp.size + 1), emp, "o", ms=2.5, color="C1",
            label=f"digits: empirical FIM ({s['n']} images)")
    cuts = np.cumsum(s["predicted_sizes"])
    cap = s.get("captured_gaussian_clusters") or []
    for i, c in enumerate(cuts):
        ax.axvline(c + 0.5, color="k", ls=":", lw=1,
                   label=(f"predicted cluster ends; captured shares {', '.join(f'{x:.3f}' for x in cap)}"
                          if i == 0 else None))
    style(ax, xlabel="eigenvalue index", ylabel="eigenvalue of J", xlog=True, ylog=True, grid=True, legend=7,
           title=f"Digits against the Gaussian prediction (d = {s['d']}, widths {s['widths']})")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the reproduce section

def section_figures(summary: Mapping[str, Any]) -> list[tuple[str, str, Figure]]:
    """The section's figures as ``(file, caption, figure)``, from the section's summary.

    ``summary``: what :func:`relufim.experiments.depth_section.reproduce_section` returns under ``"summary"``.
    (Tuples: :func:`relufim.report.reproduce.reproduce_figures` wraps them in
    :class:`relufim.report.figures.FigureFile` with the section's name.)
    """
    out = [("depth_shares.png",
            f"Share of the trace of J per harmonic degree against depth (lines: infinite width; points: finite "
            f"networks by Monte Carlo, two inner widths, error bars 2 standard errors over networks), d = "
            f"{summary['d']}.", depth_shares_figure(summary["limit"], summary.get("shares") or ()))]
    for dg in summary.get("digits") or []:
        out.append((f"digits_spectrum_L{dg['depth']}.png",
                    f"Digits ({dg['d']} principal components): eigenvalues of the empirical FIM against the Gaussian "
                    f"prediction with the data's covariance, widths {dg['widths']}.", digits_spectrum_figure(dg)))
    return out


def section_blocks(summary: Mapping[str, Any]) -> list[Any]:
    """The section's tables and paragraphs for the reproduce report (``report.document`` blocks)."""
    d = summary["d"]
    lim = summary["limit"]
    blocks: list[Any] = []
    ident = summary.get("identity") or {}
    if ident:
        blocks.append(Paragraph(f"One hidden layer through the deep path: max |J_deep − J| = "
                                f"{ident['max_abs_difference']:.3g} at p = {ident['p']} (bit for bit: "
                                f"{'yes' if ident['bitwise_equal'] else 'no'}). Default weight convention: He "
                                "(2/fan-in) in the inner layers and the papers' 1/p scale in the last, so that "
                                "tr J → d/2 at every depth (theory §14.4)."))
    kmax = lim["kmax"]
    rows = []
    for i, L in enumerate(lim["depths"]):
        rows.append([L, *lim["shares"][i], lim["top_fraction"][i], *lim["eigenvalues"][i][:3]])
    blocks.append(Table(["L", *[f"share k={k}" for k in range(kmax + 1)], "F_L", "λ_0", "λ_1", "λ_2"], rows,
                        id="depth-limit",
                        caption=f"Infinite-width shares of the trace per harmonic degree and eigenvalues (d = {d}, "
                                f"ReLU, default convention: λ_k = (d/2) μ_k(K_L)); depth-10 spectrum to k = 20 in "
                                f"{summary.get('limit_seconds', float('nan')):.2g} s."))
    rows = []
    for sh in summary.get("shares") or []:
        for i, L in enumerate(sh["depths"]):
            rows.append([sh["widths"][i], L, sh["n"] if L > 1 else "exact",
                         *[f"{m:.4f} ± {e:.4f}" for m, e in zip(sh["mean"][i], sh["stderr"][i])],
                         *[f"{x:.4f}" for x in sh["limit"][i]]])
    if rows:
        blocks.append(Table(["widths", "L", "n", "share c1", "share c2", "share c3", "F", "limit c1", "limit c2",
                             "limit c3", "limit F"], rows, id="depth-shares",
                            caption="Finite networks (mean ± standard error over networks; J exact for L = 1, else "
                                    "Monte Carlo) against the limit."))
    deep = summary.get("deep")
    if isinstance(deep, Mapping):
        lv = deep.get("limit") or {}
        al = deep.get("alignment") or {}
        rows = [[i + 1, c["size"], deep["predicted_sizes"][i], (deep.get("cluster_means") or [None] * 3)[i],
                 lv.get(f"cluster{i + 1}"), (al.get("min_cosines") or [None] * 3)[i],
                 (al.get("captured") or [None] * 3)[i]] for i, c in enumerate(deep["clusters"][:3])]
        blocks.append(Table(["cluster", "size", "predicted", "mean (cut at predicted sizes)", "limit",
                             "min cos vs E[h ψ]", "captured"], rows, id="depth-deep",
                            caption=f"A deep network, widths {deep['widths']}, Monte Carlo n = {deep['n']}: clusters, "
                                    f"limits and the function-space spans (residuals ≤ "
                                    f"{deep['max_cluster_residual']:.1e}; {deep['seconds']:.0f} s)."))
    if summary.get("digits_skipped"):
        blocks.append(Paragraph(f"Digits part not run: {summary['digits_skipped']}"))
    for dg in summary.get("digits") or []:
        emp, gau = dg["empirical"], dg["gaussian"]
        rows = [[i + 1, dg["predicted_sizes"][i], emp["cluster_sizes"][i] if i < len(emp["cluster_sizes"]) else None,
                 gau["cluster_sizes"][i] if i < len(gau["cluster_sizes"]) else None, emp["cluster_means"][i],
                 gau["cluster_means"][i], emp["cluster_shares"][i], gau["cluster_shares"][i],
                 dg["captured_gaussian_clusters"][i], dg["captured_function_spans"][i]]
                for i in range(len(dg["cluster_mean_ratios"]))]
        blocks.append(Table(["cluster", "predicted size", "data size", "Gaussian size", "data mean", "Gaussian mean",
                             "data share", "Gaussian share", "captured (Gaussian clusters)",
                             "captured (E[h ψ] spans)"], rows, id=f"depth-digits-L{dg['depth']}",
                            caption=f"Digits, {dg['d']} principal components ({dg['data']['explained_variance']:.1%} "
                                    f"of the variance), widths {dg['widths']}: the empirical FIM against the Gaussian "
                                    f"prediction with the data's covariance ({gau['method']})."))
    return blocks

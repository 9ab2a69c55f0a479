r"""Every figure relufim draws, from plain data: the one home of matplotlib in the package.

Each function takes what an experiment, a library result's ``to_dict()`` or a sweep's
results table holds, and returns a :class:`matplotlib.figure.Figure`. Figures are built
with the object-oriented API (``Figure`` directly, no pyplot): no global backend is chosen
or changed, no figure is left registered anywhere, so they are safe to draw in any
process, headless or inside a notebook. :func:`figure_png` turns one into PNG bytes and
:func:`save_figure` writes it atomically; :class:`FigureFile` is one figure of a reproduce run with
its file name, caption and report section.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .._io import write_bytes_atomic
from ..theory import TRACE_SHARE_BOUND

__all__ = [
    "FigureFile",
    "figure_png",
    "save_figure",
    "eigenvalue_distribution_figure",
    "density_figure",
    "rayleigh_figure",
    "principal_angles_figure",
    "convergence_figure",
    "trace_share_figure",
    "function_forms_figure",
    "function_group_figure",
    "dynamics_figure",
    "fisher_ntk_figure",
    "approximation_figure",
    "sweep_cluster_eigenvalues_figure",
    "sweep_trace_share_figure",
]

#: Dots per inch of the PNG files.
DPI = 120

_COLORS = ["#2f5d9e", "#c0392b", "#1b7f3b", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#2c3e50"]
_CLUSTER_SHADES = ["#d62728", "#2ca02c", "#9467bd"]
_CLUSTER_LABELS = ["cluster 1: $\\|x\\|$", "cluster 2: $x_l$", "cluster 3: degree 2"]


# ----------------------------------------------------------------------------- output

def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    r"""PNG bytes of a figure (tight bounding box).

    Examples
    --------
    >>> fig = trace_share_figure([2, 3, 4], [0.99, 0.985, 0.983])
    >>> figure_png(fig, dpi=30)[:8] == b"\x89PNG\r\n\x1a\n"
    True
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG file at ``path`` atomically (the old file or the new one, never half)."""
    return write_bytes_atomic(path, figure_png(fig, dpi))


@dataclass(frozen=True)
class FigureFile:
    """One figure of a reproduce run: its file name, caption, the report section it belongs to and the figure."""

    file: str
    caption: str
    section: str | None
    figure: Figure

    def entry(self) -> dict[str, Any]:
        """The record kept in ``summary["figures"]``."""
        return {"file": self.file, "caption": self.caption, "section": self.section}


# ----------------------------------------------------------------------------- shared axes

def axes(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def style(ax: Any, *, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
           xlog: bool = False, ylog: bool = False, grid: bool = False, legend: float | None = None,
           legend_loc: str = "best", title_size: float | None = None) -> None:
    """The axes conventions shared by the figures: labels, log scales, light grid, small legend."""
    if xlog:
        ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title, fontsize=title_size)
    if grid:
        ax.grid(True, alpha=0.3)
    if legend is not None:
        ax.legend(fontsize=legend, loc=legend_loc)


def _limit_lines(ax: Any, limit: Mapping[str, float] | None) -> None:
    """The three infinite-width cluster values as dotted vertical lines on an eigenvalue axis."""
    if limit:
        for i in range(3):
            ax.axvline(limit[f"cluster{i + 1}"], color="k", ls=":", lw=1.2,
                       label="infinite-width limit $d\\mu_k$" if i == 0 else None)


# ----------------------------------------------------------------------------- the 2023 check

def eigenvalue_distribution_figure(spectra: Mapping[str, Sequence[float]], clusters: Sequence[Mapping[str, Any]],
                                   bounds: Mapping[str, float], limit: Mapping[str, float] | None, d: int) -> Figure:
    """Histogram of every eigenvalue (log bins) per FIM, the three clusters shaded, Theorem 3's bounds dashed.

    ``spectra``: ``{name: eigenvalues}``; ``clusters``: the first setting's ``size, predicted_size,
    min, max``; ``bounds``: :func:`relufim.theory.theorem3_bounds`; ``limit``: the infinite-width values.
    """
    arrays = {name: np.asarray(ev, dtype=float) for name, ev in spectra.items()}
    fig, ax = axes((8, 4.5))
    all_pos = np.concatenate([ev[ev > 0] for ev in arrays.values()])
    lo = max(all_pos.min(), all_pos.max() * 1e-14)
    bins = np.logspace(np.log10(lo), np.log10(all_pos.max()) + 0.05, 90)
    colors = {"exact": "C0", "monte-carlo": "C1"}
    for name, ev in arrays.items():
        ax.hist(ev[ev >= lo], bins=bins, histtype="step", lw=1.5, color=colors.get(name, "C2"),
                label=f"{name} FIM ({ev.size} eigenvalues)")
    for i, c in enumerate(list(clusters)[:3]):
        ax.axvspan(c["min"] / 1.05, c["max"] * 1.05, color=_CLUSTER_SHADES[i], alpha=0.15,
                   label=f"cluster {i + 1} (size {c['size']}, predicted {c['predicted_size']})")
    for i, key in enumerate(["v0", "rows", "v_ab"]):
        ax.axvline(bounds[key], color=_CLUSTER_SHADES[i], ls="--", lw=1, label="Theorem 3 bounds" if i == 0 else None)
    _limit_lines(ax, limit)
    p = next(iter(arrays.values())).size
    style(ax, xlabel="eigenvalue of J", ylabel="count", xlog=True, ylog=True,
           title=f"FIM eigenvalue distribution, d = {d}, p = {p}", legend=7, legend_loc="upper left")
    return fig


def density_figure(histogram: Mapping[str, Any], *, d: int, p: int, n_vectors: int, lanczos_steps: int,
                   limit: Mapping[str, float] | None) -> Figure:
    """Log-scale eigenvalue distribution at a large width (SLQ, with its 2-standard-error band) over the dense one.

    ``histogram``: ``edges, fraction, fraction_2se, dense_fraction, dense_p, width_decades`` (the
    ``smoothed_histogram`` of a reproduce run's ``density``).
    """
    edges = np.asarray(histogram["edges"], dtype=float)
    frac = np.asarray(histogram["fraction"], dtype=float)
    err = np.asarray(histogram["fraction_2se"], dtype=float)
    dense_p = int(histogram["dense_p"])
    fig, ax = axes((8, 4.5))
    ax.stairs(frac, edges, color="C0", lw=1.5, label=f"exact FIM, p = {p}: stochastic Lanczos quadrature "
                                                    f"({n_vectors} vectors x {lanczos_steps} steps)")
    ax.stairs(frac + err, edges, baseline=np.maximum(frac - err, 0), fill=True, color="C0", alpha=0.2,
              label="± 2 standard errors (random vectors)")
    ax.stairs(np.asarray(histogram["dense_fraction"], dtype=float), edges, color="C1", lw=1.2,
              label=f"exact FIM, p = {dense_p}: dense eigenvalues (same smoothing, "
                    f"{histogram['width_decades']} decades)")
    _limit_lines(ax, limit)
    ax.set_ylim(0.3 / max(p, dense_p), 2.0)  # below a third of one eigenvalue per bin: smoothing tails
    style(ax, xlabel="eigenvalue of J", ylabel="fraction of eigenvalues per bin", xlog=True, ylog=True,
           title=f"FIM eigenvalue distribution beyond dense sizes, d = {d}", legend=7, legend_loc="upper center")
    return fig


def rayleigh_figure(rq: Mapping[str, Sequence[float]], bounds: Mapping[str, float]) -> Figure:
    """Rayleigh quotients of the theory's vector groups (points) against Theorem 3's lower bounds (bars)."""
    groups = ["v0", "rows", "v_ab", "v_gamma"]
    labels = ["$v^{(0)}$", "$W_l$", "$v^{(\\alpha,\\beta)}$", "$v^{(\\gamma)}$"]
    fig, ax = axes((7, 4))
    for i, g in enumerate(groups):
        vals = np.asarray(rq.get(g, []), dtype=float)
        jitter = np.linspace(-0.15, 0.15, vals.size) if vals.size > 1 else np.zeros(vals.size)
        ax.scatter(i + jitter, vals, s=10, color=f"C{i}", label=f"{labels[i]} ({vals.size})")
        ax.hlines(bounds[g], i - 0.3, i + 0.3, color="k", lw=2)
    ax.hlines([], 0, 0, color="k", lw=2, label="Theorem 3 lower bound ($\\delta=\\xi=0$)")
    ax.set_xticks(range(4), labels)
    style(ax, ylabel="Rayleigh quotient $v^T J v / v^T v$", ylog=True,
           title="Rayleigh quotients of the theory's vectors (exact J)", legend=7)
    return fig


def principal_angles_figure(cosines: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """Cosines of the principal angles between each computed cluster and its predicted span, one panel per cluster."""
    fig, axs = axes((10, 3.5), 1, 3, sharey=True)
    for i, ax in enumerate(axs):
        for j, (name, cos) in enumerate(cosines.items()):
            c = cos.get(f"cluster{i + 1}")
            if c is not None and len(c):
                ax.plot(np.arange(1, len(c) + 1), c, "o-", ms=3, color=f"C{j}", label=name)
        style(ax, xlabel="principal angle index", title=f"cluster {i + 1}", grid=True)
    axs[0].set_ylabel("cos(principal angle)\ncomputed vs predicted span")
    if axs[0].get_legend_handles_labels()[0]:
        axs[0].legend(fontsize=7)
    fig.suptitle("Alignment of computed eigenspaces with the theory's spans")
    return fig


# ----------------------------------------------------------------------------- infinite width

def convergence_figure(conv: Mapping[str, Any]) -> Figure:
    """Cluster means against ``p`` (error bars: spread over seeds) on log axes, with the limits as lines.

    ``conv``: :meth:`relufim.experiments.ConvergenceResult.to_dict`.
    """
    fig, ax = axes((6.4, 4.6))
    stats = conv["statistics"]
    n_seeds = len(conv.get("seeds", [])) or None
    for j, name in enumerate(("cluster1", "cluster2", "cluster3")):
        s = stats[name]
        p = np.asarray(s["p"], dtype=float)
        mean = np.asarray(s["mean"], dtype=float)
        std = np.nan_to_num(np.asarray([np.nan if v is None else v for v in s["std"]], dtype=float))
        ax.errorbar(p, mean, yerr=std, fmt="o", color=f"C{j}", capsize=3,
                    label=f"{name} mean ± sd over {n_seeds} seeds")
        ax.plot(p, s["limit"], "-", color=f"C{j}", alpha=0.7, label=f"{name} limit")
    style(ax, xlabel="width p", ylabel="eigenvalue of J", xlog=True, ylog=True, legend=7,
           title=f"Cluster eigenvalues vs p (d = {conv['d']}, {conv['activation']}, scale {conv['scale']})")
    fig.tight_layout()
    return fig


def trace_share_figure(d_values: Sequence[int], F: Sequence[float], d_mark: int | None = None) -> Figure:
    """F(d), the limit share of the trace in degrees <= 2, against ``d`` with Theorem 3's 0.977 bound."""
    bound = TRACE_SHARE_BOUND
    d_values = [int(x) for x in d_values]
    fig, ax = axes((6.4, 4.2))
    ax.plot(d_values, F, "-o", ms=3, label="F(d) (ReLU, infinite width)")
    ax.axhline(bound, color="k", ls="--", label=f"1/2 + 3/(2 pi) = {bound:.6f}")
    if d_mark is not None and d_mark in d_values:
        ax.plot([d_mark], [F[d_values.index(d_mark)]], "s", color="C3", label=f"d = {d_mark}")
    style(ax, xlabel="input dimension d", ylabel="share of the trace in the three clusters", xlog=True,
           title="F(d) decreases to Theorem 3's bound", legend=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- function space, NTK, learning

def _draw_group(ax: Any, theta: np.ndarray, group: Mapping[str, Any]) -> None:
    values = np.asarray(group["values"], dtype=float)
    predicted = np.asarray(group["predicted"], dtype=float)
    for j, label in enumerate(group["labels"]):
        ax.plot(theta, values[:, j], color=f"C{j}", lw=1.4, label=f"$f_v$, {label}")
        ax.plot(theta, predicted[:, j], color=f"C{j}", lw=1.0, ls="--")
    ax.plot([], [], color="k", ls="--", lw=1.0, label="predicted form")
    ax.set_xlim(0, 2 * np.pi)
    style(ax, xlabel="angle on the great circle $(x_1, x_2)$", title=f"{group['name']}: {group['form']}",
           title_size=8, legend=6)


def function_forms_figure(circle: Mapping[str, Any]) -> Figure:
    """:math:`f_v` of every group along a great circle (solid) against its limiting form (dashed), one panel each.

    ``circle``: :func:`relufim.experiments.function_space.circle_forms`.
    """
    theta = np.asarray(circle["theta"], dtype=float)
    groups = list(circle["groups"])
    cols = 4
    rows = -(-len(groups) // cols)
    fig, axs = axes((4 * cols, 3.1 * rows), rows, cols, squeeze=False)
    for ax, group in zip(axs.flat, groups):
        _draw_group(ax, theta, group)
    for ax in list(axs.flat)[len(groups):]:
        ax.axis("off")
    fig.suptitle(f"$f_v$ of the theory's vectors along a great circle (solid) and their limiting forms (dashed), "
                 f"d = {circle['d']}, p = {circle['p']}", fontsize=10)
    fig.tight_layout()
    return fig


def function_group_figure(circle: Mapping[str, Any], name: str) -> Figure:
    """One group of :func:`function_forms_figure` on its own."""
    group = next((g for g in circle["groups"] if g["name"] == name), None)
    if group is None:
        raise KeyError(f"no group {name!r}; have {[g['name'] for g in circle['groups']]}")
    fig, ax = axes((6, 3.6))
    _draw_group(ax, np.asarray(circle["theta"], dtype=float), group)
    ax.set_ylabel("$f_v(x)$, unit $v$")
    return fig


def dynamics_figure(curves: Mapping[str, Any], title: str = "") -> Figure:
    r"""Error per cluster against time: measured (solid), exact recursion (dashed), gradient flow (dotted); log axes.

    ``curves``: :func:`relufim.experiments.function_space.dynamics_curves`.
    """
    t = np.asarray(curves["times"], dtype=float)
    errors = np.asarray(curves["errors"], dtype=float)
    predicted = np.asarray(curves["predicted"], dtype=float)
    flow = np.asarray(curves["predicted_flow"], dtype=float)
    top = max(max(curves["initial_errors"]), 1e-300)
    floor = 1e-16 * top
    fig, ax = axes((7, 4.2))
    for c, lam in enumerate(curves["cluster_mean_eigenvalues"]):
        ax.plot(t, np.maximum(errors[:, c], floor), color=f"C{c}", lw=2,
                label=f"{_CLUSTER_LABELS[c]} (mean $\\lambda$ = {lam:.3g})")
        ax.plot(t, np.maximum(predicted[:, c], floor), color=f"C{c}", ls="--", lw=1)
        ax.plot(t, np.maximum(flow[:, c], floor), color=f"C{c}", ls=":", lw=1)
    ax.plot(t, np.maximum(errors[:, -1], floor), color="0.5", lw=1.5, label="rest of the spectrum")
    ax.plot([], [], color="k", ls="--", lw=1, label="predicted $\\sum\\lambda_i c_i^2 (1-\\eta\\lambda_i)^{2k}$")
    ax.plot([], [], color="k", ls=":", lw=1, label="gradient flow $\\sum\\lambda_i c_i^2 e^{-2\\lambda_i t}$")
    ax.set_ylim(bottom=max(floor, 1e-12 * top))
    style(ax, xlabel="time $t = \\eta k$", ylabel="excess risk carried by the cluster", xlog=True, ylog=True,
           title=title or "Population gradient descent on $v$: the clusters are learned in order", title_size=9,
           legend=7)
    return fig


def fisher_ntk_figure(m: Mapping[str, Any]) -> Figure:
    """Eigenvalues of :math:`J^{(n)}` and of the NTK Gram :math:`K/n`, side by side.

    ``m``: :meth:`relufim.FisherNTKMap.to_dict`.
    """
    fim = np.asarray(m["fim_eigenvalues"], dtype=float)
    idx = np.arange(1, fim.size + 1)
    fig, ax = axes((7, 4))
    ax.plot(idx, fim, "o", ms=6, mfc="none", label="FIM $J^{(n)} = X^TX/n$")
    ax.plot(idx, m["ntk_eigenvalues"], "x", ms=5, label="NTK Gram $K/n = XX^T/n$")
    style(ax, xlabel="index", ylabel="eigenvalue", ylog=True, legend=8, title_size=9,
           title=f"Same nonzero spectrum (max relative difference {m['max_eigenvalue_rel_diff']:.1e}); "
                 f"d = {m['d']}, p = {m['p']}, n = {m['n']}")
    return fig


def approximation_figure(curve: Mapping[str, Any]) -> Figure:
    """Measured error share of the degree-<=2 formula (points, 2 standard errors) against ``1 - F(d)``.

    ``curve``: :func:`relufim.experiments.function_space.approximation_error_curve`.
    """
    fig, ax = axes((6.5, 4))
    lc = curve["limit_curve"]
    ax.plot(lc["d"], lc["one_minus_F"], "k-", lw=1, label="$1 - F(d)$ (theory §7)")
    ax.errorbar(curve["d"], curve["measured"], yerr=2 * np.asarray(curve["stderr"], dtype=float), fmt="o",
                color="C3", label=f"measured: $\\sum v^TJ_{{\\geq 4}}v / \\sum v^TJv$, random $v$, p = {curve['p']}")
    ax.axhline(curve["large_d_limit"], color="0.5", ls=":", lw=1, label="$d\\to\\infty$: $1/2 - 3/(2\\pi)$")
    style(ax, xlabel="input dimension d", ylabel="relative $L^2$ error of the formula", legend=7, title_size=9,
           title="Degree-$\\leq$2 approximation formula: error against $1 - F(d)$")
    return fig


# ----------------------------------------------------------------------------- sweeps

def _group_label(key: tuple, names: list[str], varying: set[str]) -> str:
    return ", ".join(f"{n}={v}" for n, v in zip(names, key) if n == "d" or n in varying)


def sweep_cluster_eigenvalues_figure(df: Any, limit_values: Callable[..., list[float | None]] | None = None
                                     ) -> Figure:
    """Mean eigenvalue of each of the three clusters against ``p``, one line per ``d`` (mean ± sd over seeds).

    Dashed horizontal lines: the infinite-width values (``limit_values(d, activation=..., scale="1/p")``),
    where given and where the sweep uses the default scale ``1/p``.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`relufim.sweep.load_results` output (only ``status == "done"`` rows are used).
    limit_values : callable, optional
        ``(d, activation=, scale=) -> [λ_1, λ_2, λ_3]``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    done = df[df["status"] == "done"]
    fig, axs = axes((12, 3.9), 1, 3)
    names = [c for c in ("d", "activation", "scale", "fisher", "n") if c in done.columns]
    varying = {c for c in names if c != "d" and done[c].astype(str).nunique() > 1}
    groups = list(done.groupby(names, dropna=False, sort=True)) if len(done) else []
    for gi, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        color = _COLORS[gi % len(_COLORS)]
        label = _group_label(key, names, varying)
        row = dict(zip(names, key))
        limits = None
        if limit_values is not None and str(row.get("scale", "1/p")) == "1/p":
            limits = limit_values(int(row["d"]), activation=row.get("activation", "relu"), scale="1/p")
        for ci, ax in enumerate(axs):
            col = f"cluster{ci + 1}_mean"
            if col not in g.columns:
                continue
            stats = g.groupby("p")[col].agg(["mean", "std", "count"]).reset_index().sort_values("p")
            stats = stats[np.isfinite(stats["mean"].astype(float))]
            if stats.empty:
                continue
            ax.errorbar(stats["p"], stats["mean"], yerr=stats["std"].fillna(0.0), marker="o", ms=4, capsize=3,
                        color=color, label=label)
            if limits is not None and ci < len(limits) and limits[ci] is not None:
                ax.axhline(limits[ci], color=color, ls="--", lw=1, alpha=0.8)
    ps = sorted(int(v) for v in done["p"].unique()) if len(done) else []
    for ci, ax in enumerate(axs):
        style(ax, xlabel="p (hidden units)", grid=True, title_size=10,
               title=f"cluster {ci + 1}" + (" (Perron–Frobenius)" if ci == 0 else " (rows of W)" if ci == 1
                                            else " (Hadamard products)"))
        if ps and ps[-1] >= 4 * ps[0]:
            ax.set_xscale("log")
            ax.minorticks_off()
        if ps:
            ticks = ps if len(ps) <= 8 else ps[:: max(1, len(ps) // 8)]
            ax.set_xticks(ticks)
            ax.set_xticklabels([str(p) for p in ticks])
    axs[0].set_ylabel("mean eigenvalue of the cluster")
    handles, labels = axs[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=9,
                   bbox_to_anchor=(0.5, -0.06))
    note = "dashed: infinite-width limit d·μ_k" if limit_values is not None else "no limit values"
    fig.suptitle(f"Cluster eigenvalues against p (mean ± sd over seeds; {note})", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def sweep_trace_share_figure(df: Any, bound: float = TRACE_SHARE_BOUND,
                             limit_share: Callable[[list[int]], Sequence[float]] | None = None) -> Figure:
    """Share of the trace in the three clusters (``top_fraction``) against ``d``, with Theorem 3's bound.

    One point per task (coloured by ``p``), the mean per ``d`` joined by a line, and the
    infinite-width share ``limit_share(ds)`` = F(d) (ReLU, theory §7) where given.

    Returns
    -------
    matplotlib.figure.Figure
    """
    done = df[df["status"] == "done"]
    fig, ax = axes((6.5, 4.2))
    if len(done) and "top_fraction" in done.columns:
        done = done[np.isfinite(done["top_fraction"].astype(float))]
        ps = sorted(done["p"].unique())
        for i, p in enumerate(ps):
            g = done[done["p"] == p]
            jitter = (i - (len(ps) - 1) / 2) * 0.06
            ax.scatter(g["d"] + jitter, g["top_fraction"], s=18, color=_COLORS[i % len(_COLORS)], alpha=0.8,
                       label=f"p = {p}")
        mean = done.groupby("d")["top_fraction"].mean()
        ax.plot(mean.index, mean.values, color="black", lw=1, label="mean over tasks")
        ds = sorted(int(d) for d in done["d"].unique())
        ax.set_xticks(ds)
        if limit_share is not None and ds:
            grid = list(range(ds[0], ds[-1] + 1))
            ax.plot(grid, limit_share(grid), color="#555555", ls=":", lw=1.5, label="infinite width F(d)")
    ax.axhline(bound, color="#b3261e", ls="--", lw=1.2, label=f"Theorem 3 bound {bound:.4f}")
    style(ax, xlabel="d (input dimension)", ylabel="share of the trace in the three clusters",
           title="Trace share against d", title_size=11, grid=True, legend=8)
    return fig

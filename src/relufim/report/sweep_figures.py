"""Aggregate figures of a sweep: cluster eigenvalues against p, trace share against d.

The figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot, no
global backend), so they are safe to make in any process, headless or not.
"""

from __future__ import annotations

import io
import math
from typing import Any, Callable

import numpy as np

__all__ = ["limit_values_function", "trace_share_limit_function", "cluster_eigenvalues_figure", "trace_share_figure",
           "figure_png"]

_COLORS = ["#2f5d9e", "#c0392b", "#1b7f3b", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#2c3e50"]


def limit_values_function() -> Callable[..., list[float | None]] | None:
    """``(d, activation="relu", scale="1/p", p=None) -> [λ_1, λ_2, λ_3]``: infinite-width cluster values.

    From :func:`relufim.limit.limit_cluster_values` (DESIGN §4: the FIM eigenvalue of
    degree ``k`` is ``p·E‖w‖²·μ_k``, ``= d·μ_k`` for the default draw). ``None`` when
    :mod:`relufim.limit` is not available; the figures then show the measured values
    alone. Settings the limit does not cover give ``[None, None, None]``.
    """
    try:
        from ..theory.limit import limit_cluster_values
    except ImportError:  # pragma: no cover - relufim.limit is part of the package
        return None

    def values(d: int, activation: str = "relu", scale: Any = "1/p", p: int | None = None) -> list[float | None]:
        try:
            raw = limit_cluster_values(int(d), activation=activation, scale=scale, p=p)
        except (ValueError, TypeError, NotImplementedError):
            return [None, None, None]
        out: list[float | None] = []
        for key in ("cluster1", "cluster2", "cluster3"):
            try:
                x = float(raw[key])
            except (KeyError, TypeError, ValueError):
                x = math.nan
            out.append(x if math.isfinite(x) else None)
        return out

    return values


def trace_share_limit_function() -> Callable[[list[int]], np.ndarray] | None:
    """``ds -> F(d)``, the infinite-width share of the trace in degrees ≤ 2 (ReLU), or ``None``."""
    try:
        from ..theory.limit import trace_share_curve
    except ImportError:  # pragma: no cover
        return None
    return trace_share_curve


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _group_label(key: tuple, names: list[str], varying: set[str]) -> str:
    parts = [f"{n}={v}" for n, v in zip(names, key) if n == "d" or n in varying]
    return ", ".join(parts)


def cluster_eigenvalues_figure(df: Any, limit_values: Callable[[int], list[float | None]] | None = None):
    """Mean eigenvalue of each of the three clusters against ``p``, one line per ``d`` (mean ± sd over seeds).

    Dashed horizontal lines: the infinite-width values (``limit_values(d)``), where given and
    where the sweep uses the default scale ``1/p``.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`relufim.load_results` output (only ``status == "done"`` rows are used).
    limit_values : callable, optional
        ``d -> [λ_1, λ_2, λ_3]`` (see :func:`limit_values_function`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    done = df[df["status"] == "done"]
    fig = Figure(figsize=(12, 3.9))
    axes = fig.subplots(1, 3)
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
        for ci, ax in enumerate(axes):
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
    for ci, ax in enumerate(axes):
        ax.set_title(f"cluster {ci + 1}" + (" (Perron–Frobenius)" if ci == 0 else " (rows of W)" if ci == 1
                                              else " (Hadamard products)"), fontsize=10)
        ax.set_xlabel("p (hidden units)")
        if ps and ps[-1] >= 4 * ps[0]:
            ax.set_xscale("log")
            ax.minorticks_off()
        if ps:
            ax.set_xticks(ps if len(ps) <= 8 else ps[:: max(1, len(ps) // 8)])
            ax.set_xticklabels([str(p) for p in (ps if len(ps) <= 8 else ps[:: max(1, len(ps) // 8)])])
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("mean eigenvalue of the cluster")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=9,
                   bbox_to_anchor=(0.5, -0.06))
    note = "dashed: infinite-width limit d·μ_k" if limit_values is not None else "limit values: relufim.limit not available"
    fig.suptitle(f"Cluster eigenvalues against p (mean ± sd over seeds; {note})", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def trace_share_figure(df: Any, bound: float | None = None):
    """Share of the trace in the three clusters (``top_fraction``) against ``d``, with Theorem 3's 0.977 bound.

    One point per task (coloured by ``p``), the mean per ``d`` joined by a line, and the
    infinite-width share ``F(d)`` (ReLU, DESIGN §4) where :mod:`relufim.limit` is available.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    from ..theory import TRACE_SHARE_BOUND

    bound = TRACE_SHARE_BOUND if bound is None else bound
    done = df[df["status"] == "done"]
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
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
        limit_share = trace_share_limit_function()
        if limit_share is not None and ds:
            grid = list(range(ds[0], ds[-1] + 1))
            ax.plot(grid, limit_share(grid), color="#555555", ls=":", lw=1.5, label="infinite width F(d)")
    ax.axhline(bound, color="#b3261e", ls="--", lw=1.2, label=f"Theorem 3 bound {bound:.4f}")
    ax.set_xlabel("d (input dimension)")
    ax.set_ylabel("share of the trace in the three clusters")
    ax.set_title("Trace share against d", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig

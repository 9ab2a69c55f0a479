r"""Finite-``p`` cluster statistics against the infinite-width limit (DESIGN §4, §7).

For each width ``p`` and seed, ``W`` is drawn, the top ``d(d+3)/2`` eigenvalues of the
exact FIM are computed (:func:`relufim.spectrum.spectrum` with ``k="clusters"``), split
by the predicted sizes ``1, d, d(d+1)/2 - 1`` into the three clusters, and compared with
:func:`relufim.limit.limit_cluster_values`. The rate in ``p`` is the least-squares
slope of :math:`\log|\bar x_p - x_\infty|` against :math:`\log p` (``bar x_p`` the
mean over seeds), with its standard error from the residuals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_positive_int
from ..model.activations import Activation, get_activation
from ..theory.limit import limit_cluster_values
from ..spectrum import predicted_cluster_sizes, spectrum
from ..theory import TRACE_SHARE_BOUND
from ..model.weights import Scale, entry_variance, sample_weights

__all__ = ["ClusterConvergence", "ConvergenceResult", "convergence", "fit_rate", "finite_cluster_values",
           "convergence_figure", "trace_share_figure"]

STATISTICS = ("cluster1", "cluster2", "cluster3", "top_fraction")


def fit_rate(p: Sequence[float], error: Sequence[float]) -> tuple[float | None, float | None]:
    r"""Slope ``b`` of :math:`\log|e| = a + b\log p` by least squares and its standard error.

    ``(None, None)`` with fewer than two usable points (zero errors are dropped); the
    standard error needs three.

    Examples
    --------
    >>> b, se = fit_rate([100, 1000, 10000], [1e-1, 1e-2, 1e-3])
    >>> round(b, 12), round(se, 12)
    (-1.0, 0.0)
    """
    p = np.asarray(p, dtype=float)
    e = np.abs(np.asarray(error, dtype=float))
    keep = (e > 0) & np.isfinite(e) & (p > 0)
    x, y = np.log(p[keep]), np.log(e[keep])
    if x.size < 2:
        return None, None
    A = np.vstack([np.ones_like(x), x]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    if x.size < 3:
        return float(coef[1]), None
    resid = y - A @ coef
    s2 = float(resid @ resid) / (x.size - 2)
    cov = s2 * np.linalg.inv(A.T @ A)
    return float(coef[1]), float(math.sqrt(cov[1, 1]))


@dataclass(frozen=True)
class ClusterConvergence:
    """One statistic (a cluster mean or the top fraction) across widths."""

    name: str
    p: tuple[int, ...]
    limit: tuple[float, ...]
    """The limit value at each p (the same for ReLU with the default scale)."""
    mean: tuple[float, ...]
    """Mean over seeds at each p."""
    std: tuple[float, ...]
    """Sample standard deviation over seeds (NaN with one seed)."""
    rate: float | None
    """Fitted exponent b in |mean - limit| ~ p^b."""
    rate_stderr: float | None

    @property
    def error(self) -> tuple[float, ...]:
        return tuple(m - lim for m, lim in zip(self.mean, self.limit))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "p": list(self.p), "limit": list(self.limit), "mean": list(self.mean),
                "std": list(self.std), "error": list(self.error), "rate": self.rate, "rate_stderr": self.rate_stderr}


@dataclass(frozen=True)
class ConvergenceResult:
    """Finite-``p`` cluster statistics against the limit; ``values[i, s, j]`` is statistic ``j`` at ``p[i]``, seed ``s``."""

    d: int
    activation: str
    scale: Scale
    p: tuple[int, ...]
    seeds: tuple[int, ...]
    values: np.ndarray
    statistics: tuple[ClusterConvergence, ...]
    sizes_match: np.ndarray
    """``sizes_match[i, s]``: the detected cluster sizes equal the predicted ones."""
    elapsed_s: float

    def statistic(self, name: str) -> ClusterConvergence:
        for s in self.statistics:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"d": self.d, "activation": self.activation, "scale": self.scale, "p": list(self.p),
                "seeds": list(self.seeds), "statistics": {s.name: s.to_dict() for s in self.statistics},
                "sizes_match": self.sizes_match.tolist(), "elapsed_s": self.elapsed_s}

    def format_table(self) -> str:
        lines = [f"Convergence to the infinite-width limit: d = {self.d}, activation = {self.activation}, "
                 f"scale = {self.scale}, seeds = {len(self.seeds)}", ""]
        head = f"{'statistic':>12}  {'p':>7}  {'mean':>12}  {'std':>10}  {'limit':>12}  {'mean - limit':>13}"
        lines += [head, "-" * len(head)]
        for s in self.statistics:
            for i, p in enumerate(s.p):
                lines.append(f"{s.name:>12}  {p:>7}  {s.mean[i]:>12.6g}  {s.std[i]:>10.3g}  {s.limit[i]:>12.6g}  "
                             f"{s.mean[i] - s.limit[i]:>13.3g}")
            rate = "n/a" if s.rate is None else f"{s.rate:.2f}" + ("" if s.rate_stderr is None else f" +- {s.rate_stderr:.2f}")
            lines.append(f"{'':>12}  fitted rate |mean - limit| ~ p^b, b = {rate}")
        return "\n".join(lines)


def finite_cluster_values(W: np.ndarray, activation: str | Activation = "relu") -> tuple[np.ndarray, bool]:
    """``[cluster1 mean, cluster2 mean, cluster3 mean, top_fraction]`` of the exact FIM of ``W``, and whether
    the detected cluster sizes match ``(1, d, d(d+1)/2 - 1)``.

    The clusters are cut at the predicted sizes (so a statistic is always defined).
    ReLU uses the theory-seeded block solver; other activations the dense LAPACK route
    (their clusters can span many orders of magnitude).
    """

    act = get_activation(activation)
    d = W.shape[0]
    method = "auto" if act.name == "relu" else "dense"
    res = spectrum(W, k="clusters", activation=act, method=method)
    sizes = predicted_cluster_sizes(d)
    e = res.eigenvalues
    c1, c2 = e[0], e[1:1 + sizes[1]].mean()
    c3 = e[1 + sizes[1]: sum(sizes)].mean() if sizes[2] > 0 else float("nan")
    match = tuple(c.size for c in res.clusters) == sizes
    return np.array([c1, c2, c3, res.top_fraction if res.top_fraction is not None else float("nan")]), match


def convergence(d: int = 10, p: Sequence[int] = (500, 1000, 2000, 5000, 10000), seeds: int | Sequence[int] = 5,
                activation: str | Activation = "relu", scale: Scale = "1/p",
                progress: Callable[[int, int], None] | None = None) -> ConvergenceResult:
    r"""Cluster eigenvalues of the exact FIM at several widths against the infinite-width limit.

    Parameters
    ----------
    d : int
        Input dimension (>= 2).
    p : sequence of int
        Widths (each > d(d+3)/2 + 10).
    seeds : int or sequence of int
        Number of seeds (``0 .. seeds-1``) or the seeds themselves.
    activation, scale
        As in :func:`relufim.limit.limit_spectrum`.
    progress : callable(done, total), optional
        Called after each ``(p, seed)``.

    Returns
    -------
    ConvergenceResult
        Per statistic (``cluster1``, ``cluster2``, ``cluster3``, ``top_fraction``): mean and
        spread over seeds at each ``p``, the limit, and the fitted rate in ``p``.

    Examples
    --------
    >>> res = convergence(d=2, p=[100, 200], seeds=2)
    >>> round(res.statistic("cluster2").limit[0], 12)
    0.25
    >>> res.values.shape
    (2, 2, 4)
    """

    d = check_positive_int(d, "d", minimum=2)
    ps = [check_positive_int(v, "p") for v in (p if isinstance(p, (list, tuple, np.ndarray)) else [p])]
    if not ps:
        raise ValueError("p must list at least one width.")
    need = d * (d + 3) // 2 + 2
    if min(ps) < need:
        raise ValueError(f"every width p must be at least d(d+3)/2 + 2 = {need} to hold the three clusters, got {min(ps)}.")
    seed_list = list(range(check_positive_int(seeds, "seeds"))) if isinstance(seeds, (int, np.integer)) else \
        [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds must be >= 1.")
    act = get_activation(activation)
    entry_variance(scale, d, 1)
    t0 = time.perf_counter()
    limits = [limit_cluster_values(d, act, scale, pp) for pp in ps]
    values = np.empty((len(ps), len(seed_list), len(STATISTICS)))
    match = np.zeros((len(ps), len(seed_list)), dtype=bool)
    total = len(ps) * len(seed_list)
    done = 0
    for i, pp in enumerate(ps):
        for s, seed in enumerate(seed_list):
            W = sample_weights(d, pp, seed=seed, scale=scale)
            values[i, s], match[i, s] = finite_cluster_values(W, act)
            done += 1
            if progress is not None:
                progress(done, total)
    stats = []
    for j, name in enumerate(STATISTICS):
        mean = values[:, :, j].mean(axis=1)
        std = values[:, :, j].std(axis=1, ddof=1) if len(seed_list) > 1 else np.full(len(ps), np.nan)
        lim = np.array([L[name] for L in limits])
        rate, se = fit_rate(ps, mean - lim)
        stats.append(ClusterConvergence(name=name, p=tuple(ps), limit=tuple(float(x) for x in lim),
                                        mean=tuple(float(x) for x in mean), std=tuple(float(x) for x in std),
                                        rate=rate, rate_stderr=se))
    return ConvergenceResult(d=d, activation=act.name, scale=scale, p=tuple(ps), seeds=tuple(seed_list),
                             values=values, statistics=tuple(stats), sizes_match=match,
                             elapsed_s=time.perf_counter() - t0)


# ----------------------------------------------------------------------------- figures

def convergence_figure(res: ConvergenceResult):
    """Cluster means (dots, bars = spread over seeds) against p on log axes, with the limits as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    colors = ["C0", "C1", "C2"]
    for j, name in enumerate(("cluster1", "cluster2", "cluster3")):
        s = res.statistic(name)
        p = np.array(s.p, dtype=float)
        mean, std = np.array(s.mean), np.nan_to_num(np.array(s.std))
        ax.errorbar(p, mean, yerr=std, fmt="o", color=colors[j], capsize=3,
                    label=f"{name} mean +- std over {len(res.seeds)} seeds")
        ax.plot(p, s.limit, "-", color=colors[j], alpha=0.7, label=f"{name} limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width p")
    ax.set_ylabel("eigenvalue of J")
    ax.set_title(f"Cluster eigenvalues vs p (d = {res.d}, {res.activation}, scale {res.scale})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def trace_share_figure(d_values: np.ndarray, F: np.ndarray, d_mark: int | None = None):
    """F(d), the limit share of the trace in degrees <= 2, against d with Theorem 3's 0.977 bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(d_values, F, "-o", ms=3, label="F(d) (ReLU, infinite width)")
    ax.axhline(TRACE_SHARE_BOUND, color="k", ls="--", label=f"1/2 + 3/(2 pi) = {TRACE_SHARE_BOUND:.6f}")
    if d_mark is not None and d_mark in set(int(x) for x in d_values):
        ax.plot([d_mark], [F[list(d_values).index(d_mark)]], "s", color="C3", label=f"d = {d_mark}")
    ax.set_xscale("log")
    ax.set_xlabel("input dimension d")
    ax.set_ylabel("share of the trace in the three clusters")
    ax.set_title("F(d) decreases to Theorem 3's bound")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

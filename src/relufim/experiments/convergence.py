r"""Finite-``p`` cluster statistics against the infinite-width limit (theory §7, §8).

For each width ``p`` and seed, ``W`` is drawn, the top ``d(d+3)/2`` eigenvalues of the
exact FIM are computed (:func:`relufim.spectrum` with ``k="clusters"``), split by the
predicted sizes ``1, d, d(d+1)/2 - 1`` into the three clusters, and compared with
:func:`relufim.limit_cluster_values`. The rate in ``p`` is the least-squares slope of
:math:`\log|\bar x_p - x_\infty|` against :math:`\log p` (``bar x_p`` the mean over
seeds), with its standard error from the residuals; it is kept only where the data
support it (:func:`rate_verdict`): every width's difference beyond its own standard
error, one sign, at least three widths. Nothing here draws or writes files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_positive_int
from ..model.activations import Activation, get_activation
from ..model.weights import Scale, entry_variance, sample_weights
from ..spectrum import predicted_cluster_sizes, spectrum
from ..theory.limit import limit_cluster_values

__all__ = ["ClusterConvergence", "ConvergenceResult", "convergence", "check_convergence_arguments", "fit_rate",
           "rate_verdict", "finite_cluster_values", "RATE_STATUSES", "STATISTICS"]

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


#: Why a statistic has no fitted rate (``ClusterConvergence.rate_status``), and the one case where it has one.
RATE_STATUSES = ("fitted", "within-noise", "one-seed", "too-few-widths", "mixed", "sign-change")


def rate_verdict(p: Sequence[float], error: Sequence[float], stderr: Sequence[float]
                 ) -> tuple[str, float | None, float | None]:
    r"""Whether ``|error| ~ p^b`` may be claimed from these points, and ``(status, b, se(b))`` if so.

    A rate is claimed (``status = "fitted"``) only when every width's ``|error|`` exceeds its
    own standard error (the spread over seeds over :math:`\sqrt{\text{seeds}}`), the errors
    keep one sign, and the fit has at least three distinct widths, so that the slope has a
    standard error (:func:`fit_rate`). Otherwise ``b`` and ``se(b)`` are ``None`` and the
    status says why: ``"within-noise"`` (no width's error exceeds its standard error),
    ``"one-seed"`` (no error bar), ``"too-few-widths"``, ``"mixed"`` (some widths within
    noise) or ``"sign-change"``.

    Examples
    --------
    >>> status, b, se = rate_verdict([100, 1000, 10000], [1e-1, 1e-2, 1e-3], [1e-3, 1e-4, 1e-5])
    >>> status, round(b, 9), round(se, 9)
    ('fitted', -1.0, 0.0)
    >>> rate_verdict([100, 1000, 10000], [1e-3, -2e-3, 1e-3], [1e-2, 1e-2, 1e-2])
    ('within-noise', None, None)
    >>> rate_verdict([100, 1000], [1e-1, 1e-2], [1e-3, 1e-4])
    ('too-few-widths', None, None)
    """
    p = np.asarray(p, dtype=float)
    e = np.asarray(error, dtype=float)
    se = np.asarray(stderr, dtype=float)
    if not np.all(np.isfinite(se)):
        return "one-seed", None, None
    significant = np.abs(e) > se
    if not significant.any():
        return "within-noise", None, None
    if np.unique(p).size < 3:
        return "too-few-widths", None, None
    if not significant.all():
        return "mixed", None, None
    if not (np.all(e > 0) or np.all(e < 0)):
        return "sign-change", None, None
    b, b_se = fit_rate(p, e)
    if b is None or b_se is None:  # pragma: no cover - three distinct widths with nonzero errors always fit
        return "too-few-widths", None, None
    return "fitted", b, b_se


@dataclass(frozen=True)
class ClusterConvergence:
    r"""One statistic (a cluster mean or the top fraction) across widths, with its fitted rate where honest.

    The rate ``b`` of :math:`|\bar x_p - x_\infty| \sim p^b` is kept only when
    :func:`rate_verdict` allows it (every width's difference beyond its standard error, one
    sign, at least three widths); ``rate_status`` says why it is ``None`` otherwise, and
    ``rate_text`` says it in words.
    """

    name: str
    p: tuple[int, ...]
    limit: tuple[float, ...]
    """The limit value at each p (the same for ReLU with the default scale)."""
    mean: tuple[float, ...]
    """Mean over seeds at each p."""
    std: tuple[float, ...]
    """Sample standard deviation over seeds (NaN with one seed)."""
    n_seeds: int
    """Seeds per width."""
    rate: float | None
    """Fitted exponent b in |mean - limit| ~ p^b; ``None`` unless ``rate_status == "fitted"``."""
    rate_stderr: float | None
    """Standard error of ``rate`` (from the fit's residuals); ``None`` with ``rate``."""
    rate_status: str
    """One of :data:`RATE_STATUSES`: ``"fitted"`` or why there is no rate."""

    @classmethod
    def from_values(cls, name: str, p: Sequence[int], limit: Sequence[float], values: np.ndarray
                    ) -> ClusterConvergence:
        """Mean and spread over seeds of ``values[i, s]`` (width ``p[i]``, seed ``s``), then :meth:`from_dict`."""
        values = np.asarray(values, dtype=float)
        n_seeds = values.shape[1]
        std = values.std(axis=1, ddof=1) if n_seeds > 1 else np.full(len(p), np.nan)
        return cls.from_dict({"name": name, "p": p, "limit": limit, "mean": values.mean(axis=1), "std": std,
                              "n_seeds": n_seeds})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], n_seeds: int | None = None) -> ClusterConvergence:
        """From ``p, limit, mean, std`` per width and the number of seeds, applying the rate rule again.

        The record may come from :meth:`to_dict`, from an older version without the rate rule, or
        from :meth:`from_values`. The rate is re-decided from ``p, limit, mean, std`` and the number of seeds
        (``data["n_seeds"]`` or ``n_seeds``), never taken from the record, so a rate fitted
        by an older version without its error bar is not shown.

        Examples
        --------
        >>> old = {"name": "cluster1", "p": [250, 500, 1000], "limit": [1.0] * 3, "mean": [1.01, 0.99, 1.001],
        ...        "std": [0.02, 0.02, 0.02], "rate": -3.02, "rate_stderr": None}
        >>> ClusterConvergence.from_dict(old, n_seeds=2).rate_text
        'mean - limit within noise at every width (no rate)'
        """
        seeds = int(data.get("n_seeds") or n_seeds or 1)
        std = [math.nan if v is None else float(v) for v in data["std"]]
        mean = [float(v) for v in data["mean"]]
        lim = [float(v) for v in data["limit"]]
        status, rate, se = rate_verdict(data["p"], np.subtract(mean, lim), np.asarray(std) / math.sqrt(seeds))
        return cls(name=str(data["name"]), p=tuple(int(x) for x in data["p"]), limit=tuple(lim), mean=tuple(mean),
                   std=tuple(std), n_seeds=seeds, rate=rate, rate_stderr=se, rate_status=status)

    @property
    def error(self) -> tuple[float, ...]:
        """``mean - limit`` at each width."""
        return tuple(m - lim for m, lim in zip(self.mean, self.limit))

    @property
    def stderr(self) -> tuple[float, ...]:
        """Standard error of each mean: ``std / sqrt(n_seeds)`` (NaN with one seed)."""
        return tuple(s / math.sqrt(self.n_seeds) for s in self.std)

    @property
    def significant(self) -> tuple[bool, ...]:
        """Whether ``|mean - limit|`` exceeds its standard error at each width (False without one)."""
        return tuple(bool(abs(e) > s) if math.isfinite(s) else False for e, s in zip(self.error, self.stderr))

    @property
    def rate_text(self) -> str:
        """The rate with its standard error and number of widths, or why no rate is claimed.

        Examples
        --------
        >>> c = ClusterConvergence.from_values("cluster2", [100, 1000, 10000], [0.25] * 3,
        ...                                    [[0.3499, 0.3501], [0.2599, 0.2601], [0.25099, 0.25101]])
        >>> c.rate_text
        '|mean - limit| ~ p^b, b = -1.00 ± 0.00 (3 widths, 2 seeds)'
        """
        if self.rate_status == "fitted":
            return (f"|mean - limit| ~ p^b, b = {self.rate:.2f} ± {self.rate_stderr:.2f} "
                    f"({len(set(self.p))} widths, {self.n_seeds} seeds)")
        if self.rate_status == "within-noise":
            return "mean - limit within noise at every width (no rate)"
        if self.rate_status == "one-seed":
            return "no rate: one seed gives no error bar"
        if self.rate_status == "too-few-widths":
            return "no rate: a rate with a standard error needs at least 3 widths"
        if self.rate_status == "mixed":
            quiet = [str(p) for p, s in zip(self.p, self.significant) if not s]
            return f"no rate: mean - limit within noise at p = {', '.join(quiet)}"
        return "no rate: mean - limit changes sign across widths"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the values per width, their standard errors, and the rate where claimed."""
        return {"name": self.name, "p": list(self.p), "limit": list(self.limit), "mean": list(self.mean),
                "std": list(self.std), "n_seeds": self.n_seeds, "stderr": list(self.stderr),
                "error": list(self.error), "significant": list(self.significant), "rate": self.rate,
                "rate_stderr": self.rate_stderr, "rate_status": self.rate_status, "rate_text": self.rate_text}


@dataclass(frozen=True)
class ConvergenceResult:
    """Finite-``p`` cluster statistics against the limit; ``values[i, s, j]``: statistic ``j`` at ``p[i]``, seed ``s``.

    Render it with :func:`relufim.report.format_convergence_table` (text) or
    :func:`relufim.report.figures.convergence_figure`.
    """

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
        """The statistic called ``name`` (``cluster1..3``, ``top_fraction``)."""
        for s in self.statistics:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``d, activation, scale, p, seeds, statistics {name: ...}, sizes_match, elapsed_s``."""
        return {"d": self.d, "activation": self.activation, "scale": self.scale, "p": list(self.p),
                "seeds": list(self.seeds), "statistics": {s.name: s.to_dict() for s in self.statistics},
                "sizes_match": self.sizes_match.tolist(), "elapsed_s": self.elapsed_s}


def finite_cluster_values(W: np.ndarray, activation: str | Activation = "relu") -> tuple[np.ndarray, bool]:
    """``[cluster1 mean, cluster2 mean, cluster3 mean, top_fraction]`` of the exact FIM of ``W``, and a match flag.

    The flag says whether the detected cluster sizes are ``(1, d, d(d+1)/2 - 1)``. The clusters
    are cut at the predicted sizes (so a statistic is always defined).
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


def check_convergence_arguments(d: int, p: int | Sequence[int], seeds: int | Sequence[int] = 5,
                                activation: str | Activation = "relu", scale: Scale = "1/p"
                                ) -> tuple[int, list[int], list[int], Activation]:
    """The arguments of :func:`convergence`, checked before any work: ``(d, widths, seeds, activation)``.

    ``d >= 2``; every width holds the three clusters (``p >= d(d+3)/2 + 2``); ``seeds`` a count or
    a list of seeds. The CLI calls it before its progress output.

    Examples
    --------
    >>> d, ps, seeds, act = check_convergence_arguments(2, [100, 200], 2)
    >>> d, ps, seeds, act.name
    (2, [100, 200], [0, 1], 'relu')
    """
    d = check_positive_int(d, "d", minimum=2)
    ps = [check_positive_int(v, "p") for v in (p if isinstance(p, (list, tuple, np.ndarray)) else [p])]
    if not ps:
        raise ValueError("p must list at least one width.")
    need = d * (d + 3) // 2 + 2
    if min(ps) < need:
        raise ValueError(f"every width p must be at least d(d+3)/2 + 2 = {need} to hold the three clusters, "
                         f"got {min(ps)}.")
    seed_list = list(range(check_positive_int(seeds, "seeds"))) if isinstance(seeds, (int, np.integer)) else \
        [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds must be >= 1.")
    act = get_activation(activation)
    entry_variance(scale, d, 1)
    return d, ps, seed_list, act


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
        As in :func:`relufim.limit_spectrum`.
    progress : callable(done, total), optional
        Called after each ``(p, seed)``.

    Returns
    -------
    ConvergenceResult
        Per statistic (``cluster1``, ``cluster2``, ``cluster3``, ``top_fraction``): mean and
        spread over seeds at each ``p``, the limit, and the rate in ``p`` where the data
        support one (see :class:`ClusterConvergence`).

    Examples
    --------
    >>> res = convergence(d=2, p=[100, 200], seeds=2)
    >>> round(res.statistic("cluster2").limit[0], 12)
    0.25
    >>> res.values.shape
    (2, 2, 4)
    """
    d, ps, seed_list, act = check_convergence_arguments(d, p, seeds, activation, scale)
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
    stats = [ClusterConvergence.from_values(name, ps, [L[name] for L in limits], values[:, :, j])
             for j, name in enumerate(STATISTICS)]
    return ConvergenceResult(d=d, activation=act.name, scale=scale, p=tuple(ps), seeds=tuple(seed_list),
                             values=values, statistics=tuple(stats), sizes_match=match,
                             elapsed_s=time.perf_counter() - t0)

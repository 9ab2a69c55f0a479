r"""Eigenpairs with everything needed to judge them, and the clusters they form (theory §4, §10).

:class:`SpectrumResult` is the one result type of every eigen-solve in the library; it is
built only by :meth:`SpectrumResult.from_pairs`, which divides by :math:`\sigma^2`, flags
convergence from the residuals and finds the clusters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_eigenvalues, check_positive_int
from ..model.harmonics import harmonic_multiplicity

__all__ = ["Cluster", "SpectrumResult", "detect_clusters", "principal_cosines", "n_top", "predicted_cluster_sizes"]


def predicted_cluster_sizes(d: int) -> tuple[int, int, int]:
    """Sizes ``(1, d, d(d+1)/2 - 1)`` of the three clusters: the multiplicities ``N(d, k)``, ``k <= 2`` (theory §4, §6).

    They sum to ``d(d+3)/2``; ``d = 1`` has no third cluster.

    Examples
    --------
    >>> predicted_cluster_sizes(10), predicted_cluster_sizes(1)
    ((1, 10, 54), (1, 1, 0))
    """
    d = check_positive_int(d, "d")
    return tuple(harmonic_multiplicity(d, k) for k in range(3))  # type: ignore[return-value]


def n_top(d: int) -> int:
    """Number of eigenvalues in the first three clusters, ``d(d+3)/2`` (``2`` for ``d = 1``)."""
    return sum(predicted_cluster_sizes(d))


@dataclass(frozen=True)
class Cluster:
    """One cluster of eigenvalues: which computed eigenpairs belong to it and their statistics."""

    index: int
    size: int
    predicted_size: int | None
    members: np.ndarray = field(repr=False)
    mean: float
    min: float
    max: float
    gap_below: float
    """Ratio of this cluster's smallest eigenvalue to the next computed one (inf if none)."""

    @property
    def matches_prediction(self) -> bool:
        return self.predicted_size is not None and self.size == self.predicted_size

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "size": self.size, "predicted_size": self.predicted_size,
                "mean": self.mean, "min": self.min, "max": self.max,
                "gap_below": None if math.isinf(self.gap_below) else self.gap_below}


def detect_clusters(eigenvalues: np.ndarray, n_clusters: int = 3, window: int | None = None) -> list[int]:
    """Sizes of the first ``n_clusters`` clusters, split at the largest ratios ``lambda_i / lambda_{i+1}`` (theory §10).

    Only the first ``window`` eigenvalues are searched (default: all). The FIM's later
    clusters are separated by ever larger ratios, so to find the first three one searches
    the top ``d(d+3)/2 + 1`` eigenvalues: the cut after the third cluster needs one beyond it.

    Examples
    --------
    >>> detect_clusters(np.array([10.0, 2.1, 2.0, 1.9, 0.05, 0.049, 0.001]), 3)
    [1, 3, 2]
    """
    lam = check_eigenvalues(eigenvalues)
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    if window is not None:
        lam = lam[:check_positive_int(window, "window")]
    lam = lam[lam > 0]
    if lam.size < 2:
        return [int(lam.size)] if lam.size else []
    ratios = np.log(lam[:-1] / lam[1:])
    cuts = np.sort(np.argsort(ratios)[::-1][: min(n_clusters, ratios.size)]) + 1
    return [int(s) for s in np.diff(np.concatenate([[0], cuts]))]


def _build_clusters(eigenvalues: np.ndarray, d: int | None) -> tuple[Cluster, ...]:
    if d is None:
        return ()
    predicted = tuple(s for s in predicted_cluster_sizes(d) if s > 0)  # d = 1 has no third cluster
    if eigenvalues.size <= n_top(d):
        sizes = list(predicted) if eigenvalues.size >= n_top(d) else []
    else:
        sizes = detect_clusters(eigenvalues, len(predicted), window=n_top(d) + 1)
    clusters = []
    start = 0
    for i, size in enumerate(sizes):
        members = np.arange(start, start + size)
        vals = eigenvalues[members]
        nxt = eigenvalues[start + size] if start + size < eigenvalues.size else None
        clusters.append(Cluster(index=i + 1, size=size, predicted_size=predicted[i], members=members,
                                mean=float(vals.mean()), min=float(vals.min()), max=float(vals.max()),
                                gap_below=float(vals.min() / nxt) if nxt is not None and nxt > 0 else math.inf))
        start += size
    return tuple(clusters)


def principal_cosines(A: np.ndarray, B: np.ndarray, *, orthonormal: bool = False) -> np.ndarray:
    """Cosines of the principal angles between ``range(A)`` and ``range(B)`` (columns), descending (theory §10).

    With ``orthonormal=True`` the columns of both are taken as orthonormal already (no QR): for a
    caller that compares one basis with several others.

    Examples
    --------
    >>> principal_cosines(np.eye(3)[:, :2], np.eye(3)[:, 1:]).round(12)
    array([1., 0.])
    """
    A, B = np.asarray(A), np.asarray(B)
    for name, M in (("A", A), ("B", B)):
        if M.ndim != 2 or M.shape[1] < 1 or not np.issubdtype(M.dtype, np.number):
            raise ValueError(f"{name} must be a 2-D array whose columns span a subspace, shape (p, m) with m >= 1, "
                             f"got shape {M.shape}" + ("; for one vector use v[:, None]." if M.ndim == 1 else "."))
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"A and B must have the same number of rows (the dimension of the space), got {A.shape} "
                         f"and {B.shape}.")
    Qa, Qb = (A, B) if orthonormal else (np.linalg.qr(A)[0], np.linalg.qr(B)[0])
    return np.clip(np.linalg.svd(Qa.T @ Qb, compute_uv=False), 0.0, 1.0)


@dataclass(frozen=True)
class SpectrumResult:
    r"""Top eigenpairs of a FIM (or of any symmetric PSD matrix), with everything needed to judge them.

    Attributes
    ----------
    eigenvalues : (k,) descending, divided by :math:`\sigma^2`
    eigenvectors : (p, k) or None
        Unit eigenvectors as columns (None when only eigenvalues were asked for).
    residuals : (k,)
        :math:`\|Jx_j - \lambda_j x_j\|` for each pair (NaN when no vectors).
    converged : (k,) bool
        ``residual <= tol * lambda_max`` (LAPACK's eigenvalues without vectors count as converged:
        they are backward stable).
    clusters : tuple of Cluster
        The three clusters (when ``d`` is known and enough eigenvalues were computed).
    trace : float or None
        :math:`\operatorname{tr} J/\sigma^2` (exact when known).
    d, p : input dimension (None for a matrix without ``d``) and matrix size
    method : the solver route (``"dense"``, ``"block"``, ``"matrix-free"``, ``"dense-gram"`` ...)
    fisher : what was diagonalized (``"exact"``, ``"monte-carlo"``, ``"empirical"``, ``"matrix"``, ``"features"``)
    tol : the residual tolerance relative to :math:`\lambda_{max}`
    iterations, matvecs : the solver's work: block products with the matrix, and the float64 vectors
        multiplied (``low_matvecs`` the float32 ones of a mixed-precision solve)
    sigma, n : noise level and number of samples (sampled FIMs)
    workers : per-worker throughput of a distributed product (empty in-process)
    start : what the block solver started from (:func:`relufim.spectrum` with ``seed_degree``, theory
        §10.3): ``"t-series degree 2"`` (also on the sampled routes, mapped by :math:`X` on the Gram
        side), ``"t-series degree 4, preconditioned"``, the caller's ``"X0"`` (``"X0, t-series degree 4
        preconditioner"`` where that preconditioner ran on it), or for the FIM of all
        parameters (:func:`relufim.full_spectrum`, theory §15.5) ``"Hermite features degree 2"``. None where no product
        was taken (LAPACK), where the block solver started from random vectors
        (:func:`relufim.matrix_spectrum` or :func:`relufim.feature_spectrum` without ``X0``), and for
        results built without a start (``from_pairs`` without ``start``)
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None = field(repr=False)
    residuals: np.ndarray = field(repr=False)
    converged: np.ndarray = field(repr=False)
    clusters: tuple[Cluster, ...]
    trace: float | None
    d: int | None
    p: int
    method: str
    fisher: str
    tol: float
    iterations: int = 0
    matvecs: int = 0
    sigma: float = 1.0
    n: int | None = None
    low_matvecs: int = 0
    workers: tuple[Any, ...] = ()
    start: str | None = None

    @classmethod
    def from_pairs(cls, eigenvalues: np.ndarray, eigenvectors: np.ndarray | None, residuals: np.ndarray | None, *,
                   tol: float, d: int | None, p: int, method: str, fisher: str, trace: float | None = None,
                   sigma: float = 1.0, n: int | None = None, iterations: int = 0, matvecs: int = 0,
                   converged: np.ndarray | None = None, low_matvecs: int = 0,
                   start: str | None = None) -> SpectrumResult:
        r"""The one constructor: eigenpairs of :math:`J` (not yet divided by :math:`\sigma^2`) and their residuals.

        ``converged`` defaults to ``residual <= tol * |lambda_1|``; without residuals (eigenvalues
        only, from LAPACK) every pair counts as converged. ``start`` names the block solver's start
        (:attr:`start`).
        """
        w = np.asarray(eigenvalues, dtype=np.float64)
        if residuals is None:
            res = np.full(w.size, np.nan)
            conv = np.ones(w.size, dtype=bool) if converged is None else np.asarray(converged, dtype=bool)
        else:
            res = np.asarray(residuals, dtype=np.float64)
            scale = max(abs(float(w[0])), np.finfo(float).tiny) if w.size else 1.0
            conv = (res <= tol * scale) if converged is None else np.asarray(converged, dtype=bool)
        s2 = sigma * sigma
        w = w / s2
        return cls(eigenvalues=w, eigenvectors=eigenvectors, residuals=res / s2, converged=conv,
                   clusters=_build_clusters(w, d), trace=None if trace is None else trace / s2, d=d, p=p,
                   method=method, fisher=fisher, tol=tol, iterations=iterations, matvecs=matvecs, sigma=sigma, n=n,
                   low_matvecs=low_matvecs, start=start)

    @property
    def ok(self) -> bool:
        """All returned eigenpairs converged."""
        return bool(np.all(self.converged))

    @property
    def products(self) -> int:
        """Block products with the matrix (0 for LAPACK on a dense matrix)."""
        return self.iterations if self.matvecs or self.low_matvecs else 0

    @property
    def matvecs_per_pair(self) -> float:
        """Float64 vectors multiplied per converged eigenpair (float32 ones count half)."""
        n_conv = int(np.count_nonzero(self.converged))
        return (self.matvecs + 0.5 * self.low_matvecs) / n_conv if n_conv else float("inf")

    @property
    def max_residual(self) -> float:
        return float(np.nanmax(self.residuals)) if self.residuals.size and not np.all(np.isnan(self.residuals)) \
            else 0.0

    @property
    def _n_cluster_pairs(self) -> int:
        return sum(c.size for c in self.clusters) if self.clusters else self.eigenvalues.size

    @property
    def clusters_converged(self) -> bool:
        """All eigenpairs of the clusters converged (the ``extra`` pairs beyond them are judged separately)."""
        return bool(np.all(self.converged[: self._n_cluster_pairs]))

    @property
    def max_cluster_residual(self) -> float:
        """Largest residual among the clusters' eigenpairs."""
        r = self.residuals[: self._n_cluster_pairs]
        return float(np.nanmax(r)) if r.size and not np.all(np.isnan(r)) else 0.0

    @property
    def top_fraction(self) -> float | None:
        """Share of the trace in the top ``d(d+3)/2`` eigenvalues."""
        if self.trace is None or self.d is None or self.eigenvalues.size < n_top(self.d):
            return None
        return float(self.eigenvalues[: n_top(self.d)].sum() / self.trace)

    def cluster_vectors(self, index: int) -> np.ndarray:
        """Eigenvectors ``(p, size)`` of the detected cluster ``index`` (1, 2 or 3)."""
        if self.eigenvectors is None:
            raise ValueError("this result holds no eigenvectors; compute it with vectors=True.")
        if not 1 <= index <= len(self.clusters):
            raise ValueError(f"cluster index must be between 1 and {len(self.clusters)}, got {index}.")
        return self.eigenvectors[:, self.clusters[index - 1].members]

    def predicted_members(self) -> list[np.ndarray]:
        """Indices of the eigenpairs in each cluster when the top pairs are cut at the *predicted* sizes.

        The sizes are ``(1, d, d(d+1)/2 - 1)``, as far as the computed pairs reach; compare the
        eigenvalues with their predictions to see that this split is right.
        """
        if self.d is None:
            raise ValueError("the predicted split needs the input dimension d.")
        out, start = [], 0
        for size in (s for s in predicted_cluster_sizes(self.d) if s > 0):
            stop = min(start + size, self.eigenvalues.size)
            if stop <= start:
                break
            out.append(np.arange(start, stop))
            start = stop
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no eigenvectors)."""
        return {
            "d": self.d, "p": self.p, "method": self.method, "fisher": self.fisher, "sigma": self.sigma,
            "n": self.n, "eigenvalues": [float(x) for x in self.eigenvalues], "trace": self.trace,
            "top_fraction": self.top_fraction, "clusters": [c.to_dict() for c in self.clusters],
            "max_residual": self.max_residual, "converged": self.ok, "tol": self.tol,
            "iterations": self.iterations, "products": self.products, "matvecs": self.matvecs,
            "low_matvecs": self.low_matvecs, "matvecs_per_pair": self.matvecs_per_pair,
            "workers": [{"address": w.address, "blocks": w.blocks, "entries_per_second": w.entries_per_second}
                        for w in self.workers],
            "start": self.start,
        }

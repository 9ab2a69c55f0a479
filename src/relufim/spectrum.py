r"""Eigenpairs of the FIM with residuals, and the clusters they form (DESIGN §2–3).

:func:`spectrum` takes hidden weights ``W`` (and builds the exact, Monte Carlo or
empirical FIM) or a ready matrix / :class:`scipy.sparse.linalg.LinearOperator`, and
returns a :class:`SpectrumResult` that carries, for every eigenpair, its residual
:math:`\|Jx - \lambda x\|` and a convergence flag, so no caller has to trust a solver blindly.

Routes:

* ``"dense"``: LAPACK ``eigh`` on the dense matrix (all or the top ``k`` pairs);
* ``"block"``: the theory-seeded block Krylov solver (:mod:`relufim.eigensolver`) on
  products with the dense matrix — used for the top clusters at large ``p``;
* Monte Carlo / empirical FIM with ``n <= p`` samples: the ``n x n`` Gram
  :math:`XX^\top/n` (same nonzero spectrum), eigenvectors mapped back by :math:`X^\top`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.linalg as sla
from scipy.sparse.linalg import LinearOperator

from ._validation import (
    available_memory_bytes,
    check_dense_fits,
    check_memory,
    check_inputs,
    check_positive_int,
    check_sigma,
    check_weights,
)
from .activations import Activation, get_activation
from .eigensolver import block_eigsh
from .fisher import column_norms, fisher_matrix, gaussian_input_chunks
from .theory import predicted_cluster_sizes, theory_vectors

__all__ = ["Cluster", "SpectrumResult", "spectrum", "spectrum_from_features", "detect_clusters",
           "principal_cosines", "n_top"]

Progress = Callable[[int, int], None]

#: Below this width the dense LAPACK route is used for the top clusters (it is then as fast and exact).
DENSE_LIMIT = 1500


def n_top(d: int) -> int:
    """Number of eigenvalues in the first three clusters, ``d(d+3)/2``."""
    return d * (d + 3) // 2


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


@dataclass(frozen=True)
class SpectrumResult:
    """Top eigenpairs of a FIM, with everything needed to judge them.

    Attributes
    ----------
    eigenvalues : (k,) descending
    eigenvectors : (p, k) or None
        Unit eigenvectors as columns (None when only eigenvalues were asked for).
    residuals : (k,)
        :math:`\\|Jx_j - \\lambda_j x_j\\|` for each pair (NaN when no vectors).
    converged : (k,) bool
        ``residual <= tol * lambda_max``.
    clusters : tuple of Cluster
        The three clusters (when ``d`` is known and enough eigenvalues were computed).
    trace : float or None
        :math:`\\operatorname{tr} J` (exact when known).
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

    @property
    def ok(self) -> bool:
        """All returned eigenpairs converged."""
        return bool(np.all(self.converged))

    @property
    def max_residual(self) -> float:
        return float(np.nanmax(self.residuals)) if self.residuals.size else 0.0

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
        return float(np.nanmax(r)) if r.size else 0.0

    @property
    def top_fraction(self) -> float | None:
        """Share of the trace in the top ``d(d+3)/2`` eigenvalues."""
        if self.trace is None or self.d is None or self.eigenvalues.size < n_top(self.d):
            return None
        return float(self.eigenvalues[: n_top(self.d)].sum() / self.trace)

    def cluster_vectors(self, index: int) -> np.ndarray:
        """Eigenvectors ``(p, size)`` of cluster ``index`` (1, 2 or 3)."""
        if self.eigenvectors is None:
            raise ValueError("this result holds no eigenvectors; call spectrum(..., vectors=True).")
        return self.eigenvectors[:, self.clusters[index - 1].members]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no eigenvectors)."""
        return {
            "d": self.d, "p": self.p, "method": self.method, "fisher": self.fisher, "sigma": self.sigma,
            "n": self.n, "eigenvalues": [float(x) for x in self.eigenvalues], "trace": self.trace,
            "top_fraction": self.top_fraction, "clusters": [c.to_dict() for c in self.clusters],
            "max_residual": self.max_residual, "converged": self.ok, "tol": self.tol,
            "iterations": self.iterations, "matvecs": self.matvecs,
        }


def detect_clusters(eigenvalues: np.ndarray, n_clusters: int = 3, window: int | None = None) -> list[int]:
    """Sizes of the first ``n_clusters`` clusters, split at the largest ratios ``lambda_i / lambda_{i+1}``.

    Only the first ``window`` eigenvalues are searched (default: all). The FIM's later
    clusters are separated by ever larger ratios, so to find the first three one searches
    the top ``d(d+3)/2 + 1`` eigenvalues: the cut after the third cluster needs one beyond it.

    Examples
    --------
    >>> detect_clusters(np.array([10.0, 2.1, 2.0, 1.9, 0.05, 0.049, 0.001]), 3)
    [1, 3, 2]
    """
    lam = np.asarray(eigenvalues, dtype=float)
    if window is not None:
        lam = lam[:window]
    lam = lam[lam > 0]
    if lam.size < 2:
        return [int(lam.size)] if lam.size else []
    ratios = np.log(lam[:-1] / lam[1:])
    cuts = np.sort(np.argsort(ratios)[::-1][: min(n_clusters, ratios.size)]) + 1
    sizes = np.diff(np.concatenate([[0], cuts])).tolist()
    return [int(s) for s in sizes]


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


def principal_cosines(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between ``range(A)`` and ``range(B)`` (columns), descending.

    Examples
    --------
    >>> principal_cosines(np.eye(3)[:, :2], np.eye(3)[:, 1:]).round(12)
    array([1., 0.])
    """
    Qa, _ = np.linalg.qr(A)
    Qb, _ = np.linalg.qr(B)
    return np.clip(np.linalg.svd(Qa.T @ Qb, compute_uv=False), 0.0, 1.0)


# ----------------------------------------------------------------------------- helpers

def _resolve_k(k: int | str, d: int | None, p: int, extra: int) -> int | None:
    """Number of eigenpairs wanted; ``None`` means all."""
    if isinstance(k, str):
        key = k.lower()
        if key == "all":
            return None
        if key == "clusters":
            if d is None:
                raise ValueError("k='clusters' needs the input dimension: pass d=... with a matrix, or pass W.")
            return min(p, n_top(d) + extra)
        raise ValueError(f"k must be an int, 'clusters' or 'all', got {k!r}.")
    k = check_positive_int(k, "k")
    if k > p:
        raise ValueError(f"k = {k} exceeds the matrix size p = {p}; use k <= p or k='all'.")
    return k


def _dense_top(A: np.ndarray, k: int | None, vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
    p = A.shape[0]
    if k is None or k == p:
        if vectors:
            w, V = np.linalg.eigh(A)
            return w[::-1].copy(), V[:, ::-1].copy()
        return np.linalg.eigvalsh(A)[::-1].copy(), None
    if not vectors:
        w = sla.eigh(A, subset_by_index=[p - k, p - 1], eigvals_only=True, driver="evr")
        return np.asarray(w)[::-1].copy(), None
    w, V = sla.eigh(A, subset_by_index=[p - k, p - 1], driver="evr")
    return w[::-1].copy(), V[:, ::-1].copy()


def _residuals(matmat: Callable[[np.ndarray], np.ndarray], w: np.ndarray, V: np.ndarray) -> np.ndarray:
    return np.linalg.norm(matmat(V) - V * w, axis=0)


def _features(W: np.ndarray, act: Activation, n: int, seed: int | None, x: np.ndarray | None) -> np.ndarray:
    """Hidden features X (n, p) of the Monte Carlo stream or of the user's inputs, after a memory check."""
    p = W.shape[1]
    check_memory(8.0 * n * p, f"the {n} x {p} array of hidden features",
                 "use fewer samples n, or the exact FIM (fisher='exact')", fraction=0.5)
    if x is not None:
        return act.phi(x @ W)
    return np.vstack([act.phi(chunk @ W) for chunk in gaussian_input_chunks(n, W.shape[0], seed)])


def _trace_exact(W: np.ndarray, act: Activation) -> float:
    if act.name == "relu":
        return float(0.5 * np.sum(W * W))
    r = column_norms(W)
    return float(np.sum(act.dual(r, r, np.ones_like(r))))


# ----------------------------------------------------------------------------- public entry point

def spectrum(
    A: np.ndarray | LinearOperator,
    k: int | Literal["clusters", "all"] = "clusters",
    *,
    d: int | None = None,
    fisher: Literal["exact", "monte-carlo", "empirical"] = "exact",
    n: int | None = None,
    x: np.ndarray | None = None,
    seed: int | None = None,
    sigma: float = 1.0,
    activation: str | Activation = "relu",
    method: Literal["auto", "dense", "block", "matrix-free"] = "auto",
    vectors: bool = True,
    tol: float = 1e-10,
    maxiter: int = 100,
    extra: int = 10,
    input: Literal["auto", "weights", "matrix"] = "auto",
    X0: np.ndarray | None = None,
    progress: Progress | None = None,
) -> SpectrumResult:
    r"""Top eigenpairs of the FIM, with residuals and the three clusters.

    Parameters
    ----------
    A : array (d, p), array (p, p) or LinearOperator
        Hidden weights ``W`` (the FIM is built as asked by ``fisher``), or a symmetric
        PSD matrix / operator (then ``d=`` names the input dimension for the clusters).
        A square array is taken as a matrix unless ``input="weights"``.
    k : int, "clusters" or "all"
        ``"clusters"``: the ``d(d+3)/2`` eigenpairs of the three clusters plus ``extra``
        beyond; ``"all"``: every eigenvalue (dense).
    fisher : {"exact", "monte-carlo", "empirical"}
        Which FIM of ``W``: the exact one (Lemma 1), the Monte Carlo
        :math:`J^{(n)}` (``n`` samples from ``seed``, the same as :func:`monte_carlo_fisher`),
        or the empirical one on inputs ``x`` (n, d).
    sigma : float
        Every eigenvalue is divided by :math:`\sigma^2`.
    method : {"auto", "dense", "block", "matrix-free"}
        Solver route; ``"auto"`` takes LAPACK for ``k="all"`` or ``p <= 1500``, else the
        theory-seeded block Krylov solver; for the exact ReLU FIM above ``p = 3000`` (or when
        the dense matrix would take more than half the free memory) it never forms ``J`` (``"matrix-free"``:
        the block solver on :func:`relufim.fisher_operator`; with ``k="clusters"`` only the
        ``d(d+3)/2`` cluster pairs must converge, the ``extra`` ones are flagged by their residuals).
        Below that width ``J`` is built and every one of the ``k`` pairs must converge.
    vectors : bool
        Also return eigenvectors (required for residuals).
    tol : float
        Residual tolerance relative to :math:`\lambda_{max}` (flags, never hides, failures).
    X0 : array (p, m), optional
        Starting vectors of the block solver. Default with ``W``: the theory's vectors
        (:meth:`TheoryVectors.seed_block`), which span the top clusters almost exactly;
        pass them too when giving a matrix built from ``W``.

    Returns
    -------
    SpectrumResult

    Examples
    --------
    >>> import relufim as rf
    >>> res = rf.spectrum(rf.sample_weights(d=3, p=800, seed=0))
    >>> [c.size for c in res.clusters], res.ok
    ([1, 3, 5], True)
    >>> bool(res.top_fraction > 0.977)
    True
    """
    sigma = check_sigma(sigma)
    act = get_activation(activation)
    if method not in ("auto", "dense", "block", "matrix-free"):
        raise ValueError(f"method must be 'auto', 'dense', 'block' or 'matrix-free', got {method!r}.")
    if fisher not in ("exact", "monte-carlo", "empirical"):
        raise ValueError(f"fisher must be 'exact', 'monte-carlo' or 'empirical', got {fisher!r}.")
    if input not in ("auto", "weights", "matrix"):
        raise ValueError(f"input must be 'auto', 'weights' or 'matrix', got {input!r}.")
    extra = check_positive_int(extra, "extra", minimum=0)
    maxiter = check_positive_int(maxiter, "maxiter")
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise ValueError(f"tol must be a float in (0, 1), got {tol!r}.")

    is_matrix = isinstance(A, LinearOperator) or (
        input == "matrix" or (input == "auto" and np.ndim(A) == 2 and np.shape(A)[0] == np.shape(A)[1])
    )
    if is_matrix:
        return _spectrum_of_matrix(A, k, d=d, sigma=sigma, method=method, vectors=vectors, tol=tol,
                                   maxiter=maxiter, extra=extra, seed=seed, progress=progress, X0=X0)

    W = check_weights(A)
    d_w, p = W.shape
    if d is not None and d != d_w:
        raise ValueError(f"d = {d} does not match W of shape {W.shape}; leave d out when passing W.")
    kk = _resolve_k(k, d_w, p, extra)
    start = None if X0 is None else _check_start(X0, p)

    if method == "matrix-free" and fisher != "exact":
        raise ValueError("method='matrix-free' is for the exact FIM (fisher='exact'); sampled FIMs use their Gram.")
    if fisher == "exact" and _use_matrix_free(method, kk, p, act):
        return _spectrum_matrix_free(W, kk, d_w, sigma, vectors, tol, maxiter, start, seed, progress)
    # each route checks its own memory before the theory's vectors (p x d(d+3)/2) are formed
    if fisher == "exact":
        J = fisher_matrix(W, activation=act, progress=None)
        seeds = _seeds(W, start)
        trace = _trace_exact(W, act)
        return _solve_dense_or_block(J, kk, d_w, trace, sigma, method, vectors, tol, maxiter, seeds, seed,
                                     progress, fisher="exact", n=None)

    # sampled FIMs
    if fisher == "monte-carlo":
        if x is not None:
            raise ValueError("x is for fisher='empirical'; with fisher='monte-carlo' give n (and seed).")
        if n is None:
            raise ValueError("fisher='monte-carlo' needs the number of samples n, e.g. n=20000.")
        n = check_positive_int(n, "n")
    else:
        if x is None:
            raise ValueError("fisher='empirical' needs the inputs x of shape (n, d).")
        x = check_inputs(x, d_w)
        n = x.shape[0]
    X = _features(W, act, n, seed, x)
    seeds = _seeds(W, start)
    if n <= p:
        return spectrum_from_features(X, kk, d=d_w, sigma=sigma, method=method, vectors=vectors, tol=tol,
                                      maxiter=maxiter, seed=seed, progress=progress, fisher=fisher, X0=seeds)
    trace = float(np.einsum("ij,ij->", X, X) / n)
    check_dense_fits(p, what=f"the dense {p} x {p} sampled FIM")
    Jn = X.T @ X
    Jn /= n
    del X
    return _solve_dense_or_block(Jn, kk, d_w, trace, sigma, method, vectors, tol, maxiter, seeds, seed,
                                 progress, fisher=fisher, n=n)


def spectrum_from_features(X: np.ndarray, k: int | None, *, d: int | None, gram: np.ndarray | None = None,
                           sigma: float = 1.0, method: str = "auto", vectors: bool = True, tol: float = 1e-10,
                           maxiter: int = 100, seed: int | None = None, progress: Progress | None = None,
                           fisher: str = "empirical", X0: np.ndarray | None = None) -> SpectrumResult:
    r"""Spectrum of :math:`X^\top X/n` through the ``n x n`` Gram :math:`G = XX^\top/n` (same nonzero eigenvalues).

    A unit eigenvector ``s`` of ``G`` with eigenvalue :math:`\lambda>0` maps to the unit eigenvector
    :math:`u = X^\top s/\sqrt{n\lambda}` of :math:`X^\top X/n`; residuals are measured on the
    ``p``-side operator. Pass a precomputed ``gram`` to reuse it (``k=None``: all eigenvalues).
    Starting vectors ``X0`` (p, m) of the ``p`` side are mapped to ``X X0`` on the Gram side.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((5, 40))
    >>> res = spectrum_from_features(X, 3, d=None)
    >>> bool(np.allclose(res.eigenvalues, np.linalg.eigvalsh(X.T @ X / 5)[::-1][:3]))
    True
    """
    n, p = X.shape
    G = gram
    if G is None:
        G = X @ X.T
        G /= n
    trace = float(np.trace(G))
    kg = None if k is None else min(k, n)
    start = None if X0 is None else X @ X0
    res = _solve_dense_or_block(G, kg, d, trace, 1.0, method, vectors, tol, maxiter, start, seed,
                                progress, fisher=fisher, n=n)
    lam = res.eigenvalues
    if not vectors:
        lam_s = lam / sigma**2
        return SpectrumResult(
            eigenvalues=lam_s, eigenvectors=None, residuals=np.full(lam.size, np.nan),
            converged=np.ones(lam.size, dtype=bool), clusters=_build_clusters(lam_s, d), trace=trace / sigma**2,
            d=d, p=p, method=res.method + "-gram", fisher=fisher, tol=tol, iterations=res.iterations,
            matvecs=res.matvecs, sigma=sigma, n=n)
    pos = lam > 0
    U = np.zeros((p, lam.size))
    U[:, pos] = (X.T @ res.eigenvectors[:, pos]) / np.sqrt(n * lam[pos])
    if k is not None and k > lam.size:  # beyond rank n the eigenvalues are exactly zero
        pad = k - lam.size
        lam = np.concatenate([lam, np.zeros(pad)])
        U = np.hstack([U, np.zeros((p, pad))])
    resid = _residuals(lambda V: X.T @ (X @ V) / n, lam, U)
    resid[lam == 0] = 0.0
    scale = max(abs(lam[0]), np.finfo(float).tiny)
    lam_s = lam / sigma**2
    return SpectrumResult(
        eigenvalues=lam_s, eigenvectors=U, residuals=resid / sigma**2, converged=resid <= tol * scale,
        clusters=_build_clusters(lam_s, d), trace=trace / sigma**2, d=d, p=p, method=res.method + "-gram",
        fisher=fisher, tol=tol, iterations=res.iterations, matvecs=res.matvecs, sigma=sigma, n=n)


def _solve_dense_or_block(J: np.ndarray, k: int | None, d: int | None, trace: float | None, sigma: float,
                          method: str, vectors: bool, tol: float, maxiter: int, seeds: np.ndarray | None,
                          seed: int | None, progress: Progress | None, *, fisher: str, n: int | None) -> SpectrumResult:
    p = J.shape[0]
    matmat = J.__matmul__
    use_dense = method == "dense" or k is None or (method == "auto" and (p <= DENSE_LIMIT or k > p // 4))
    if method == "block" and k is None:
        raise ValueError("k='all' needs the dense route; use method='dense' or 'auto'.")
    if use_dense:
        w, V = _dense_top(J, k, vectors)
        resid = _residuals(matmat, w, V) if vectors else np.full(w.size, np.nan)
        iterations, matvecs, route = 1, 0, "dense"
        scale = max(abs(w[0]), np.finfo(float).tiny)
        converged = resid <= tol * scale if vectors else np.ones(w.size, dtype=bool)
    else:
        r = block_eigsh(matmat, p, k, X0=seeds, tol=tol, maxiter=maxiter, seed=seed if seed is not None else 0,
                        progress=progress)
        w, V, resid, converged = r.eigenvalues, r.eigenvectors, r.residuals, r.converged
        iterations, matvecs, route = r.iterations, r.matvecs, "block"
    s2 = sigma * sigma
    w = w / s2
    return SpectrumResult(
        eigenvalues=w, eigenvectors=V if vectors else None, residuals=resid / s2, converged=converged,
        clusters=_build_clusters(w, d), trace=None if trace is None else trace / s2, d=d, p=p, method=route,
        fisher=fisher, tol=tol, iterations=iterations, matvecs=matvecs, sigma=sigma, n=n)


#: Above this width the exact ReLU FIM's top clusters are computed matrix-free (method="auto").
#: A matrix-free product costs about as much as a dense one (both are dominated by the 2 p^2 b
#: flops of the GEMMs; the kernel is recomputed in cache-sized tiles) while building ``J`` costs
#: first-touch page faults on 8 p^2 fresh bytes: at p = 10^4, top 65 pairs in 0.94 s
#: matrix-free against 1.0-2.0 s dense. Below the limit both take milliseconds and the dense
#: route also converges the ``extra`` pairs.
MATRIX_FREE_LIMIT = 3000


def _use_matrix_free(method: str, k: int | None, p: int, act: Activation) -> bool:
    if method == "matrix-free":
        if k is None:
            raise ValueError("k='all' needs the dense matrix; for the whole spectrum at large p use "
                             "relufim.spectral_density(W).")
        return True
    if method != "auto" or k is None or act.name != "relu" or k > p // 4:
        return False
    return p > MATRIX_FREE_LIMIT or 8.0 * p * p > 0.5 * available_memory_bytes()


def _spectrum_matrix_free(W: np.ndarray, k: int, d: int, sigma: float, vectors: bool, tol: float, maxiter: int,
                          start: np.ndarray | None, seed: int | None, progress: Progress | None) -> SpectrumResult:
    from .operator import fisher_operator

    p = W.shape[1]
    op = fisher_operator(W)
    # four guard vectors: the d(d+3)/2 cluster pairs end at a gap of about 100x (lambda_66 / lambda_65
    # ~ 0.01 at d = 10), so more guards do not speed convergence, and each costs a column per product
    b = k + 4
    check_memory(8.0 * p * (16 * b) + op.memory_bytes(b), f"the matrix-free solver for p = {p}, k = {k}",
                 "use relufim.series_fisher(W, k) (low-rank t-series with an error bound) or fewer eigenpairs k")
    seeds = _seeds(W, start)
    r = block_eigsh(op.matmat, p, k, X0=seeds, block=b, krylov_blocks=6, tol=tol, maxiter=maxiter,
                    seed=seed if seed is not None else 0, progress=progress, required=min(k, n_top(d)))
    s2 = sigma * sigma
    w = r.eigenvalues / s2
    return SpectrumResult(
        eigenvalues=w, eigenvectors=r.eigenvectors if vectors else None, residuals=r.residuals / s2,
        converged=r.converged, clusters=_build_clusters(w, d), trace=op.trace() / s2, d=d, p=p,
        method="matrix-free", fisher="exact", tol=tol, iterations=r.iterations, matvecs=r.matvecs, sigma=sigma)


def _seeds(W: np.ndarray, start: np.ndarray | None) -> np.ndarray:
    """The caller's starting vectors, or the theory's (formed only after the route's memory check)."""
    return theory_vectors(W).seed_block() if start is None else start


def _check_start(X0: Any, p: int) -> np.ndarray:
    X0 = np.asarray(X0, dtype=np.float64)
    if X0.ndim == 1:
        X0 = X0[:, None]
    if X0.ndim != 2 or X0.shape[0] != p or not np.all(np.isfinite(X0)):
        raise ValueError(f"X0 must be a finite array of shape (p, m) = ({p}, m), got shape {X0.shape}.")
    return X0


def _is_symmetric(M: np.ndarray, *, rtol: float, atol: float, tile: int = 256) -> bool:
    """``np.allclose(M, M.T)`` tile pair by tile pair, stopping at the first mismatch.

    The whole-matrix call builds several ``p x p`` temporaries of the transposed matrix: 5.4 s
    and 3 GB at p = 10^4, against 0.29 s here (tiles of 256 stay in cache; 1024 take 0.79 s).
    """
    p = M.shape[0]
    for i in range(0, p, tile):
        for j in range(i, p, tile):
            if not np.allclose(M[i:i + tile, j:j + tile], M[j:j + tile, i:i + tile].T, rtol=rtol, atol=atol):
                return False
    return True


def _spectrum_of_matrix(A: Any, k: Any, *, d: int | None, sigma: float, method: str, vectors: bool, tol: float,
                        maxiter: int, extra: int, seed: int | None, progress: Progress | None,
                        X0: np.ndarray | None = None) -> SpectrumResult:
    if isinstance(A, LinearOperator):
        p, q = A.shape
        if p != q:
            raise ValueError(f"the operator must be square, got shape {A.shape}.")
        if method == "dense" or k == "all":
            raise ValueError("a LinearOperator has no dense form here; use method='block' with an integer k "
                             "or k='clusters'.")
        kk = _resolve_k(k, d, p, extra)
        r = block_eigsh(A.matmat, p, kk, X0=None if X0 is None else _check_start(X0, p), tol=tol, maxiter=maxiter,
                        seed=seed if seed is not None else 0, progress=progress)
        s2 = sigma * sigma
        w = r.eigenvalues / s2
        return SpectrumResult(eigenvalues=w, eigenvectors=r.eigenvectors if vectors else None,
                              residuals=r.residuals / s2, converged=r.converged, clusters=_build_clusters(w, d),
                              trace=None, d=d, p=p, method="block", fisher="matrix", tol=tol,
                              iterations=r.iterations, matvecs=r.matvecs, sigma=sigma)
    M = np.asarray(A)
    if M.dtype == object or not np.issubdtype(M.dtype, np.number) or np.iscomplexobj(M):
        raise TypeError(f"the matrix must hold real numbers, got dtype {M.dtype}.")
    M = np.ascontiguousarray(M, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] < 1:
        raise ValueError(f"the matrix must be square (p, p), got shape {M.shape}.")
    if not np.all(np.isfinite(M)):
        raise ValueError("the matrix contains non-finite values (nan or inf).")
    if not _is_symmetric(M, rtol=1e-10, atol=1e-12 * max(1.0, float(M.max()), -float(M.min()))):
        raise ValueError("the matrix must be symmetric; a FIM always is (symmetrize with (A + A.T) / 2).")
    p = M.shape[0]
    kk = _resolve_k(k, d, p, extra)
    return _solve_dense_or_block(M, kk, d, float(np.trace(M)), sigma, method, vectors, tol, maxiter,
                                 None if X0 is None else _check_start(X0, p), seed, progress, fisher="matrix", n=None)

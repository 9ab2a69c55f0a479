r"""The whole eigenvalue distribution of the FIM beyond dense sizes: stochastic Lanczos quadrature (theory §10).

The spectral measure :math:`\mu = \frac1p\sum_i \delta_{\lambda_i}` is estimated as the
average, over ``n_vectors`` random unit vectors :math:`z`, of the Gauss quadrature rule
that ``m`` Lanczos steps on :math:`(J, z)` give for :math:`z^\top f(J) z`: nodes
:math:`\theta_j` (Ritz values) and weights :math:`\tau_j^2` (squared first components of
the Ritz vectors). Only products with :func:`relufim.fisher_operator` are needed, all
vectors at once (one pass over the kernel per Lanczos step).

The FIM is dominated by a few large eigenvalues (the three clusters, theory §4), and its
bulk spans many decades; the clusters are therefore *deflated* exactly: the top ``k``
eigenpairs (matrix-free, with residuals) enter the measure as themselves, and SLQ runs on
:math:`(I-QQ^\top)J(I-QQ^\top)` restricted to the complement, whose nodes then resolve the
bulk instead of the top.

Error information returned:

* the sample standard error of the histogram over the random vectors (Hutchinson noise);
* the Lanczos (quadrature) part: the Wasserstein-1 distance between an ``m``-node Gauss rule
  and the vector's spectral measure is at most of order :math:`\lambda_{bulk}/m` (Chen,
  Trogdon & Ubaru 2021 prove a bound of this form); we report
  ``w1_bound = 12 * lambda_bulk / (2m - 1)`` (linear scale) as the stated bound, with the
  constant taken from that analysis as we read it, and check it against dense eigenvalues
  in the tests (measured distances are 10-100x below it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator
from scipy.special import ndtr

from .._validation import check_memory, check_positive_float, check_positive_int, check_square_matrix, check_weights
from ..fim.operator import fisher_operator
from ..fim.series import series_features
from .eigensolver import block_eigsh, residual_norms
from .result import SpectrumResult, n_top

__all__ = ["SpectralDensity", "spectral_density", "matrix_spectral_density", "smoothed_counts", "wasserstein1"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SpectralDensity:
    r"""An estimate of the eigenvalue distribution of ``J`` (``p`` eigenvalues in all).

    Attributes
    ----------
    nodes, weights : (M,) arrays
        Discrete measure approximating :math:`\frac1p\sum_i\delta_{\lambda_i}`: weights sum to 1.
        The first ``k_exact`` nodes are the deflated top eigenvalues (weight ``1/p`` each).
    edges : (n_bins + 1,) bin edges (log-spaced by default)
    density : (n_bins,) counts per bin *in eigenvalues* (sums to about ``p``)
    stderr : (n_bins,) standard error of ``density`` over the random vectors
    k_exact : number of deflated top eigenvalues (exact, with residuals ``top_residuals``)
    lanczos_steps, n_vectors : SLQ parameters
    w1_bound : float
        Stated bound on the Lanczos part of the W1 distance on the linear scale
        (:math:`12\lambda_{bulk}/(2m-1)`, Chen–Trogdon–Ubaru), not including the
        sampling error (given by ``stderr``).
    trace_estimate, trace_exact : checks: :math:`p\sum_j w_j\theta_j` against :math:`\|W\|_F^2/2`.
    """

    nodes: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    edges: np.ndarray = field(repr=False)
    density: np.ndarray = field(repr=False)
    stderr: np.ndarray = field(repr=False)
    p: int
    k_exact: int
    top_eigenvalues: np.ndarray = field(repr=False)
    top_residuals: np.ndarray = field(repr=False)
    lanczos_steps: int
    n_vectors: int
    w1_bound: float
    trace_estimate: float
    trace_exact: float

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Estimated fraction of eigenvalues ``<= x``."""
        order = np.argsort(self.nodes)
        c = np.cumsum(self.weights[order])
        idx = np.searchsorted(self.nodes[order], np.asarray(x, dtype=float), side="right")
        return np.where(idx > 0, c[np.maximum(idx - 1, 0)], 0.0)

    def smoothing_edges(self, width: float = 0.1) -> np.ndarray:
        """``self.edges`` widened by ``4 * width`` decades on each side (same bin width).

        The smoothing tails of the extreme nodes then stay inside, and the smoothed counts sum to ``p``.
        """
        step = np.log10(self.edges[1] / self.edges[0])
        extra = int(np.ceil(4 * width / step))
        lo, hi = np.log10(self.edges[0]) - extra * step, np.log10(self.edges[-1]) + extra * step
        return np.logspace(lo, hi, self.edges.size + 2 * extra)

    def smoothed_histogram(self, edges: np.ndarray | None = None, width: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        r"""Counts per bin (in eigenvalues) of the measure smoothed in :math:`\log_{10}\lambda`, with standard errors.

        An ``m``-node Gauss rule resolves the spectrum only to about its node spacing, so the raw
        histogram of the nodes is spiky; for display, each node (and each deflated top eigenvalue)
        is spread by a Gaussian of standard deviation ``width`` decades. Apply the same smoothing
        to dense eigenvalues (:func:`smoothed_counts`) when comparing.

        Returns
        -------
        counts, stderr : (n_bins,) arrays over ``edges`` (default: :meth:`smoothing_edges`)
        """
        edges = self.smoothing_edges(width) if edges is None else np.asarray(edges, dtype=float)
        k, nv = self.k_exact, self.n_vectors
        bulk_nodes = self.nodes[k:].reshape(nv, -1)
        bulk_w = self.weights[k:].reshape(nv, -1) * nv * self.p  # each vector's rule, in eigenvalues
        per_vec = np.stack([smoothed_counts(bulk_nodes[c], edges, width, bulk_w[c]) for c in range(nv)])
        top = smoothed_counts(self.nodes[:k], edges, width)
        stderr = per_vec.std(axis=0, ddof=1) / math.sqrt(nv) if nv > 1 else np.full(edges.size - 1, np.nan)
        return top + per_vec.mean(axis=0), stderr

    def to_dict(self) -> dict:
        return {"p": self.p, "edges": self.edges.tolist(), "density": self.density.tolist(),
                "stderr": self.stderr.tolist(), "k_exact": self.k_exact, "lanczos_steps": self.lanczos_steps,
                "n_vectors": self.n_vectors, "w1_bound": self.w1_bound, "trace_estimate": self.trace_estimate,
                "trace_exact": self.trace_exact}


def smoothed_counts(values: np.ndarray, edges: np.ndarray, width: float,
                    weights: np.ndarray | None = None) -> np.ndarray:
    r"""Weighted counts per bin of positive ``values``, each spread by a Gaussian of ``width`` decades (log scale).

    Examples
    --------
    >>> c = smoothed_counts(np.array([1.0]), np.geomspace(1e-3, 1e3, 61), 0.1)
    >>> round(float(c.sum()), 6)
    1.0
    """
    values = np.asarray(values, dtype=float)
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float)
    keep = values > 0
    z = (np.log10(np.asarray(edges, dtype=float))[None, :] - np.log10(values[keep])[:, None]) / width
    return (w[keep, None] * np.diff(ndtr(z), axis=1)).sum(axis=0)


def wasserstein1(nodes_a: np.ndarray, weights_a: np.ndarray, nodes_b: np.ndarray, weights_b: np.ndarray) -> float:
    r"""Wasserstein-1 distance :math:`\int |F_a - F_b|` between two discrete measures on the line.

    Examples
    --------
    >>> wasserstein1(np.array([0.0]), np.array([1.0]), np.array([1.0, 3.0]), np.array([0.5, 0.5]))
    2.0
    """
    x = np.concatenate([nodes_a, nodes_b])
    order = np.argsort(x, kind="mergesort")
    x = x[order]
    w = np.concatenate([weights_a / weights_a.sum(), -weights_b / weights_b.sum()])[order]
    F = np.cumsum(w)[:-1]
    return float(np.sum(np.abs(F) * np.diff(x)))


def _block_lanczos_rules(matmat: Callable[[np.ndarray], np.ndarray], Z: np.ndarray, m: int,
                         Q: np.ndarray | None, progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:
    """Run ``m`` Lanczos steps for every column of ``Z`` at once; return nodes and weights (n_vec, m).

    Each column is an independent Lanczos process (full reorthogonalisation within its own
    Krylov basis); the products with ``J`` for all columns share one pass over the kernel.
    Deflation: every vector is projected off ``range(Q)`` before and after each product.
    """
    p, nv = Z.shape
    proj = (lambda X: X - Q @ (Q.T @ X)) if Q is not None and Q.shape[1] else (lambda X: X)
    V = np.zeros((m, p, nv))
    alpha = np.zeros((nv, m))
    beta = np.zeros((nv, m))
    v = proj(Z)
    v /= np.linalg.norm(v, axis=0)
    steps = m
    for j in range(m):
        V[j] = v
        w = proj(matmat(v))
        a = np.einsum("ij,ij->j", w, v)
        alpha[:, j] = a
        # full reorthogonalisation against this column's previous Lanczos vectors (twice)
        for _ in range(2):
            coef = np.einsum("kij,ij->kj", V[: j + 1], w)
            w -= np.einsum("kij,kj->ij", V[: j + 1], coef)
        bnorm = np.linalg.norm(w, axis=0)
        if progress is not None:
            progress(j + 1, m)
        if j == m - 1:
            break
        beta[:, j] = bnorm
        if np.any(bnorm <= 1e-14 * np.maximum(np.abs(a), 1e-300)):  # invariant subspace: stop all (rare)
            steps = j + 1
            break
        v = w / bnorm
    nodes = np.zeros((nv, steps))
    weights = np.zeros((nv, steps))
    for c in range(nv):
        T = np.diag(alpha[c, :steps]) + np.diag(beta[c, : steps - 1], 1) + np.diag(beta[c, : steps - 1], -1)
        th, S = np.linalg.eigh(T)
        nodes[c], weights[c] = th, S[0] ** 2
    return nodes, weights


def spectral_density(W: np.ndarray, *, n_vectors: int = 16, lanczos_steps: int = 60, deflate: int | str = "clusters",
                     bins: int | np.ndarray = 60, log: bool = True, seed: int | None = 0, block: int | None = None,
                     tol: float = 1e-8, progress: Progress | None = None,
                     deflation_progress: Progress | None = None) -> SpectralDensity:
    r"""Eigenvalue distribution of the exact FIM ``J`` by deflated stochastic Lanczos quadrature.

    Parameters
    ----------
    W : array (d, p)
        Hidden weights (ReLU).
    n_vectors : int
        Random Rademacher vectors (the sampling error falls like :math:`1/\sqrt{n_{vec}\,p}`).
    lanczos_steps : int
        Lanczos steps ``m`` per vector (one pass over the kernel per step).
    deflate : int or "clusters"
        Top eigenpairs computed exactly (matrix-free, residual tolerance ``tol``) and removed
        before SLQ; ``"clusters"`` means ``d(d+3)/2``; 0 for plain SLQ.
    bins : int or array
        Number of bins (log-spaced over the estimated range when ``log``) or explicit edges.
    log : bool
        Log-spaced bins (the FIM's bulk spans many decades).
    seed : int, optional
    block : int, optional
        Tile edge of the operator.
    progress : callable(done, total), optional
        Called after each Lanczos step.
    deflation_progress : callable(converged, wanted), optional
        Called after each product of the deflation solver.

    Returns
    -------
    SpectralDensity

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(d=3, p=400, seed=0)
    >>> sd = rf.spectral_density(W, n_vectors=4, lanczos_steps=20, bins=10)
    >>> bool(abs(sd.trace_estimate / sd.trace_exact - 1) < 0.2), sd.k_exact
    (True, 9)
    """
    W = check_weights(W)
    d, p = W.shape
    if isinstance(deflate, str):
        if deflate != "clusters":
            raise ValueError(f"deflate must be an int or 'clusters', got {deflate!r}.")
        deflate = min(n_top(d), p - 1)
    n_vectors, m, k = _check_slq(p, n_vectors, lanczos_steps, deflate)
    op = fisher_operator(W, block=block)
    X0 = series_features(W, 2) if 0 < k <= n_top(d) + 1 else None
    return _density(op.matmat, p, k, X0, op.trace(), n_vectors=n_vectors, m=m, bins=bins, log=log, seed=seed,
                    tol=tol, progress=progress, deflation_progress=deflation_progress)


def matrix_spectral_density(A: LinearOperator | np.ndarray, *, n_vectors: int = 16, lanczos_steps: int = 60,
                            deflate: int = 0, X0: np.ndarray | None = None, trace: float | None = None,
                            bins: int | np.ndarray = 60, log: bool = True, seed: int | None = 0, tol: float = 1e-8,
                            progress: Progress | None = None, deflation_progress: Progress | None = None,
                            eigenpairs: SpectrumResult | None = None) -> SpectralDensity:
    r"""Eigenvalue distribution of a symmetric PSD matrix or operator by deflated SLQ (theory §10).

    The same estimator as :func:`spectral_density` for any ``A`` with products (the FIM of all
    parameters, a sampled FIM): the top ``deflate`` eigenpairs exactly (block solver, starting
    from ``X0`` when given, or taken from ``eigenpairs`` already computed), then stochastic
    Lanczos quadrature on the complement (theory §10.9).

    Parameters
    ----------
    A : array (p, p) or LinearOperator
    n_vectors, lanczos_steps, bins, log, seed, tol, progress, deflation_progress
        As in :func:`spectral_density` (``tol`` and ``deflation_progress`` concern the deflation's
        own solve, which ``eigenpairs`` replaces; ``tol`` also bounds the check of ``eigenpairs``).
    deflate : int
        Top eigenpairs computed exactly and removed before SLQ (0 for plain SLQ).
    X0 : array (p, m), optional
        Starting vectors of the deflation's block solver (not with ``eigenpairs``).
    trace : float, optional
        The exact trace when known (reported next to the estimate; a dense ``A``'s is computed).
    eigenpairs : SpectrumResult, optional
        Top eigenpairs of this same ``A`` already computed (e.g. ``FullSpectrum.result`` of
        :func:`relufim.theory.curvature.full_spectrum`, on the same scale: ``A`` is then
        :math:`F/\sigma^2`): its first ``deflate`` pairs are deflated instead of solving again.
        They must hold orthonormal eigenvectors of length ``p``, be at least ``deflate`` pairs,
        and all be flagged converged (certificates, theory §10.1); their eigenvalues and
        residuals become ``top_eigenvalues`` and ``top_residuals``. One product with their
        vectors checks that they are pairs of this ``A``: each residual
        :math:`\|Aq - \lambda q\|` recomputed here must be within twice the reported one, or
        within ``tol`` :math:`|\lambda_1|` (pairs of another operator, e.g. of another
        :math:`\sigma`, are refused).

    Raises
    ------
    TypeError
        ``A`` is not a square array or LinearOperator; ``eigenpairs`` is not a SpectrumResult.
    ValueError
        Bad SLQ sizes; ``eigenpairs`` without eigenvectors, of another size, too few, not
        converged, not orthonormal or not pairs of ``A``; ``eigenpairs`` together with ``X0``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    >>> A = (Q * np.linspace(0.01, 1.0, 200)) @ Q.T
    >>> sd = matrix_spectral_density(A, n_vectors=8, lanczos_steps=30, bins=10, log=False)
    >>> bool(abs(sd.trace_estimate / sd.trace_exact - 1) < 0.1)
    True

    Deflating pairs already computed instead of solving for them again:

    >>> import relufim as rf
    >>> top = rf.matrix_spectrum(A, 5)
    >>> sd = matrix_spectral_density(A, n_vectors=8, lanczos_steps=30, deflate=5, eigenpairs=top)
    >>> sd.k_exact, bool(np.array_equal(sd.top_eigenvalues, top.eigenvalues))
    (5, True)
    """
    if isinstance(A, np.ndarray):
        M = check_square_matrix(A, "A")
        p = M.shape[0]
        trace = float(np.trace(M)) if trace is None else trace
        matmat = M.__matmul__
    elif isinstance(A, LinearOperator) and A.shape[0] == A.shape[1]:
        p = A.shape[0]
        matmat = A.matmat
    else:
        raise TypeError(f"A must be a square NumPy array or LinearOperator, got {type(A).__name__} "
                        f"of shape {getattr(A, 'shape', None)}.")
    n_vectors, m, k = _check_slq(p, n_vectors, lanczos_steps, deflate)
    given = None if eigenpairs is None else _check_eigenpairs(eigenpairs, p, k, X0)
    if given is not None and k:
        _check_pairs_of(matmat, *given, check_positive_float(tol, "tol"))
    return _density(matmat, p, k, X0, float("nan") if trace is None else float(trace), n_vectors=n_vectors, m=m,
                    bins=bins, log=log, seed=seed, tol=tol, progress=progress, deflation_progress=deflation_progress,
                    given=given)


#: Largest entry of :math:`|Q^\top Q - I|` accepted in deflation vectors given as ``eigenpairs``. Rayleigh–Ritz
#: and LAPACK return them orthonormal to O(p eps) ~ 1e-12; the deflation's projector is off by about this
#: much, which leaves that fraction of the top eigenvectors in the complement SLQ runs on.
_ORTHONORMAL_TOL = 1e-8


def _check_eigenpairs(eigenpairs: Any, p: int, k: int,
                      X0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First ``k`` pairs of ``eigenpairs`` (eigenvalues, residuals, vectors), checked for a size-``p`` operator."""
    if not isinstance(eigenpairs, SpectrumResult):
        raise TypeError(f"eigenpairs must be a SpectrumResult (the result of an eigen-solve of the same operator, "
                        f"e.g. FullSpectrum.result of full_spectrum or matrix_spectrum), got "
                        f"{type(eigenpairs).__name__}.")
    if X0 is not None:
        raise ValueError("give either X0 (starting vectors of the deflation's own solve) or eigenpairs (pairs "
                         "already computed, no solve), not both.")
    Q = eigenpairs.eigenvectors
    if Q is None:
        raise ValueError("eigenpairs holds no eigenvectors, which the deflation needs; compute it with "
                         "vectors=True, or drop eigenpairs= to solve for them.")
    if Q.ndim != 2 or Q.shape[0] != p:
        raise ValueError(f"eigenpairs has eigenvectors of shape {Q.shape}, but the operator has size p = {p}: "
                         f"pass pairs of this same operator, or drop eigenpairs=.")
    if eigenpairs.eigenvalues.size < k or Q.shape[1] < k:
        raise ValueError(f"eigenpairs holds {eigenpairs.eigenvalues.size} pairs, fewer than deflate = {k}: compute "
                         f"more pairs, deflate fewer, or drop eigenpairs= to solve for them.")
    if not np.all(eigenpairs.converged[:k]):
        bad = np.flatnonzero(~np.asarray(eigenpairs.converged[:k], dtype=bool))
        raise ValueError(f"eigenpairs has {bad.size} of its first deflate = {k} pairs not converged (first: pair "
                         f"{int(bad[0])}): compute more pairs, all required to converge, deflate fewer, or drop "
                         f"eigenpairs= to solve for them.")
    Q = Q[:, :k]
    if k and np.abs(Q.T @ Q - np.eye(k)).max() > _ORTHONORMAL_TOL:
        raise ValueError(f"the first deflate = {k} eigenvectors of eigenpairs are not orthonormal (|Q^T Q - I| > "
                         f"{_ORTHONORMAL_TOL:g}); deflation projects onto their complement: orthonormalize them, "
                         f"or drop eigenpairs= to solve for them.")
    return eigenpairs.eigenvalues[:k], eigenpairs.residuals[:k], Q


def _check_pairs_of(matmat: Callable[[np.ndarray], np.ndarray], lam: np.ndarray, res: np.ndarray, Q: np.ndarray,
                    tol: float) -> None:
    """Refuse pairs that are not pairs of this operator: their residuals, recomputed with one product."""
    r = residual_norms(lambda V: np.asarray(matmat(V), dtype=np.float64).reshape(V.shape), lam, Q)
    bound = np.maximum(2.0 * np.asarray(res, dtype=np.float64), tol * abs(float(lam[0])))
    bad = np.flatnonzero(~(r <= bound))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"eigenpairs are not pairs of A: pair {i} has residual |A q - lambda q| = {r[i]:.3g} here "
                         f"against {float(res[i]):.3g} reported ({bad.size} of {r.size} pairs off); pass pairs of "
                         f"this same operator (on the same sigma scale), or drop eigenpairs= to solve for them.")


def _check_slq(p: int, n_vectors: Any, lanczos_steps: Any, deflate: Any) -> tuple[int, int, int]:
    """Validated ``(n_vectors, steps, deflate)`` of an SLQ run on a ``p x p`` operator, after a memory check."""
    n_vectors = check_positive_int(n_vectors, "n_vectors")
    m = min(check_positive_int(lanczos_steps, "lanczos_steps", minimum=2), p)
    k = check_positive_int(deflate, "deflate", minimum=0)
    if k >= p:
        raise ValueError(f"deflate = {k} must be smaller than p = {p}.")
    check_memory(8.0 * p * (n_vectors * (m + 4) + 16 * max(k, 1)),
                 f"the spectral density for p = {p} (Lanczos basis of {n_vectors} x {m} vectors)",
                 "use fewer n_vectors or lanczos_steps")
    return n_vectors, m, k


def _density(matmat: Callable[[np.ndarray], np.ndarray], p: int, k: int, X0: np.ndarray | None, trace_exact: float,
             *, n_vectors: int, m: int, bins: int | np.ndarray, log: bool, seed: int | None, tol: float,
             progress: Progress | None, deflation_progress: Progress | None,
             given: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> SpectralDensity:
    """Deflation of the top ``k`` pairs, then SLQ on the complement: the one engine of both public functions.

    ``given``: the ``k`` pairs already computed (eigenvalues, residuals, orthonormal vectors); else solved for here.
    """
    rng = np.random.default_rng(seed)
    Q = None
    if given is not None:
        top, top_res, Q = given
    else:
        top, top_res = np.zeros(0), np.zeros(0)
        if k > 0:
            r = block_eigsh(matmat, p, k, X0=X0, tol=tol, maxiter=200, seed=seed, progress=deflation_progress)
            top, top_res, Q = r.eigenvalues, r.residuals, r.eigenvectors
    Z = rng.choice([-1.0, 1.0], size=(p, n_vectors))
    nodes, wts = _block_lanczos_rules(matmat, Z, m, Q, progress)
    # the complement has dimension p - k: each vector's rule has mass 1 on it
    bulk_share = (p - k) / p
    all_nodes = np.concatenate([top, np.clip(nodes.ravel(), 0.0, None)])
    all_weights = np.concatenate([np.full(k, 1.0 / p), wts.ravel() * bulk_share / n_vectors])
    trace_est = float(p * np.sum(all_nodes * all_weights))
    lam_bulk = float(nodes.max()) if nodes.size else 0.0
    if np.ndim(bins) == 0:
        nb = check_positive_int(bins, "bins")
        hi = float(all_nodes.max()) * 1.05
        if log:
            positive = all_nodes[all_nodes > 0]
            lo = max(float(positive.min()) if positive.size else hi * 1e-12, hi * 1e-14) * 0.95
            edges = np.geomspace(lo, hi, nb + 1)
        else:
            edges = np.linspace(0.0, hi, nb + 1)
    else:
        edges = np.asarray(bins, dtype=float)
    per_vec = np.stack([np.histogram(nodes[c], bins=edges, weights=wts[c])[0] for c in range(n_vectors)])
    top_hist = np.histogram(top, bins=edges)[0].astype(float)
    density = top_hist + (p - k) * per_vec.mean(axis=0)
    stderr = (p - k) * (per_vec.std(axis=0, ddof=1) / math.sqrt(n_vectors) if n_vectors > 1
                        else np.full(per_vec.shape[1], np.nan))
    return SpectralDensity(nodes=all_nodes, weights=all_weights, edges=edges, density=density, stderr=stderr, p=p,
                           k_exact=k, top_eigenvalues=top, top_residuals=top_res, lanczos_steps=m,
                           n_vectors=n_vectors, w1_bound=12.0 * lam_bulk / (2 * m - 1), trace_estimate=trace_est,
                           trace_exact=trace_exact)

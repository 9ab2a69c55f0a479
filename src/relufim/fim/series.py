r"""The structured route: the low-rank t-series of the ReLU FIM with a rigorous error bound (theory §9).

The Taylor series :math:`\kappa(t)=\sum_k a_k t^k` (all :math:`a_k\ge0`, no odd powers above 1) gives

.. math:: J = \sum_k a_k\, D\,(U^\top U)^{\circ k} D = F^\top F + R_{>K},

with explicit features :math:`F` of degree :math:`\le K` (symmetric tensor powers of the
unit columns) and a positive semidefinite tail whose norm is bounded by
:math:`(\tfrac12 - \sum_{k\le K} a_k)\,\|D(U^\top U)^{\circ K}D\|` (Schur product theorem:
:math:`\|A\circ B\|\le \max_i A_{ii}\|B\|` for PSD ``A``, and ``U^T U`` has unit diagonal).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import blas

from .._validation import available_memory_bytes, check_memory, check_positive_int, check_sigma, check_weights
from ..model.kernels import arccos_kernel_series_coefficients
from ..model.weights import column_norms, unit_columns
from .tiles import symmetrize_upper

__all__ = ["SeriesFisher", "SeriesPreconditioner", "series_fisher", "series_features", "series_preconditioner",
           "series_degrees", "n_series_features"]

Progress = Callable[[int, int], None]

def _monomial_weights(d: int, k: int) -> np.ndarray:
    r"""Square roots :math:`\sqrt{k!/\prod_i c_i!}` of the multinomial weights of the degree-``k`` monomials.

    One per monomial :math:`u_{i_1}\cdots u_{i_k}` in ``d`` variables, :math:`i_1\le\dots\le i_k` in lexicographic order
    (the rows of :func:`_series_features`), :math:`c_i` the multiplicity of index ``i``; shape
    :math:`\binom{d+k-1}{k}`.
    """
    return np.array([math.sqrt(math.factorial(k) / math.prod(math.factorial(c) for c in Counter(combo).values()))
                     for combo in itertools.combinations_with_replacement(range(d), k)])


def series_degrees(K: int) -> list[int]:
    """Degrees with nonzero Taylor coefficient up to ``K``: 0, 1, 2, 4, 6, ..."""
    return [k for k in range(K + 1) if k <= 2 or k % 2 == 0]


def n_series_features(d: int, K: int) -> int:
    r"""Number of explicit features of degree <= K, :math:`\sum_k \binom{d+k-1}{k}` over nonzero degrees."""
    return sum(math.comb(d + k - 1, k) for k in series_degrees(K))


def _series_features(U: np.ndarray, norms: np.ndarray, K: int, coeffs: np.ndarray,
                     weights: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    r"""Rows of :math:`F` for a chunk of columns: :math:`\sqrt{a_k}\|w\|u^{\otimes k}` (symmetrised), (N, m).

    The degree-``k`` monomials (indices ``i_1 <= ... <= i_k``, lexicographic as in ``_monomial_weights``)
    extend those of degree ``k - 1`` by every index ``m >= i_{k-1}``: one broadcast product per row
    of the degree below, written straight into ``F`` (or into a scratch block for the degrees
    whose Taylor coefficient is 0), so ``F`` costs :math:`O(Np)` and no gathered copies of ``U``.
    ``weights`` holds :func:`_monomial_weights` of each degree in :func:`series_degrees`.
    Written into ``out`` (a view of a larger array) when given.
    """
    d, n = U.shape
    degs = series_degrees(K)
    F = np.empty((sum(w.size for w in weights), n)) if out is None else out
    offsets = dict(zip(degs, np.cumsum([0] + [w.size for w in weights])))
    rows, last = U, np.arange(d)  # the degree-1 monomials and the last index of each
    for k in range(2, K + 1):
        size = int(np.sum(d - last))
        nxt = F[offsets[k]:offsets[k] + size] if k in offsets else np.empty((size, n))
        r = 0
        for row, first in zip(rows, last):
            np.multiply(row, U[first:], out=nxt[r:r + d - first])
            r += d - first
        rows, last = nxt, np.concatenate([np.arange(first, d) for first in last])
    if 1 in offsets:
        F[offsets[1]:offsets[1] + d] = U
    if 0 in offsets:
        F[0] = 1.0
    for k, w in zip(degs, weights):  # scaled only now: each degree was built from the raw one below
        F[offsets[k]:offsets[k] + w.size] *= (w * math.sqrt(coeffs[k]))[:, None]
    F *= norms[None, :]
    return F


class _Features:
    r"""The t-series features of ``W`` by chunks of columns, their Gram :math:`FF^\top`, and ``F`` when kept."""

    def __init__(self, W: np.ndarray, degree: int, chunk: int):
        d, self.p = W.shape
        self.norms = column_norms(W)
        self.U = unit_columns(W, self.norms)
        self.degree, self.chunk = degree, chunk
        self.coeffs = arccos_kernel_series_coefficients(degree + 1)
        self.weights = [_monomial_weights(d, kk) for kk in series_degrees(degree)]
        self.n = n_series_features(d, degree)
        self.starts = range(0, self.p, chunk)

    def columns(self, c0: int, out: np.ndarray | None = None) -> np.ndarray:
        """Columns ``c0 : c0 + chunk`` of ``F``, (N, chunk)."""
        cols = slice(c0, c0 + self.chunk)
        return _series_features(self.U[:, cols], self.norms[cols], self.degree, self.coeffs, self.weights, out)

    def gram(self, keep: bool, progress: Progress | None = None,
             total: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(G, F)``: the symmetric Gram (N, N), one ``syrk``; and ``F`` (N, p) if ``keep``, else None."""
        total = total or len(self.starts)
        F = np.empty((self.n, self.p)) if keep else None
        G = None if keep else np.zeros((self.n, self.n), order="F")
        for s, c0 in enumerate(self.starts, start=1):
            if F is not None:
                self.columns(c0, out=F[:, c0:c0 + self.chunk])
            else:  # upper triangle of G + F_c F_c^T
                G = blas.dsyrk(1.0, self.columns(c0).T, beta=1.0, c=G, trans=1, overwrite_c=True)
            if progress is not None:
                progress(s, total)
        if F is not None:
            G = blas.dsyrk(1.0, F.T, trans=1)  # F^T is Fortran-ordered: no copy
        return symmetrize_upper(G).T, F  # symmetric: the transpose is the same matrix, C-ordered


def _gram_eigh(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Eigenpairs of the Gram :math:`FF^\top` (N, N), descending: ``(evals (N,), S (N, N))``.

    The nonzero eigenvalues of :math:`J_K = F^\top F` are those of :math:`FF^\top` (theory §9).
    """
    evals, S = np.linalg.eigh(G)
    return evals[::-1], S[:, ::-1]


def _feature_rotation(S: np.ndarray, lam: np.ndarray) -> np.ndarray:
    r"""The rotation :math:`S\Lambda^{-1/2}` (N, m): :math:`F^\top S\Lambda^{-1/2}` are eigenvectors of :math:`J_K`.

    :math:`u_j = F^\top s_j/\sqrt{\lambda_j}` for the Gram eigenpairs ``(lam, S)`` (m,), (N, m);
    columns with :math:`\lambda_j \le 0` (outside the range of :math:`J_K`) are 0.
    """
    return S / np.sqrt(np.where(lam > 0, lam, np.inf))


def series_features(W: np.ndarray, degree: int = 2) -> np.ndarray:
    r"""The t-series features of degree :math:`\le K` as the columns of a ``(p, N)`` array: :math:`F^\top` (theory §9).

    Column blocks :math:`\sqrt{a_k}\,\|w_i\|\,u_i^{\otimes k}` (symmetrised monomials) for
    :math:`k\in\{0,1,2,4,\dots\}`. Their span for ``degree = 2`` is the span of the theory's
    approximate eigenvectors :math:`v^{(0)}, W_l, v^{(\alpha,\beta)}` (theory §4), so they seed the
    block solver with the top clusters at the cost of no product with ``J``.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(3, 40, seed=0)
    >>> F = series_features(W, 2)
    >>> F.shape, bool(np.allclose(F[:, 1:4] * 2, W.T))      # degree 1: sqrt(1/4) w_i
    ((40, 10), True)
    """
    W = check_weights(W)
    degree = check_positive_int(degree, "degree", minimum=0)
    return np.ascontiguousarray(_Features(W, degree, W.shape[1]).columns(0).T)  # one chunk: every column


@dataclass(frozen=True)
class SeriesFisher:
    r"""Top eigenpairs of the degree-``K`` t-series :math:`J_K = F^\top F` with a rigorous error bound.

    Attributes
    ----------
    eigenvalues : (k,) descending eigenvalues of :math:`J_K/\sigma^2`
    eigenvectors : (p, k) unit eigenvectors of :math:`J_K`
    degree : K
    n_features : N, the rank of :math:`J_K`
    tail_bound : float
        :math:`\epsilon \ge \|J - J_K\|/\sigma^2`, so (Weyl, :math:`J - J_K \succeq 0`)
        :math:`\lambda_i(J_K) \le \lambda_i(J) \le \lambda_i(J_K) + \epsilon` for every ``i``.
    gram_eigenvalues : (N,) all eigenvalues of :math:`J_K` (the rest of its spectrum is 0)
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None = field(repr=False)
    degree: int
    n_features: int
    tail_bound: float
    gram_eigenvalues: np.ndarray = field(repr=False)

    def subspace_angle_bound(self, gap: float) -> float:
        r"""Davis–Kahan: :math:`\sin\Theta \le \epsilon/(\mathrm{gap}-\epsilon)` for an eigenspace ``gap`` away."""
        return float(self.tail_bound / (gap - self.tail_bound)) if gap > self.tail_bound else float("inf")


def series_fisher(W: np.ndarray, k: int, *, degree: int = 4, sigma: float = 1.0, vectors: bool = True,
                  bound: bool = True, chunk: int = 16384, progress: Progress | None = None) -> SeriesFisher:
    r"""Top ``k`` eigenpairs of the t-series truncation :math:`J_K` of the ReLU FIM, streamed over ``p``.

    :math:`J = \sum_k a_k D (U^\top U)^{\circ k} D` (theory §2, §9); the terms of degree
    :math:`\le K` are :math:`F^\top F` with :math:`F` the ``N x p`` symmetric tensor features,
    :math:`N = \sum_k \binom{d+k-1}{k}` (781 for ``d=10, K=4``). Its top eigenpairs come from the
    ``N x N`` Gram :math:`FF^\top`, accumulated in chunks of columns, so memory is
    ``O(N^2 + N chunk + p k)`` and time ``O(p N^2)``.

    Parameters
    ----------
    W : array (d, p)
    k : int
        Number of eigenpairs (<= N).
    degree : int, default 4
        Truncation degree ``K`` (>= 2).
    sigma : float
    vectors : bool
        Also return the eigenvectors :math:`F^\top s/\sqrt\lambda` (from the features kept in memory
        when they fit in a tenth of it, else a second streamed pass).
    bound : bool
        Compute ``tail_bound`` (one more eigenproblem of the degree-``K`` block; ``nan`` when False,
        e.g. for starting vectors that a solver certifies itself).
    chunk : int
        Columns per chunk.

    Returns
    -------
    SeriesFisher
        Eigenpairs of :math:`J_K` and ``tail_bound``
        :math:`= (\tfrac12-\sum_{k\le K}a_k)\,\lambda_{\max}(D(U^\top U)^{\circ K}D)/\sigma^2`.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(d=3, p=400, seed=0)
    >>> s = rf.series_fisher(W, k=9, degree=4)
    >>> lam = np.linalg.eigvalsh(rf.fisher_matrix(W))[::-1][:9]
    >>> bool(np.all(s.eigenvalues <= lam + 1e-12) and np.all(lam <= s.eigenvalues + s.tail_bound + 1e-12))
    True
    """
    W = check_weights(W)
    sigma = check_sigma(sigma)
    degree = check_positive_int(degree, "degree", minimum=2)
    chunk = check_positive_int(chunk, "chunk")
    d, p = W.shape
    N = n_series_features(d, degree)
    k = check_positive_int(k, "k")
    if k > min(N, p):
        raise ValueError(f"k = {k} exceeds the rank min(N, p) = {min(N, p)} of the degree-{degree} series.")
    check_memory(8.0 * (2 * N * N + 2 * N * chunk + (p * k if vectors else 0)), f"series_fisher(degree={degree})",
                 "use a lower degree or chunk", detail=f" (N = {N} features)")
    feats = _Features(W, degree, chunk)
    keep = vectors and 8.0 * N * p < 0.1 * available_memory_bytes()  # one pass: keep the features
    passes = 2 if vectors and not keep else 1
    G, F = feats.gram(keep, progress, passes * len(feats.starts))
    evals, S = _gram_eigh(G)
    # lambda_max of D T^{oK} D = lambda_max of the degree-K diagonal block of G divided by a_K
    tail = float("nan")
    if bound:
        nK = math.comb(d + degree - 1, degree)
        top_K = float(np.linalg.eigvalsh(G[N - nK:, N - nK:])[-1]) / feats.coeffs[degree]
        tail = max(0.5 - float(feats.coeffs.sum()), 0.0) * top_K
    lam = np.clip(evals[:k], 0.0, None)
    V = None
    if vectors:
        Sk = _feature_rotation(S[:, :k], lam)
        if F is not None:
            V = F.T @ Sk
        else:
            V = np.empty((p, k))
            for s, c0 in enumerate(feats.starts, start=len(feats.starts) + 1):
                V[c0:c0 + chunk] = feats.columns(c0).T @ Sk
                if progress is not None:
                    progress(s, passes * len(feats.starts))
    s2 = sigma * sigma
    return SeriesFisher(eigenvalues=lam / s2, eigenvectors=V, degree=degree, n_features=N,
                        tail_bound=tail / s2, gram_eigenvalues=np.clip(evals, 0.0, None) / s2)


class SeriesPreconditioner:
    r"""The t-series truncation :math:`J_K = F^\top F` as a preconditioner and a source of starting vectors.

    Theory §10. Holds every eigenpair :math:`(\lambda_j, u_j)` of :math:`J_K` (rank ``N``), the
    eigenvectors through the features: :math:`u_j = F^\top s_j/\sqrt{\lambda_j}` with :math:`s_j`
    the eigenvectors of the Gram :math:`FF^\top`, so it keeps ``F`` (N, p) and the rotation
    :math:`S\Lambda^{-1/2}` (N, m) and never the ``p x m`` eigenvectors. Its shifted inverse on the
    whole space is

    .. math:: (J_K - \theta)^{-1} r = \sum_j \frac{u_j u_j^\top r}{\lambda_j - \theta} - \frac{P_\perp r}{\theta},

    with :math:`P_\perp` the projector off the range of :math:`J_K`. Applied to the residuals of
    Ritz pairs it gives Davidson corrections that capture, to first order, how the tail
    :math:`J - J_K` turns the clusters (:func:`relufim.spectrum.eigensolver.block_eigsh`).
    Attributes: ``eigenvalues`` (m,), ``features`` (N, p), ``rotation`` (N, m), ``degree``.
    """

    def __init__(self, eigenvalues: np.ndarray, features: np.ndarray, rotation: np.ndarray, degree: int):
        self.eigenvalues = eigenvalues
        self.features = features
        self.rotation = rotation
        self.degree = degree

    @classmethod
    def of_features(cls, features: np.ndarray, gram: np.ndarray, degree: int) -> SeriesPreconditioner:
        r"""Every nonzero eigenpair of :math:`F^\top F` from the features ``F`` (N, n) and their Gram :math:`FF^\top`.

        The eigenvalues below ``1e-14`` of the largest count as zero (outside the range).
        """
        evals, S = _gram_eigh(gram)
        m = int(np.count_nonzero(evals > 1e-14 * max(float(evals[0]), 1e-300)))  # descending: a prefix
        return cls(evals[:m].copy(), features, _feature_rotation(S[:, :m], evals[:m]), degree)

    @property
    def eigenvectors(self) -> np.ndarray:
        """The unit eigenvectors of :math:`J_K`, (p, m), formed on each access (``2 p N m`` flops)."""
        return self.features.T @ self.rotation

    def seeds(self, m: int) -> np.ndarray:
        """The top ``m`` eigenvectors of :math:`J_K`: starting vectors that cost no product with ``J``."""
        return self.features.T @ self.rotation[:, :m]

    def __call__(self, R: np.ndarray, theta: np.ndarray) -> np.ndarray:
        r"""Columns :math:`(J_K - \theta_i)^{-1} r_i` for residuals ``R`` (p, m) and shifts ``theta`` (m,)."""
        lam = self.eigenvalues
        theta = np.where(np.abs(theta) > 0, theta, np.finfo(float).tiny)
        C = self.rotation.T @ (self.features @ R)
        gap = lam[:, None] - theta[None, :]
        tiny = 1e-12 * max(float(lam[0]), 1e-300)
        gap = np.where(np.abs(gap) > tiny, gap, np.copysign(tiny, gap + 0.0))
        Z = self.rotation @ (C / gap + C / theta[None, :])  # (N, m)
        out = (Z.T @ self.features).T  # Fortran-ordered (n, m), like the solver's residuals: no transposing pass
        out -= R / theta[None, :]
        return out


def series_preconditioner(W: np.ndarray, degree: int = 4, *, chunk: int = 16384,
                          progress: Progress | None = None) -> SeriesPreconditioner:
    r"""Every eigenpair of the degree-``K`` t-series of the ReLU FIM, as a :class:`SeriesPreconditioner` (theory §10).

    Costs the features ``F`` (``8 p N`` bytes, ``N = 781`` at ``d = 10, K = 4``), their ``N x N``
    Gram (one ``syrk``, ``p N^2`` flops) and its eigendecomposition; no product with ``J``.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(3, 300, seed=0)
    >>> M = series_preconditioner(W, 4)
    >>> R = np.random.default_rng(0).standard_normal((300, 2)); theta = np.array([0.3, 0.05])
    >>> J4 = (M.eigenvectors * M.eigenvalues) @ M.eigenvectors.T
    >>> T = M(R, theta)
    >>> bool(np.allclose(J4 @ T - T * theta, R))
    True
    """
    W = check_weights(W)
    degree = check_positive_int(degree, "degree", minimum=2)
    chunk = check_positive_int(chunk, "chunk")
    d, p = W.shape
    N = n_series_features(d, degree)
    check_memory(8.0 * (p * N + 3 * N * N), f"the degree-{degree} t-series preconditioner ({N} features of length {p})",
                 "use seed_degree=2 (the theory's vectors, no eigenproblem)")
    G, F = _Features(W, degree, chunk).gram(keep=True, progress=progress)
    return SeriesPreconditioner.of_features(F, G, degree)

r"""A restarted block Krylov eigensolver for the top of a symmetric spectrum.

ARPACK (``eigsh``) works with one vector and is known to miss members of tight
clusters of eigenvalues. The FIM's spectrum is made of such clusters, so this
solver iterates a whole block, seeded with the theory's vectors (DESIGN §3), and
reports a residual for every eigenpair.

Each outer iteration builds the block Krylov space
:math:`\mathcal K = [V, AV, \dots, A^{q-1}V]` (orthonormalised twice), applies
:math:`A` once per block, and performs Rayleigh–Ritz on :math:`\mathcal K`; the
top ``b`` Ritz vectors restart the next iteration.

Stopping rule: eigenpair :math:`(\theta_j, x_j)` is *converged* when
:math:`\|A x_j - \theta_j x_j\| \le \mathrm{tol}\cdot|\theta_1|`. The iteration stops
when the top ``k`` pairs are all converged, or after ``maxiter`` iterations; in
that case the unconverged pairs are flagged, never silently returned as
converged. For a symmetric matrix each converged :math:`\theta_j` lies within
its residual of a true eigenvalue, and within :math:`\|r_j\|^2/\mathrm{gap}` when
separated by ``gap`` from the rest of the spectrum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

__all__ = ["BlockEigResult", "block_eigsh", "orthonormalize"]

MatMat = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BlockEigResult:
    """Raw output of :func:`block_eigsh` (descending eigenvalues)."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    residuals: np.ndarray
    converged: np.ndarray
    iterations: int
    matvecs: int
    tol: float


def orthonormalize(X: np.ndarray, against: np.ndarray | None = None, drop_tol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis of ``range(X)`` (minus ``range(against)``), twice Gram–Schmidt, rank-revealing.

    Columns whose norm collapses below ``drop_tol`` of their original size are dropped,
    so the result may have fewer columns than ``X``.
    """
    X = np.array(X, dtype=np.float64, copy=True)
    if X.shape[1] == 0:
        return X
    col_norm = np.linalg.norm(X, axis=0)
    for _ in range(2):
        if against is not None and against.shape[1]:
            X -= against @ (against.T @ X)
    Q, R, piv = sla.qr(X, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    scale = max(float(col_norm.max()), np.finfo(float).tiny)
    rank = int(np.count_nonzero(diag > drop_tol * scale))
    Q = Q[:, :rank]
    if against is not None and against.shape[1]:
        Q -= against @ (against.T @ Q)
    Q, _ = np.linalg.qr(Q)
    return Q


def block_eigsh(matmat: MatMat, p: int, k: int, *, X0: np.ndarray | None = None, block: int | None = None,
                krylov_blocks: int = 3, tol: float = 1e-10, maxiter: int = 100,
                seed: int | None = 0, progress: Callable[[int, int], None] | None = None) -> BlockEigResult:
    r"""Top ``k`` eigenpairs of a symmetric PSD operator ``A`` given by ``matmat(V) = A @ V``.

    Parameters
    ----------
    matmat : callable
        ``(p, m)`` array -> ``(p, m)`` array, the product with ``A``.
    p : int
        Dimension of ``A``.
    k : int
        Number of wanted eigenpairs (largest first).
    X0 : array (p, m), optional
        Starting vectors (the theory's vectors); completed with random vectors up to ``block``.
    block : int, optional
        Block size ``b >= k`` (default ``k + max(8, k // 4)``: guard vectors beyond the
        wanted ones keep a cluster split at ``k`` converging).
    krylov_blocks : int
        Blocks ``q`` in each Krylov space (``q`` products with ``A`` per iteration).
    tol : float
        Residual tolerance relative to the largest eigenvalue.
    maxiter : int
        Outer iterations before giving up (unconverged pairs are flagged).
    seed : int, optional
        Seed of the random completion vectors.

    Returns
    -------
    BlockEigResult

    Examples
    --------
    >>> A = np.diag(np.arange(1.0, 201.0))
    >>> r = block_eigsh(lambda V: A @ V, 200, 5, tol=1e-12)
    >>> r.eigenvalues
    array([200., 199., 198., 197., 196.])
    >>> bool(r.converged.all())
    True
    """
    if k < 1 or k > p:
        raise ValueError(f"k must be between 1 and p = {p}, got {k}.")
    b = min(p, block if block is not None else k + max(8, k // 4))
    b = max(b, k)
    rng = np.random.default_rng(seed)
    V = orthonormalize(X0) if X0 is not None and X0.shape[1] else np.zeros((p, 0))
    if V.shape[1] > b:
        b = min(p, V.shape[1])
    if V.shape[1] < b:
        V = np.hstack([V, orthonormalize(rng.standard_normal((p, b - V.shape[1])), against=V)])
    matvecs = 0
    theta = np.zeros(0)
    X = V
    res = np.full(b, np.inf)
    it = 0
    for it in range(1, maxiter + 1):
        basis = [V]
        images = []
        Q = V
        for j in range(krylov_blocks):
            Z = matmat(Q)
            matvecs += Q.shape[1]
            images.append(Z)
            if j == krylov_blocks - 1 or sum(B.shape[1] for B in basis) >= p:
                break
            Q = orthonormalize(Z, against=np.hstack(basis))
            if Q.shape[1] == 0:
                break
            basis.append(Q)
        K = np.hstack(basis[: len(images)])
        AK = np.hstack(images)
        H = K.T @ AK
        H = 0.5 * (H + H.T)
        evals, S = np.linalg.eigh(H)
        order = np.argsort(evals)[::-1][: min(b, K.shape[1])]
        theta, S = evals[order], S[:, order]
        X = K @ S
        AX = AK @ S
        R = AX - X * theta
        res = np.linalg.norm(R, axis=0)
        scale = max(abs(theta[0]), np.finfo(float).tiny)
        n_conv = int(np.count_nonzero(res[:k] <= tol * scale))
        if progress is not None:
            progress(n_conv, k)
        if n_conv == k:
            break
        V = orthonormalize(X)
        if V.shape[1] < b:  # lost rank: refill with random directions
            V = np.hstack([V, orthonormalize(rng.standard_normal((p, b - V.shape[1])), against=V)])
    scale = max(abs(theta[0]), np.finfo(float).tiny) if theta.size else 1.0
    keep = slice(0, k)
    return BlockEigResult(
        eigenvalues=theta[keep].copy(),
        eigenvectors=X[:, keep].copy(),
        residuals=res[keep].copy(),
        converged=res[keep] <= tol * scale,
        iterations=it,
        matvecs=matvecs,
        tol=tol,
    )

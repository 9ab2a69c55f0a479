r"""A restarted block Krylov eigensolver for the top of a symmetric spectrum.

ARPACK (``eigsh``) works with one vector and is known to miss members of tight
clusters of eigenvalues. The FIM's spectrum is made of such clusters, so this
solver iterates a whole block, seeded with the theory's vectors (theory §4), and
reports a residual for every eigenpair.

Each iteration multiplies one block by :math:`A` (the only expensive step: for the
matrix-free FIM it is a pass over all :math:`p^2/2` kernel entries), appends it to an
orthonormal search space, and performs Rayleigh–Ritz on the whole space (thick-restarted
to the ``b`` best Ritz vectors, with their images, when it exceeds ``krylov_blocks * b``
columns). The next block is the residual :math:`AX - X\Theta` of the *unconverged* Ritz
pairs, orthogonalised against the space: this spans the same new directions as the block
Krylov step, while converged pairs are locked (they cost no more products). With the
theory's seeds the top ``d(d+3)/2`` pairs of the FIM need 3–4 products for 1e-10.

Stopping rule: eigenpair :math:`(\theta_j, x_j)` is *converged* when
:math:`\|A x_j - \theta_j x_j\| \le \mathrm{tol}\cdot|\theta_1|` (the residual is computed
from the stored images, i.e. it is the true residual up to round-off). The iteration stops
when the leading ``required`` pairs (default: all ``k``) are converged and the block does
not sit inside a cluster, or after ``maxiter`` products; unconverged pairs are flagged,
never silently returned as converged. A-posteriori bounds for a symmetric matrix: each
:math:`\theta_j` lies within :math:`\|r_j\|` of an eigenvalue, within
:math:`\|r_j\|^2/\mathrm{gap}` when separated by ``gap`` from the rest of the spectrum,
and the angle between a computed cluster subspace and the true one has
:math:`\sin\Theta \le \|R\|/\mathrm{gap}` (Davis–Kahan). Ritz values are lower bounds:
:math:`\theta_j \le \lambda_j` (Cauchy interlacing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas

__all__ = ["BlockEigResult", "block_eigsh", "orthonormalize", "residual_norms"]

MatMat = Callable[[np.ndarray], np.ndarray]


#: Mixed precision: leave the float32 products once every required residual is below this times |theta_1|.
MIXED_SWITCH_TOL = 1e-4


@dataclass(frozen=True)
class BlockEigResult:
    """Raw output of :func:`block_eigsh` (descending eigenvalues).

    ``iterations`` counts products with the operator (each of a block of vectors); ``matvecs``
    the float64 vectors multiplied, ``low_matvecs`` the low-precision ones.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    residuals: np.ndarray
    converged: np.ndarray
    iterations: int
    matvecs: int
    tol: float
    low_matvecs: int = 0


def residual_norms(matmat: MatMat, eigenvalues: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    r"""The residual norms :math:`\|Aq_i - \lambda_iq_i\|` of pairs ``(eigenvalues (k,), vectors (p, k))``, one product.

    The certificate of every pair the library reports (theory §10.1): for a symmetric ``A`` some
    eigenvalue lies within the residual norm of :math:`\lambda_i` (unit :math:`q_i`).

    Examples
    --------
    >>> A = np.diag([3.0, 1.0])
    >>> residual_norms(lambda V: A @ V, np.array([3.0, 2.0]), np.eye(2))
    array([0., 1.])
    """
    return _column_norms(matmat(vectors) - vectors * eigenvalues)


def _column_norms(X: np.ndarray) -> np.ndarray:
    """The 2-norms of the columns of ``X`` in one pass (``np.linalg.norm(X, axis=0)`` squares into a temporary)."""
    return np.sqrt(np.einsum("ij,ij->j", X, X))


def orthonormalize(X: np.ndarray, against: np.ndarray | None = None, drop_tol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis of ``range(X)`` (minus ``range(against)``), dropping dependent directions (theory §10.3).

    Block Gram–Schmidt against ``against`` (a second pass where a column lost more than
    :data:`_ONE_PASS` of its norm in the first), then SVQB (Stathopoulos & Wu 2002): the
    eigendecomposition of the column-scaled Gram matrix ``X^T X`` gives the basis, directions
    with a relative singular value below ``1e-7`` are dropped as dependent, and the sweep is
    repeated until the basis is orthonormal to 1e-12; after an ill-conditioned sweep (relative
    singular value below 1e-3) the block is projected off ``against`` once more. Columns whose norm after the projection
    is below ``drop_tol`` of the largest input column are dropped first. Everything is
    level-3 BLAS on ``(p, m)`` blocks (a pivoted QR of the block was the solver's bottleneck).
    The result may have fewer columns than ``X``.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((30, 3))
    >>> Q = orthonormalize(np.column_stack([X, X @ [1.0, 2.0, 3.0]]))
    >>> Q.shape, bool(np.allclose(Q.T @ Q, np.eye(3)))
    ((30, 3), True)
    """
    X = np.array(X, dtype=np.float64, copy=True, order="F")
    if X.shape[1] == 0:
        return X
    norms = _column_norms(X)
    scale = max(float(norms.max()), np.finfo(float).tiny)
    project = against is not None and against.shape[1] > 0
    if project:
        before = norms
        _subtract_projection(X, against)
        norms = _column_norms(X)
        if np.any(norms < _ONE_PASS * before):  # cancellation: what is left along `against` may not be round-off
            _subtract_projection(X, against)
            norms = _column_norms(X)
    keep = norms > drop_tol * scale
    if not keep.all():
        X = np.asfortranarray(X[:, keep])
    spare = np.empty_like(X, order="F")  # the rotations ping-pong between X and this buffer
    G = X.T @ X
    for _ in range(4):
        if X.shape[1] == 0 or np.abs(G - np.eye(G.shape[0])).max() < 1e-12:
            break
        inv = 1.0 / np.sqrt(np.diag(G))
        lam, S = np.linalg.eigh(G * inv[:, None] * inv[None, :])
        good = lam > _SVQB_RANK_TOL * lam[-1]
        out = spare[:, :int(np.count_nonzero(good))]
        np.matmul(X, S[:, good] * (inv[:, None] / np.sqrt(lam[good])), out=out)
        spare, X = X, out
        if project and lam[good][0] < _REPROJECT_BELOW * lam[-1]:
            _subtract_projection(X, against)  # the rotation may have amplified what is left along `against`
        G = X.T @ X
    return X


def _subtract_projection(X: np.ndarray, Q: np.ndarray) -> None:
    r""":math:`X \leftarrow X - Q(Q^\top X)` in place, ``X`` Fortran-ordered: one BLAS call, no ``(p, m)`` temporary."""
    C = Q.T @ X
    if Q.flags.f_contiguous and X.flags.f_contiguous and X.dtype == np.float64 == Q.dtype:  # else f2py copies X
        blas.dgemm(-1.0, Q, C, beta=1.0, c=X, overwrite_c=True)
    else:
        X -= Q @ C


#: Share of its norm a column must keep through one projection off ``against`` for that pass to
#: suffice in :func:`orthonormalize` (the criterion of Daniel, Gragg, Kaufman & Stewart 1976): what
#: one pass leaves along ``against`` is round-off of the column's norm before it, at most sqrt(2)
#: times the round-off of its norm after. Below it (cancellation) the block is projected again.
#: The residuals of Ritz pairs are orthogonal to the basis in exact arithmetic, so a solve mostly
#: takes one pass.
_ONE_PASS = 1 / np.sqrt(2.0)

#: Relative eigenvalue of the scaled Gram matrix (squared singular value) below which a
#: direction counts as dependent in :func:`orthonormalize`.
_SVQB_RANK_TOL = 1e-14

#: An SVQB rotation multiplies what the projections left along ``against`` (round-off, ~1e-16 of
#: each column) by at most ``1/sqrt(lambda_min/lambda_max)``; below this ratio (an amplification
#: above 1e3) :func:`orthonormalize` projects once more, else the rotated block keeps its
#: orthogonality to 1e-13 and the third projection (a third of its cost) is skipped.
_REPROJECT_BELOW = 1e-6


def _fill_random(V: np.ndarray, b: int, p: int, rng: np.random.Generator, against: np.ndarray) -> np.ndarray:
    """Complete ``V`` (orthonormal, orthogonal to ``against``) with random directions up to ``b`` columns."""
    for _ in range(3):
        missing = b - V.shape[1]
        if missing <= 0:
            break
        guard = np.hstack([against, V]) if against.shape[1] else V
        V = np.hstack([V, orthonormalize(rng.standard_normal((p, missing)), against=guard)])
    return V


def _grown(arrays: list[np.ndarray], capacity: int, keep: int) -> list[np.ndarray]:
    """Fortran-ordered ``(p, capacity)`` copies of ``arrays`` holding their first ``keep`` columns."""
    out = []
    for a in arrays:
        g = np.empty((a.shape[0], capacity), order="F")
        g[:, :keep] = a[:, :keep]
        out.append(g)
    return out


class _RitzBlock:
    """The Ritz vectors ``X``, their images ``AX``, residuals ``R`` and residual norms of a step, kept in place.

    Fortran-ordered like the space (no transposing copies later) and reused from step to step, so
    a step allocates nothing and a deferred run (:func:`block_eigsh`, Notes) stays where it is.
    The arrays returned are views, valid until the next :meth:`form` or :meth:`store`.
    """

    def __init__(self, p: int, capacity: int):
        self._arrays = [np.empty((p, capacity), order="F") for _ in range(3)]
        self._res = np.empty(capacity)
        self.kept = 0  # leading columns the last form() kept from an earlier step

    @property
    def complete(self) -> bool:
        """Whether every column is of the last Rayleigh–Ritz step (none deferred)."""
        return self.kept == 0

    def _reserve(self, n: int, keep: int) -> None:
        if n > self._res.size:
            self._arrays = _grown(self._arrays, n, keep)
            self._res = np.concatenate([self._res[:keep], np.empty(n - keep)])

    def form(self, space: _Space, S: np.ndarray, theta: np.ndarray,
             first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Columns ``first:`` for the Rayleigh–Ritz rotation ``S`` (two GEMMs with the space); ``:first`` kept."""
        n = S.shape[1]
        self._reserve(n, first)
        self.kept = first
        X, AX, R = (a[:, :n] for a in self._arrays)
        cols = slice(first, n)
        np.matmul(space.basis, S[:, cols], out=X[:, cols])
        np.matmul(space.images, S[:, cols], out=AX[:, cols])
        np.multiply(X[:, cols], theta[cols], out=R[:, cols])
        np.subtract(AX[:, cols], R[:, cols], out=R[:, cols])
        self._res[cols] = _column_norms(R[:, cols])
        return X, AX, R, self._res[:n]

    def store(self, X: np.ndarray, AX: np.ndarray, R: np.ndarray,
              res: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Hold pairs formed elsewhere (the switch out of low precision), so a later step can defer them."""
        n = X.shape[1]
        self._reserve(n, 0)
        self.kept = 0
        out = [a[:, :n] for a in self._arrays]
        for o, x in zip(out, (X, AX, R), strict=True):
            o[...] = x
        self._res[:n] = res
        return out[0], out[1], out[2], self._res[:n]


class _Space:
    """A growing orthonormal basis and its images under ``A``, stored without reallocation."""

    def __init__(self, p: int, capacity: int):
        self._basis = np.empty((p, capacity), order="F")
        self._images = np.empty((p, capacity), order="F")
        self.size = 0

    @property
    def basis(self) -> np.ndarray:
        return self._basis[:, :self.size]

    @property
    def images(self) -> np.ndarray:
        return self._images[:, :self.size]

    def _reserve(self, size: int) -> None:
        capacity = self._basis.shape[1]
        if size > capacity:  # the same capacity for both arrays
            self._basis, self._images = _grown([self._basis, self._images], max(size, 2 * capacity), self.size)

    def append(self, V: np.ndarray, AV: np.ndarray) -> None:
        m = V.shape[1]
        self._reserve(self.size + m)
        self._basis[:, self.size:self.size + m] = V
        self._images[:, self.size:self.size + m] = AV
        self.size += m

    def reset(self, X: np.ndarray, AX: np.ndarray) -> None:
        self.size = 0
        self.append(X, AX)


def _restart_due(size: int, b: int, krylov_blocks: int, p: int) -> bool:
    """Whether the search space (``size`` columns) has no room for another block of ``b``: a thick restart."""
    return size + b > krylov_blocks * b or size + b > p


def _float64_ritz_block(matmat: MatMat, X: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave the low precision (:func:`block_eigsh`, Notes): Rayleigh–Ritz on the float64 images of ``X``.

    The Ritz block ``X`` is orthonormalised (which may drop dependent columns) and multiplied by
    ``A`` in float64, one ``matmat`` product. Returns the new Ritz vectors, their float64 images
    and the Ritz values (descending): the space the iteration restarts from.
    """
    X = orthonormalize(X)
    AX = np.asarray(matmat(X), dtype=np.float64).reshape(p, -1)
    evals, S = np.linalg.eigh(0.5 * (X.T @ AX + AX.T @ X))
    order = np.argsort(evals)[::-1]
    theta, S = evals[order], S[:, order]
    return X @ S, AX @ S, theta


def block_eigsh(matmat: MatMat, p: int, k: int, *, X0: np.ndarray | None = None, block: int | None = None,
                krylov_blocks: int = 6, tol: float = 1e-10, maxiter: int = 100,
                seed: int | None = 0, progress: Callable[[int, int], None] | None = None,
                required: int | None = None, matmat_low: MatMat | None = None,
                switch_tol: float = MIXED_SWITCH_TOL,
                preconditioner: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> BlockEigResult:
    r"""Top ``k`` eigenpairs of a symmetric PSD operator ``A`` given by ``matmat(V) = A @ V``.

    Theory §10.3: a block seeded with the theory's vectors, SVQB, Rayleigh–Ritz with soft locking.

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
        Block size ``b >= k`` (default ``k + max(4, k // 8)``: guard vectors beyond the
        wanted ones keep a cluster split at ``k`` converging). Grown automatically when the
        whole block sits inside one cluster (see Notes).
    krylov_blocks : int
        Blocks ``q`` in each Krylov space (``q`` products with ``A`` per iteration, on the
        unlocked vectors only).
    tol : float
        Residual tolerance relative to the largest eigenvalue.
    maxiter : int
        Outer iterations before giving up (unconverged pairs are flagged).
    seed : int, optional
        Seed of the random completion vectors.
    progress : callable(converged, required), optional
        Called after every product with ``A`` with the number of converged required pairs.
    required : int, optional
        How many of the leading pairs must converge before stopping (default ``k``); the
        others are returned as they are, flagged by their own residuals. (For the FIM, the
        ``d(d+3)/2`` cluster pairs converge in a few products, while pairs inside the wide
        degree-4 cluster need many.)
    matmat_low : callable, optional
        A cheaper, less accurate product (float32 tiles) for the early iterations: the
        mixed-precision rule of the Notes.
    switch_tol : float
        Leave ``matmat_low`` once every required residual is below ``switch_tol * |theta_1|``
        (default 1e-4, a hundred times float32's product error).
    preconditioner : callable(R, theta) -> T, optional
        Davidson corrections: the search space grows by ``T[:, i] ~ (M - theta_i)^{-1} R[:, i]``
        for an approximation ``M`` of ``A`` that is cheap to invert, instead of by the residuals
        themselves (the block Krylov step). With ``M`` the t-series truncation :math:`J_4`
        (:func:`relufim.fim.series.series_preconditioner`) the FIM's clusters converge to 1e-8 in
        two products at p = 10^4 (theory §10).

    Returns
    -------
    BlockEigResult

    Notes
    -----
    *Locking.* After each Rayleigh–Ritz step the leading run of converged pairs is locked:
    they are no longer multiplied by ``A`` (their images are kept), but they stay in the
    Rayleigh–Ritz basis ("soft locking"), so they keep improving and a cluster member
    found later is still orthogonalised correctly.

    *Mixed precision.* With ``matmat_low`` the iteration starts with it. Its residuals are
    only used to steer the iteration, never reported: once every required residual is below
    ``switch_tol`` (or a low-precision product no longer halves the largest of them, or
    ``maxiter`` is reached), one ``matmat`` product
    recomputes the images of the current Ritz block in float64, the search space restarts from
    it, and every later product is ``matmat``. So the returned residuals are computed from
    float64 images only and every pair flagged as converged meets ``tol`` in float64.

    *Deferred Ritz vectors.* Forming the Ritz vectors and their images costs two GEMMs with the
    whole basis per step. The leading run of pairs that had converged at the previous step is
    not formed again while its Ritz values stay within the tolerance of theirs (no new value
    entered the run); the run is formed, and every residual recomputed, when the required pairs
    look converged and before a restart, so the returned pairs and residuals are always those of
    the last Rayleigh–Ritz step.

    *Never dropping a cluster member.* If, when the wanted pairs have converged, the smallest
    Ritz value of the block equals the ``k``-th to within the tolerance, the block may cut a
    cluster; the block is then enlarged by ``k`` columns and the iteration continues.

    Examples
    --------
    >>> A = np.diag(np.arange(1.0, 201.0))
    >>> r = block_eigsh(lambda V: A @ V, 200, 5, tol=1e-10, maxiter=200)
    >>> r.eigenvalues
    array([200., 199., 198., 197., 196.])
    >>> bool(r.converged.all())
    True
    """
    if k < 1 or k > p:
        raise ValueError(f"k must be between 1 and p = {p}, got {k}.")
    if krylov_blocks < 2:
        raise ValueError(f"krylov_blocks must be >= 2 (the basis holds the block and its expansion), "
                         f"got {krylov_blocks}.")
    b = min(p, block if block is not None else k + max(4, k // 8))
    b = max(b, min(p, k + 1))  # at least one guard vector, to see whether a cluster continues
    required = k if required is None else min(max(int(required), 1), k)
    rng = np.random.default_rng(seed)
    V = orthonormalize(X0) if X0 is not None and X0.shape[1] else np.zeros((p, 0))
    if V.shape[1] > b:
        b = min(p, V.shape[1])
    V = _fill_random(V, b, p, rng, np.zeros((p, 0)))
    # the orthonormal search space and A times it, in preallocated Fortran-ordered arrays
    space = _Space(p, krylov_blocks * b)
    H = np.zeros((0, 0))
    matvecs = low_matvecs = 0
    theta = np.zeros(0)
    ritz = _RitzBlock(p, b)
    X = V
    res = np.full(b, np.inf)
    deferred = 0
    low = matmat_low is not None
    best_low = np.inf
    it = 0
    for it in range(1, maxiter + 1):  # noqa: B007 - the last value is reported
        AV = np.asarray((matmat_low if low else matmat)(V), dtype=np.float64).reshape(p, -1)
        if low:
            low_matvecs += V.shape[1]
        else:
            matvecs += V.shape[1]
        # Rayleigh-Ritz on [basis, V]: only the new rows of H = basis^T A basis are computed
        cross = space.basis.T @ AV
        H = np.block([[H, cross], [cross.T, V.T @ AV]])
        H = 0.5 * (H + H.T)
        space.append(V, AV)
        evals, S = np.linalg.eigh(H)
        order = np.argsort(evals)[::-1][: min(b, space.size)]
        theta_before, theta, S = theta, evals[order], S[:, order]
        scale = max(abs(theta[0]), np.finfo(float).tiny)
        # the leading run converged at the last step is not re-formed (Notes, deferred Ritz vectors), unless a
        # new Ritz value entered it; it is formed below when the step needs every pair (ritz.complete)
        if deferred and (low or S.shape[1] < deferred
                         or np.abs(theta[:deferred] - theta_before[:deferred]).max() > tol * scale):
            deferred = 0
        X, AX, R, res = ritz.form(space, S, theta, deferred)
        if low:  # the mixed-precision rule (Notes)
            worst = float(res[:required].max())
            if worst <= switch_tol * scale or worst >= 0.5 * best_low or it == maxiter:
                low = False
                X, AX, theta = _float64_ritz_block(matmat, X, p)
                matvecs += X.shape[1]
                space.reset(X, AX)
                H = np.diag(theta)
                R = AX - X * theta
                X, AX, R, res = ritz.store(X, AX, R, _column_norms(R))
                scale = max(abs(theta[0]), np.finfo(float).tiny)
            best_low = min(best_low, worst)
        conv = (res <= tol * scale) & (not low)
        n_conv = int(np.count_nonzero(conv[:required]))
        if not ritz.complete and (n_conv == required or _restart_due(space.size, b, krylov_blocks, p)):
            X, AX, R, res = ritz.form(space, S, theta, 0)  # the result or the restart needs every pair
            conv = res <= tol * scale
            n_conv = int(np.count_nonzero(conv[:required]))
        if progress is not None:
            progress(n_conv, required)
        if n_conv == required:
            cut = theta.size >= b and b < p and theta[-1] >= theta[required - 1] - tol * scale
            if not cut:
                break
            b = min(p, b + k)  # the whole block sits in one cluster, which may go on: enlarge it
        if _restart_due(space.size, b, krylov_blocks, p):  # b grows only once every pair is formed
            # thick restart: keep the Ritz vectors and their images, no product needed
            space.reset(X, AX)
            H = np.diag(theta)
        # expand by the residuals of the unconverged pairs (locked pairs cost no further products)
        active = np.flatnonzero(~conv)
        deferred = int(active[0]) if active.size else conv.size  # the leading converged run
        grow = R[:, active] if preconditioner is None else preconditioner(R[:, active], theta[active])
        V = orthonormalize(grow, against=space.basis)
        if V.shape[1] < active.size:  # lost rank: complete with random directions
            V = _fill_random(V, min(active.size, p - space.size), p, rng, space.basis)
        if V.shape[1] == 0:
            break
    if not ritz.complete:  # stopped by maxiter or a lost rank with the deferred run not formed
        X, AX, R, res = ritz.form(space, S, theta, 0)
    scale = max(abs(theta[0]), np.finfo(float).tiny) if theta.size else 1.0
    keep = slice(0, k)
    return BlockEigResult(
        eigenvalues=theta[keep].copy(),
        eigenvectors=X[:, keep].copy(),
        residuals=res[keep].copy(),
        converged=res[keep] <= tol * scale,
        iterations=it + (1 if low_matvecs else 0),  # the switch costs one product of its own
        matvecs=matvecs,
        tol=tol,
        low_matvecs=low_matvecs,
    )

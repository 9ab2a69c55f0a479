r"""The exact FIM as a matrix-free operator, and its low-rank t-series (DESIGN §2).

:func:`fisher_operator` returns a :class:`scipy.sparse.linalg.LinearOperator` for
:math:`J = D\,\kappa(U^\top U)\,D` (``D = diag(||w_i||)``, ``U`` the unit columns) that
never stores the ``p x p`` matrix: each product :math:`JV` walks the upper triangle in
square tiles, evaluates :math:`\kappa` in place on the tile, and uses every tile twice
(:math:`K_{ij}V_j` and :math:`K_{ij}^\top V_i`), so :math:`\kappa` is evaluated on
:math:`p^2/2` entries per product and memory is :math:`O(\mathrm{block}^2 + p\,b)` per thread
for a block of ``b`` vectors.

:func:`series_fisher` is the structured route: the Taylor series
:math:`\kappa(t)=\sum_k a_k t^k` (all :math:`a_k\ge0`, no odd powers above 1) gives

.. math:: J = \sum_k a_k\, D\,(U^\top U)^{\circ k} D = F^\top F + R_{>K},

with explicit features :math:`F` of degree :math:`\le K` (symmetric tensor powers of the
unit columns) and a positive semidefinite tail whose norm is bounded by
:math:`(\tfrac12 - \sum_{k\le K} a_k)\,\|D(U^\top U)^{\circ K}D\|` (Schur product theorem:
:math:`\|A\circ B\|\le \max_i A_{ii}\|B\|` for PSD ``A``, and ``U^T U`` has unit diagonal).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ._threads import single_threaded_blas
from ._validation import check_memory, check_positive_int, check_sigma, check_weights
from .activations import Activation, get_activation
from .fisher import _upper_tiles, column_norms
from .kernels import (
    ANTIPARALLEL_THRESHOLD,
    arccos_kernel_series_coefficients,
    two_pi_kappa_from_sum_norm,
    two_pi_kappa_tile,
)

__all__ = ["FisherOperator", "fisher_operator", "SeriesFisher", "series_fisher", "SUPPORTED_ACTIVATIONS"]

Progress = Callable[[int, int], None]

#: Activations with a matrix-free operator (their dual kernel is evaluated tile by tile in place).
SUPPORTED_ACTIVATIONS = ("relu",)

_INV_2PI = 1.0 / (2.0 * math.pi)
_HALF_PI = 0.5 * math.pi


class FisherOperator(LinearOperator):
    r"""Matrix-free exact FIM :math:`J/\sigma^2` of ReLU hidden weights (see :func:`fisher_operator`).

    Attributes
    ----------
    W : (d, p) float64 array
    norms : (p,) column norms :math:`\|w_i\|`
    block : tile edge
    backend : "numpy" or "torch"
    device : "cpu" or the torch device used
    products : number of vectors multiplied so far (each costs one pass over the tiles)
    """

    def __init__(self, W: np.ndarray, *, sigma: float, block: int, backend: str, dtype: np.dtype,
                 threads: int, progress: Progress | None):
        d, p = W.shape
        super().__init__(dtype=np.dtype(np.float64), shape=(p, p))
        self.W = W
        self.sigma = sigma
        self.norms = column_norms(W)
        safe = np.where(self.norms > 0, self.norms, 1.0)
        self.U = np.ascontiguousarray(W / safe)
        self.block = min(block, p)
        self.backend = backend
        self.compute_dtype = np.dtype(dtype)
        self.threads = threads
        self.progress = progress
        self.products = 0
        self.device = "cpu"
        self._torch = None
        if backend == "torch":
            self._setup_torch()

    # -- facts known without any product
    def diagonal(self) -> np.ndarray:
        r"""Exact diagonal :math:`\|w_i\|^2/(2\sigma^2)`."""
        return 0.5 * self.norms**2 / self.sigma**2

    def trace(self) -> float:
        r"""Exact trace :math:`\|W\|_F^2/(2\sigma^2)`."""
        return float(0.5 * np.sum(self.norms**2) / self.sigma**2)

    def memory_bytes(self, n_vectors: int) -> int:
        """Working memory of one product with ``n_vectors`` vectors (tiles, accumulators, copies of V)."""
        p = self.shape[0]
        item = self.compute_dtype.itemsize
        return int(self.threads * (3 * self.block**2 * item + (self.block + p) * n_vectors * 8) + 3 * p * n_vectors * 8)

    def rows_times(self, rows: np.ndarray, V: np.ndarray, chunk: int = 16384) -> np.ndarray:
        r"""Rows ``rows`` of :math:`JV` only, ``(len(rows), b)``: costs ``len(rows) * p`` kernel entries.

        Used for a-posteriori residual estimates at widths where a full product is too slow:
        :math:`\|r\|^2 \approx (p/s)\sum_{i\in S} r_i^2` over ``s`` uniformly sampled rows.
        """
        rows = np.asarray(rows, dtype=np.intp)
        V = np.asarray(V, dtype=np.float64).reshape(self.shape[0], -1)
        Vs = V * self.norms[:, None]
        Ur = self.U[:, rows]
        out = np.zeros((rows.size, V.shape[1]))
        for c0 in range(0, self.shape[0], chunk):
            cols = slice(c0, min(c0 + chunk, self.shape[0]))
            K = Ur.T @ self.U[:, cols]
            two_pi_kappa_tile(K, Ur, self.U[:, cols], np.empty_like(K), np.empty_like(K))
            same = np.flatnonzero((rows >= cols.start) & (rows < cols.stop))
            K[same, rows[same] - c0] = math.pi  # exact diagonal
            out += K @ Vs[cols]
        out *= (self.norms[rows] * (_INV_2PI / self.sigma**2))[:, None]
        return out

    # -- products
    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._matmat(np.asarray(x).reshape(-1, 1)).ravel()

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._matvec(x)

    def _adjoint(self) -> FisherOperator:
        return self

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64)
        if V.ndim == 1:
            V = V[:, None]
        self.products += V.shape[1]
        Vs = np.ascontiguousarray(V * self.norms[:, None])  # D V
        if self.backend == "torch":
            out = self._matmat_torch(Vs)
        else:
            out = self._matmat_numpy(Vs)
        out *= (self.norms * (_INV_2PI / self.sigma**2))[:, None]
        return out

    def _matmat_numpy(self, Vs: np.ndarray) -> np.ndarray:
        p = self.shape[0]
        tile = self.block
        tiles = _upper_tiles(p, tile)
        n_workers = max(1, min(self.threads, len(tiles)))
        U = self.U
        accs = [np.zeros_like(Vs) for _ in range(n_workers)]
        nv = Vs.shape[1]
        bufs = [(np.empty((tile, tile)), np.empty((tile, tile)), np.empty((tile, tile)), np.empty((tile, nv)))
                for _ in range(n_workers)]
        done = [0]
        tile_queue = iter(range(len(tiles)))  # next() is atomic under the GIL

        def run(worker: int) -> None:
            acc = accs[worker]
            Kbuf, Sbuf, S2buf, Pbuf = bufs[worker]
            while True:
                try:
                    t = next(tile_queue)
                except StopIteration:
                    return
                i, j = tiles[t]
                ri, rj = slice(i, min(i + tile, p)), slice(j, min(j + tile, p))
                m, n = ri.stop - ri.start, rj.stop - rj.start
                K = Kbuf[:m, :n]
                np.matmul(U[:, ri].T, U[:, rj], out=K)
                two_pi_kappa_tile(K, U[:, ri], U[:, rj], Sbuf[:m, :n], S2buf[:m, :n])
                if i == j:
                    np.fill_diagonal(K, math.pi)  # 2 pi kappa(1): exact diagonal ||w_i||^2 / 2
                acc[ri] += np.matmul(K, Vs[rj], out=Pbuf[:m])
                if i != j:
                    acc[rj] += np.matmul(K.T, Vs[ri], out=Pbuf[:n])
                done[0] += 1
                if self.progress is not None:
                    self.progress(done[0], len(tiles))

        if n_workers == 1:
            with single_threaded_blas():  # tile-sized GEMMs: BLAS threads only add synchronisation
                run(0)
        else:
            with single_threaded_blas(), ThreadPoolExecutor(max_workers=n_workers) as pool:
                list(pool.map(run, range(n_workers)))
        out = accs[0]
        for a in accs[1:]:
            out += a
        return out

    # -- torch backend
    def _setup_torch(self) -> None:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError("backend='torch' needs PyTorch: pip install 'relufim[torch]'.") from exc
        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda":  # pragma: no cover - no GPU in CI
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        tdtype = torch.float64 if self.compute_dtype == np.float64 else torch.float32
        self._tdtype = tdtype
        self._U_t = torch.as_tensor(self.U, dtype=tdtype, device=self.device)

    def _matmat_torch(self, Vs: np.ndarray) -> np.ndarray:
        torch = self._torch
        p = self.shape[0]
        tile = self.block
        U = self._U_t
        V = torch.as_tensor(Vs, dtype=self._tdtype, device=self.device)
        out = torch.zeros_like(V)
        K = torch.empty((tile, tile), dtype=self._tdtype, device=self.device)
        S = torch.empty_like(K)
        tiles = _upper_tiles(p, tile)
        for n_done, (i, j) in enumerate(tiles, start=1):
            ri, rj = slice(i, min(i + tile, p)), slice(j, min(j + tile, p))
            m, n = ri.stop - ri.start, rj.stop - rj.start
            Kt, St = K[:m, :n], S[:m, :n]
            torch.mm(U[:, ri].T, U[:, rj], out=Kt)
            # locate near-antiparallel pairs only in the rare tiles that have one (one scalar sync)
            anti = (Kt < ANTIPARALLEL_THRESHOLD).nonzero() if float(Kt.min()) < ANTIPARALLEL_THRESHOLD else None
            Kt.clamp_(-1.0, 1.0)
            torch.arcsin(Kt, out=St)
            St.add_(_HALF_PI).mul_(Kt)
            Kt.mul_(Kt).neg_().add_(1.0).sqrt_().add_(St)
            if anti is not None:
                ii, jj = anti[:, 0].cpu().numpy(), anti[:, 1].cpu().numpy()
                fixed = two_pi_kappa_from_sum_norm(np.linalg.norm(self.U[:, i + ii] + self.U[:, j + jj], axis=0))
                Kt[anti[:, 0], anti[:, 1]] = torch.as_tensor(fixed, dtype=self._tdtype, device=self.device)
            if i == j:
                Kt.fill_diagonal_(math.pi)
                out[ri] += Kt @ V[rj]
            else:
                out[ri] += Kt @ V[rj]
                out[rj] += Kt.T @ V[ri]
            if self.progress is not None:
                self.progress(n_done, len(tiles))
        return out.to("cpu", dtype=torch.float64).numpy().copy()


def _default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def fisher_operator(W: np.ndarray, *, block: int | None = None, backend: str = "numpy",
                    dtype: str | np.dtype = "float64", sigma: float = 1.0,
                    activation: str | Activation = "relu", threads: int | None = None,
                    progress: Progress | None = None) -> FisherOperator:
    r"""The exact FIM :math:`J/\sigma^2` (Lemma 1, DESIGN §2) as a matrix-free ``LinearOperator``.

    Construction is cheap (column norms and unit columns, ``O(dp)``); each product
    :math:`JV` recomputes the kernel tile by tile and never stores ``p x p``.

    Parameters
    ----------
    W : array (d, p)
        Hidden weights.
    block : int, optional
        Tile edge, capped at ``p``; working memory per thread is ``3 block^2`` numbers (the
        tile and two scratch tiles) plus one ``p x b`` accumulator for ``b`` vectors. Default 384 with ``backend="numpy"``: tiles
        that stay in the core's cache are fastest (at p = 20 000 a product with 8 (73) vectors
        takes 0.45 s (0.89 s) with 384, against 0.86 s (1.47 s) with 2048). Default 4096 with
        ``backend="torch"``, whose tiles are dispatched one by one from Python: on a GPU each
        tile must carry enough work to hide that.
    backend : {"numpy", "torch"}
        ``"numpy"``: tiles shared among ``threads`` threads (in-place kernel, BLAS products).
        ``"torch"``: the same tiles with PyTorch, on CUDA when available (TF32 off), else CPU.
    dtype : {"float64", "float32"}
        Compute precision of the kernel tiles; ``"float32"`` only with ``backend="torch"``
        (products are accurate to about 1e-6 relative then; float64 is exact to round-off).
    sigma : float
        Noise standard deviation; the operator is :math:`J/\sigma^2`.
    activation : str
        Only ``"relu"`` (closed-form arc-cosine kernel) is supported matrix-free.
    threads : int, optional
        Worker threads of the numpy backend (default: the number of CPU cores, at most 8).
    progress : callable(done, total), optional
        Called after each tile of each product.

    Returns
    -------
    FisherOperator
        With ``matmat``, exact ``diagonal()`` and ``trace()``.

    Notes
    -----
    Numerics as in :func:`relufim.fisher_matrix`: cosines clipped to [-1, 1], the diagonal
    set exactly, and pairs with :math:`t < -0.99` recomputed from :math:`\|u+v\|`.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(d=3, p=300, seed=0)
    >>> J = rf.fisher_operator(W, block=128)
    >>> V = np.random.default_rng(0).standard_normal((300, 4))
    >>> bool(np.allclose(J @ V, rf.fisher_matrix(W) @ V, rtol=1e-12, atol=1e-13))
    True
    """
    W = check_weights(W)
    sigma = check_sigma(sigma)
    act = get_activation(activation)
    if act.name not in SUPPORTED_ACTIVATIONS:
        raise ValueError(f"fisher_operator supports activation in {SUPPORTED_ACTIVATIONS}, got {act.name!r}; "
                         "use relufim.fisher_matrix(W, activation=...) for a dense matrix.")
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}.")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be 'float64' or 'float32', got {dtype!r}.") from exc
    if dt not in (np.float64, np.float32):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dt}.")
    if dt == np.float32 and backend != "torch":
        raise ValueError("dtype='float32' is only offered with backend='torch' (TF32 off); use float64 with numpy.")
    if block is None:
        block = 4096 if backend == "torch" else 384
    block = check_positive_int(block, "block")
    threads = _default_threads() if threads is None else check_positive_int(threads, "threads")
    op = FisherOperator(W, sigma=sigma, block=block, backend=backend, dtype=dt, threads=threads, progress=progress)
    check_memory(op.memory_bytes(1), f"fisher_operator tiles of {op.block}", "use a smaller block")
    return op


# ----------------------------------------------------------------------------- t-series (structured route)

def _monomials(d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Index tuples (n, k) of the degree-k monomials in d variables and sqrt of their multinomial weights."""
    if k == 0:
        return np.zeros((1, 0), dtype=np.intp), np.ones(1)
    combos = np.array(list(itertools.combinations_with_replacement(range(d), k)), dtype=np.intp)
    weights = np.empty(combos.shape[0])
    for r, c in enumerate(combos):
        counts = np.bincount(c, minlength=d)
        weights[r] = math.sqrt(math.factorial(k) / math.prod(math.factorial(int(x)) for x in counts))
    return combos, weights


def series_degrees(K: int) -> list[int]:
    """Degrees with nonzero Taylor coefficient up to ``K``: 0, 1, 2, 4, 6, ..."""
    return [k for k in range(K + 1) if k <= 2 or k % 2 == 0]


def n_series_features(d: int, K: int) -> int:
    """Number of explicit features of degree <= K, :math:`\\sum_k \\binom{d+k-1}{k}` over nonzero degrees."""
    return sum(math.comb(d + k - 1, k) for k in series_degrees(K))


def _series_features(U: np.ndarray, norms: np.ndarray, K: int, coeffs: np.ndarray,
                     monos: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    r"""Rows of :math:`F` for a chunk of columns: :math:`\sqrt{a_k}\,\|w\|\,u^{\otimes k}` (symmetrised), shape (N, m)."""
    parts = []
    for k, (combos, weights) in zip(series_degrees(K), monos):
        if k == 0:
            f = np.ones((1, U.shape[1]))
        else:
            f = U[combos[:, 0]].copy()
            for c in range(1, k):
                f *= U[combos[:, c]]
        f *= (weights * math.sqrt(coeffs[k]))[:, None]
        parts.append(f)
    F = np.vstack(parts)
    F *= norms[None, :]
    return F


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
        r"""Davis–Kahan: :math:`\sin\Theta \le \epsilon/(\mathrm{gap}-\epsilon)` for an eigenspace separated by ``gap``."""
        return float(self.tail_bound / (gap - self.tail_bound)) if gap > self.tail_bound else float("inf")


def series_fisher(W: np.ndarray, k: int, *, degree: int = 4, sigma: float = 1.0, vectors: bool = True,
                  chunk: int = 16384, progress: Progress | None = None) -> SeriesFisher:
    r"""Top ``k`` eigenpairs of the t-series truncation :math:`J_K` of the ReLU FIM, streamed over ``p``.

    :math:`J = \sum_k a_k D (U^\top U)^{\circ k} D` (DESIGN §2); the terms of degree
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
        Also return the eigenvectors :math:`F^\top s/\sqrt\lambda` (a second streamed pass).
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
    norms = column_norms(W)
    U = W / np.where(norms > 0, norms, 1.0)
    coeffs = arccos_kernel_series_coefficients(degree + 1)
    degs = series_degrees(degree)
    monos = [_monomials(d, kk) for kk in degs]
    G = np.zeros((N, N))
    starts = range(0, p, chunk)
    total = len(starts) * (2 if vectors else 1)
    for s, c0 in enumerate(starts, start=1):
        F = _series_features(U[:, c0:c0 + chunk], norms[c0:c0 + chunk], degree, coeffs, monos)
        G += F @ F.T
        if progress is not None:
            progress(s, total)
    G = 0.5 * (G + G.T)
    evals, S = np.linalg.eigh(G)
    evals, S = evals[::-1], S[:, ::-1]
    # lambda_max of D T^{oK} D = lambda_max of the degree-K diagonal block of G divided by a_K
    nK = math.comb(d + degree - 1, degree)
    top_K = float(np.linalg.eigvalsh(G[N - nK:, N - nK:])[-1]) / coeffs[degree]
    tail = max(0.5 - float(coeffs.sum()), 0.0) * top_K
    lam = np.clip(evals[:k], 0.0, None)
    V = None
    if vectors:
        V = np.empty((p, k))
        scale = np.where(lam > 0, 1.0 / np.sqrt(np.where(lam > 0, lam, 1.0)), 0.0)
        Sk = S[:, :k] * scale
        for s, c0 in enumerate(starts, start=len(starts) + 1):
            F = _series_features(U[:, c0:c0 + chunk], norms[c0:c0 + chunk], degree, coeffs, monos)
            V[c0:c0 + chunk] = F.T @ Sk
            if progress is not None:
                progress(s, total)
    s2 = sigma * sigma
    return SeriesFisher(eigenvalues=lam / s2, eigenvectors=V, degree=degree, n_features=N,
                        tail_bound=tail / s2, gram_eigenvalues=np.clip(evals, 0.0, None) / s2)

r"""The Fisher information of the output weights ``v`` (DESIGN §1–2).

``I = J / sigma^2`` with :math:`J = E_x[X(x)^\top X(x)]`, :math:`X(x) = \phi(xW)`.
For ReLU, Lemma 1 of the 2023 paper gives every entry in closed form,

.. math::  J_{ij} = \|w_i\|\,\|w_j\|\,\kappa(t_{ij}),\qquad t_{ij} = \cos\angle(w_i, w_j),

with :math:`J_{ii} = \|w_i\|^2/2` and :math:`\operatorname{tr} J = \|W\|_F^2/2`.
Sampled versions: Monte Carlo over fresh Gaussian inputs, and the empirical FIM on
a user's inputs.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._threads import single_threaded_blas
from ._validation import check_dense_fits, check_inputs, check_positive_int, check_sigma, check_weights
from .activations import Activation, get_activation
from .kernels import two_pi_kappa_tile

__all__ = [
    "fisher_matrix",
    "monte_carlo_fisher",
    "empirical_fisher",
    "hidden_features",
    "column_norms",
    "gaussian_input_chunks",
]

Progress = Callable[[int, int], None]

_INV_2PI = 1.0 / (2.0 * np.pi)

#: Rows per strip when a tile is mirrored into the lower triangle.
_MIRROR_STRIP = 32


def column_norms(W: np.ndarray) -> np.ndarray:
    r""":math:`\|w_i\|` for each column of ``W`` (shape ``(p,)``)."""
    return np.sqrt(np.einsum("ij,ij->j", W, W))


def _unit_columns(W: np.ndarray, norms: np.ndarray) -> np.ndarray:
    safe = np.where(norms > 0, norms, 1.0)
    return W / safe


def _upper_tiles(p: int, tile: int) -> list[tuple[int, int]]:
    starts = range(0, p, tile)
    return [(i, j) for i in starts for j in starts if j >= i]


def _fill_symmetric_tiles(out: np.ndarray, p: int, tile: int,
                          compute: Callable[[int, int, slice, slice], np.ndarray],
                          progress: Progress | None) -> None:
    """Fill the symmetric ``out`` from ``compute(b, i, rows, cols)`` on the upper-triangle tiles, on all cores.

    Each tile is mirrored while in cache, in strips of ``_MIRROR_STRIP`` rows (a whole-tile
    transposed write strides over too many cache lines at once); a diagonal tile is
    symmetrised from its upper half, since its GEMM need not be exactly symmetric. ``b`` is
    the tile's index in the order of the tiling. ``compute`` may return a per-thread buffer:
    it is copied out before that thread computes its next tile.
    """
    tiles = _upper_tiles(p, tile)
    n_workers = max(1, min(len(tiles), os.cpu_count() or 1))
    done = [0]

    def work(item: tuple[int, tuple[int, int]]) -> None:
        b, (i, j) = item
        rows, cols = slice(i, min(i + tile, p)), slice(j, min(j + tile, p))
        K = compute(b, i, rows, cols)
        if j == i:
            K = np.triu(K) + np.triu(K, 1).T
        out[rows, cols] = K
        if j != i:
            for a in range(0, K.shape[0], _MIRROR_STRIP):
                strip = K[a:a + _MIRROR_STRIP]
                out[cols, i + a:i + a + strip.shape[0]] = strip.T
        done[0] += 1
        if progress is not None:
            progress(done[0], len(tiles))

    with single_threaded_blas(), ThreadPoolExecutor(max_workers=n_workers) as pool:
        list(pool.map(work, enumerate(tiles)))


def _relu_fisher_into(W: np.ndarray, out: np.ndarray, tile: int, progress: Progress | None) -> None:
    """Fill ``out`` with J (ReLU): cosines by GEMM, kappa in place, exact diagonal.

    Per tile: one GEMM into a per-thread buffer, then :func:`relufim.kernels.two_pi_kappa_tile`
    in place (the factor 1/(2 pi) rides on the row and column scalings), no allocation.
    """
    p = W.shape[1]
    norms = column_norms(W)
    U = _unit_columns(W, norms)
    UT = np.ascontiguousarray(U.T)
    scale = norms * math.sqrt(_INV_2PI)  # J_ij = scale_i scale_j 2 pi kappa(t_ij)
    local = threading.local()

    def compute(b: int, i: int, rows: slice, cols: slice) -> np.ndarray:
        bufs = getattr(local, "bufs", None)
        if bufs is None:
            edge = min(tile, p)
            bufs = local.bufs = tuple(np.empty((edge, edge)) for _ in range(3))
        m, n = rows.stop - rows.start, cols.stop - cols.start
        K, s1, s2 = (buf[:m, :n] for buf in bufs)
        np.matmul(UT[rows], U[:, cols], out=K)  # cosines
        two_pi_kappa_tile(K, U[:, rows], U[:, cols], s1, s2)
        K *= scale[rows, None]
        K *= scale[None, cols]
        return K

    _fill_symmetric_tiles(out, p, tile, compute, progress)
    idx = np.arange(p)
    out[idx, idx] = 0.5 * norms * norms  # exact diagonal


def _generic_fisher_into(W: np.ndarray, act: Activation, out: np.ndarray, block: int,
                         progress: Progress | None) -> None:
    r"""Fill ``out`` with J for an activation other than ReLU, tile by tile over the upper triangle.

    * Homogeneous activations with a closed form (leaky ReLU, abs): :math:`J_{ij} =
      \|w_i\|\|w_j\|k(t_{ij})` with the unit dual ``k`` of the activation.
    * Others: Mehler's series :math:`J = \sum_{n\le K}(\hat c_n\hat c_n^\top)\circ T^{\circ n}`
      (DESIGN §7), Horner in the cosines ``T``, with per-column Hermite coefficients from
      :func:`relufim.activations.mehler_truncation`. The truncation error of each entry is at most
      :math:`|t_{ij}|^{K+1}\sqrt{\tau_i\tau_j}` (Cauchy–Schwarz on the Parseval tails), kept
      below ``1e-13`` of the largest diagonal entry when ``K <= 200`` suffices (an
      ``AccuracyWarning`` reports the bound otherwise). Measured against nested adaptive
      quadrature: relative errors <= 1e-14 for softplus, GELU, tanh, erf at norms up to 1
      (up to 3 for softplus and GELU), where a direct 64 x 64 Gauss–Hermite rule is off
      by 1e-10 (tanh, r = 1) to 1e-3 (tanh, erf, r = 3); see ``relufim.activations``.
    * Closed-form non-homogeneous duals (erf) are evaluated directly.

    The diagonal is set from the exact second moments :math:`E\phi(\|w_i\|z)^2`.
    """
    from .activations import gaussian_second_moment, mehler_truncation, warn_if_truncated

    p = W.shape[1]
    norms = column_norms(W)
    U = _unit_columns(W, norms)
    block = max(block, 512)  # elementwise passes per term: larger tiles amortize the Python overhead
    n_tiles = len(_upper_tiles(p, block))
    if act.homogeneous and act.unit_dual is not None:
        def entries(T: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
            K = np.asarray(act.unit_dual(T), dtype=np.float64)
            K *= norms[rows, None]
            K *= norms[None, cols]
            return K
        diag = gaussian_second_moment(act, norms)
        bounds = None
    elif act.closed_form:
        def entries(T: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
            return np.asarray(act.dual(norms[rows, None], norms[None, cols], T), dtype=np.float64)
        diag = gaussian_second_moment(act, norms)
        bounds = None
    else:
        C, tail, diag = mehler_truncation(act, norms)
        order = C.shape[1]
        sqrt_tail = np.sqrt(tail)
        bounds = [0.0] * n_tiles

        def entries(T: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
            acc = np.multiply.outer(C[rows, order - 1], C[cols, order - 1])
            for n in range(order - 2, -1, -1):
                acc *= T
                acc += np.multiply.outer(C[rows, n], C[cols, n])
            return acc

    def compute(b: int, i: int, rows: slice, cols: slice) -> np.ndarray:
        T = np.clip(U[:, rows].T @ U[:, cols], -1.0, 1.0)
        K = entries(T, rows, cols)
        if bounds is not None:
            off = np.abs(T)
            if cols.start == i:
                np.fill_diagonal(off, 0.0)
            tmax = float(off.max(initial=0.0))
            bounds[b] = tmax ** order * float(sqrt_tail[rows].max(initial=0.0) * sqrt_tail[cols].max(initial=0.0))
        return K

    _fill_symmetric_tiles(out, p, block, compute, progress)
    idx = np.arange(p)
    out[idx, idx] = diag
    if bounds is not None:
        warn_if_truncated(act, max(bounds, default=0.0), float(np.max(diag, initial=0.0)), stacklevel=4)


def fisher_matrix(W: np.ndarray, *, sigma: float = 1.0, activation: str | Activation = "relu",
                  block: int | None = None, out: np.ndarray | None = None,
                  progress: Progress | None = None) -> np.ndarray:
    r"""Exact Fisher information matrix of ``v``, :math:`I = J/\sigma^2` (DESIGN §2, Lemma 1).

    Parameters
    ----------
    W : array of shape (d, p)
        Hidden weights; column ``i`` is hidden unit ``i``.
    sigma : float, default 1.0
        Output-noise standard deviation; ``sigma=1`` returns ``J`` itself.
    activation : str or Activation, default "relu"
        ReLU uses the closed form :math:`J_{ij} = \|w_i\|\|w_j\|\kappa(t_{ij})`; other
        registered activations use their dual kernel.
    block : int, optional
        Tile size (default 256): memory ``O(block^2)`` per thread beyond the output.
    out : array (p, p), optional
        C-contiguous float64 buffer to fill and return. Reusing one across calls (several seeds
        of a sweep) avoids first-touch page faults on a fresh ``8 p^2``-byte array, which on this
        kind of machine cost more than the whole computation (0.8 s for 800 MB at p = 10^4).
    progress : callable(done, total), optional
        Called after each block.

    Returns
    -------
    numpy.ndarray
        ``(p, p)`` symmetric, entrywise nonnegative (ReLU) float64 matrix.

    Notes
    -----
    The cosines come from GEMMs of the unit columns; :math:`\kappa` is evaluated in
    place tile by tile over the upper triangle on all cores (each tile mirrored while
    in cache, so ``J`` is exactly symmetric), with the diagonal set exactly
    (:math:`\|w_i\|^2/2`) and the rare near-antiparallel pairs (``t < -0.99``)
    recomputed from :math:`\|u+v\|` for relative accuracy.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(d=3, p=50, seed=0)
    >>> J = rf.fisher_matrix(W)
    >>> bool(np.isclose(np.trace(J), (W**2).sum() / 2))
    True
    >>> bool((J >= 0).all() and np.allclose(J, J.T))
    True
    """
    W = check_weights(W)
    sigma = check_sigma(sigma)
    act = get_activation(activation)
    p = W.shape[1]
    block = 256 if block is None else check_positive_int(block, "block")
    if out is None:
        check_dense_fits(p, what=f"the dense {p} x {p} FIM")
        out = np.empty((p, p))
    elif not (isinstance(out, np.ndarray) and out.shape == (p, p) and out.dtype == np.float64
              and out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous float64 array of shape ({p}, {p}); "
                         f"got {getattr(out, 'shape', type(out).__name__)}, dtype {getattr(out, 'dtype', None)}.")
    if act.name == "relu":
        _relu_fisher_into(W, out, block, progress)
    else:
        _generic_fisher_into(W, act, out, block, progress)
    if sigma != 1.0:
        out /= sigma * sigma
    return out


def hidden_features(W: np.ndarray, x: np.ndarray, activation: str | Activation = "relu") -> np.ndarray:
    r"""Hidden layer :math:`X = \phi(xW)` for inputs ``x`` of shape ``(n, d)``; returns ``(n, p)``.

    Examples
    --------
    >>> W = np.array([[1.0, -1.0]])
    >>> hidden_features(W, np.array([[2.0], [-3.0]]))
    array([[2., 0.],
           [0., 3.]])
    """
    W = check_weights(W)
    x = check_inputs(x, W.shape[0])
    return get_activation(activation).phi(x @ W)


#: Inputs are drawn in chunks of this many rows, each from its own spawned seed, so the
#: same ``(n, seed)`` gives the same samples whatever batch size a caller uses.
INPUT_CHUNK = 4096


def gaussian_input_chunks(n: int, d: int, seed: int | np.random.SeedSequence | None):
    """Yield the ``n`` standard Gaussian inputs of ``(n, seed)`` as ``(m, d)`` chunks (m <= 4096).

    Deterministic for an integer seed and independent of how the caller batches them,
    so :func:`monte_carlo_fisher` and the Monte Carlo spectrum see the same samples.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    n_chunks = -(-n // INPUT_CHUNK)
    for c, child in enumerate(ss.spawn(n_chunks)):
        m = min(INPUT_CHUNK, n - c * INPUT_CHUNK)
        yield np.random.default_rng(child).standard_normal((m, d))


def monte_carlo_fisher(W: np.ndarray, n: int, *, seed: int | None = None,
                       sigma: float = 1.0, activation: str | Activation = "relu",
                       return_stderr: bool = False, progress: Progress | None = None):
    r"""Monte Carlo FIM :math:`J^{(n)} = \frac1n\sum_t X(x_t)^\top X(x_t)`, :math:`x_t\sim N(0,I_d)`.

    Inputs are drawn and consumed in chunks of 4096 (:func:`gaussian_input_chunks`),
    so memory stays ``O(4096 p + p^2)`` for any ``n``.

    Parameters
    ----------
    W : array (d, p)
    n : int
        Number of Gaussian input samples (>= 1).
    seed : int, optional
        Seed of the input stream (the same samples as ``spectrum(W, fisher="monte-carlo")``).
    sigma : float
        Returns :math:`J^{(n)}/\sigma^2`.
    activation : str or Activation
    return_stderr : bool
        Also return the entrywise standard error of the mean,
        :math:`\sqrt{(\overline{(X_iX_j)^2} - \overline{X_iX_j}^2)/(n-1)}` (needs ``n >= 2``).
    progress : callable(done, total), optional

    Returns
    -------
    J_n : numpy.ndarray (p, p)
    stderr : numpy.ndarray (p, p), only if ``return_stderr``

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 5, seed=0)
    >>> Jn, se = rf.monte_carlo_fisher(W, n=20000, seed=1, return_stderr=True)
    >>> bool(np.all(np.abs(Jn - rf.fisher_matrix(W)) < 6 * se + 1e-12))
    True
    """
    W = check_weights(W)
    n = check_positive_int(n, "n")
    sigma = check_sigma(sigma)
    act = get_activation(activation)
    d, p = W.shape
    if return_stderr and n < 2:
        raise ValueError("return_stderr=True needs n >= 2 samples.")
    check_dense_fits(p, what=f"the dense {p} x {p} Monte Carlo FIM", copies=2.0 if return_stderr else 1.0,
                     alternative="use relufim.spectrum(W, method='monte-carlo') which never forms it, or a smaller p")
    acc = np.zeros((p, p))
    acc2 = np.zeros((p, p)) if return_stderr else None
    steps = -(-n // INPUT_CHUNK)
    for s, x in enumerate(gaussian_input_chunks(n, d, seed)):
        X = act.phi(x @ W)
        acc += X.T @ X
        if acc2 is not None:
            X2 = X * X
            acc2 += X2.T @ X2
        if progress is not None:
            progress(s + 1, steps)
    acc /= n
    scale = 1.0 / (sigma * sigma)
    if acc2 is None:
        return acc * scale if scale != 1.0 else acc
    acc2 /= n
    var = np.maximum(acc2 - acc * acc, 0.0) * (n / (n - 1))
    return acc * scale, np.sqrt(var / n) * scale


def empirical_fisher(W: np.ndarray, x: np.ndarray, *, sigma: float = 1.0,
                     activation: str | Activation = "relu") -> np.ndarray:
    r"""Empirical FIM on the user's inputs ``x`` (n, d): :math:`\frac{1}{n\sigma^2} X^\top X`.

    Its nonzero spectrum equals that of the ``n x n`` Gram :math:`XX^\top/(n\sigma^2)`;
    :func:`relufim.spectrum` uses the cheaper side.

    Examples
    --------
    >>> W = np.eye(2)
    >>> empirical_fisher(W, np.array([[1.0, 2.0], [-1.0, 1.0]]))
    array([[0.5, 1. ],
           [1. , 2.5]])
    """
    W = check_weights(W)
    x = check_inputs(x, W.shape[0])
    sigma = check_sigma(sigma)
    p = W.shape[1]
    check_dense_fits(p, what=f"the dense {p} x {p} empirical FIM")
    X = get_activation(activation).phi(x @ W)
    return (X.T @ X) / (x.shape[0] * sigma * sigma)

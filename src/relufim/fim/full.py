r"""The exact Fisher information of all parameters, both layers (theory §15).

For :math:`f(x) = \sum_j v_j\,\mathrm{ReLU}(w_j\cdot x)` with parameters
:math:`\theta = (v_1,\dots,v_p, w_1,\dots,w_p)` (``P = p(d+1)``: the readout first, then the
columns of ``W`` one after another), :math:`F = E_x[\nabla_\theta f\,\nabla_\theta f^\top]` for
:math:`x\sim N(0, I_d)` and the FIM is :math:`F/\sigma^2`.

One factorisation carries everything here (theory §15.3). Per hidden unit,
:math:`\nabla_{(v_j, w_j)} f = \mathbf 1[w_j\cdot x>0]\,L_j x` with the ``(d+1) x d`` matrix
:math:`L_j = \binom{w_j^\top}{v_j I_d}`, so

.. math::  F = L\,M\,L^\top,\qquad M_{ij} = E\big[\mathbf 1[w_i\cdot x>0]\,\mathbf 1[w_j\cdot x>0]\,xx^\top\big]
           = \kappa_0(\theta_{ij})\,I + G_{ij},

with :math:`\kappa_0(\theta) = (\pi-\theta)/(2\pi)` and :math:`G_{ij}` of rank two in the plane of
:math:`e_i, e_j` (theory §15.2). The blocks of ``F`` follow: :math:`F_{v_iv_j} = r_ir_j\kappa(\theta_{ij})`
(= ``J``), :math:`F_{v_i,w_j} = v_jr_i[\kappa_0e_i + \tfrac{\sin\theta}{2\pi}e_j]`,
:math:`F_{w_i,w_j} = v_iv_jM_{ij}`. A product :math:`Fu` is :math:`c = L^\top u` (``c_j = a_jw_j + v_jb_j``),
:math:`y = Mc`, :math:`Fu = Ly`, and the null space contains the ``p`` rescaling directions
:math:`z_j` that span :math:`\ker L^\top`.

Every pass over pairs of units goes through the tile scheduler :func:`relufim.fim.tiles.run_tiles`:
one GEMM of unit columns per tile gives the cosines, from which :math:`\theta`, :math:`\sin\theta`,
:math:`\kappa_0` (and :math:`\kappa` for the dense ``v`` block, by the library's one formula
:func:`~relufim.model.kernels.two_pi_kappa_inplace`) are evaluated in place. Pairs with
:math:`|t| > 0.99` take their angle from :math:`\|e_i\mp e_j\|` and their :math:`G_{ij}` from the
stable form of theory §15.2 (no :math:`1/\sin\theta`); the others use
:math:`G_{ij} = [e_ie_j^\top + e_je_i^\top - t(e_ie_i^\top + e_je_j^\top)]/(2\pi\sin\theta)`, whose
:math:`1/\sin\theta\le 7.1` there.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import (
    check_dense_fits,
    check_float_dtype,
    check_inputs,
    check_memory,
    check_positive_int,
    check_sigma,
    check_vector,
    check_weights,
    format_bytes,
)
from ..model.kernels import ANTIPARALLEL_THRESHOLD, two_pi_kappa_from_sum_norm, two_pi_kappa_inplace
from ..model.weights import column_norms, unit_columns
from .distributed import RowBlockOperator, check_client, check_workers_fit, plan_row_blocks, worker_address
from .sampled import StreamedGram, gaussian_input_chunks, input_chunk_count, input_chunks
from .series import SeriesPreconditioner
from .tiles import (
    NumpyBackend,
    SymmetricProductOperator,
    default_threads,
    run_tiles,
    symmetrize_upper,
    upper_tiles,
    write_mirrored,
)

__all__ = [
    "FullFisherOperator",
    "DistributedFullFisherOperator",
    "distributed_full_block",
    "full_fisher_matrix",
    "full_fisher_operator",
    "full_gradients",
    "full_monte_carlo_fisher",
    "full_empirical_fisher",
    "rescaling_directions",
    "full_hermite_features",
    "full_series_preconditioner",
    "n_full_hermite_features",
    "hermite_square_norms",
    "HERMITE_DEGREES",
    "step_kernel_matrix",
    "full_parameter_count",
    "check_network",
    "NEAR_THRESHOLD",
]

Progress = Callable[[int, int], None]

_TWO_PI = 2.0 * math.pi
_INV_2PI = 1.0 / _TWO_PI

NEAR_THRESHOLD = -ANTIPARALLEL_THRESHOLD
r"""Pairs whose cosine exceeds this in absolute value take their angle from :math:`\|e_i\mp e_j\|` and
their rank-two part from the stable form (theory §15.2); the same threshold as the ``v`` block's
antiparallel care (:data:`relufim.model.kernels.ANTIPARALLEL_THRESHOLD`)."""

#: Tile edge of the dense build (a ``w``-``w`` tile is ``(block d)^2`` numbers) and of the products.
_DENSE_BLOCK = 64
_PRODUCT_BLOCK = 256

#: Numbers of the :math:`\alpha_{ij} = e_i\cdot c_j` block of one vector in a product (512 KB per thread: in cache).
_ALPHA_ENTRIES = 1 << 16

#: Numbers per near pair and coordinate that the size of a chunk of near pairs allows for their angle data
#: beside its ``(d, width)`` arrays (:func:`_near_chunk_pairs`): the larger, the smaller the chunks.
_NEAR_VECTORS = 8

_FLOAT64 = np.dtype(np.float64)

try:  # the alpha terms of a product fused into one pass (optional: built with the package where a C compiler is found)
    from scipy.linalg import cython_blas

    from . import _calpha

    _DGEMM = cython_blas.__pyx_capi__["dgemm"]  # SciPy's BLAS, called from _calpha without the GIL
except (ImportError, AttributeError, KeyError):  # pragma: no cover - depends on the installation
    _calpha = _DGEMM = None

#: Columns per tile the compiled alpha terms take (its scratch row); wider tiles use the NumPy passes.
_CALPHA_MAX_COLUMNS = 4096


def full_parameter_count(d: int, p: int) -> int:
    """Number of parameters ``P = p (d + 1)`` of the network (``p`` readout weights, ``p d`` hidden weights).

    Examples
    --------
    >>> full_parameter_count(10, 2000)
    22000
    """
    return check_positive_int(p, "p") * (check_positive_int(d, "d") + 1)


# ----------------------------------------------------------------------------- validation and geometry

def check_network(W: Any, v: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate hidden weights ``W`` (d, p), d < p, and output weights ``v`` (p,), finite; float64 copies-or-views."""
    W = check_weights(W)
    v = check_vector(v, W.shape[1], "v", what="the p = {p} hidden units (columns) of W: one output weight each")
    return W, v


@dataclass(frozen=True)
class _Units:
    """Per-unit data every pass reads: norms, unit columns (both layouts), the effective readout."""

    W: np.ndarray
    r: np.ndarray
    E: np.ndarray  # (d, p) unit columns (zero for a zero column)
    ET: np.ndarray  # (p, d), C-contiguous
    v: np.ndarray  # readout times the mask of nonzero columns: a dead unit has a zero gradient

    @classmethod
    def of(cls, W: np.ndarray, v: np.ndarray) -> _Units:
        r = column_norms(W)
        E = unit_columns(W, r)
        return cls(W=W, r=r, E=E, ET=np.ascontiguousarray(E.T), v=np.where(r > 0, v, 0.0))

    @property
    def d(self) -> int:
        return self.W.shape[0]

    @property
    def p(self) -> int:
        return self.W.shape[1]


@dataclass(frozen=True)
class _NearChunk:
    r"""Stably computed angle data of a chunk of a tile's near pairs (theory §15.2).

    ``ii, jj`` index the tile; ``gi, gj`` the units. ``k0`` is :math:`\kappa_0`, ``s`` is
    :math:`\sin\theta`, ``t`` the cosine; :meth:`two_pi_kappa` and :meth:`rank_two` form the rest
    for the passes that need them from ``e_i`` (``ei``), :math:`e_j \mp e_i` (``diff``, parallel or
    antiparallel), its norm ``h`` and :math:`1 \mp t` (``one_mp``).
    """

    ii: np.ndarray
    jj: np.ndarray
    gi: np.ndarray
    gj: np.ndarray
    parallel: np.ndarray
    ei: np.ndarray
    diff: np.ndarray
    h: np.ndarray
    one_mp: np.ndarray
    theta: np.ndarray
    k0: np.ndarray
    s: np.ndarray
    t: np.ndarray

    def set_angles(self, K0: np.ndarray, S: np.ndarray) -> None:
        r"""Write the pairs' :math:`\kappa_0` into the tile ``K0`` and their :math:`\sin\theta` into ``S``."""
        K0[self.ii, self.jj] = self.k0
        S[self.ii, self.jj] = self.s

    def two_pi_kappa(self) -> np.ndarray:
        r""":math:`2\pi\kappa = \sin\theta + (\pi - \theta)t`, near :math:`t = -1` from :math:`\|e_i + e_j\|`."""
        return np.where(self.parallel, self.s + (math.pi - self.theta) * self.t, two_pi_kappa_from_sum_norm(self.h))

    def rank_two(self) -> np.ndarray:
        r"""The rank-two parts, ``(n, d, d)``.

        :math:`G = \frac{\sin\theta}{2\pi}[t(e_ie_i^\top - cc^\top) + \sin\theta(e_ic^\top + ce_i^\top)]` with the
        unit vector :math:`c \perp e_i` in the plane from :math:`e_j - te_i = (e_j \mp e_i) \pm (1 \mp t)e_i`,
        whose terms are accurate to round-off of their own size.
        """
        sgn = np.where(self.parallel, -1.0, 1.0)[:, None]
        c = self.diff - sgn * self.one_mp[:, None] * self.ei  # e_j - t e_i
        cn = np.linalg.norm(c, axis=1)
        c = np.divide(c, cn[:, None], out=np.zeros_like(c), where=cn[:, None] > 0)
        G = np.einsum("na,nb->nab", self.ei, self.ei)
        G -= np.einsum("na,nb->nab", c, c)
        G *= self.t[:, None, None]
        cross = np.einsum("na,nb->nab", self.ei, c)
        cross += cross.transpose(0, 2, 1)  # NumPy buffers the overlapping operand
        cross *= self.s[:, None, None]
        G += cross
        G *= (self.s * _INV_2PI)[:, None, None]
        return G


def _near_chunk_pairs(entries: int, d: int, width: int) -> int:
    r"""Near pairs per chunk of a tile of ``entries`` numbers, for a pass with ``(pairs, d, width)`` arrays.

    ``pairs d (width + _NEAR_VECTORS) <= entries`` (at least one pair): each such array of a chunk
    holds at most a tile's worth of numbers and the chunk's angle data a few tiles' worth
    (:func:`_near_memory`), however many pairs of the tile are near (all of them at ``d = 1``).
    """
    return max(1, entries // (d * (width + _NEAR_VECTORS)))


@dataclass(frozen=True)
class _NearPairs:
    r"""The pairs of a tile with :math:`|t| >` ``NEAR_THRESHOLD``: ``mask`` (the tile's shape) at ``rows, cols``.

    Only the mask is kept for the whole tile; the pairs' indices and angle data come a chunk at a
    time (:meth:`chunks`), so that many near pairs (parallel, duplicated or negated units) cost a
    chunk's temporaries, not arrays of the number of pairs.
    """

    mask: np.ndarray
    rows: slice
    cols: slice

    def chunks(self, T: np.ndarray, units: _Units, step: int) -> Iterator[_NearChunk]:
        """The pairs' data in the tile's row-major order, ``step`` pairs at most at a time.

        ``T`` is the tile's clipped cosines (for their signs). Each chunk's pairs come from a strip of
        rows; a row with more near pairs than a chunk is split.
        """
        ends = np.cumsum(np.count_nonzero(self.mask, axis=1))  # near pairs up to the end of each row
        r0 = 0
        while r0 < ends.size:
            before = int(ends[r0 - 1]) if r0 else 0
            r1 = max(r0 + 1, int(np.searchsorted(ends, before + step, side="right")))
            ii, jj = np.nonzero(self.mask[r0:r1])
            ii += r0
            for a in range(0, ii.size, step):
                yield _near_chunk(T, ii[a:a + step], jj[a:a + step], self.rows, self.cols, units)
            r0 = r1

    def in_one_chunk(self, T: np.ndarray, units: _Units) -> _NearChunk:
        """All the pairs' data at once, in the tile's row-major order (the chunks of a step of ``T.size``)."""
        ii, jj = np.nonzero(self.mask)
        return _near_chunk(T, ii, jj, self.rows, self.cols, units)


def _near_pairs(T: np.ndarray, rows: slice, cols: slice) -> _NearPairs | None:
    r"""The near-(anti)parallel pairs of the cosine tile ``T`` of units ``rows`` against ``cols``, none with itself."""
    if not (float(T.max(initial=-1.0)) > NEAR_THRESHOLD or float(T.min(initial=1.0)) < -NEAR_THRESHOLD):
        return None
    mask = np.abs(T) > NEAR_THRESHOLD
    o = rows.start - cols.start  # unit rows.start + i is column i + o of the tile
    np.fill_diagonal(mask[max(0, -o):, max(0, o):], False)
    return _NearPairs(mask=mask, rows=rows, cols=cols) if mask.any() else None


def _near_chunk(T: np.ndarray, ii: np.ndarray, jj: np.ndarray, rows: slice, cols: slice, units: _Units) -> _NearChunk:
    r"""The angles of the near pairs ``ii, jj`` of the cosine tile ``T``, computed stably (theory §15.2).

    The angle comes from :math:`\|e_i - e_j\| = 2\sin(\theta/2)` (parallel) or
    :math:`\|e_i + e_j\| = 2\sin(\delta/2)`, :math:`\delta = \pi - \theta` (antiparallel), both
    relatively accurate where the cosine has lost the small angle.
    """
    gi, gj = ii + rows.start, jj + cols.start
    ei = units.ET[gi]  # (n, d)
    parallel = T[ii, jj] > 0
    diff = units.ET[gj]
    diff += np.where(parallel, -1.0, 1.0)[:, None] * ei  # e_j - e_i or e_j + e_i: accurate small vectors
    h = np.linalg.norm(diff, axis=1)
    half = np.arcsin(np.clip(h / 2.0, 0.0, 1.0))  # theta/2 or delta/2
    theta = np.where(parallel, 2.0 * half, math.pi - 2.0 * half)
    one_mp = 2.0 * np.sin(half) ** 2  # 1 - t (parallel) or 1 + t (antiparallel), from the half angle
    return _NearChunk(ii=ii, jj=jj, gi=gi, gj=gj, parallel=parallel, ei=ei, diff=diff, h=h, one_mp=one_mp,
                      theta=theta, k0=(math.pi - theta) * _INV_2PI, s=np.sin(2.0 * half),
                      t=np.where(parallel, 1.0 - one_mp, one_mp - 1.0))


def _angle_tile(T: np.ndarray, K0: np.ndarray, S: np.ndarray, rows: slice, cols: slice, units: _Units,
                diagonal_tile: bool, set_near: bool = True) -> _NearPairs | None:
    r"""Cosines ``T`` (m x n, clipped in place) -> ``K0`` = :math:`\kappa_0`, ``S`` = :math:`\sin\theta`.

    The near pairs are returned. With ``set_near`` they get their stable values here, a chunk of
    :func:`_near_chunk_pairs` for the angles alone at a time; without it their entries keep the
    values from the cosine, for a caller that forms the chunks anyway and sets them
    (:meth:`_NearChunk.set_angles`), so that each pair's angle is computed once. The diagonal of a
    diagonal tile gets the exact :math:`\kappa_0 = 1/2`, :math:`\sin\theta = 0`.
    """
    if diagonal_tile:
        np.fill_diagonal(T, 0.0)
    np.clip(T, -1.0, 1.0, out=T)
    near = _near_pairs(T, rows, cols)
    np.arccos(T, out=K0)
    K0 *= -_INV_2PI
    K0 += 0.5  # (pi - theta) / (2 pi)
    np.multiply(T, T, out=S)
    np.subtract(1.0, S, out=S)
    np.maximum(S, 0.0, out=S)
    np.sqrt(S, out=S)
    if near is not None and set_near:
        for pairs in near.chunks(T, units, _near_chunk_pairs(T.size, units.d, 1)):
            pairs.set_angles(K0, S)
    if diagonal_tile:
        np.fill_diagonal(T, 1.0)
        np.fill_diagonal(K0, 0.5)
        np.fill_diagonal(S, 0.0)
    return near


def _rank_two_coefficients(T: np.ndarray, S: np.ndarray, A: np.ndarray, B: np.ndarray,
                           near: _NearPairs | None, diagonal_tile: bool) -> None:
    r"""``A`` = :math:`1/(2\pi\sin\theta)`, ``B`` = :math:`\cos\theta/(2\pi\sin\theta)`, zero where ``G`` is explicit.

    :math:`G_{ij} = A_{ij}(e_ie_j^\top + e_je_i^\top) - B_{ij}(e_ie_i^\top + e_je_j^\top)` off the near pairs
    and the diagonal, where :math:`\sin\theta \ge \sqrt{1 - 0.99^2} = 0.141`. ``S`` is the divisor
    and is left with 1 at the near pairs and on the diagonal (every caller has read it before).
    """
    if near is not None:
        S[near.mask] = 1.0  # placeholders: these entries are zeroed below
    if diagonal_tile:
        np.fill_diagonal(S, 1.0)
    np.divide(_INV_2PI, S, out=A)
    np.multiply(T, A, out=B)
    _clear_rank_two(A, B, near, diagonal_tile)


def _clear_rank_two(A: np.ndarray, B: np.ndarray, near: _NearPairs | None, diagonal_tile: bool) -> None:
    """Zero ``A`` and ``B`` at the near pairs (their stable ``G`` is added explicitly) and on a diagonal tile."""
    if near is not None:
        A[near.mask] = 0.0
        B[near.mask] = 0.0
    if diagonal_tile:
        np.fill_diagonal(A, 0.0)
        np.fill_diagonal(B, 0.0)


# ----------------------------------------------------------------------------- the dense matrix

def _dense_memory(P: int) -> float:
    return 8.0 * P * P


def full_fisher_matrix(W: np.ndarray, v: np.ndarray, sigma: float = 1.0, *, block: int | None = None,
                       threads: int | None = None, progress: Progress | None = None) -> np.ndarray:
    r"""The exact FIM of all parameters :math:`\theta = (v, w_1, \dots, w_p)`, dense, ``P x P`` (theory §15).

    Parameters
    ----------
    W : array (d, p), d < p
        Hidden weights; column ``j`` is unit ``j``.
    v : array (p,)
        Output weights.
    sigma : float
        Output-noise standard deviation: the FIM is :math:`F/\sigma^2`.
    block : int, optional
        Units per tile (default 64): a tile of the ``w``-``w`` block holds ``(block d)^2`` numbers.
    threads : int, optional
        Worker threads (default: the CPU cores, at most 8).
    progress : callable(done, total), optional
        Called after each tile.

    Returns
    -------
    numpy.ndarray
        ``(P, P)`` symmetric float64, ``P = p (d + 1)``, in the order ``v_1..v_p`` then ``w_1`` (``d``
        entries), ..., ``w_p``:

        .. math:: F_{v_iv_j} = r_ir_j\kappa(\theta_{ij}),\quad
                  F_{v_i,w_j} = v_jr_i\Big[\kappa_0(\theta_{ij})e_i + \frac{\sin\theta_{ij}}{2\pi}e_j\Big],\quad
                  F_{w_i,w_j} = v_iv_jM_{ij},

        with the exact diagonal blocks :math:`F_{v_iv_i} = r_i^2/2`, :math:`F_{v_i,w_i} = v_iw_i/2`,
        :math:`F_{w_i,w_i} = v_i^2I/2`.

    Raises
    ------
    ValueError
        When ``8 P^2`` bytes would not fit in the available memory (with the numbers and the
        matrix-free alternative :func:`full_fisher_operator`), for ``v`` of the wrong shape or with
        non-finite entries, and for invalid ``W``.

    Notes
    -----
    One pass of :func:`~relufim.fim.tiles.run_tiles` over the upper-triangle tiles of unit pairs: per
    tile one GEMM of unit columns, :math:`\theta, \sin\theta, \kappa_0` and :math:`2\pi\kappa`
    (:func:`~relufim.model.kernels.two_pi_kappa_inplace`) in place, the four kinds of blocks formed
    from them and each written with its mirror image (so ``F`` is exactly symmetric).

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(d=3, p=20, seed=0)
    >>> v = np.random.default_rng(1).standard_normal(20)
    >>> F = full_fisher_matrix(W, v)
    >>> F.shape, bool(np.array_equal(F, F.T))
    ((80, 80), True)
    >>> bool(np.isclose(np.trace(F), (W**2).sum() / 2 + 3 * (v**2).sum() / 2))
    True
    >>> z = rescaling_directions(W, v)          # the rescaling symmetry: F z_j = 0
    >>> bool(np.abs(F @ z).max() < 1e-14 * np.abs(F).max())
    True
    """
    W, v = check_network(W, v)
    sigma = check_sigma(sigma)
    d, p = W.shape
    P = p * (d + 1)
    block = _DENSE_BLOCK if block is None else check_positive_int(block, "block")
    threads = default_threads() if threads is None else check_positive_int(threads, "threads")
    tile = min(block, p)
    check_memory(_dense_memory(P) + threads * 12.0 * (tile * d) ** 2 * 8, f"the dense {P} x {P} FIM of all parameters",
                 f"use relufim.full_fisher_operator(W, v) (matrix-free: products and eigenpairs without forming it, "
                 f"{format_bytes(_product_memory(p, d, 1, min(_PRODUCT_BLOCK, p), threads))} per product with one "
                 f"vector) or a smaller p", detail=f" (P = p(d+1) = {P})")
    units = _Units.of(W, v)
    F = np.empty((P, P))
    _fill_dense(F, units, tile, threads, progress)
    if sigma != 1.0:
        F /= sigma * sigma
    return F


def _fill_dense(F: np.ndarray, u: _Units, tile: int, threads: int, progress: Progress | None) -> None:
    d, p = u.d, u.p
    r, v, E, ET = u.r, u.v, u.E, u.ET
    eye = np.eye(d)

    def vw_block(K0: np.ndarray, S: np.ndarray, Ea: np.ndarray, Eb: np.ndarray, ra: np.ndarray,
                 vb: np.ndarray) -> np.ndarray:
        r""":math:`F_{v_a, w_b} = v_b r_a[\kappa_0 e_a + \sin\theta/(2\pi) e_b]`, shape (m, n d)."""
        X = K0[:, :, None] * Ea[:, None, :]
        X += (S * _INV_2PI)[:, :, None] * Eb[None, :, :]
        X *= (ra[:, None] * vb[None, :])[:, :, None]
        return X.reshape(K0.shape[0], -1)

    def work(i0: int, j0: int, bufs: tuple, _acc: Any) -> None:
        ri, rj = slice(i0, min(i0 + tile, p)), slice(j0, min(j0 + tile, p))
        m, n = ri.stop - ri.start, rj.stop - rj.start
        diag = i0 == j0
        T, K0, S, A, B, KA, S2 = (x[:m, :n] for x in bufs[:7])
        X2 = bufs[7][:m * d, :n * d]  # the w-w block
        np.matmul(ET[ri], E[:, rj], out=T)
        if diag:  # its GEMM need not be exactly symmetric: use the upper half for both
            symmetrize_upper(T)
        near = _angle_tile(T, K0, S, ri, rj, u, diag, set_near=False)
        # a tile's near pairs in one chunk, kept for the tile: their (d, d) blocks fill X2 at most, unlike a
        # product's (d, b) ones
        pairs = None if near is None else near.in_one_chunk(T, u)
        if pairs is not None:
            pairs.set_angles(K0, S)
        # v-v: r_i r_j kappa, by the library's one formula (the near pairs' values with the w-w block's)
        KA[...] = T
        two_pi_kappa_inplace(KA, A, S2, keep_one_minus_t=False)
        # v-w and w-v
        X = vw_block(K0, S, ET[ri], ET[rj], r[ri], v[rj])  # rows v_i, columns w_j
        write_mirrored(F, ri, slice(p + rj.start * d, p + rj.stop * d), X)
        if not diag:
            Y = vw_block(K0.T, S.T, ET[rj], ET[ri], r[rj], v[ri])  # rows v_j, columns w_i
            write_mirrored(F, rj, slice(p + ri.start * d, p + ri.stop * d), Y)
        # w-w: v_i v_j [kappa0 I + A (e_i e_j^T + e_j e_i^T) - B (e_i e_i^T + e_j e_j^T)]
        _rank_two_coefficients(T, S, A, B, near, diag)
        vv = v[ri, None] * v[None, rj]
        A *= vv
        B *= vv
        K0 *= vv
        Ei, Ej = ET[ri], ET[rj]
        U1 = A[:, :, None] * Ej[None, :, :] - B[:, :, None] * Ei[:, None, :]  # (m, n, d) -> multiplies e_ik
        U2 = A[:, :, None] * Ei[:, None, :] - B[:, :, None] * Ej[None, :, :]  # multiplies e_jk
        X4 = X2.reshape(m, d, n, d)
        np.multiply(Ei[:, :, None, None], U1[:, None, :, :], out=X4)
        X4 += E[:, rj][None, :, :, None] * U2[:, None, :, :]
        X4 += K0[:, None, :, None] * eye[None, :, None, :]
        if pairs is not None:
            KA[pairs.ii, pairs.jj] = pairs.two_pi_kappa()
            X4[pairs.ii, :, pairs.jj, :] = (pairs.k0 * v[pairs.gi] * v[pairs.gj])[:, None, None] * eye \
                + pairs.rank_two() * (v[pairs.gi] * v[pairs.gj])[:, None, None]
        if diag:
            np.fill_diagonal(KA, math.pi)  # 2 pi kappa(1) = pi
        KA *= (r[ri, None] * _INV_2PI) * r[None, rj]
        if diag:
            F[ri, rj] = symmetrize_upper(KA)
        else:
            write_mirrored(F, ri, rj, KA)
        wr, wc = slice(p + ri.start * d, p + ri.stop * d), slice(p + rj.start * d, p + rj.stop * d)
        if diag:
            F[wr, wc] = symmetrize_upper(X2)
        else:
            write_mirrored(F, wr, wc, X2)

    run_tiles(upper_tiles(p, tile), work, backend=NumpyBackend(), tile=tile, out_shape=(1, 1), threads=threads,
              n_buffers=7, extra_buffers=((tile * d, tile * d),), progress=progress)


# ----------------------------------------------------------------------------- products

def _alpha_rows(tile: int) -> int:
    r"""Rows of a tile per :math:`\alpha_{ij} = e_i\cdot c_j` block of one vector (``_ALPHA_ENTRIES`` at most)."""
    return max(1, min(tile, _ALPHA_ENTRIES // tile))


def _product_memory(p: int, d: int, b: int, tile: int, threads: int, row_block: int | None = None) -> int:
    r"""Working memory of one product with ``b`` vectors, or of one row block of it (``row_block`` units).

    A pass computes the rows of ``q`` units: ``q = p`` for the whole product in this process,
    ``q = row_block`` for one task of a distributed product (:func:`distributed_full_block`), whose
    accumulators hold its own units only. In float64 numbers, per thread: the six coefficient tiles,
    the larger of two tiles (:math:`|t|` and the mask of near pairs, while they are found) and what
    the near pairs hold afterwards, however many there are (:func:`_near_memory`), the GEMM
    outputs ``(tile, d b)`` and ``(tile, b)``, the :math:`\alpha` block and its GEMM's output (or
    the compiled path's aligned copies of a coefficient tile and two ``(d, tile)`` blocks), and the
    accumulators (:func:`_accumulator_size`, ``q (3 d b + b)``); over all ``p`` units, ``c`` and its
    companions (``6 p d b``), the weights and unit columns (``3 p (d + 1)``) and the input
    ``(p (d + 1), b)``; the output ``(q (d + 1), b)``.
    """
    q = p if row_block is None else min(row_block, p)
    rstep = _alpha_rows(tile)
    alpha = rstep * (tile + d) + tile * (tile + 2 * d + 2)  # the NumPy alpha block, and the compiled path's copies
    per_thread = 6 * tile * tile + max(2 * tile * tile, _near_memory(tile, d, b)) + tile * b * (d + 1) \
        + alpha + _accumulator_size(q, d, b)
    return int(8 * (threads * per_thread + 6 * p * d * b + 3 * p * (d + 1) + (p + q) * (d + 1) * b))


def _accumulator_size(q: int, d: int, b: int) -> int:
    """Numbers of a pass's accumulator for ``q`` units (:class:`_Sums`)."""
    return q * (3 * d * b + b)


def _near_memory(tile: int, d: int, b: int) -> int:
    r"""Numbers that a tile's near pairs (theory §15.2) hold at once in a product with ``b`` vectors, at most.

    The tile's mask (an eighth of a tile of numbers), the row counts and indices of a strip of its
    rows, and per pair of a chunk (:func:`_near_chunk_pairs`) of the one pass that sets their
    stable angles and adds their :math:`G_{ij}c_j`: the angle data of two chunks (the loop's and the
    next one being formed: ``5 d + 22`` numbers counted with tracemalloc, charged ``5 d + 32``) and
    three ``(d, max(d, b))`` arrays (the rank-two parts and their products with ``c``).
    """
    width = max(d, b)
    pairs = _near_chunk_pairs(tile * tile, d, width)
    return tile * tile // 8 + pairs * (3 * d * width + 5 * d + 32) + 3 * max(pairs, tile)


def _tiles(p: int, tile: int, rows: tuple[int, int] | None) -> list[tuple[slice, slice]]:
    """The tiles of one pass over the pairs of units.

    The upper triangle (``rows=None``, each tile used for both orientations), or units
    ``rows = (s, e)`` against every column, each pair once, with square diagonal tiles (where the
    diagonal gets its exact values).
    """
    if rows is None:
        return [(slice(i, min(i + tile, p)), slice(j, min(j + tile, p))) for i, j in upper_tiles(p, tile)]
    s, e = rows
    tiles = []
    for i in range(s, e, tile):
        ri = slice(i, min(i + tile, e))
        cuts = sorted({*range(0, ri.start, tile), ri.start, ri.stop, *range(ri.stop + tile, p, tile), p})
        tiles += [(ri, slice(a, c)) for a, c in itertools.pairwise(cuts)]
    return tiles


class _Sums:
    r"""The four sums a pass accumulates for ``q`` units, views of one flat array of :func:`_accumulator_size`.

    ``y`` ``(q, d b)``: :math:`\sum_j\kappa_{0,ij}c_j - \sum_jB_{ij}\beta_je_j` and the near pairs'
    :math:`G_{ij}c_j`; ``y_alpha`` ``(b, q, d)``: :math:`\sum_jA_{ij}\alpha_{ij}e_j`, in the order its
    GEMMs write it; ``bc`` ``(q, d b)``: :math:`\sum_jB_{ij}c_j` and ``a_beta`` ``(q, b)``:
    :math:`\sum_jA_{ij}\beta_j`, whose term :math:`e_i[\sum_jA_{ij}\beta_j - e_i\cdot\sum_jB_{ij}c_j]`
    is formed once per unit at the end (:meth:`total`), not once per tile.
    """

    def __init__(self, flat: np.ndarray, q: int, d: int, b: int):
        n = q * d * b
        self.y = flat[:n].reshape(q, d * b)
        self.y_alpha = flat[n:2 * n].reshape(b, q, d)
        self.bc = flat[2 * n:3 * n].reshape(q, d * b)
        self.a_beta = flat[3 * n:].reshape(q, b)

    def total(self, ET: np.ndarray) -> np.ndarray:
        """:math:`y = Mc` for the ``q`` units of unit columns ``ET`` ``(q, d)``, as ``(q, d, b)``."""
        q, d = ET.shape
        Y = self.y.reshape(q, d, -1)
        Y += self.y_alpha.transpose(1, 2, 0)
        z = self.a_beta - np.einsum("ilk,il->ik", self.bc.reshape(q, d, -1), ET)
        for coord in range(d):  # one coordinate at a time: no (q, d, b) temporary
            Y[:, coord] += ET[:, coord, None] * z
        return Y


def _add_matmul(out: np.ndarray, a: np.ndarray, b: np.ndarray, scratch: np.ndarray, sign: float = 1.0) -> None:
    r"""``out += sign * (a @ b)``: by BLAS into ``out`` where the compiled module is built, else via ``scratch``.

    The compiled path calls SciPy's ``dgemm`` with ``beta = 1`` from C, without the GIL, so the
    workers' products run side by side and no ``(m, n)`` sum is added afterwards (that addition
    cost about 15 % of the coefficient GEMMs). SciPy's Python ``dgemm`` could add into ``out`` too
    but holds the GIL: two threads then took longer than one. The fallback lets NumPy's GEMM
    (which releases the GIL) write ``scratch`` (``out``'s shape) and adds it.
    """
    if _calpha is not None and out.dtype == np.float64 and a.dtype == np.float64 == b.dtype \
            and out.strides[1] == 8 and b.strides[1] == 8 and 8 in a.strides:
        _calpha.add_product(_DGEMM, a, b, out, sign)
        return
    np.matmul(a, b, out=scratch)
    if sign > 0:
        out += scratch
    else:
        out -= scratch


def _full_product(units: _Units, U: np.ndarray, tile: int, threads: int, progress: Progress | None,
                  dtype: np.dtype = _FLOAT64, rows: tuple[int, int] | None = None) -> np.ndarray:
    r""":math:`FU` for ``U`` of shape ``(P, b)``: :math:`c = L^\top U`, :math:`y = Mc` tile by tile, :math:`FU = Ly`.

    Per tile use (rows ``I`` from columns ``J``) with :math:`\beta_j = e_j\cdot c_j` and
    :math:`\alpha_{ij} = e_i\cdot c_j`:

    .. math::
        y_i \mathrel{+}= \sum_j \kappa_{0,ij}c_j + e_i\Big[\sum_jA_{ij}\beta_j - e_i\cdot\sum_jB_{ij}c_j\Big]
        + \sum_jA_{ij}\alpha_{ij}e_j - \sum_jB_{ij}\beta_je_j ,

    four GEMMs of the coefficient tiles with ``(n, d b)`` blocks, one with ``(n, b)``, each added
    into its accumulator (:class:`_Sums`; the bracket is formed once per unit at the end), and for
    :math:`\alpha`, per vector, one GEMM of unit columns, one elementwise product and one GEMM, or
    where the optional compiled module is built, one fused pass over the tile (``_calpha.c``, the
    dot products :math:`e_i\cdot c_j` kept in registers): about :math:`(10d + 2)mn` flops per
    vector; near pairs add their explicit
    :math:`G_{ij}c_j`. With ``dtype`` float32 every tile and GEMM is in single precision (the near
    pairs' angles still come from the float64 unit columns); the result is returned in float64.

    With ``rows = (s, e)`` only the rows of units ``s..e-1`` are computed, ``((e - s)(d + 1), b)``:
    their ``v`` rows, then their ``w`` rows. Each tile of those rows against all columns is used
    once (one row block of a distributed product, :func:`distributed_full_block`).
    """
    d, p = units.d, units.p
    b = U.shape[1]
    # read only: views in float64, copies in float32
    v, E, ET, WT = (x.astype(dtype, copy=False) for x in (units.v, units.E, units.ET, units.W.T))
    a = U[:p].astype(dtype, copy=False)
    C = np.empty((p, d, b), dtype)  # c_j = v_j b_j + a_j w_j, (p, d, b), in one pass from U
    np.multiply(U[p:].T.reshape(b, p, d).transpose(1, 2, 0), v[:, None, None], out=C, casting="same_kind")
    for coord in range(d):  # one coordinate at a time: no (p, d, b) temporary
        C[:, coord] += WT[:, coord, None] * a
    beta = np.einsum("jlk,jl->jk", C, ET)  # (p, b)
    Q = ET[:, :, None] * beta[:, None, :]  # beta_j e_j, (p, d, b)
    C2, Q2 = C.reshape(p, d * b), Q.reshape(p, d * b)
    CT = np.ascontiguousarray(C.transpose(2, 1, 0))  # (b, d, p): one (d, n) block per vector
    s0, e0 = (0, p) if rows is None else rows  # the accumulators hold units s0..e0-1 only
    q = e0 - s0

    def one_side(sums: _Sums, K0: np.ndarray, A: np.ndarray, B: np.ndarray, ri: slice, rj: slice,
                 scratch: tuple) -> None:
        r"""Add ``(M tile) c[rj]`` to the sums of units ``ri`` for coefficient tiles (|ri|, |rj|), ``A`` contiguous.

        ``scratch`` is the thread's ``(G, z, alpha, y)``: a ``(tile, d b)`` and a ``(tile, b)`` GEMM
        output, the :math:`\alpha` block and its GEMM's output.
        """
        m, n = ri.stop - ri.start, rj.stop - rj.start
        li = slice(ri.start - s0, ri.stop - s0)
        G, z, alpha_buf, y_buf = scratch
        G, z = G[:m], z[:m]
        _add_matmul(sums.y[li], K0, C2[rj], G)
        _add_matmul(sums.y[li], B, Q2[rj], G, -1.0)
        _add_matmul(sums.bc[li], B, C2[rj], G)
        _add_matmul(sums.a_beta[li], A, beta[rj], z)
        if _calpha is not None and C.dtype == np.float64 and n <= _CALPHA_MAX_COLUMNS:  # fused, compiled
            _calpha.add_alpha_terms(ET[ri], CT[:, :, rj], E[:, rj], A, sums.y_alpha[:, li])
            return
        # sum_j A_ij alpha_ij e_j, a vector and a strip of rows at a time: the alpha block stays in cache
        rstep = max(1, min(m, alpha_buf.size // n))
        for r0 in range(0, m, rstep):
            r1 = min(m, r0 + rstep)
            alpha = alpha_buf[:(r1 - r0) * n].reshape(r1 - r0, n)
            y = y_buf[:r1 - r0]
            rows_i = slice(li.start + r0, li.start + r1)
            for k in range(b):
                np.matmul(ET[ri.start + r0:ri.start + r1], CT[k, :, rj], out=alpha)  # alpha_ij = e_i . c_j
                alpha *= A[r0:r1]
                _add_matmul(sums.y_alpha[k, rows_i], alpha, ET[rj], y)

    mirrored = rows is None

    def work(ri: slice, rj: slice, bufs: tuple, acc: np.ndarray) -> None:
        m, n = ri.stop - ri.start, rj.stop - rj.start
        diag = ri == rj
        sums = _Sums(acc, q, d, b)
        T, K0, S, A, B = (x[:m, :n] for x in bufs[:5])
        scratch = bufs[6:]
        np.matmul(ET[ri], E[:, rj], out=T)
        fused = _calpha is not None and dtype == _FLOAT64
        if fused:  # kappa0, A and B in one compiled pass; the near pairs and the diagonal are set below
            if diag:
                np.fill_diagonal(T, 0.0)
            _calpha.angle_coefficients(T, K0, A, B)
            near = _near_pairs(T, ri, rj)
        else:
            near = _angle_tile(T, K0, S, ri, rj, units, diag, set_near=False)
        if near is not None:  # each near pair's stable angle once: into the tiles, and its G_ij c_j added here
            Y3 = sums.y.reshape(q, d, b)
            for pairs in near.chunks(T, units, _near_chunk_pairs(T.size, d, max(d, b))):
                pairs.set_angles(K0, S)
                G = pairs.rank_two().astype(dtype, copy=False)
                np.add.at(Y3, pairs.gi - s0, np.matmul(G, C[pairs.gj]))  # G_ij c_j (kappa0 c_j comes with the tile)
                if mirrored and not diag:
                    np.add.at(Y3, pairs.gj, np.matmul(G, C[pairs.gi]))  # M symmetric: M_ji c_i = M_ij c_i
                del G  # not kept while the next chunk is formed
        if not fused:
            _rank_two_coefficients(T, S, A, B, near, diag)
        else:  # as _angle_tile and _rank_two_coefficients leave them: G explicit at the near pairs, exact diagonal
            _clear_rank_two(A, B, near, diag)
            if diag:
                np.fill_diagonal(T, 1.0)
                np.fill_diagonal(K0, 0.5)
        one_side(sums, K0, A, B, ri, rj, scratch)
        if mirrored and not diag:
            AT = bufs[5][:n, :m]
            AT[...] = A.T
            one_side(sums, K0.T, AT, B.T, rj, ri, scratch)

    # per thread: the tiles T, K0, S, A, B, A^T, then the GEMM outputs G and z, the alpha block and its GEMM's output
    rstep = _alpha_rows(tile)
    acc = run_tiles(_tiles(p, tile, rows), work, backend=NumpyBackend(dtype), tile=tile,
                    out_shape=(_accumulator_size(q, d, b),), threads=threads, n_buffers=6,
                    extra_buffers=((tile, d * b), (tile, b), (rstep * tile,), (rstep, d)), progress=progress)
    Y = _Sums(acc, q, d, b).total(ET[s0:e0])
    out = np.empty((q * (d + 1), b))
    out[:q] = np.einsum("jlk,jl->jk", Y, units.W.T[s0:e0])
    np.multiply(Y, units.v[s0:e0, None, None], out=out[q:].reshape(q, d, b))
    return out


class _FullFacts:
    """What the in-process and the distributed operator of all parameters know without a product."""

    W: np.ndarray
    v: np.ndarray
    sigma: float
    block: int
    threads: int
    _units: _Units

    def diagonal(self) -> np.ndarray:
        r"""Exact diagonal: :math:`\|w_i\|^2/2` for the ``v`` entries, :math:`v_j^2/2` for each entry of ``w_j``."""
        u = self._units
        return np.concatenate([u.r**2 / 2, np.repeat(u.v**2 / 2, u.d)]) / self.sigma**2

    def trace(self) -> float:
        r"""Exact trace :math:`(\|W\|_F^2/2 + d\|v\|^2/2)/\sigma^2` (units with a zero column contribute 0)."""
        return float(self.diagonal().sum())

    def memory_bytes(self, n_vectors: int) -> int:
        """Working memory of one product with ``n_vectors`` vectors."""
        u = self._units
        return _product_memory(u.p, u.d, n_vectors, self.block, self.threads)

    def flops(self, n_vectors: int = 1) -> float:
        r"""Floating-point operations of the GEMMs of one product with ``n_vectors`` vectors: :math:`(10d+2)p^2b`.

        The count the benchmark compares with the machine's GEMM rate (the elementwise work on
        the tiles comes on top).
        """
        u = self._units
        return float((10 * u.d + 2) * u.p * u.p * n_vectors)

    def frobenius_norm_squared(self) -> float:
        r""":math:`\|F\|_F^2/\sigma^4`, exactly, from one pass over the tiles (no product; theory §15.3).

        Per ordered pair, :math:`r_i^2r_j^2\kappa^2 + (v_j^2r_i^2 + v_i^2r_j^2)(\kappa_0^2 + 2\kappa_0St + S^2)
        + v_i^2v_j^2(d\kappa_0^2 + 2S^2)`, with :math:`S = \sin\theta/(2\pi)` (:math:`\|G_{ij}\|_F^2 = 2S^2`).
        """
        return _frobenius_squared(self._units, self.block, self.threads) / self.sigma**4

    def rescaling_directions(self) -> np.ndarray:
        """The ``p`` null vectors :math:`z_j` of the rescaling symmetry, ``(P, p)`` (:func:`rescaling_directions`)."""
        return rescaling_directions(self.W, self.v)


class FullFisherOperator(_FullFacts, SymmetricProductOperator):
    r"""Matrix-free :math:`F/\sigma^2` of all parameters (see :func:`full_fisher_operator`).

    Attributes
    ----------
    W : (d, p) hidden weights
    v : (p,) output weights
    sigma : noise standard deviation
    block : tile edge (units per tile)
    threads : worker threads
    products : vectors multiplied so far (each a pass over the :math:`p^2/2` unit pairs)
    product_seconds : wall-clock seconds spent in those products
    """

    def __init__(self, W: np.ndarray, v: np.ndarray, *, sigma: float, block: int, threads: int,
                 progress: Progress | None, dtype: np.dtype = _FLOAT64):
        d, p = W.shape
        P = p * (d + 1)
        super().__init__(dtype=np.dtype(np.float64), shape=(P, P))
        self.W = W
        self.v = v
        self.sigma = sigma
        self.block = min(block, p)
        self.threads = threads
        self.progress = progress
        self.products = 0
        self.compute_dtype = np.dtype(dtype)
        self._units = _Units.of(W, v)

    def _product(self, X: np.ndarray) -> np.ndarray:
        return _full_product(self._units, X, self.block, self.threads, self.progress, self.compute_dtype)


def full_fisher_operator(W: np.ndarray, v: np.ndarray, sigma: float = 1.0, *, block: int | None = None,
                         threads: int | None = None, dtype: str | np.dtype = "float64",
                         progress: Progress | None = None, client: Any = None, row_block: int | None = None,
                         retries: int = 3) -> FullFisherOperator | DistributedFullFisherOperator:
    r"""The exact FIM of all parameters as a matrix-free ``LinearOperator`` (theory §15).

    Construction costs ``O(dp)``; each product :math:`FU` (``U`` of shape ``(P, b)``) recomputes the
    angles tile by tile (:func:`~relufim.fim.tiles.run_tiles` over the upper triangle of unit pairs,
    each tile used for both of its orientations) and never stores a ``P x P`` or ``p x p`` array.

    Parameters
    ----------
    W : array (d, p), d < p
    v : array (p,)
    sigma : float
        The operator is :math:`F/\sigma^2`.
    block : int, optional
        Units per tile (default 256).
    threads : int, optional
        Worker threads (default: the CPU cores, at most 8).
    dtype : {"float64", "float32"}
        Precision of the tiles and GEMMs: float64 is exact to round-off; float32 is faster and
        accurate to about 1e-6 relative (for the early products of a mixed-precision solve).
    progress : callable(done, total), optional
        Called after each tile of each product (each row block with a ``client``).
    client : dask.distributed.Client, optional
        Run every product as row blocks of units on the cluster's workers
        (:class:`DistributedFullFisherOperator`; theory §10.6): ``W`` and ``v`` are scattered once,
        the vectors once per product, a block lost with its worker is computed again. float64 only.
    row_block : int, optional
        Units per task with a ``client`` (default: about four tasks per worker).
    retries : int
        Resubmissions of a lost block with a ``client``.

    Returns
    -------
    FullFisherOperator or DistributedFullFisherOperator
        With ``matmat``, exact ``diagonal()``, ``trace()`` and ``frobenius_norm_squared()``,
        ``rescaling_directions()`` and the ``flops`` of a product.

    Notes
    -----
    A product with ``b`` vectors costs :math:`(10d + 2)p^2b` flops in GEMMs whose inner or outer
    dimension is ``d`` or the tile edge (theory §15.4), against :math:`2P^2b = 2(d+1)^2p^2b` for a
    dense ``F``; per thread it needs six tiles, a few MB of scratch and two ``p d b`` accumulators
    (``q d b`` for a task of ``q`` units on a worker, which is what each worker's memory is checked for).

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(d=3, p=40, seed=0)
    >>> v = np.random.default_rng(1).standard_normal(40)
    >>> F = full_fisher_operator(W, v, block=16)
    >>> U = np.random.default_rng(2).standard_normal((F.shape[0], 3))
    >>> bool(np.allclose(F @ U, full_fisher_matrix(W, v) @ U, rtol=0, atol=1e-13))
    True
    """
    W, v = check_network(W, v)
    sigma = check_sigma(sigma)
    d, p = W.shape
    block = _PRODUCT_BLOCK if block is None else check_positive_int(block, "block")
    threads_given = threads
    threads = default_threads() if threads is None else check_positive_int(threads, "threads")
    dt = check_float_dtype(dtype)
    if client is not None:
        if dt != np.float64:
            raise ValueError("the distributed operator runs in float64; leave out dtype or drop client.")
        retries = check_positive_int(retries, "retries", minimum=0)
        row_block = None if row_block is None else check_positive_int(row_block, "row_block")
        workers = check_client(client)
        row_block, threads = plan_row_blocks(workers, p, block, row_block,
                                             None if threads_given is None else threads)
        check_workers_fit(workers, _product_memory(p, d, 1, min(block, p), threads, row_block),
                          f"p = {p}, d = {d}, one vector")
        return DistributedFullFisherOperator(W, v, client=client, sigma=sigma, block=block, row_block=row_block,
                                             threads=threads, retries=retries, progress=progress)
    check_memory(_product_memory(p, d, 1, min(block, p), threads), f"full_fisher_operator tiles of {block}",
                 "use a smaller block")
    return FullFisherOperator(W, v, sigma=sigma, block=block, threads=threads, progress=progress, dtype=dt)


def distributed_full_block(static: np.ndarray, start: int, stop: int, V: np.ndarray, tile: int,
                           threads: int) -> tuple[int, int, np.ndarray, float, str]:
    """One row block of :math:`FU` on a worker: units ``start..stop-1``; ``static`` is ``W`` stacked on ``v``."""
    t0 = time.perf_counter()
    out = _full_product(_Units.of(static[:-1], static[-1]), V, tile, threads, None, rows=(start, stop))
    return start, stop, out, time.perf_counter() - t0, worker_address()


def _distributed_frobenius_block(static: np.ndarray, start: int, stop: int, tile: int, threads: int) -> float:
    return _frobenius_squared(_Units.of(static[:-1], static[-1]), tile, threads, rows=(start, stop))


class DistributedFullFisherOperator(_FullFacts, RowBlockOperator):
    r"""Matrix-free :math:`F/\sigma^2` of all parameters whose products run as row blocks on a Dask cluster.

    Built by :func:`full_fisher_operator` with ``client=``. A task computes the ``v`` and ``w``
    rows of a block of units against every unit (:func:`distributed_full_block`);
    :meth:`frobenius_norm_squared` runs on the workers too. Attributes as
    :class:`FullFisherOperator`, plus ``client``, ``row_block`` (units per task), ``retries`` and
    :meth:`throughput`.
    """

    def __init__(self, W: np.ndarray, v: np.ndarray, *, client: Any, sigma: float, block: int, row_block: int,
                 threads: int, retries: int, progress: Progress | None):
        d, p = W.shape
        P = p * (d + 1)
        super().__init__((P, P), client=client, static=np.vstack([W, v[None, :]]), task=distributed_full_block,
                         task_args=(), n_units=p, sigma=sigma, block=block, row_block=row_block, threads=threads,
                         retries=retries, progress=progress)
        self.W = W
        self.v = v
        self.compute_dtype = _FLOAT64
        self._units = _Units.of(W, v)

    def _place(self, out: np.ndarray, start: int, stop: int, block: np.ndarray) -> None:
        d, p, q = self._units.d, self._units.p, stop - start
        out[start:stop] = block[:q]
        out[p + start * d:p + stop * d] = block[q:]

    def memory_bytes(self, n_vectors: int) -> int:
        """Memory of one product on this process (the vectors, their scattered copy and the result)."""
        return int(3 * 8 * self.shape[0] * n_vectors)

    def frobenius_norm_squared(self) -> float:
        r""":math:`\|F\|_F^2/\sigma^4`, exactly: one task per row block sums its rows' part (theory §15.3)."""
        futures = self.client.map(_distributed_frobenius_block, [self._static_future] * len(self._blocks),
                                  [s for s, _ in self._blocks], [e for _, e in self._blocks],
                                  tile=self.block, threads=self.threads, retries=self.retries, pure=False)
        return float(sum(self.client.gather(futures))) / self.sigma**4


def _frobenius_squared(units: _Units, tile: int, threads: int, rows: tuple[int, int] | None = None) -> float:
    r""":math:`\|F\|_F^2` (``rows=None``), or the part of it in the rows of units ``rows = (s, e)``."""
    d, p = units.d, units.p
    r, v, E, ET = units.r, units.v, units.E, units.ET
    r2, v2 = r * r, v * v

    def work(ri: slice, rj: slice, bufs: tuple, acc: np.ndarray) -> None:
        m, n = ri.stop - ri.start, rj.stop - rj.start
        T, K0, S, KA, S2, S3 = (x[:m, :n] for x in bufs)
        diag = ri == rj
        np.matmul(ET[ri], E[:, rj], out=T)
        near = _angle_tile(T, K0, S, ri, rj, units, diag, set_near=False)
        KA[...] = T
        two_pi_kappa_inplace(KA, S2, S3, keep_one_minus_t=False)
        if near is not None:  # the near pairs' angles and kappa from one chunk each
            for pairs in near.chunks(T, units, _near_chunk_pairs(T.size, d, 1)):
                pairs.set_angles(K0, S)
                KA[pairs.ii, pairs.jj] = pairs.two_pi_kappa()
        if diag:
            np.fill_diagonal(KA, math.pi)
        S *= _INV_2PI
        vw = K0 * K0 + 2.0 * K0 * S * T + S * S  # ||kappa0 e_i + S e_j||^2
        total = float(r2[ri] @ (KA * KA) @ r2[rj]) * _INV_2PI**2
        total += float(r2[ri] @ vw @ v2[rj] + v2[ri] @ vw @ r2[rj])
        total += float(v2[ri] @ (d * K0 * K0 + 2.0 * S * S) @ v2[rj])
        acc[0, 0] += total if diag or rows is not None else 2.0 * total

    out = run_tiles(_tiles(p, tile, rows), work, backend=NumpyBackend(), tile=tile, out_shape=(1, 1),
                    threads=threads, n_buffers=6)
    return float(out[0, 0])


def step_kernel_matrix(W: np.ndarray, *, block: int | None = None, threads: int | None = None) -> np.ndarray:
    r"""The step-kernel matrix :math:`K_0 = [\kappa_0(\theta_{ij})]`, ``(p, p)`` (theory §15.2).

    :math:`(K_0)_{ij} = P(w_i\cdot x > 0,\ w_j\cdot x > 0)` for every pair of units.

    The :math:`\kappa_0` of the identity part of every :math:`M_{ij}`, from the same tiles and with the
    same stable angles as :func:`full_fisher_matrix` (rows and columns of zero columns are 0); the
    hidden-layer factor :math:`E[\delta\delta^\top] = D_vK_0D_v` of K-FAC (theory §15.7).

    Examples
    --------
    >>> step_kernel_matrix(np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]))
    array([[0.5 , 0.25, 0.  ],
           [0.25, 0.5 , 0.25],
           [0.  , 0.25, 0.5 ]])
    """
    W = check_weights(W)
    units = _Units.of(W, np.ones(W.shape[1]))
    p = W.shape[1]
    tile = min(_PRODUCT_BLOCK if block is None else check_positive_int(block, "block"), p)
    threads = default_threads() if threads is None else check_positive_int(threads, "threads")
    check_dense_fits(p, what=f"the dense {p} x {p} step kernel matrix")
    out = np.empty((p, p))

    def work(i0: int, j0: int, bufs: tuple, _acc: Any) -> None:
        ri, rj = slice(i0, min(i0 + tile, p)), slice(j0, min(j0 + tile, p))
        T, K0, S = (b[:ri.stop - ri.start, :rj.stop - rj.start] for b in bufs)
        np.matmul(units.ET[ri], units.E[:, rj], out=T)
        if i0 == j0:
            symmetrize_upper(T)
        _angle_tile(T, K0, S, ri, rj, units, i0 == j0)
        out[ri, rj] = K0
        out[rj, ri] = K0.T

    run_tiles(upper_tiles(p, tile), work, backend=NumpyBackend(), tile=tile, out_shape=(1, 1), threads=threads,
              n_buffers=3)
    dead = units.r == 0
    out[dead] = 0.0
    out[:, dead] = 0.0
    return out


# ----------------------------------------------------------------------------- the null space

def rescaling_directions(W: np.ndarray, v: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
    r"""The tangents :math:`z_j` of the rescaling symmetries :math:`(w_j, v_j)\mapsto(cw_j, v_j/c)`, ``(P, m)``.

    Theory §15.3. Column ``j`` is :math:`-v_j` at the entry of :math:`v_j`, :math:`w_j` at the block of
    :math:`w_j`, zero elsewhere. :math:`\nabla_\theta f(x)\cdot z_j = 0` for every ``x``, so
    :math:`Fz_j = 0`; the columns have disjoint supports (orthogonal; normalise them for an
    orthonormal basis of the span). ``units`` (indices) selects some of them; default all ``p``
    (``8 P p`` bytes: ask for a few at large ``p``).

    Examples
    --------
    >>> rescaling_directions(np.array([[1.0, 2.0, 0.5]]), np.array([3.0, -1.0, 2.0]))[:, 0]
    array([-3.,  0.,  0.,  1.,  0.,  0.])
    >>> rescaling_directions(np.array([[1.0, 2.0, 0.5]]), np.array([3.0, -1.0, 2.0]), units=[2]).ravel()
    array([ 0. ,  0. , -2. ,  0. ,  0. ,  0.5])
    """
    W, v = check_network(W, v)
    d, p = W.shape
    idx = np.arange(p) if units is None else np.asarray(units, dtype=np.intp).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= p):
        raise ValueError(f"units must be indices of hidden units in [0, {p}), got {units!r}.")
    check_memory(8.0 * p * (d + 1) * idx.size, f"{idx.size} rescaling directions of length P = {p * (d + 1)}",
                 "select a few with units=[...]")
    Z = np.zeros((p * (d + 1), idx.size))
    cols = np.arange(idx.size)
    Z[idx, cols] = -v[idx]
    Z[p:].reshape(p, d, idx.size)[idx, :, cols] = W.T[idx]
    return Z


#: Degrees of the Hermite features :func:`full_hermite_features` has in closed form (odd degrees >= 3 vanish).
HERMITE_DEGREES = (2, 4)


def _check_degree(degree: Any) -> int:
    """``degree`` if it is one of :data:`HERMITE_DEGREES`, else a clear error."""
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree not in HERMITE_DEGREES:
        raise ValueError(f"degree must be 2 or 4 (the Hermite degrees of the features; odd degrees >= 3 give zero), "
                         f"got {degree!r}.")
    return int(degree)


def _hermite_index_blocks(d: int, degree: int) -> list[np.ndarray]:
    """The multi-indices of the feature columns by degree ``k`` (0, 1, 2, then 4): ``(n_k, k)`` sorted coordinates."""
    blocks = []
    for k in (0, 1, 2, 4):
        if k <= degree:
            combos = list(itertools.combinations_with_replacement(range(d), k))
            blocks.append(np.array(combos, dtype=int).reshape(len(combos), k))  # (1, 0) for the constant
    return blocks


def _hermite_indices(d: int, degree: int) -> list[tuple[int, ...]]:
    """The multi-indices of the feature columns, as sorted coordinate tuples: (), (l,), (l, m), then (l, m, n, o)."""
    return [tuple(int(c) for c in row) for block in _hermite_index_blocks(d, degree) for row in block]


def n_full_hermite_features(d: int, degree: int = 2) -> int:
    """Columns of :func:`full_hermite_features`: ``1 + d + d(d+1)/2``, plus ``C(d+3, 4)`` for degree 4.

    Examples
    --------
    >>> n_full_hermite_features(10, 2), n_full_hermite_features(10, 4)
    (66, 781)
    """
    d = check_positive_int(d, "d")
    degree = _check_degree(degree)
    return 1 + d + d * (d + 1) // 2 + (math.comb(d + 3, 4) if degree == 4 else 0)


def hermite_square_norms(d: int, degree: int = 2) -> np.ndarray:
    r""":math:`E[h_\alpha^2] = \alpha!` for the columns of :func:`full_hermite_features`, ``(N,)`` (theory §15.5).

    Examples
    --------
    >>> hermite_square_norms(2, 2)
    array([1., 1., 1., 2., 1., 2.])
    """
    d = check_positive_int(d, "d")
    degree = _check_degree(degree)
    return np.array([math.prod(math.factorial(n) for n in np.bincount(np.array(a, dtype=int), minlength=d))
                     for a in _hermite_indices(d, degree)], dtype=float)


def full_hermite_features(W: np.ndarray, v: np.ndarray, degree: int = 2) -> np.ndarray:
    r"""The vectors :math:`E[\nabla_\theta f(x)\,h_\alpha(x)]`, Hermite polynomials of degree <= ``degree``, ``(P, N)``.

    :math:`h_\alpha(x) = \prod_l\mathrm{He}_{\alpha_l}(x_l)` (probabilists'), in the order ``1``, :math:`x_l`,
    :math:`x_lx_m - \delta_{lm}` (``l <= m``) and, for ``degree=4``, the :math:`|\alpha| = 4` ones
    (``N`` = :func:`n_full_hermite_features`). In closed form from the derivatives of the activation
    along :math:`e = w/\|w\|` (theory §15.5), with :math:`c = 1/\sqrt{2\pi}` and
    :math:`e^\alpha = \prod_le_l^{\alpha_l}`:

    * ``v_j`` entries: :math:`c\|w_j\|`, :math:`w_{jl}/2`, :math:`c\|w_j\|e^\alpha` (degree 2),
      :math:`-c\|w_j\|e^\alpha` (degree 4);
    * ``w_j`` block, coordinate ``a``, times :math:`v_j`: :math:`c\,e_a`, :math:`\delta_{al}/2`,
      :math:`c(\alpha_ae^{\alpha - 1_a} - e_ae^\alpha)` (degree 2), :math:`c(3e_ae^\alpha - \alpha_ae^{\alpha - 1_a})`
      (degree 4).

    Degree 3 (and every odd degree from 3 on) gives zero. :math:`F = \sum_\alpha E[\nabla f\,h_\alpha]
    E[\nabla f\,h_\alpha]^\top/\alpha!` over all :math:`\alpha` (:func:`hermite_square_norms`), so the
    degree-2 columns span (approximately) the top eigenspace of ``F``: the block eigensolver
    starts from them at no product with ``F``; the truncation at degree 4 is
    :func:`full_series_preconditioner`. The array is Fortran-ordered, so that its transpose is a
    C-ordered ``(N, P)`` array without a copy.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 6, seed=0)
    >>> v = np.ones(6)
    >>> H = full_hermite_features(W, v)
    >>> H.shape, full_hermite_features(W, v, degree=4).shape
    ((18, 6), (18, 11))
    >>> Fn = full_monte_carlo_fisher(W, v, 200000, seed=0)
    >>> x = np.vstack(list(gaussian_input_chunks(200000, 2, 0)))   # E[grad f * x_1] by Monte Carlo
    >>> mc = (full_gradients(W, v, x) * x[:, :1]).mean(axis=0)
    >>> bool(np.abs(mc - H[:, 1]).max() < 0.02)
    True
    """
    W, v = check_network(W, v)
    degree = _check_degree(degree)
    u = _Units.of(W, v)
    d, p = W.shape
    H = np.zeros((p * (d + 1), n_full_hermite_features(d, degree)), order="F")
    q = 0
    step = max(1, (1 << 22) // (p * d))  # columns at a time: (p, d, step) temporaries of 32 MB at most
    for idx in _hermite_index_blocks(d, degree):
        for s in range(0, idx.shape[0], step):
            block = idx[s:s + step]
            _hermite_columns(u, block, H[:, q:q + block.shape[0]])
            q += block.shape[0]
    return H


#: Per degree k: E[ReLU^(k)(z)], E[step^(k+1)(z)] and E[step^(k-1)(z)], z ~ N(0, 1) (theory §15.5).
_RIDGE_MOMENTS = {0: (1 / math.sqrt(_TWO_PI), 1 / math.sqrt(_TWO_PI), 0.0), 1: (0.5, 0.0, 0.5),
                  2: (1 / math.sqrt(_TWO_PI), -1 / math.sqrt(_TWO_PI), 1 / math.sqrt(_TWO_PI)),
                  4: (-1 / math.sqrt(_TWO_PI), 3 / math.sqrt(_TWO_PI), -1 / math.sqrt(_TWO_PI))}


def _hermite_columns(u: _Units, idx: np.ndarray, out: np.ndarray) -> None:
    r"""Write the feature columns of the multi-indices ``idx`` ``(n, k)`` (sorted coordinates) into ``out`` ``(P, n)``.

    ``v_j``: :math:`E[\mathrm{ReLU}^{(k)}]\|w_j\|e_j^\alpha`; ``w_j``, coordinate ``a``:
    :math:`v_j(E[\mathrm{step}^{(k+1)}]e_{ja}e_j^\alpha + E[\mathrm{step}^{(k-1)}]\alpha_ae_j^{\alpha-1_a})`, the
    last term one product of ``k - 1`` coordinates per position of ``a`` in ``alpha``.
    """
    p, d = u.ET.shape
    n, k = idx.shape
    relu_k, step_up, step_down = _RIDGE_MOMENTS[k]
    factors = u.E[idx]  # (n, k, p): e_j at each coordinate of each alpha
    power = factors.prod(axis=1)  # e_j^alpha, (n, p)
    cols = out.T  # (n, P), C-ordered: each column of the Fortran-ordered out is a contiguous row here
    np.multiply(power, relu_k * u.r, out=cols[:, :p])
    Hw = cols[:, p:].reshape(n, p, d)  # the w blocks, written in place
    np.multiply(power[:, :, None], step_up * u.ET, out=Hw)
    for t in range(k):  # alpha_a e^(alpha - 1_a): the coordinate at position t left out
        rest = np.delete(factors, t, axis=1).prod(axis=1)  # (n, p)
        Hw[np.arange(n), :, idx[:, t]] += step_down * rest  # one coordinate a per column: no repeats
    Hw *= u.v[:, None]


def full_series_preconditioner(W: np.ndarray, v: np.ndarray, degree: int = 4) -> SeriesPreconditioner:
    r"""The truncation :math:`F_K = \sum_{|\alpha|\le K}E[\nabla f\,h_\alpha]E[\nabla f\,h_\alpha]^\top/\alpha!`.

    Theory §15.5. Every eigenpair of :math:`F_K` (rank at most ``N`` = :func:`n_full_hermite_features`)
    as a :class:`~relufim.fim.series.SeriesPreconditioner`: its top eigenvectors start the block
    solver and its shifted inverse turns the residuals into Davidson corrections, as the t-series
    does for ``J`` (theory §10). :math:`F - F_K` is positive semi-definite (the omitted degrees).
    Costs the features (``8 P N`` bytes, ``N = 781`` at ``d = 10``), their ``N x N`` Gram and its
    eigendecomposition; no product with ``F``.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(3, 40, seed=0)
    >>> v = np.random.default_rng(1).standard_normal(40) / np.sqrt(40)
    >>> M = full_series_preconditioner(W, v)
    >>> F4 = (M.eigenvectors * M.eigenvalues) @ M.eigenvectors.T
    >>> bool(np.linalg.eigvalsh(full_fisher_matrix(W, v) - F4)[0] > -1e-12)
    True
    """
    W, v = check_network(W, v)
    degree = _check_degree(degree)
    d, p = W.shape
    N, P = n_full_hermite_features(d, degree), p * (d + 1)
    check_memory(8.0 * (P * N + 3 * N * N), f"the degree-{degree} Hermite preconditioner ({N} features of length {P})",
                 "use seed_degree=2 (the degree-2 features, no eigenproblem)")
    features = full_hermite_features(W, v, degree).T  # (N, P), C-ordered: a view of the Fortran array
    features /= np.sqrt(hermite_square_norms(d, degree))[:, None]
    return SeriesPreconditioner.of_features(features, features @ features.T, degree)


# ----------------------------------------------------------------------------- sampled counterparts

def full_gradients(W: np.ndarray, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    r"""Per-sample gradients :math:`\nabla_\theta f(x_t)`, ``(n, P)``, in the order of :func:`full_fisher_matrix`.

    :math:`\partial f/\partial v_j = \mathrm{ReLU}(w_j\cdot x)`,
    :math:`\partial f/\partial w_j = v_j\mathbf 1[w_j\cdot x > 0]\,x` (theory §15.1).

    Examples
    --------
    >>> full_gradients(np.array([[1.0, -1.0]]), np.array([2.0, 3.0]), np.array([[0.5]]))
    array([[0.5, 0. , 1. , 0. ]])
    """
    W, v = check_network(W, v)
    x = check_inputs(x, W.shape[0])
    return _gradients(W, v, x)


def _gradients(W: np.ndarray, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    d, p = W.shape
    n = x.shape[0]
    Z = x @ W
    G = np.empty((n, p * (d + 1)))
    np.maximum(Z, 0.0, out=G[:, :p])
    G[:, p:].reshape(n, p, d)[...] = ((Z > 0) * v)[:, :, None] * x[:, None, :]
    return G


def _accumulate(chunks: Iterator[np.ndarray], W: np.ndarray, v: np.ndarray, steps: int,
                y: np.ndarray | None, stderr: bool, progress: Progress | None) -> tuple[np.ndarray, np.ndarray | None]:
    r""":math:`\frac1n\sum_t w_tg_tg_t^\top` (and its standard error) over streamed chunks of inputs.

    :math:`w_t = 1`, or with labels ``y`` the squared residual :math:`(y_t - f(x_t))^2`, formed per chunk
    from the chunk's own features. The per-sample gradients of one chunk at a time go into the
    library's one accumulator of sampled FIMs, :class:`~relufim.fim.sampled.StreamedGram`.
    """
    p = W.shape[1]
    acc = StreamedGram(p * (W.shape[0] + 1), stderr=stderr)
    start = 0
    for s, x in enumerate(chunks):
        G = _gradients(W, v, x)
        if y is not None:  # G[:, :p] = relu(x W): the outputs f(x_t) = relu(x_t W) v
            G *= np.abs(y[start:start + x.shape[0]] - G[:, :p] @ v)[:, None]
        start += x.shape[0]
        acc.add(G)
        if progress is not None:
            progress(s + 1, steps)
    return acc.result()


def full_monte_carlo_fisher(W: np.ndarray, v: np.ndarray, n: int, *, seed: int | None = None, sigma: float = 1.0,
                            return_stderr: bool = False, progress: Progress | None = None):
    r"""Monte Carlo FIM of all parameters (theory §15.6).

    :math:`F^{(n)} = \frac{1}{n\sigma^2}\sum_t\nabla_\theta f(x_t)\nabla_\theta f(x_t)^\top`.

    The inputs :math:`x_t\sim N(0, I_d)` are those of :func:`relufim.monte_carlo_fisher` for the same
    ``(n, seed)`` (:func:`~relufim.fim.sampled.gaussian_input_chunks`, chunks of 4096), streamed: the
    per-sample gradients of one chunk at a time, memory ``O(4096 P + P^2)``.

    Parameters
    ----------
    W : array (d, p)
    v : array (p,)
    n : int
        Number of Gaussian inputs.
    seed : int, optional
    sigma : float
    return_stderr : bool
        Also return the entrywise standard error of the mean (sample variance, needs ``n >= 2``).
    progress : callable(done, total), optional

    Returns
    -------
    F_n : (P, P) array
    stderr : (P, P) array, only with ``return_stderr``

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 4, seed=0)
    >>> v = np.array([1.0, -0.5, 0.3, 2.0])
    >>> Fn, se = full_monte_carlo_fisher(W, v, 40000, seed=1, return_stderr=True)
    >>> bool(np.all(np.abs(Fn - full_fisher_matrix(W, v)) < 6 * se + 1e-12))
    True
    """
    W, v = check_network(W, v)
    n = check_positive_int(n, "n")
    sigma = check_sigma(sigma)
    if return_stderr and n < 2:
        raise ValueError("return_stderr=True needs n >= 2 samples.")
    d, p = W.shape
    P = p * (d + 1)
    check_dense_fits(P, what=f"the dense {P} x {P} Monte Carlo FIM of all parameters",
                     copies=2.0 if return_stderr else 1.0,
                     alternative="use fewer hidden units, or products with per-sample gradients (full_gradients)")
    mean, se = _accumulate(gaussian_input_chunks(n, d, seed), W, v, input_chunk_count(n), None, return_stderr,
                           progress)
    if sigma != 1.0:
        mean /= sigma * sigma
        if se is not None:
            se /= sigma * sigma
    return mean if se is None else (mean, se)


def full_empirical_fisher(W: np.ndarray, v: np.ndarray, x: np.ndarray, *, y: np.ndarray | None = None,
                          sigma: float = 1.0) -> np.ndarray:
    r"""The FIM of all parameters on a data set: inputs ``x`` (n, d), and labels ``y`` (n,) if given.

    Without ``y``: the FIM of the model on the data's inputs,
    :math:`\frac{1}{n\sigma^2}\sum_t\nabla_\theta f(x_t)\nabla_\theta f(x_t)^\top` (the counterpart of
    :func:`relufim.empirical_fisher`).

    With ``y``: the *empirical Fisher* of the Gaussian likelihood in the sense of Kunstner, Hennig &
    Balles (2019), the outer products of the log-likelihood gradients
    :math:`(y_t - f(x_t))\nabla_\theta f(x_t)/\sigma^2` at the observed labels,
    :math:`\frac{1}{n\sigma^4}\sum_t(y_t - f(x_t))^2\,\nabla_\theta f(x_t)\nabla_\theta f(x_t)^\top`. It
    equals the FIM in expectation only when the labels come from the model itself.

    Examples
    --------
    >>> W, v = np.array([[1.0, -1.0]]), np.array([2.0, 3.0])
    >>> full_empirical_fisher(W, v, np.array([[0.5], [-1.0]]))
    array([[ 0.125,  0.   ,  0.25 ,  0.   ],
           [ 0.   ,  0.5  ,  0.   , -1.5  ],
           [ 0.25 ,  0.   ,  0.5  ,  0.   ],
           [ 0.   , -1.5  ,  0.   ,  4.5  ]])
    """
    W, v = check_network(W, v)
    x = check_inputs(x, W.shape[0])
    sigma = check_sigma(sigma)
    n = x.shape[0]
    d, p = W.shape
    P = p * (d + 1)
    check_dense_fits(P, what=f"the dense {P} x {P} empirical FIM of all parameters",
                     alternative="use fewer hidden units")
    if y is not None:
        y = check_vector(y, n, "y", what="the n = {p} inputs x (one label each)")
    mean, _ = _accumulate(input_chunks(x), W, v, input_chunk_count(n), y, False, None)
    mean /= sigma**4 if y is not None else sigma**2
    return mean

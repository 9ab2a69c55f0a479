r"""The one tiled engine behind every product with the FIM and its relatives (theory §9).

Every matrix this library multiplies by has the form :math:`J_{ij} = s_i s_j\,\tilde k_{ij}(t_{ij})`
with :math:`t_{ij}` the cosine of columns ``i, j`` of ``W``: the FIM of any registered
activation, its harmonic truncations such as :math:`J_{\ge4}`, and its Taylor tails. A
:class:`TileKernel` says how to turn a tile of cosines (one GEMM of unit columns) into
:math:`\tilde k`, in place; the engine owns everything else, once:

* the tiles of the upper triangle, each used twice in a product (:math:`K_{ij}V_j` and
  :math:`K_{ij}^\top V_i`), so the kernel is evaluated on :math:`p^2/2` entries per product;
* the threads (one per core, BLAS pinned to one thread inside them) and their buffers;
* the exact diagonal, set on every diagonal tile;
* the backends: NumPy, and PyTorch (CPU or CUDA) for the kernels that evaluate in place
  with array-namespace code (the leaky-ReLU family, its truncations, Mehler series);
* progress, and the memory each product needs.

:func:`fill_symmetric` builds the dense matrix from the same kernels (each tile mirrored while
in cache), :func:`tiled_product` multiplies, :func:`rows_product` gives selected rows of a product.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .._threads import single_threaded_blas
from ..model.activations import (
    AccuracyWarning,
    Activation,
    gaussian_second_moment,
    mehler_truncation,
    warn_if_truncated,
)
from ..model.harmonics import low_degree_polynomial
from ..model.kernels import (
    ANTIPARALLEL_THRESHOLD,
    arccos_kernel_series_coefficients,
    two_pi_kappa_from_sum_norm,
    two_pi_kappa_inplace,
)

__all__ = [
    "SymmetricProductOperator",
    "FisherFacts",
    "TileKernel",
    "ReluFamilyTile",
    "DualTile",
    "MehlerTile",
    "make_tile_kernel",
    "upper_tiles",
    "write_mirrored",
    "symmetrize_upper",
    "fill_symmetric",
    "tiled_product",
    "run_tiles",
    "rows_product",
    "NumpyBackend",
    "TorchBackend",
    "default_threads",
    "numpy_tile_edge",
    "product_memory_bytes",
]

Progress = Callable[[int, int], None]

_TWO_PI = 2.0 * math.pi

class SymmetricProductOperator(LinearOperator):
    r"""What the FIM operators share: symmetric, float64, :math:`A/\sigma^2` from one unscaled product.

    Subclasses set ``sigma``, ``products`` (vectors multiplied so far) and ``progress`` (called as
    ``progress(done, total)`` during each product, or None) and implement ``_product(V)`` for ``V`` of
    shape ``(n, b)``; vectors, adjoints and the counting come from here, including
    ``product_seconds``, the wall-clock time spent in products so far (what a solver's own work
    is told apart from).
    """

    sigma: float
    products: int
    progress: Progress | None
    product_seconds: float = 0.0

    @contextmanager
    def reporting(self, progress: Progress | None) -> Iterator[SymmetricProductOperator]:
        """Report the products made inside a ``with`` block to ``progress``, then restore the operator's own.

        For a caller that hands the operator on (to a user, to a density estimate) after using it
        with its own callback.
        """
        before, self.progress = self.progress, progress
        try:
            yield self
        finally:
            self.progress = before

    def _product(self, V: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._matmat(np.asarray(x).reshape(-1, 1)).ravel()

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._matvec(x)

    def _adjoint(self) -> SymmetricProductOperator:
        return self

    def _matmat(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64).reshape(self.shape[0], -1)
        self.products += V.shape[1]
        start = time.perf_counter()
        out = self._product(V)
        self.product_seconds += time.perf_counter() - start
        if self.sigma != 1.0:
            out /= self.sigma**2
        return out


class FisherFacts:
    r"""What the in-process and the distributed FIM operator know without a product: the exact diagonal and trace.

    Subclasses set ``sigma`` and provide ``_kernel_diagonal``, the exact diagonal :math:`J_{ii}`
    before :math:`\sigma^2` (:attr:`TileKernel.diagonal`). A mixin beside
    :class:`SymmetricProductOperator`, so that both :class:`~relufim.fim.operator.FisherOperator`
    and :class:`~relufim.fim.distributed.DistributedFisherOperator` take it from one place.
    """

    sigma: float
    _kernel_diagonal: np.ndarray

    def diagonal(self) -> np.ndarray:
        r"""Exact diagonal :math:`J_{ii}/\sigma^2` (:math:`\|w_i\|^2/(2\sigma^2)` for ReLU)."""
        return self._kernel_diagonal / self.sigma**2

    def trace(self) -> float:
        r"""Exact trace (:math:`\|W\|_F^2/(2\sigma^2)` for ReLU)."""
        return float(np.sum(self._kernel_diagonal) / self.sigma**2)


#: Rows per strip when a tile is mirrored into the lower triangle.
_MIRROR_STRIP = 32


def write_mirrored(out: np.ndarray, rows: slice, cols: slice, X: np.ndarray) -> None:
    """``out[rows, cols] = X`` and ``out[cols, rows] = X.T``, the transposed write in strips of 32 rows.

    A whole-tile transposed write strides over too many cache lines at once; strips of
    ``_MIRROR_STRIP`` rows keep it in cache. The dense builds of :func:`fill_symmetric` and of the
    FIM of all parameters (:func:`relufim.fim.full.full_fisher_matrix`) mirror every off-diagonal
    tile with it.
    """
    out[rows, cols] = X
    for a in range(0, X.shape[0], _MIRROR_STRIP):
        strip = X[a:a + _MIRROR_STRIP]
        out[cols, rows.start + a:rows.start + a + strip.shape[0]] = strip.T


def symmetrize_upper(X: np.ndarray) -> np.ndarray:
    r"""Make the square ``X`` symmetric from its upper triangle, in place, and return it.

    The strict lower triangle is replaced by the transpose of the strict upper one, whatever it
    held: a diagonal tile whose GEMM is not exactly symmetric (theory §9), or an accumulator that
    BLAS ``syrk`` filled in its upper half only (theory §3). Values equal
    ``np.triu(X) + np.triu(X, 1).T``, with one temporary of ``X``'s size instead of three.

    Raises
    ------
    TypeError
        When ``X`` is not a NumPy array (it is changed in place).
    ValueError
        When ``X`` is not a square matrix.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0], [9.0, 3.0]])
    >>> symmetrize_upper(X)
    array([[1., 2.],
           [2., 3.]])
    >>> X
    array([[1., 2.],
           [2., 3.]])
    """
    if not isinstance(X, np.ndarray):
        raise TypeError(f"X must be a NumPy array (it is symmetrized in place), got {type(X).__name__}.")
    if X.ndim != 2 or X.shape[0] != X.shape[1]:
        raise ValueError(f"X must be a square matrix, got shape {X.shape}.")
    upper = np.triu(X, 1)
    np.copyto(X, 0.0, where=np.tri(X.shape[0], k=-1, dtype=bool))
    X += upper.T
    return X


def default_threads() -> int:
    """Worker threads of the NumPy backend: the number of CPU cores, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


def upper_tiles(p: int, tile: int) -> list[tuple[int, int]]:
    """Start indices ``(i, j)``, ``j >= i``, of the square tiles of edge ``tile`` covering the upper triangle."""
    starts = range(0, p, tile)
    return [(i, j) for i in starts for j in starts if j >= i]


# ----------------------------------------------------------------------------- backends

class NumpyBackend:
    """Array operations of the engine on NumPy arrays (host memory)."""

    name = "numpy"
    xp = np

    def __init__(self, dtype: np.dtype | str = "float64"):
        self.dtype = np.dtype(dtype)

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=self.dtype)

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, dtype=self.dtype)

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=self.dtype)

    def matmul(self, a: Any, b: Any, out: Any) -> Any:
        return np.matmul(a, b, out=out)

    def minimum(self, K: np.ndarray) -> float:
        return float(K.min())

    def where_below(self, K: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        return np.nonzero(K < threshold)

    def set_entries(self, K: np.ndarray, ii: np.ndarray, jj: np.ndarray, values: np.ndarray) -> None:
        K[ii, jj] = values

    def set_diagonal(self, K: np.ndarray, values: Any) -> None:
        np.fill_diagonal(K, values)

    def outer_into(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        np.multiply.outer(a, b, out=out)

    def abs_max(self, K: np.ndarray, exclude_diagonal: bool, scratch: np.ndarray) -> float:
        np.abs(K, out=scratch)
        if exclude_diagonal:
            np.fill_diagonal(scratch, 0.0)
        return float(scratch.max(initial=0.0))

    def to_numpy(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)


class TorchBackend:
    """Array operations of the engine on PyTorch tensors, on CUDA when available (TF32 off), else the CPU."""

    name = "torch"

    def __init__(self, dtype: np.dtype | str = "float64", device: str | None = None):
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError("backend='torch' needs PyTorch: pip install 'relufim[torch]'.") from exc
        self.xp = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda"):  # pragma: no cover - no GPU in CI
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        self.dtype = np.dtype(dtype)
        self.tdtype = torch.float64 if self.dtype == np.float64 else torch.float32

    def asarray(self, a: np.ndarray) -> Any:
        return self.xp.as_tensor(np.ascontiguousarray(a), dtype=self.tdtype, device=self.device)

    def empty(self, shape: tuple[int, ...]) -> Any:
        return self.xp.empty(shape, dtype=self.tdtype, device=self.device)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return self.xp.zeros(shape, dtype=self.tdtype, device=self.device)

    def matmul(self, a: Any, b: Any, out: Any) -> Any:
        return self.xp.mm(a, b, out=out)

    def minimum(self, K: Any) -> float:
        return float(K.min())

    def where_below(self, K: Any, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        idx = (K < threshold).nonzero().cpu().numpy()
        return idx[:, 0], idx[:, 1]

    def set_entries(self, K: Any, ii: np.ndarray, jj: np.ndarray, values: np.ndarray) -> None:
        K[self.xp.as_tensor(ii, device=self.device), self.xp.as_tensor(jj, device=self.device)] = \
            self.xp.as_tensor(values, dtype=self.tdtype, device=self.device)

    def set_diagonal(self, K: Any, values: Any) -> None:
        if np.ndim(values) == 0:
            K.fill_diagonal_(float(values))
        else:
            K.diagonal().copy_(self.asarray(values))

    def outer_into(self, a: Any, b: Any, out: Any) -> None:
        self.xp.outer(a, b, out=out)

    def abs_max(self, K: Any, exclude_diagonal: bool, scratch: Any) -> float:
        self.xp.abs(K, out=scratch)
        if exclude_diagonal:
            scratch.fill_diagonal_(0.0)
        return float(scratch.max()) if scratch.numel() else 0.0

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.to("cpu", dtype=self.xp.float64).numpy().copy()


# ----------------------------------------------------------------------------- tile kernels

class TileKernel:
    r"""How a tile of cosines becomes entries :math:`\tilde k_{ij}` of :math:`J_{ij} = s_is_j\tilde k_{ij}`.

    Attributes
    ----------
    row_scale : (p,) the factors :math:`s_i`
    diagonal : (p,) the exact diagonal :math:`J_{ii}` (before any :math:`\sigma^2`)
    in_place : bool
        ``evaluate`` uses only array-namespace operations (both backends); otherwise NumPy only.
    """

    row_scale: np.ndarray
    diagonal: np.ndarray
    in_place: bool = True
    name: str = "kernel"

    def prepare(self, backend: Any) -> dict[str, Any]:
        """Backend copies of the per-column data ``evaluate`` reads (default: none)."""
        return {}

    def evaluate(self, K: Any, rows: slice, cols: slice, S: Any, S2: Any, backend: Any, data: dict[str, Any],
                 diagonal_tile: bool) -> None:
        r"""Overwrite the cosine tile ``K`` with :math:`\tilde k`, using scratch ``S, S2``.

        ``rows`` and ``cols`` index the columns of ``W`` the tile belongs to: slices in a pass
        over tiles, an integer array for :func:`rows_product`.
        """
        raise NotImplementedError

    def diagonal_tilde(self) -> np.ndarray:
        r""":math:`\tilde k_{ii} = J_{ii}/s_i^2` (0 where :math:`s_i = 0`)."""
        s2 = self.row_scale * self.row_scale
        return np.divide(self.diagonal, s2, out=np.zeros_like(self.diagonal), where=s2 > 0)

    def finish(self) -> None:
        """Called after a full pass (a build or a product): report accuracy problems."""


class ReluFamilyTile(TileKernel):
    r"""The leaky-ReLU family :math:`J_{ij} = r_ir_j[k_a(t_{ij}) - q(t_{ij})]` (theory §7, §9).

    :math:`k_a = (1-a)^2\kappa + a\,t` is the unit dual of slope ``a``.

    ``q`` is an optional polynomial subtracted from the unit dual: the low harmonic degrees
    (:math:`J_{\ge K}`) or the low Taylor terms (the series tail from :math:`t^K` on). The tile
    holds :math:`2\pi` times the unit kernel and :math:`s_i = r_i/\sqrt{2\pi}`. Near-antiparallel
    pairs (:math:`t <` ``ANTIPARALLEL_THRESHOLD``) take :math:`\kappa` from :math:`\|u_i+u_j\|`
    (relatively accurate, theory §2); they are looked for only in tiles whose minimum cosine is
    below the threshold.
    """

    def __init__(self, U: np.ndarray, norms: np.ndarray, a: float = 0.0, subtract: np.ndarray | None = None,
                 name: str = "relu"):
        self.U = U
        self.a = float(a)
        self.poly = None if subtract is None or not np.any(subtract) else _TWO_PI * np.asarray(subtract, float)
        self.row_scale = norms / math.sqrt(_TWO_PI)
        unit_at_1 = (1.0 - self.a) ** 2 * 0.5 + self.a - (0.0 if subtract is None else float(np.sum(subtract)))
        self.diagonal = norms * norms * unit_at_1
        self._diag_tilde = _TWO_PI * unit_at_1
        self.name = name

    def diagonal_tilde(self) -> Any:
        return self._diag_tilde

    def evaluate(self, K, rows, cols, S, S2, backend, data, diagonal_tile):
        pairs = (backend.where_below(K, ANTIPARALLEL_THRESHOLD)
                 if backend.minimum(K) < ANTIPARALLEL_THRESHOLD else None)
        need_t = self.a != 0.0 or self.poly is not None
        two_pi_kappa_inplace(K, S, S2, backend.xp, keep_one_minus_t=need_t)  # S2 = 1 - t afterwards if need_t
        if pairs is not None and len(pairs[0]):
            ii, jj = pairs
            s = np.linalg.norm(self.U[:, rows][:, ii] + self.U[:, cols][:, jj], axis=0)
            backend.set_entries(K, ii, jj, two_pi_kappa_from_sum_norm(s))
        if self.a != 0.0:  # (1 - a)^2 kappa + a t, with t = 1 - S2
            K *= (1.0 - self.a) ** 2
            K -= (_TWO_PI * self.a) * S2
            K += _TWO_PI * self.a
        if self.poly is not None:  # subtract q(t) by Horner in S, with S2 turned into t
            S2 *= -1.0
            S2 += 1.0
            S[...] = float(self.poly[-1])
            for c in self.poly[-2::-1]:
                S *= S2
                S += float(c)
            K -= S


class DualTile(TileKernel):
    """Any activation with a closed-form dual (NumPy only).

    ``dual(r1, r2, t)``, or ``unit_dual(t)`` scaled by the norms when the activation is homogeneous.
    """

    in_place = False

    def __init__(self, act: Activation, norms: np.ndarray):
        self.act = act
        self.norms = norms
        self.homogeneous = bool(act.homogeneous and act.unit_dual is not None)
        self.row_scale = norms.copy() if self.homogeneous else np.ones_like(norms)
        self.diagonal = np.asarray(gaussian_second_moment(act, norms), dtype=np.float64)
        self.name = act.name

    def evaluate(self, K, rows, cols, S, S2, backend, data, diagonal_tile):
        np.clip(K, -1.0, 1.0, out=K)
        if self.homogeneous:
            K[...] = self.act.unit_dual(K)
        else:
            K[...] = self.act.dual(self.norms[rows, None], self.norms[None, cols], K)


class MehlerTile(TileKernel):
    r"""Mehler's series :math:`J_{ij} = \sum_{n\le K}\hat c_n(r_i)\hat c_n(r_j)t_{ij}^n` by Horner (theory §8).

    The truncation error of each entry is at most :math:`|t_{ij}|^{K+1}\sqrt{\tau_i\tau_j}`
    (Cauchy–Schwarz on the Parseval tails ``tau``); the largest off-diagonal :math:`|t|` of each
    tile is recorded and an :class:`~relufim.model.activations.AccuracyWarning` is issued after
    the pass when the bound exceeds ``1e-10`` of the largest diagonal entry.
    """

    def __init__(self, act: Activation, norms: np.ndarray):
        self.act = act
        self.C, tail, self.diagonal = mehler_truncation(act, norms)
        self.sqrt_tail = np.sqrt(tail)
        self.row_scale = np.ones_like(norms)
        self.name = act.name
        self._bounds: list[float] = []

    def prepare(self, backend):
        return {"C": backend.asarray(np.ascontiguousarray(self.C.T))}  # (order, p): rows are degrees

    def evaluate(self, K, rows, cols, S, S2, backend, data, diagonal_tile):
        backend.xp.clip(K, -1.0, 1.0, out=K)
        tmax = backend.abs_max(K, diagonal_tile, S)
        self._bounds.append(tmax ** self.C.shape[1] * float(self.sqrt_tail[rows].max(initial=0.0))
                            * float(self.sqrt_tail[cols].max(initial=0.0)))
        C = data["C"]
        order = C.shape[0]
        backend.outer_into(C[order - 1, rows], C[order - 1, cols], S)
        for n in range(order - 2, -1, -1):
            S *= K
            backend.outer_into(C[n, rows], C[n, cols], S2)
            S += S2
        K[...] = S

    def finish(self) -> None:
        bound = max(self._bounds, default=0.0)
        self._bounds = []
        warn_if_truncated(self.act, bound, float(np.max(self.diagonal, initial=0.0)), stacklevel=5)


def make_tile_kernel(U: np.ndarray, norms: np.ndarray, act: Activation, *, min_degree: int = 0,
                     taylor_from: int = 0) -> TileKernel:
    r"""The :class:`TileKernel` of the FIM of ``act`` (or of its truncation) for unit columns ``U`` and norms.

    ``min_degree = K > 0``: the harmonic part of degrees :math:`\ge K`, :math:`J_{\ge K}` (theory §9, §11);
    ``taylor_from = K > 0``: the Taylor tail :math:`\sum_{j\ge K}a_jt^j` (Theorem 2's remainder for ``K = 4``).
    Truncations are defined for the leaky-ReLU family.
    """
    if min_degree and taylor_from:
        raise ValueError("give min_degree (harmonic truncation) or taylor_from (Taylor tail), not both.")
    if act.relu_slope is not None:
        a = act.relu_slope
        subtract = None
        if min_degree:
            subtract = low_degree_polynomial(U.shape[0], min_degree, a)
        elif taylor_from:
            subtract = (1.0 - a) ** 2 * arccos_kernel_series_coefficients(taylor_from)
            if taylor_from > 1:
                subtract[1] += a
        return ReluFamilyTile(U, norms, a, subtract, name=act.name)
    if min_degree or taylor_from:
        raise ValueError(f"truncated kernels (min_degree, taylor_from) are defined for the leaky-ReLU family "
                         f"(relu, leaky-relu, abs), not for {act.name!r}.")
    if act.closed_form:
        return DualTile(act, norms)
    return MehlerTile(act, norms)


# ----------------------------------------------------------------------------- the passes

def _tile_buffers(edge: int, backend: Any, count: int) -> tuple[Any, ...]:
    return tuple(backend.empty((edge, edge)) for _ in range(count))


def fill_symmetric(out: np.ndarray, kernel: TileKernel, U: np.ndarray, tile: int, *,
                   threads: int | None = None, progress: Progress | None = None) -> None:
    """Fill ``out`` (p x p, float64) with the kernel's matrix on all cores: the dense build (theory §9).

    Each upper-triangle tile (one pass of :func:`run_tiles`) is one GEMM of unit columns into a
    per-thread buffer, the kernel in place, the row/column scalings; it is then mirrored while in
    cache, in strips of 32 rows (a whole-tile transposed write strides over too many cache lines at
    once). A diagonal tile is symmetrised from its upper half (its GEMM need not be exactly
    symmetric) and gets the exact diagonal.
    """
    p = U.shape[1]
    tile = min(tile, p)
    backend = NumpyBackend()
    data = kernel.prepare(backend)
    UT = np.ascontiguousarray(U.T)
    s = kernel.row_scale

    def work(i: int, j: int, bufs: tuple, _acc: Any) -> None:
        rows, cols = slice(i, min(i + tile, p)), slice(j, min(j + tile, p))
        m, n = rows.stop - rows.start, cols.stop - cols.start
        K, S, S2 = (b[:m, :n] for b in bufs)
        np.matmul(UT[rows], U[:, cols], out=K)
        kernel.evaluate(K, rows, cols, S, S2, backend, data, i == j)
        K *= s[rows, None]
        K *= s[None, cols]
        if i == j:
            symmetrize_upper(K)
            np.fill_diagonal(K, kernel.diagonal[rows])
            out[rows, cols] = K
        else:
            write_mirrored(out, rows, cols, K)

    # the tiles write into ``out`` directly: the scheduler's accumulator is a token (1, 1)
    run_tiles(upper_tiles(p, tile), work, backend=backend, tile=tile, out_shape=(1, 1),
              threads=threads or default_threads(), progress=progress)
    kernel.finish()


def numpy_tile_edge(n_vectors: int) -> int:
    r"""The tile edge of a NumPy product with ``n_vectors`` vectors when the caller gives none (theory §9).

    A tile's kernel costs the same whatever ``b``; its two GEMMs cost ``4 m^2 b`` flops. Few vectors
    favour tiles that stay in the core's cache (384: the kernel dominates), many vectors wider tiles,
    whose GEMMs run closer to the machine's rate (768). Measured at p = 20 000, d = 10, two AVX-512
    cores, float64: 8 vectors 0.44 s (384) against 0.49 s (768); 134 vectors 1.35 s against 1.24 s
    (49 % against 54 % of the GEMM rate); 276 vectors 2.27 s against 2.07 s (60 % against 66 %);
    float32 the same way.

    >>> numpy_tile_edge(8), numpy_tile_edge(134)
    (384, 768)
    """
    return 384 if n_vectors < 64 else 768


def product_memory_bytes(p: int, n_vectors: int, tile: int, threads: int, itemsize: int = 8) -> int:
    """Working memory of one product with ``n_vectors`` vectors.

    Three tiles, a product buffer and an accumulator per thread, and the scaled copies of ``V``
    and of the result.
    """
    return int(threads * (3 * tile * tile * itemsize + (tile + p) * n_vectors * 8) + 3 * p * n_vectors * 8)


def run_tiles(tiles: list[tuple[int, int]], work: Callable[..., None], *, backend: Any, tile: int,
              out_shape: tuple[int, int], threads: int = 1, n_buffers: int = 3, extra_buffers: tuple = (),
              progress: Progress | None = None) -> Any:
    """The engine's scheduler: call ``work(i, j, buffers, acc)`` for every tile, on all cores, and sum the accumulators.

    Each worker thread owns ``n_buffers`` tile-sized scratch arrays plus ``extra_buffers`` (shapes)
    and an accumulator of ``out_shape``; BLAS is pinned to one thread inside the workers (the tiles
    provide the parallelism). The NumPy backend shares the tiles among ``threads`` threads; the
    torch backend runs them in order (one device stream). Returns the summed accumulator on the
    backend. Every pass over tiles in the library (the dense builds, products, rows of products,
    and the same for the FIM of all parameters) goes through here.
    """
    done = [0]
    lock = threading.Lock()  # the count and the callback: one thread at a time, each count reported once

    def step(i: int, j: int, bufs: tuple, acc: Any) -> None:
        work(i, j, bufs, acc)
        with lock:
            done[0] += 1
            if progress is not None:
                progress(done[0], len(tiles))

    def buffers() -> tuple:
        return (*_tile_buffers(tile, backend, n_buffers), *(backend.empty(shape) for shape in extra_buffers))

    if backend.name != "numpy":
        acc = backend.zeros(out_shape)
        bufs = buffers()
        for i, j in tiles:
            step(i, j, bufs, acc)
        return acc
    n_workers = max(1, min(threads, len(tiles)))
    accs = [backend.zeros(out_shape) for _ in range(n_workers)]
    all_bufs = [buffers() for _ in range(n_workers)]
    queue = iter(tiles)  # next() is atomic under the GIL

    def run(w: int) -> None:
        while True:
            try:
                i, j = next(queue)
            except StopIteration:
                return
            step(i, j, all_bufs[w], accs[w])

    with single_threaded_blas():
        if n_workers == 1:
            run(0)
        else:
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                list(pool.map(run, range(n_workers)))
    out = accs[0]
    for a in accs[1:]:
        out += a
    return out


class _Blocks:
    r"""The block layout of the engine's ``(n, b)`` operands and accumulators (theory §9).

    Narrow products are fastest in BLAS with the vectors as rows, ``(b, m)`` per block of ``m``
    rows, in float64 (:math:`V^\top K^\top` at 2.4 against :math:`KV` at 3.0 ns per tile entry for
    ``b = 69`` on one AVX-512 core) and as columns, ``(m, b)``, in float32 (1.2 against 1.5 ns):
    the layout follows the precision, never the shapes. Block ``i`` (rows ``i .. i + m``) is the
    contiguous slice ``[i b, (i + m) b)`` of a flat array in either layout, so every tile's
    products land in contiguous blocks (a strided add into a ``(b, n)`` array cost 4 % of a product).
    """

    def __init__(self, n: int, b: int, tile: int, dtype: np.dtype):
        self.n, self.b, self.tile = n, b, tile
        self.as_rows = np.dtype(dtype) == np.float64

    def block(self, flat: Any, i: int) -> Any:
        """Block ``i`` of ``flat``: ``(b, m)`` as rows, ``(m, b)`` as columns."""
        m = min(self.tile, self.n - i)
        return flat[i * self.b:(i + m) * self.b].reshape((self.b, m) if self.as_rows else (m, self.b))

    def pack(self, X: np.ndarray) -> np.ndarray:
        """``(n, b)`` -> the flat layout."""
        if not self.as_rows:
            return np.ascontiguousarray(X).reshape(-1)
        flat = np.empty(self.n * self.b)
        for i in range(0, self.n, self.tile):
            self.block(flat, i)[...] = X[i:i + self.tile].T
        return flat

    def unpack(self, flat: np.ndarray) -> np.ndarray:
        """The flat layout -> ``(n, b)`` float64."""
        if not self.as_rows:
            return np.array(flat, dtype=np.float64).reshape(self.n, self.b)
        out = np.empty((self.n, self.b))
        for i in range(0, self.n, self.tile):
            out[i:i + self.tile] = self.block(flat, i).T
        return out

    def add_tile_product(self, backend: Any, acc_block: Any, K: Any, V_block: Any, scratch: Any) -> None:
        r"""``acc_block += K @ V_block`` in the layout (as rows: :math:`+= V^\top K^\top`), through ``scratch``."""
        A, B = (V_block, K.T) if self.as_rows else (K, V_block)
        P = scratch[: acc_block.shape[0] * acc_block.shape[1]].reshape(acc_block.shape)
        backend.matmul(A, B, P)
        acc_block += P


def tiled_product(kernel: TileKernel, U: Any, V: np.ndarray, tile: int, *, backend: Any = None,
                  threads: int = 1, progress: Progress | None = None, data: dict[str, Any] | None = None) -> np.ndarray:
    r""":math:`JV` for ``V`` of shape ``(p, b)`` without forming ``J`` (theory §9).

    ``U`` holds the unit columns on the backend (a NumPy array or a tensor). Every tile of the
    upper triangle is evaluated once and used twice; the diagonal tiles get the exact diagonal.
    """
    backend = backend or NumpyBackend()
    data = kernel.prepare(backend) if data is None else data
    p, b = V.shape
    tile = min(tile, p)
    s = kernel.row_scale
    dtilde = kernel.diagonal_tilde()
    lay = _Blocks(p, b, tile, backend.dtype)
    Vs = backend.asarray(lay.pack(V * s[:, None]))

    def work(i: int, j: int, bufs: tuple, acc: Any) -> None:
        K, S, S2, P = bufs
        ri, rj = slice(i, min(i + tile, p)), slice(j, min(j + tile, p))
        m, n = ri.stop - ri.start, rj.stop - rj.start
        Kt, St, S2t = (x.reshape(-1)[: m * n].reshape(m, n) for x in (K, S, S2))  # contiguous for BLAS
        backend.matmul(U[:, ri].T, U[:, rj], Kt)
        kernel.evaluate(Kt, ri, rj, St, S2t, backend, data, i == j)
        if i == j:
            backend.set_diagonal(Kt, dtilde if np.ndim(dtilde) == 0 else dtilde[ri])
        lay.add_tile_product(backend, lay.block(acc, i), Kt, lay.block(Vs, j), P)
        if i != j:
            lay.add_tile_product(backend, lay.block(acc, j), Kt.T, lay.block(Vs, i), P)

    flat = run_tiles(upper_tiles(p, tile), work, backend=backend, tile=tile, out_shape=(p * b,),
                     threads=threads, extra_buffers=((tile * b,),), progress=progress)
    kernel.finish()
    out = lay.unpack(backend.to_numpy(flat))
    out *= s[:, None]
    return out


def rows_product(kernel: TileKernel, U: np.ndarray, rows: np.ndarray, V: np.ndarray, tile: int, *,
                 threads: int = 1) -> np.ndarray:
    r"""Rows ``rows`` (indices) of :math:`JV` only, ``(len(rows), b)`` (NumPy backend, theory §9).

    The rows are cut into tiles against every column tile; each tile is evaluated once and used
    once, so ``m`` rows cost ``m p`` kernel entries and ``2 m p b`` flops. Diagonal entries that
    fall in a tile get the exact diagonal. Serves sampled a-posteriori residuals (a few rows where
    a full product is too slow) and one worker's block of a distributed product (the symmetry of
    ``J`` cannot be used across workers without sending partial sums back).
    """
    backend = NumpyBackend()
    data = kernel.prepare(backend)
    p, b = V.shape
    rows = np.asarray(rows, dtype=np.intp)
    m = rows.size
    tile = min(tile, p)
    s = kernel.row_scale
    dtilde = kernel.diagonal_tilde()
    cols, out_lay = _Blocks(p, b, tile, backend.dtype), _Blocks(m, b, tile, backend.dtype)
    Vs = cols.pack(V * s[:, None])
    Ur = np.ascontiguousarray(U[:, rows])
    tiles = [(i, j) for i in range(0, m, tile) for j in range(0, p, tile)]

    def work(i: int, j: int, bufs: tuple, acc: np.ndarray) -> None:
        K, S, S2, P = bufs
        li, rj = slice(i, min(i + tile, m)), slice(j, min(j + tile, p))
        mi, n = li.stop - li.start, rj.stop - rj.start
        Kt, St, S2t = (x.reshape(-1)[: mi * n].reshape(mi, n) for x in (K, S, S2))
        np.matmul(Ur[:, li].T, U[:, rj], out=Kt)
        gi = rows[li]
        kernel.evaluate(Kt, gi, rj, St, S2t, backend, data, False)
        same = np.flatnonzero((gi >= rj.start) & (gi < rj.stop))  # the exact diagonal where rows meet columns
        if same.size:
            Kt[same, gi[same] - rj.start] = dtilde if np.ndim(dtilde) == 0 else dtilde[gi[same]]
        out_lay.add_tile_product(backend, out_lay.block(acc, i), Kt, cols.block(Vs, j), P)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AccuracyWarning)  # rows of a product: the full pass reports it
        flat = run_tiles(tiles, work, backend=backend, tile=tile, out_shape=(m * b,), threads=threads,
                         extra_buffers=((tile * b,),))
        kernel.finish()
    out = out_lay.unpack(flat)
    out *= s[rows][:, None]
    return out

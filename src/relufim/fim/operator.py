r"""The exact FIM (and its truncations) as a matrix-free operator (theory §9).

:func:`fisher_operator` returns a :class:`scipy.sparse.linalg.LinearOperator` for
:math:`J = D\,k(U^\top U)\,D` (``D = diag(||w_i||)``, ``U`` the unit columns, ``k`` the
activation's kernel) that never stores the ``p x p`` matrix: each product goes through the
tile engine of :mod:`relufim.fim.tiles`, so memory is :math:`O(\mathrm{block}^2 + p\,b)` per
thread for a block of ``b`` vectors. Every product with ``J`` in the library goes through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import check_float_dtype, check_memory, check_positive_int, check_sigma, check_weights
from ..model.activations import Activation, get_activation
from ..model.weights import column_norms, unit_columns
from .distributed import DistributedFisherOperator, make_distributed_operator
from .tiles import (
    FisherFacts,
    NumpyBackend,
    SymmetricProductOperator,
    TileKernel,
    TorchBackend,
    default_threads,
    make_tile_kernel,
    numpy_tile_edge,
    product_memory_bytes,
    rows_product,
    tiled_product,
)

__all__ = ["FisherOperator", "fisher_operator"]

Progress = Callable[[int, int], None]


class FisherOperator(FisherFacts, SymmetricProductOperator):
    r"""Matrix-free :math:`J/\sigma^2` (or a truncation of it) for hidden weights ``W`` (see :func:`fisher_operator`).

    Attributes
    ----------
    W : (d, p) float64 array
    norms : (p,) column norms :math:`\|w_i\|`
    kernel : the :class:`~relufim.fim.tiles.TileKernel` evaluated on each tile
    block : tile edge, or None for the engine's choice per product (:func:`~relufim.fim.tiles.numpy_tile_edge`)
    backend : "numpy" or "torch"
    device : "cpu" or the torch device used
    products : number of vectors multiplied so far (each costs one pass over the tiles)
    product_seconds : wall-clock seconds spent in those products
    """

    def __init__(self, W: np.ndarray, kernel: TileKernel, *, sigma: float, block: int | None, backend: str,
                 dtype: np.dtype, threads: int, progress: Progress | None):
        d, p = W.shape
        super().__init__(dtype=np.dtype(np.float64), shape=(p, p))
        self.W = W
        self.sigma = sigma
        self.norms = column_norms(W)
        self.U = unit_columns(W, self.norms)
        self.kernel = kernel
        self.block = None if block is None else min(block, p)
        self.backend = backend
        self.compute_dtype = np.dtype(dtype)
        self.threads = threads
        self.progress = progress
        self.products = 0
        self._backend = TorchBackend(self.compute_dtype) if backend == "torch" else NumpyBackend(self.compute_dtype)
        self.device = getattr(self._backend, "device", "cpu")
        self._U = self._backend.asarray(self.U)
        self._data = kernel.prepare(self._backend)

    @property
    def _kernel_diagonal(self) -> np.ndarray:
        """The exact diagonal before sigma^2, read by FisherFacts' diagonal() and trace(): the kernel's own."""
        return self.kernel.diagonal

    def tile(self, n_vectors: int) -> int:
        """The tile edge of a product with ``n_vectors`` vectors: ``block``, or the engine's choice for that many."""
        return min(self.block or numpy_tile_edge(n_vectors), self.shape[0])

    def memory_bytes(self, n_vectors: int) -> int:
        """Working memory of one product with ``n_vectors`` vectors (tiles, accumulators, copies of V)."""
        return product_memory_bytes(self.shape[0], n_vectors, self.tile(n_vectors), self.threads,
                                    self.compute_dtype.itemsize)

    def rows_times(self, rows: np.ndarray, V: np.ndarray, chunk: int | None = None) -> np.ndarray:
        r"""Rows ``rows`` of :math:`JV/\sigma^2` only, ``(len(rows), b)``: costs ``len(rows) * p`` kernel entries.

        Used for a-posteriori residual estimates at widths where a full product is too slow:
        :math:`\|r\|^2 \approx (p/s)\sum_{i\in S} r_i^2` over ``s`` uniformly sampled rows. ``chunk`` is
        the tile edge (default: the operator's, :meth:`tile`); the tiles run on the operator's threads.
        """
        V = np.asarray(V, dtype=np.float64).reshape(self.shape[0], -1)
        tile = self.tile(V.shape[1]) if chunk is None else check_positive_int(chunk, "chunk")
        return rows_product(self.kernel, self.U, rows, V, tile, threads=self.threads) / self.sigma**2

    def _product(self, V: np.ndarray) -> np.ndarray:
        return tiled_product(self.kernel, self._U, V, self.tile(V.shape[1]), backend=self._backend,
                             threads=self.threads, progress=self.progress, data=self._data)


def fisher_operator(W: np.ndarray, *, block: int | None = None, backend: str = "numpy",
                    dtype: str | np.dtype = "float64", sigma: float = 1.0,
                    activation: str | Activation = "relu", min_degree: int = 0, taylor_from: int = 0,
                    threads: int | None = None, client: Any = None, row_block: int | None = None,
                    retries: int = 3, progress: Progress | None = None) -> FisherOperator | DistributedFisherOperator:
    r"""The exact FIM :math:`J/\sigma^2` (theory §2, §9) as a matrix-free ``LinearOperator``.

    Construction is cheap (column norms and unit columns, ``O(dp)``); each product
    :math:`JV` recomputes the kernel tile by tile and never stores ``p x p``.

    Parameters
    ----------
    W : array (d, p), d < p
        Hidden weights.
    block : int, optional
        Tile edge, capped at ``p``; working memory per thread is ``3 block^2`` numbers (the
        tile and two scratch tiles) plus one ``p x b`` accumulator for ``b`` vectors. Default with
        ``backend="numpy"``: chosen per product by :func:`~relufim.fim.tiles.numpy_tile_edge`, 384
        for fewer than 64 vectors (tiles that stay in the core's cache), 768 for 64 or more (wider GEMMs:
        at p = 20 000 a product with 134 vectors runs at 54 % of the GEMM rate against 49 % with
        384); 384 on a Dask cluster. Default 4096 with ``backend="torch"``, whose tiles are
        dispatched one by one from Python: on a GPU each tile must carry enough work to hide that.
    backend : {"numpy", "torch"}
        ``"numpy"``: tiles shared among ``threads`` threads (in-place kernel, BLAS products).
        ``"torch"``: the same tiles and the same kernel code with PyTorch, on CUDA when available
        (TF32 off), else the CPU; for the kernels that evaluate in place (the leaky-ReLU family,
        its truncations, Mehler series).
    dtype : {"float64", "float32"}
        Compute precision of the kernel tiles and their products: float64 is exact to round-off;
        float32 is about twice as fast and accurate to about 1e-6 relative (the mixed-precision
        solver uses it for its early iterations only, theory §10).
    sigma : float
        Noise standard deviation; the operator is :math:`J/\sigma^2`.
    activation : str or Activation
        Any registered activation (theory §8).
    min_degree : int
        ``K > 0``: only the harmonic degrees :math:`\ge K` of the kernel, :math:`J_{\ge K}`
        (theory §9, §11; the error of the degree-<=2 approximation formula is :math:`v^\top J_{\ge4}v`).
    taylor_from : int
        ``K > 0``: only the Taylor tail :math:`\sum_{j\ge K}a_jt^j` of the kernel (``K = 4``:
        Theorem 2's remainder ``R``, theory §4).
    threads : int, optional
        Worker threads of the numpy backend (default: the number of CPU cores, at most 8; with a
        ``client``, the threads of each Dask worker).
    client : dask.distributed.Client, optional
        Run every product on the cluster: the rows are split into blocks of ``row_block`` rows
        (default: about four blocks per worker), one task per block and product, ``W`` scattered
        once and ``V`` for each product (:class:`~relufim.fim.distributed.DistributedFisherOperator`).
        A worker lost during a product costs a recomputation of its blocks, never a wrong result.
        Needs the ``distributed`` extra; the numpy backend only.
    row_block, retries : int, optional
        Rows per task and retries per task (for exceptions) with a ``client``.
    progress : callable(done, total), optional
        Called after each tile of each product (each block with a ``client``).

    Returns
    -------
    FisherOperator or DistributedFisherOperator
        With ``matmat``, exact ``diagonal()`` and ``trace()``.

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
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}.")
    dt = check_float_dtype(dtype)
    min_degree = check_positive_int(min_degree, "min_degree", minimum=0)
    taylor_from = check_positive_int(taylor_from, "taylor_from", minimum=0)
    if block is None and (backend == "torch" or client is not None):
        block = 4096 if backend == "torch" else 384
    if block is not None:
        block = check_positive_int(block, "block")
    if client is not None:
        if backend != "numpy" or dt != np.float64:
            raise ValueError("client= runs the numpy backend in float64 on the workers; leave backend and dtype out.")
        return make_distributed_operator(W, client, activation=act, sigma=sigma, block=block,
                                         row_block=None if row_block is None else check_positive_int(row_block,
                                                                                                     "row_block"),
                                         threads=None if threads is None else check_positive_int(threads, "threads"),
                                         retries=check_positive_int(retries, "retries", minimum=0),
                                         progress=progress, min_degree=min_degree, taylor_from=taylor_from)
    threads = default_threads() if threads is None else check_positive_int(threads, "threads")
    norms = column_norms(W)
    kernel = make_tile_kernel(unit_columns(W, norms), norms, act, min_degree=min_degree, taylor_from=taylor_from)
    if backend == "torch" and not kernel.in_place:
        raise ValueError(f"backend='torch' evaluates kernels in place; activation {act.name!r} has a closed-form "
                         "dual evaluated on the host: use backend='numpy'.")
    edge = min(block or numpy_tile_edge(1), W.shape[1])
    check_memory(product_memory_bytes(W.shape[1], 1, edge, threads, dt.itemsize),
                 f"fisher_operator tiles of {edge}", "use a smaller block")
    return FisherOperator(W, kernel, sigma=sigma, block=block, backend=backend, dtype=dt, threads=threads,
                          progress=progress)

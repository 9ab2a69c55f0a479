r"""Top eigenpairs with residuals: of the FIM of hidden weights, of a matrix or operator, of features (theory §3, §10).

Three public entry points, one per kind of input (none of them guesses what an array is):

* :func:`spectrum` takes hidden weights ``W`` (d, p) and the FIM to build from them: exact
  (Lemma 1), Monte Carlo or empirical;
* :func:`matrix_spectrum` takes a symmetric matrix or a :class:`scipy.sparse.linalg.LinearOperator`;
* :func:`feature_spectrum` takes features ``X`` (n, p) and diagonalizes :math:`X^\top X/n`
  through the cheaper of its two sides.

All return a :class:`~relufim.spectrum.result.SpectrumResult`. Routes:

* ``"dense"``: LAPACK ``eigh`` on the dense matrix (all or the top ``k`` pairs);
* ``"block"``: the seeded block Krylov solver (:mod:`relufim.spectrum.eigensolver`) on
  products with a dense matrix or an operator;
* ``"matrix-free"``: the same solver on :func:`relufim.fisher_operator` (the exact FIM
  above ``p = 3000``: ``J`` is never formed);
* ``"...-gram"``: sampled FIMs with ``n <= p`` samples through the ``n x n`` Gram
  :math:`XX^\top/n` (same nonzero spectrum), eigenvectors mapped back by :math:`X^\top`.

The block solver starts from the t-series features of degree <= 2
(:func:`relufim.fim.series_features`), whose span is the theory's approximate top space
(theory §4): seeds that cost no product with ``J``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.linalg as sla
from scipy.sparse.linalg import LinearOperator

from .._validation import (
    available_memory_bytes,
    check_choice,
    check_dense_fits,
    check_fraction,
    check_inputs,
    check_memory,
    check_positive_int,
    check_sigma,
    check_square_matrix,
    check_symmetric,
    check_weights,
)
from ..fim.exact import fisher_matrix
from ..fim.operator import fisher_operator
from ..fim.sampled import gaussian_input_chunks
from ..fim.series import SeriesPreconditioner, n_series_features, series_features, series_preconditioner
from ..model.activations import Activation, get_activation
from .eigensolver import block_eigsh, residual_norms
from .result import SpectrumResult, n_top

__all__ = ["spectrum", "matrix_spectrum", "feature_spectrum", "spectrum_route", "auto_seed_degree", "DENSE_LIMIT",
           "MATRIX_FREE_LIMIT"]

Progress = Callable[[int, int], None]


class _Start(NamedTuple):
    """What the block solver starts from: the vectors, their name (:attr:`SpectrumResult.start`), a preconditioner."""

    vectors: np.ndarray
    label: str
    preconditioner: SeriesPreconditioner | None = None


#: Below this size the dense LAPACK route is used for the top clusters (it is then as fast and exact).
DENSE_LIMIT = 1500

#: Above this width the exact FIM's top clusters are computed matrix-free (method="auto").
#: A matrix-free product costs about as much as a dense one (both are dominated by the 2 p^2 b
#: flops of the GEMMs; the kernel is recomputed in cache-sized tiles) while building ``J`` costs
#: first-touch page faults on 8 p^2 fresh bytes: at p = 10^4, top 65 pairs in 0.94 s
#: matrix-free against 1.0-2.0 s dense. Below the limit both take milliseconds and the dense
#: route also converges the ``extra`` pairs.
MATRIX_FREE_LIMIT = 3000

_METHODS = ("auto", "dense", "block", "matrix-free")


# ----------------------------------------------------------------------------- validation helpers

def _check_solver_options(method: str, tol: Any, maxiter: Any, extra: Any) -> tuple[float, int, int]:
    check_choice(method, "method", _METHODS)
    return check_fraction(tol, "tol"), check_positive_int(maxiter, "maxiter"), \
        check_positive_int(extra, "extra", minimum=0)


def _resolve_k(k: int | str, d: int | None, p: int, extra: int) -> int | None:
    """Number of eigenpairs wanted; ``None`` means all."""
    if isinstance(k, str):
        if k == "all":
            return None
        if k == "clusters":
            if d is None:
                raise ValueError("k='clusters' needs the input dimension: pass d=... (the FIM of a d-dimensional "
                                 "input has d(d+3)/2 cluster eigenvalues).")
            return min(p, n_top(d) + extra)
        raise ValueError(f"k must be an int, 'clusters' or 'all', got {k!r}.")
    k = check_positive_int(k, "k")
    if k > p:
        raise ValueError(f"k = {k} exceeds the matrix size p = {p}; use k <= p or k='all'.")
    return k


def _check_start(X0: Any, p: int) -> np.ndarray:
    X0 = np.asarray(X0, dtype=np.float64)
    if X0.ndim != 2 or X0.shape[0] != p or not np.all(np.isfinite(X0)):
        raise ValueError(f"X0 must be a finite array of shape (p, m) = ({p}, m), got shape {X0.shape}.")
    return X0


def _given_start(X0: Any, p: int) -> _Start | None:
    """The caller's starting vectors ``X0`` (checked) as the block solver's start, labelled ``"X0"``; None without."""
    return None if X0 is None else _Start(_check_start(X0, p), "X0")


# ----------------------------------------------------------------------------- the solves

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


def _solve(J: np.ndarray | LinearOperator, k: int | None, *, d: int | None, trace: float | None, sigma: float,
           method: str, vectors: bool, tol: float, maxiter: int, start: _Start | None, seed: int | None,
           progress: Progress | None, fisher: str, n: int | None = None, required: int | None = None,
           block: int | None = None, route: str | None = None, low: LinearOperator | None = None) -> SpectrumResult:
    """LAPACK on a dense matrix, or the block solver on products with a matrix or operator.

    The block solver starts from ``start`` (random vectors without one), whose label the result
    carries; LAPACK takes no start.
    """
    p = J.shape[0]
    dense = isinstance(J, np.ndarray)
    use_dense = dense and (method == "dense" or k is None or (method == "auto" and (p <= DENSE_LIMIT or k > p // 4)))
    if k is None and not dense:
        raise ValueError("k='all' needs a dense matrix; an operator gives its top k pairs (k=int or 'clusters').")
    if method == "block" and k is None:
        raise ValueError("k='all' needs the dense route; use method='dense' or 'auto'.")
    if use_dense:
        w, V = _dense_top(J, k, vectors)
        resid = residual_norms(J.__matmul__, w, V) if vectors else None
        return SpectrumResult.from_pairs(w, V, resid, tol=tol, d=d, p=p, method="dense", fisher=fisher,
                                         trace=trace, sigma=sigma, n=n, iterations=1)
    matmat = J.__matmul__ if dense else J.matmat
    r = block_eigsh(matmat, p, k, X0=None if start is None else start.vectors, tol=tol, maxiter=maxiter,
                    seed=0 if seed is None else seed, progress=progress, required=required, block=block,
                    matmat_low=None if low is None else low.matmat,
                    preconditioner=None if start is None else start.preconditioner)
    return SpectrumResult.from_pairs(r.eigenvalues, r.eigenvectors if vectors else None, r.residuals, tol=tol, d=d,
                                     p=p, method=route or "block", fisher=fisher, trace=trace, sigma=sigma, n=n,
                                     iterations=r.iterations, matvecs=r.matvecs, converged=r.converged,
                                     low_matvecs=r.low_matvecs, start=None if start is None else start.label)


def _seeds(W: np.ndarray, X0: np.ndarray | None, degree: int = 2, count: int | None = None) -> _Start:
    """The block solver's start for the FIM of ``W``, at no product with J, formed after the route's memory check.

    The caller's ``X0`` (``"X0"``); or, for degree 2, the t-series features themselves, whose span
    is the theory's approximate top space (theory §4, ``"t-series degree 2"``); for degree 4 or
    more, the top ``count`` eigenvectors of the truncation :math:`J_K` (``"t-series degree K,
    preconditioned"``). From degree 4 on, :math:`J_K` also preconditions the block solver, ``X0``
    or not (``"X0, t-series degree K preconditioner"`` with ``X0``; theory §9–10).
    """
    if degree <= 2:
        return _Start(series_features(W, 2), "t-series degree 2") if X0 is None else _Start(X0, "X0")
    M = series_preconditioner(W, degree)
    if X0 is not None:
        return _Start(X0, f"X0, t-series degree {degree} preconditioner", M)
    return _Start(M.seeds(count), f"t-series degree {degree}, preconditioned", M)


def auto_seed_degree(d: int, p: int, b: int) -> int:
    r"""The start ``seed_degree="auto"`` takes on the matrix-free route for ``b`` vectors (theory §10.3).

    4 when the degree-4 set-up (the Gram of the ``N`` features and its eigenproblem,
    :math:`pN^2 + N^3` flops) costs no more than one product (:math:`p^2 b`) and the features
    (``8 p N`` bytes) take at most an eighth of the free memory; else 2.

    Examples
    --------
    >>> auto_seed_degree(10, 10_000, 69), auto_seed_degree(10, 4000, 69), auto_seed_degree(20, 10_000, 239)
    (4, 2, 2)
    """
    N = n_series_features(d, 4)
    cheap = float(N) ** 3 + float(p) * N * N <= float(p) * p * b
    return 4 if cheap and 8.0 * p * N <= available_memory_bytes() / 8 else 2


def spectrum_route(p: int, k: int | Literal["clusters", "all"] = "clusters", *, d: int | None = None,
                   extra: int = 10, method: Literal["auto", "dense", "block", "matrix-free"] = "auto",
                   activation: str | Activation = "relu", precision: Literal["float64", "mixed"] = "float64",
                   backend: Literal["numpy", "torch"] = "numpy",
                   distributed: bool = False) -> Literal["dense", "matrix-free", "distributed"]:
    r"""Where :func:`spectrum` computes the top ``k`` pairs of the exact FIM of ``p`` hidden units (theory §10.3).

    ``"dense"`` forms the ``p x p`` matrix ``J`` (LAPACK, or the block solver on products with
    it: the result's ``method`` says which); ``"matrix-free"`` runs the block solver on products
    of :func:`relufim.fisher_operator`, never forming ``J``; ``"distributed"`` runs those
    products on a Dask cluster (theory §10.6).

    Parameters
    ----------
    p : int
        Hidden units: the size of ``J``.
    k : int, "clusters" or "all"
        As in :func:`spectrum`: ``"clusters"``, the ``d(d+3)/2`` cluster pairs plus ``extra`` (needs
        ``d``); ``"all"`` needs the dense route.
    d : int, optional
        Input dimension, for ``k="clusters"``.
    extra : int
        Pairs beyond the clusters with ``k="clusters"``.
    method : {"auto", "dense", "block", "matrix-free"}
        As in :func:`spectrum`. ``"auto"``: matrix-free for the leaky-ReLU family when
        ``p >`` :data:`MATRIX_FREE_LIMIT` or the dense ``J`` would take more than half the free
        memory, unless ``k > p/4`` (then the dense route converges the pairs as cheaply); else dense.
    activation : str or Activation
        Only the leaky-ReLU family (ReLU, leaky ReLU, abs) has the operator.
    precision : {"float64", "mixed"}
        ``"mixed"`` (float32 tiles early, theory §10.5) is an option of the operator: matrix-free.
    backend : {"numpy", "torch"}
        ``"torch"`` (the operator's tiles on a torch device) is matrix-free too.
    distributed : bool
        The products run on a cluster (:func:`spectrum` with ``client=``): top pairs only, matrix-free.

    Returns
    -------
    {"dense", "matrix-free", "distributed"}

    Raises
    ------
    ValueError
        For ``k="all"`` with ``method="block"`` or on the operator (``method="matrix-free"``, a
        cluster, ``precision="mixed"``, ``backend="torch"``); for the operator with an activation
        outside the leaky-ReLU family; and for a cluster, ``precision="mixed"`` or
        ``backend="torch"`` with ``method="dense"`` or ``"block"``.

    Examples
    --------
    >>> spectrum_route(2000, d=10), spectrum_route(12_000, d=10), spectrum_route(12_000, "all")
    ('dense', 'matrix-free', 'dense')
    >>> spectrum_route(12_000, 75, activation="tanh"), spectrum_route(12_000, 5000)
    ('dense', 'dense')
    >>> spectrum_route(2000, 75, method="matrix-free"), spectrum_route(2000, 75, distributed=True)
    ('matrix-free', 'distributed')
    >>> spectrum_route(2000, 75, precision="mixed")
    'matrix-free'
    """
    p = check_positive_int(p, "p")
    if d is not None:
        d = check_positive_int(d, "d")
    kk = _resolve_k(k, d, p, check_positive_int(extra, "extra", minimum=0))  # None: all
    check_choice(method, "method", _METHODS)
    act = get_activation(activation)
    if not isinstance(distributed, (bool, np.bool_)):
        raise TypeError(f"distributed must be True or False (whether the products run on a Dask cluster), "
                        f"got {type(distributed).__name__}.")
    check_choice(precision, "precision", ("float64", "mixed"))
    check_choice(backend, "backend", ("numpy", "torch"))
    options = precision == "mixed" or backend != "numpy"
    if options and method in ("dense", "block"):
        raise ValueError("precision='mixed' and backend='torch' are options of the matrix-free operator; use "
                         "method 'auto' or 'matrix-free'.")
    operator = distributed or options or method == "matrix-free"
    if operator and act.relu_slope is None:
        asked = ("client=" if distributed else "precision='mixed'" if precision == "mixed" else
                 "backend='torch'" if backend != "numpy" else "method='matrix-free'")
        raise ValueError(f"{asked} runs the matrix-free operator, which is for the exact FIM of the leaky-ReLU "
                         f"family, not {act.name}; drop {asked} for the dense route.")
    if distributed and method in ("dense", "block"):
        raise ValueError("client= runs the matrix-free products on a cluster; use method 'auto' or 'matrix-free', "
                         "or drop client for the dense route.")
    if operator and kk is None:
        raise ValueError("k='all' needs the dense matrix; for the whole spectrum at large p use "
                         "relufim.spectral_density(W).")
    if method == "block" and kk is None:
        raise ValueError("k='all' needs the dense route; use method='dense' or 'auto'.")
    if distributed:
        return "distributed"
    if operator:
        return "matrix-free"
    if method != "auto" or kk is None or act.relu_slope is None or kk > p // 4:
        return "dense"
    return "matrix-free" if p > MATRIX_FREE_LIMIT or 8.0 * p * p > 0.5 * available_memory_bytes() else "dense"


def _spectrum_matrix_free(W: np.ndarray, act: Activation, k: int, d: int, sigma: float, vectors: bool, tol: float,
                          maxiter: int, start: np.ndarray | None, seed: int | None, progress: Progress | None,
                          client: Any, precision: str, seed_degree: int | str,
                          product_progress: Progress | None, backend: str = "numpy",
                          required: int | None = None) -> SpectrumResult:
    p = W.shape[1]
    op = fisher_operator(W, activation=act, client=client, progress=product_progress, backend=backend)
    low = fisher_operator(W, activation=act, dtype="float32", backend=backend) if precision == "mixed" else None
    # two guard vectors: the d(d+3)/2 cluster pairs end at a gap of about 100x (lambda_66 / lambda_65
    # ~ 0.01 at d = 10), so more guards do not speed convergence (at p = 1e4 and 3e4 two and four give
    # the same residuals to 1%), and each costs a column per product
    b = k + 2
    if client is None:
        check_memory(8.0 * p * (16 * b) + op.memory_bytes(b), f"the matrix-free solver for p = {p}, k = {k}",
                     "use relufim.series_fisher(W, k) (low-rank t-series with an error bound) or fewer eigenpairs k")
    else:
        check_memory(8.0 * p * (16 * b), f"the block solver's search space for p = {p}, k = {k}",
                     "use fewer eigenpairs k")
    if seed_degree == "auto":
        seed_degree = auto_seed_degree(d, p, b)
    res = _solve(op, k, d=d, trace=op.trace(), sigma=sigma, method="block", vectors=vectors, tol=tol,
                 maxiter=maxiter, start=_seeds(W, start, seed_degree, b), seed=seed, progress=progress,
                 fisher="exact", required=min(k, n_top(d)) if required is None else required, block=b,
                 route="distributed" if client is not None else "matrix-free" if backend == "numpy" else
                 f"matrix-free (torch, {op.device})", low=low)
    if client is not None:
        res = replace(res, workers=tuple(op.throughput()))
    return res


def _features(W: np.ndarray, act: Activation, n: int, seed: int | None, x: np.ndarray | None) -> np.ndarray:
    """Hidden features X (n, p) of the Monte Carlo stream or of the user's inputs, after a memory check."""
    p = W.shape[1]
    check_memory(8.0 * n * p, f"the {n} x {p} array of hidden features",
                 "use fewer samples n, or the exact FIM (fisher='exact')", fraction=0.5)
    if x is not None:
        return act.phi(x @ W)
    return np.vstack([act.phi(chunk @ W) for chunk in gaussian_input_chunks(n, W.shape[0], seed)])


# ----------------------------------------------------------------------------- public entry points

def spectrum(
    W: np.ndarray,
    k: int | Literal["clusters", "all"] = "clusters",
    *,
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
    X0: np.ndarray | None = None,
    required: int | None = None,
    seed_degree: int | Literal["auto"] = "auto",
    precision: Literal["float64", "mixed"] = "float64",
    backend: Literal["numpy", "torch"] = "numpy",
    client: Any = None,
    progress: Progress | None = None,
    product_progress: Progress | None = None,
) -> SpectrumResult:
    r"""Top eigenpairs of the FIM of hidden weights ``W``, with residuals and the three clusters (theory §4, §10).

    Parameters
    ----------
    W : array (d, p), d < p
        Hidden weights; the FIM is built from them as ``fisher`` says. (For a matrix or an
        operator use :func:`matrix_spectrum`; for features :func:`feature_spectrum`.)
    k : int, "clusters" or "all"
        ``"clusters"``: the ``d(d+3)/2`` eigenpairs of the three clusters plus ``extra``
        beyond; ``"all"``: every eigenvalue (dense).
    fisher : {"exact", "monte-carlo", "empirical"}
        The exact FIM (Lemma 1, theory §2), the Monte Carlo :math:`J^{(n)}` (``n`` samples from
        ``seed``, the same as :func:`relufim.monte_carlo_fisher`), or the empirical FIM on inputs
        ``x`` (n, d) (theory §3).
    sigma : float
        Every eigenvalue is divided by :math:`\sigma^2`.
    activation : str or Activation
        Any registered activation (theory §8).
    method : {"auto", "dense", "block", "matrix-free"}
        ``"auto"`` takes LAPACK for ``k="all"`` or ``p <= 1500``, else the seeded block Krylov
        solver; for the exact FIM of the leaky-ReLU family above ``p = 3000`` (or when the dense
        matrix would take more than half the free memory) it never forms ``J`` (``"matrix-free"``:
        the block solver on :func:`relufim.fisher_operator`; with ``k="clusters"`` only the
        ``d(d+3)/2`` cluster pairs must converge, the ``extra`` ones are flagged by their residuals).
        :func:`spectrum_route` says which route the exact FIM takes.
    vectors : bool
        Also return eigenvectors.
    tol : float
        Residual tolerance relative to :math:`\lambda_{max}` (flags, never hides, failures).
    maxiter : int
        Products of the block solver before it gives up (unconverged pairs are flagged).
    extra : int
        Pairs beyond the clusters with ``k="clusters"``.
    X0 : array (p, m), optional
        Starting vectors of the block solver (default: from the t-series, ``seed_degree``).
    required : int, optional
        How many of the leading pairs the block solver must converge before it stops,
        ``1 <= required <= k`` (``k="all"``: ``p``); the others are flagged by their own residuals.
        Default: all ``k``, except on the matrix-free route, where only the ``d(d+3)/2`` cluster
        pairs are required. The dense route converges every pair whatever ``required``.
    seed_degree : int or "auto"
        What the block solver starts from, at no product with ``J`` (theory §9–10): 2, the
        t-series features of degree <= 2, whose span is the theory's approximate top space; 4 (or
        more), the top eigenvectors of the truncation :math:`J_4`, which then also preconditions
        the solver (Davidson corrections :math:`(J_4-\theta)^{-1}r`), at the cost of an ``N x N``
        eigenproblem (``N = 781`` at ``d = 10``) and ``8 p N`` bytes. ``"auto"`` (default): 4 on the
        matrix-free route when that set-up costs no more flops than one product
        (:math:`N^3 + pN^2 \le p^2 b` for a block of ``b`` vectors) and its features take at most an
        eighth of the free memory (at ``d = 10`` with 67 vectors: from ``p`` of about 9800 on; two
        products instead of three at ``p >= 10^4``), else 2.
    precision : {"float64", "mixed"}
        ``"mixed"``: the matrix-free solver's early products use float32 tiles; once every
        cluster residual is below 1e-4 of :math:`\lambda_{max}`, one float64 product refreshes the
        images and the rest is float64, so every reported residual is a float64 one (theory §10).
    backend : {"numpy", "torch"}
        The matrix-free products in NumPy, or in PyTorch on a CUDA GPU when there is one (float64,
        TF32 off; :func:`relufim.fisher_operator`).
    client : dask.distributed.Client, optional
        Run the matrix-free products on a Dask cluster (:func:`relufim.fisher_operator` with
        ``client``); the result's ``workers`` reports each worker's throughput.
    progress : callable(converged, wanted), optional
        Called after each product of the block solver.
    product_progress : callable(done, total), optional
        Called within each matrix-free product (tiles in-process, row blocks on a cluster).

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
    W = check_weights(W)
    sigma = check_sigma(sigma)
    act = get_activation(activation)
    tol, maxiter, extra = _check_solver_options(method, tol, maxiter, extra)
    check_choice(fisher, "fisher", ("exact", "monte-carlo", "empirical"))
    d, p = W.shape
    kk = _resolve_k(k, d, p, extra)
    start = None if X0 is None else _check_start(X0, p)
    if required is not None:
        required = check_positive_int(required, "required")
        if required > (p if kk is None else kk):
            raise ValueError(f"required = {required} exceeds the number of eigenpairs asked for, "
                             f"k = {p if kk is None else kk}; use 1 <= required <= k.")
    if seed_degree != "auto":
        seed_degree = check_positive_int(seed_degree, "seed_degree", minimum=2)
    check_choice(precision, "precision", ("float64", "mixed"))
    if method == "matrix-free" and (fisher != "exact" or act.relu_slope is None):
        raise ValueError("method='matrix-free' is for the exact FIM of the leaky-ReLU family; sampled FIMs use "
                         "their Gram, other activations the dense or block route.")
    check_choice(backend, "backend", ("numpy", "torch"))
    operator_options = client is not None or precision == "mixed" or backend != "numpy"
    if operator_options and not (fisher == "exact" and method in ("auto", "matrix-free")):
        raise ValueError("client=, backend='torch' and precision='mixed' are for the matrix-free route of the exact "
                         "FIM (fisher='exact', method='auto' or 'matrix-free').")
    if client is not None and backend != "numpy":
        raise ValueError("client= runs NumPy on the workers; leave backend out.")
    if fisher == "exact":
        if x is not None or n is not None:
            raise ValueError("n and x are for sampled FIMs (fisher='monte-carlo' or 'empirical'); "
                             "the exact FIM needs neither.")
        if spectrum_route(p, k, d=d, extra=extra, method=method, activation=act, precision=precision, backend=backend,
                          distributed=client is not None) != "dense":
            return _spectrum_matrix_free(W, act, kk, d, sigma, vectors, tol, maxiter, start, seed, progress, client,
                                         precision, seed_degree, product_progress, backend, required)
        # each route checks its own memory before the seed vectors (p x d(d+3)/2) are formed
        J = fisher_matrix(W, activation=act)
        count = None if kk is None else min(p, kk + max(4, kk // 8))
        degree = 2 if seed_degree == "auto" else seed_degree
        return _solve(J, kk, d=d, trace=float(np.trace(J)), sigma=sigma, method=method, vectors=vectors, tol=tol,
                      maxiter=maxiter, start=None if kk is None else _seeds(W, start, degree, count), seed=seed,
                      progress=progress, fisher="exact", required=required)

    if fisher == "monte-carlo":
        if x is not None:
            raise ValueError("x is for fisher='empirical'; with fisher='monte-carlo' give n (and seed).")
        if n is None:
            raise ValueError("fisher='monte-carlo' needs the number of samples n, e.g. n=20000.")
        n = check_positive_int(n, "n")
    else:
        if x is None:
            raise ValueError("fisher='empirical' needs the inputs x of shape (n, d).")
        if n is not None:
            raise ValueError("with fisher='empirical' the number of samples is that of x; leave n out.")
        x = check_inputs(x, d)
        n = x.shape[0]
    X = _features(W, act, n, seed, x)
    return _feature_solve(X, kk, d=d, sigma=sigma, method=method, vectors=vectors, tol=tol, maxiter=maxiter,
                          seed=seed, progress=progress, fisher=fisher, start=_seeds(W, start), required=required)


def matrix_spectrum(
    A: np.ndarray | LinearOperator,
    k: int | Literal["clusters", "all"] = "all",
    *,
    d: int | None = None,
    sigma: float = 1.0,
    method: Literal["auto", "dense", "block"] = "auto",
    vectors: bool = True,
    tol: float = 1e-10,
    maxiter: int = 100,
    extra: int = 10,
    X0: np.ndarray | None = None,
    seed: int | None = None,
    trace: float | None = None,
    progress: Progress | None = None,
) -> SpectrumResult:
    r"""Top eigenpairs of a symmetric PSD matrix or ``LinearOperator``, with residuals (theory §10).

    Parameters
    ----------
    A : array (p, p) or LinearOperator
        A symmetric matrix (checked) such as a FIM built elsewhere, or an operator with
        ``matmat`` (the block solver; pass ``k`` as an int or ``"clusters"``).
    k : int, "clusters" or "all"
        ``"clusters"`` needs ``d``.
    d : int, optional
        Input dimension of the network the matrix belongs to: names the three clusters.
    sigma : float
        Every eigenvalue is divided by :math:`\sigma^2`.
    method : {"auto", "dense", "block"}
    X0 : array (p, m), optional
        Starting vectors of the block solver (for a FIM of ``W``:
        ``relufim.fim.series_features(W, 2)`` spans the predicted top space).
    trace : float, optional
        The trace of an operator, when known (a dense matrix's is computed).

    Returns
    -------
    SpectrumResult

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(d=3, p=60, seed=0)
    >>> res = rf.matrix_spectrum(rf.fisher_matrix(W), k="clusters", d=3)
    >>> [c.size for c in res.clusters]
    [1, 3, 5]
    """
    sigma = check_sigma(sigma)
    check_choice(method, "method", ("auto", "dense", "block"))
    tol, maxiter, extra = _check_solver_options(method, tol, maxiter, extra)
    if d is not None:
        d = check_positive_int(d, "d")
    if isinstance(A, LinearOperator):
        p, q = A.shape
        if p != q:
            raise ValueError(f"the operator must be square, got shape {A.shape}.")
        if method == "dense" or k == "all":
            raise ValueError("a LinearOperator has no dense form here; ask for its top pairs with an integer k "
                             "or k='clusters' (the block solver).")
        kk = _resolve_k(k, d, p, extra)
        return _solve(A, kk, d=d, trace=trace, sigma=sigma, method="block", vectors=vectors, tol=tol,
                      maxiter=maxiter, start=_given_start(X0, p), seed=seed, progress=progress, fisher="matrix")
    if not isinstance(A, np.ndarray) and (callable(A) or hasattr(A, "matmat")):
        raise TypeError(f"A must be a NumPy array or a scipy.sparse.linalg.LinearOperator, got {type(A).__name__}; "
                        "wrap a product function f(V) = A @ V as LinearOperator((p, p), matvec=f, matmat=f).")
    M = check_square_matrix(A, "A")
    check_symmetric(M, "A", "a FIM always is (symmetrize with (A + A.T) / 2).")
    p = M.shape[0]
    kk = _resolve_k(k, d, p, extra)
    return _solve(M, kk, d=d, trace=float(np.trace(M)) if trace is None else trace, sigma=sigma, method=method,
                  vectors=vectors, tol=tol, maxiter=maxiter, start=_given_start(X0, p), seed=seed, progress=progress,
                  fisher="matrix")


def feature_spectrum(
    X: np.ndarray,
    k: int | Literal["clusters", "all"] = "all",
    *,
    d: int | None = None,
    sigma: float = 1.0,
    method: Literal["auto", "dense", "block"] = "auto",
    vectors: bool = True,
    tol: float = 1e-10,
    maxiter: int = 100,
    extra: int = 10,
    X0: np.ndarray | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
) -> SpectrumResult:
    r"""Top eigenpairs of :math:`X^\top X/n` for features ``X`` (n, p), through the cheaper side (theory §3).

    With ``n <= p`` the ``n x n`` Gram :math:`G = XX^\top/n` is diagonalized (same nonzero
    eigenvalues): a unit eigenvector ``s`` of ``G`` with eigenvalue :math:`\lambda>0` maps to the
    unit eigenvector :math:`u = X^\top s/\sqrt{n\lambda}`; beyond rank ``n`` the eigenvalues are 0 (an
    integer ``k > n`` pads with zero eigenvalues and zero vectors; ``k="all"`` returns the ``n`` of the Gram).
    Residuals are measured on the ``p``-side operator. Starting vectors ``X0`` (p, m) of the ``p``
    side are mapped to ``X X0`` on the Gram side.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((5, 40))
    >>> res = feature_spectrum(X, 3)
    >>> bool(np.allclose(res.eigenvalues, np.linalg.eigvalsh(X.T @ X / 5)[::-1][:3]))
    True
    """
    sigma = check_sigma(sigma)
    check_choice(method, "method", ("auto", "dense", "block"))
    tol, maxiter, extra = _check_solver_options(method, tol, maxiter, extra)
    if d is not None:
        d = check_positive_int(d, "d")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D features of shape (n, p), got shape {X.shape}"
                         + ("; for one sample use X.reshape(1, -1)." if X.ndim == 1 else "."))
    X = check_inputs(X, X.shape[1], name="X")
    kk = _resolve_k(k, d, X.shape[1], extra)
    return _feature_solve(X, kk, d=d, sigma=sigma, method=method, vectors=vectors, tol=tol, maxiter=maxiter,
                          seed=seed, progress=progress, fisher="features",
                          start=_given_start(X0, X.shape[1]))


def _feature_solve(X: np.ndarray, k: int | None, *, d: int | None, sigma: float, method: str, vectors: bool,
                   tol: float, maxiter: int, seed: int | None, progress: Progress | None, fisher: str,
                   start: _Start | None, required: int | None = None) -> SpectrumResult:
    n, p = X.shape
    if n > p:
        check_dense_fits(p, what=f"the dense {p} x {p} sampled FIM")
        Jn = X.T @ X
        Jn /= n
        return _solve(Jn, k, d=d, trace=float(np.trace(Jn)), sigma=sigma, method=method, vectors=vectors,
                      tol=tol, maxiter=maxiter, start=start, seed=seed, progress=progress, fisher=fisher, n=n,
                      required=required)
    G = X @ X.T
    G /= n
    kg = None if k is None else min(k, n)
    res = _solve(G, kg, d=d, trace=float(np.trace(G)), sigma=1.0, method=method, vectors=vectors, tol=tol,
                 maxiter=maxiter, start=None if start is None else start._replace(vectors=X @ start.vectors),
                 seed=seed, progress=progress, fisher=fisher, n=n,
                 required=None if required is None else min(required, kg))
    lam = res.eigenvalues
    trace = res.trace
    if not vectors:
        pad = 0 if k is None else k - lam.size
        return SpectrumResult.from_pairs(np.concatenate([lam, np.zeros(max(pad, 0))]), None, None, tol=tol, d=d, p=p,
                                         method=res.method + "-gram", fisher=fisher, trace=trace, sigma=sigma, n=n,
                                         iterations=res.iterations, matvecs=res.matvecs, start=res.start)
    pos = lam > 0
    U = np.zeros((p, lam.size))
    U[:, pos] = (X.T @ res.eigenvectors[:, pos]) / np.sqrt(n * lam[pos])
    if k is not None and k > lam.size:  # beyond rank n the eigenvalues are exactly zero
        pad = k - lam.size
        lam = np.concatenate([lam, np.zeros(pad)])
        U = np.hstack([U, np.zeros((p, pad))])
    resid = residual_norms(lambda V: X.T @ (X @ V) / n, lam, U)
    resid[lam == 0] = 0.0
    return SpectrumResult.from_pairs(lam, U, resid, tol=tol, d=d, p=p, method=res.method + "-gram", fisher=fisher,
                                     trace=trace, sigma=sigma, n=n, iterations=res.iterations, matvecs=res.matvecs,
                                     start=res.start)

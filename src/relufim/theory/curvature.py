r"""The exact FIM of all parameters as ground truth: its spectrum, and curvature approximations judged against it.

Theory §15. Two halves:

* :func:`full_spectrum`: the top eigenpairs of :math:`F` (dense, or matrix-free through
  :func:`relufim.fim.full.full_fisher_operator`, started from the Hermite features), with residuals;
  the statistics people quote (mean eigenvalue :math:`\operatorname{tr}F/P`, second moment
  :math:`\|F\|_F^2/P`, :math:`\lambda_{max}` and its share of the trace), the clusters *as measured*
  (split at the gaps of the computed eigenvalues, with what their eigenvectors are made of), the
  null space of the rescaling symmetry (found numerically where the whole spectrum is computed),
  and the spectrum of the readout block ``J`` beside it.
* The approximations: block-diagonal by layer, K-FAC in closed form for Gaussian inputs, the
  diagonal, the Monte Carlo Fisher and the empirical Fisher, each judged by
  :func:`compare_curvature` against a :class:`CurvatureReference` (the exact ``F``, its top
  eigenpairs and the exact damped natural gradient of a teacher's squared loss).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import scipy.linalg as sla

from .._validation import (
    available_memory_bytes,
    check_choice,
    check_dense_fits,
    check_memory,
    check_positive_float,
    check_positive_int,
    check_sigma,
    check_square_matrix,
    check_vector,
    check_weights,
)
from ..fim.exact import fisher_matrix
from ..fim.full import (
    HERMITE_DEGREES,
    DistributedFullFisherOperator,
    FullFisherOperator,
    check_network,
    full_fisher_matrix,
    full_fisher_operator,
    full_hermite_features,
    full_series_preconditioner,
    n_full_hermite_features,
    rescaling_directions,
    step_kernel_matrix,
)
from ..model.weights import column_norms, unit_columns
from ..spectrum.eigensolver import block_eigsh, residual_norms
from ..spectrum.result import SpectrumResult, n_top, principal_cosines
from ..spectrum.solve import spectrum as readout_spectrum

__all__ = [
    "FULL_DENSE_LIMIT",
    "MeasuredCluster",
    "NullSpace",
    "largest_unit_cosine",
    "FullSpectrum",
    "full_spectrum",
    "full_spectrum_route",
    "measured_clusters",
    "KFACFactors",
    "kfac_factors",
    "kfac_fisher",
    "block_diagonal_fisher",
    "diagonal_fisher",
    "teacher_gradient",
    "natural_gradient",
    "CurvatureReference",
    "curvature_reference",
    "CurvatureComparison",
    "compare_curvature",
]

Progress = Callable[[int, int], None]

#: Where :func:`full_spectrum` computes (:func:`full_spectrum_route`).
Route = Literal["dense", "matrix-free", "distributed"]

FULL_DENSE_LIMIT = 6000
"""Up to this many parameters ``P`` the dense route (LAPACK on the dense ``F``) is used by default; above,
the matrix-free one. A whole dense spectrum of ``P = 6000`` takes about a minute on two cores."""

#: Blocks in the block solver's Krylov space: 10 rather than the solver's default 6 takes 15 % fewer products
#: for the top 100 pairs at d = 10 (928 against 1090 vectors at p = 2000), whose last 35 lie inside the
#: 660-member degree-4 group; the space then holds 10 (k + k/8) vectors of length P.
KRYLOV_BLOCKS = 10

#: Eigenvalues below this share of the largest one are candidates for the numerical null space; the
#: null space is cut at the widest gap among them (theory §15.3).
NULL_SEARCH = 1e-6


# ----------------------------------------------------------------------------- the spectrum

@dataclass(frozen=True)
class MeasuredCluster:
    r"""A group of computed eigenvalues separated from the next by a ratio above the gap threshold.

    ``readout_share``: mean share of the eigenvectors' squared norm on the ``v`` coordinates;
    ``captured``: for each Hermite degree ``k``, the mean squared cosine of the principal angles
    between the cluster's eigenspace and the span of :math:`E[\nabla f\,h]` over the Hermite
    polynomials ``h`` of degree ``<= k`` (:func:`relufim.fim.full.full_hermite_features`);
    ``closed``: whether a computed eigenvalue below confirms the gap.
    """

    index: int
    size: int
    mean: float
    min: float
    max: float
    gap_below: float | None
    readout_share: float
    captured: dict[int, float]
    closed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "size": self.size, "mean": self.mean, "min": self.min, "max": self.max,
                "gap_below": self.gap_below, "readout_share": self.readout_share,
                "captured": {str(k): v for k, v in self.captured.items()}, "closed": self.closed}


def measured_clusters(eigenvalues: np.ndarray, eigenvectors: np.ndarray | None, p: int, d: int, *,
                      gap: float = 1.4, features: np.ndarray | None = None) -> tuple[MeasuredCluster, ...]:
    r"""Split descending eigenvalues where :math:`\lambda_i/\lambda_{i+1} >` ``gap`` and describe each group.

    No cluster sizes are assumed: the groups are whatever the gaps make them. ``features`` are the
    Hermite features (``(P, 1 + d + d(d+1)/2)``) whose spans of degree ``<= k`` describe the eigenvectors.

    Examples
    --------
    >>> [c.size for c in measured_clusters(np.array([9.0, 3.0, 2.9, 0.5, 0.49, 0.48]), None, 2, 2)]
    [1, 2, 3]
    """
    lam = np.asarray(eigenvalues, dtype=float)
    gap = check_positive_float(gap, "gap")
    pos = lam > 0
    ratios = np.full(max(lam.size - 1, 0), np.inf)
    ratios[pos[1:]] = lam[:-1][pos[1:]] / lam[1:][pos[1:]]
    cuts = [0, *[i + 1 for i in np.flatnonzero(ratios > gap)], lam.size]
    cuts = sorted(set(cuts))
    spans = {}
    if features is not None:  # one QR: the leading columns of Q span the leading columns of the features
        Q = np.linalg.qr(features)[0]
        spans = {0: Q[:, :1], 1: Q[:, :1 + d], 2: Q}
    out = []
    for c, (a, b) in enumerate(zip(cuts[:-1], cuts[1:]), start=1):
        vals = lam[a:b]
        share, captured = float("nan"), {}
        if eigenvectors is not None:
            U = eigenvectors[:, a:b]
            share = float((U[:p] ** 2).sum() / U.shape[1])
            G = U.T @ U  # the solvers' eigenvectors are orthonormal already: a QR only where they are not
            QU = U if np.abs(G - np.eye(G.shape[0])).max() < 1e-10 else np.linalg.qr(U)[0]
            captured = {k: float(np.sum(principal_cosines(QU, S, orthonormal=True) ** 2) / U.shape[1])
                        for k, S in spans.items()}
        closed = bool(b < lam.size)
        out.append(MeasuredCluster(index=c, size=int(b - a), mean=float(vals.mean()), min=float(vals.min()),
                                   max=float(vals.max()), gap_below=float(ratios[b - 1]) if closed else None,
                                   readout_share=share, captured=captured, closed=closed))
    return tuple(out)


@dataclass(frozen=True)
class NullSpace:
    r"""What was found about the null space of ``F`` (theory §15.3).

    ``dimension``: on the dense route (``method = "dense eigenvalues"``) the numerical null space
    (eigenvalues below the widest gap among those under ``1e-6`` of :math:`\lambda_{max}`), with
    ``threshold`` (relative to :math:`\lambda_{max}`), ``gap`` (the ratio across the cut) and
    ``min_cosine`` (smallest principal cosine between that space and the span of the rescaling
    directions :math:`z_j`; 1 when they coincide). On the matrix-free route the theorem of theory
    §15.3 gives it: :math:`\ker F = \operatorname{span}\{z_j\}` exactly, of dimension ``p``, when every
    :math:`v_j \ne 0`, every :math:`w_j \ne 0` and no two units are parallel or antiparallel. Those
    hypotheses are checked (``max_unit_cosine``: the largest :math:`|\cos(w_i, w_j)|`, ``i != j``, below
    ``1 - 1e-12``) and ``dimension`` is ``p`` when they hold, else ``None`` (the reason in ``method``).
    ``expected``: ``p``; ``rescaling_residual``: :math:`\max_j\|Fz_j\|/(\lambda_{max}\|z_j\|)`, computed on
    every route (on 8 sampled directions on the matrix-free one).
    """

    dimension: int | None
    threshold: float | None
    gap: float | None
    min_cosine: float | None
    expected: int
    rescaling_residual: float
    method: str
    max_unit_cosine: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"dimension": self.dimension, "threshold": self.threshold, "gap": self.gap,
                "min_cosine": self.min_cosine, "expected": self.expected,
                "rescaling_residual": self.rescaling_residual, "method": self.method,
                "max_unit_cosine": self.max_unit_cosine}


#: Above this many units the hypotheses of the null-space theorem (p^2/2 cosines) are not checked.
NULL_THEOREM_MAX_UNITS = 100_000

#: Units whose cosine is this close to +-1 count as (possibly) parallel: the theorem is not applied.
PARALLEL_COSINE = 1.0 - 1e-12


def largest_unit_cosine(W: np.ndarray, chunk: int = 1024) -> float:
    r"""The largest :math:`|\cos(w_i, w_j)|` over pairs of distinct nonzero columns of hidden weights ``W`` (d < p).

    The hypothesis "no two units parallel or antiparallel" of the null-space theorem (theory §15.3),
    by blocks of columns: the ``p^2/2`` cosines of distinct pairs, ``chunk x chunk`` of them in memory at a time.

    Examples
    --------
    >>> W = np.array([[1.0, 0.0, -2.0], [0.0, 1.0, 0.1]])
    >>> round(largest_unit_cosine(W), 6)   # columns 0 and 2 are nearly antiparallel
    0.998752
    """
    W = check_weights(W)
    chunk = check_positive_int(chunk, "chunk")
    U = unit_columns(W)  # a zero column stays zero: cosine 0 with every other
    p = U.shape[1]
    best = 0.0
    for s0 in range(0, p, chunk):
        for t0 in range(s0, p, chunk):  # pairs (i, j >= i): each pair once, chunk x chunk at a time
            G = U[:, s0:s0 + chunk].T @ U[:, t0:t0 + chunk]
            if t0 == s0:
                np.fill_diagonal(G, 0.0)
            best = max(best, float(G.max(initial=0.0)), -float(G.min(initial=0.0)))  # max |G|, no copy
    return best


def _null_space_by_theorem(W: np.ndarray, v: np.ndarray, residual: float, directions: str) -> NullSpace:
    """Without every eigenvalue: dimension p from theory §15.3 when its hypotheses are checked to hold.

    ``residual`` is the rescaling residual measured on ``directions`` (e.g. "all p", "8 sampled").
    """
    p = W.shape[1]
    label = "theorem (theory §15.3): ker F = span{z_j}"
    base = dict(threshold=None, gap=None, min_cosine=None, expected=p, rescaling_residual=residual)
    if np.any(v == 0) or np.any(column_norms(W) == 0):
        return NullSpace(dimension=None, method=f"{label} needs every v_j != 0 and w_j != 0: not applied (a unit is "
                                                 "zero); the dimension needs every eigenvalue", **base)
    if p > NULL_THEOREM_MAX_UNITS:
        return NullSpace(dimension=None, method=f"{label} not applied: checking that no two of p = {p} units are "
                                                 f"parallel takes p^2/2 cosines (done up to p = "
                                                 f"{NULL_THEOREM_MAX_UNITS})", **base)
    cmax = largest_unit_cosine(W)
    if cmax >= PARALLEL_COSINE:
        return NullSpace(dimension=None, max_unit_cosine=cmax,
                         method=f"{label} not applied: two units are parallel or antiparallel to round-off "
                                f"(|cos| = {cmax:.16f})", **base)
    return NullSpace(dimension=p, max_unit_cosine=cmax,
                     method=f"{label}, hypotheses checked (every v_j, w_j nonzero; largest |cos(w_i, w_j)| = "
                            f"{cmax:.6f} < 1); F z_j residual on {directions} directions", **base)


def _numerical_null_space(lam: np.ndarray, U: np.ndarray, Z: np.ndarray) -> tuple[int, float, float, float]:
    """Cut ascending eigenvalues at the widest ratio among those below ``NULL_SEARCH * lambda_max``."""
    top = float(lam[-1])
    low = np.flatnonzero(lam < NULL_SEARCH * top)
    if low.size == 0:
        return 0, 0.0, float("inf"), 1.0
    m = int(low[-1]) + 1  # candidates lam[0:m]; the next eigenvalue is above the search window
    floor = np.finfo(float).eps * top
    vals = np.maximum(np.abs(lam[: m + 1]), floor)
    ratios = vals[1:] / vals[:-1]
    i = int(np.argmax(ratios))
    dim = i + 1
    cos = principal_cosines(U[:, :dim], Z) if dim <= Z.shape[1] else principal_cosines(Z, U[:, :dim])
    return dim, float(vals[i] / top), float(ratios[i]), float(cos.min())


@dataclass(frozen=True)
class FullSpectrum:
    r"""The spectrum of the FIM of all parameters with the statistics people quote (see :func:`full_spectrum`).

    Attributes
    ----------
    result : SpectrumResult
        Top eigenpairs of :math:`F/\sigma^2` with residuals.
    readout : SpectrumResult
        Top eigenpairs of the readout block ``J`` (the FIM of ``v`` alone), beside it.
    d, p, P : sizes (``P = p(d+1)``)
    trace, mean_eigenvalue, second_moment : exact :math:`\operatorname{tr}F`, :math:`\operatorname{tr}F/P`,
        :math:`\|F\|_F^2/P` (``second_moment_method`` says how it was computed)
    lambda_max, lambda_max_share : :math:`\lambda_{max}` and :math:`\lambda_{max}/\operatorname{tr}F`
    clusters : the measured clusters (:func:`measured_clusters`)
    null_space : NullSpace
    required : the leading pairs that had to converge (``converged`` says whether they did)
    all_eigenvalues : every eigenvalue (dense route with ``k="all"``), descending, else None
    operator : FullFisherOperator or DistributedFullFisherOperator or None
        The operator of :math:`F` (:math:`\sigma = 1`) the products ran through on the matrix-free and
        distributed routes (:func:`full_spectrum_route`), for further products on it (without the
        ``product_progress`` callback of :func:`full_spectrum`); None on the dense route.
    """

    result: SpectrumResult
    readout: SpectrumResult
    d: int
    p: int
    P: int
    sigma: float
    trace: float
    mean_eigenvalue: float
    second_moment: float
    second_moment_method: str
    lambda_max: float
    lambda_max_share: float
    clusters: tuple[MeasuredCluster, ...]
    null_space: NullSpace
    required: int
    all_eigenvalues: np.ndarray | None = field(default=None, repr=False)
    operator: FullFisherOperator | DistributedFullFisherOperator | None = field(default=None, repr=False,
                                                                                 compare=False)

    @property
    def converged(self) -> bool:
        """The ``required`` leading pairs converged (the ones beyond are flagged by their residuals)."""
        return bool(np.all(self.result.converged[:self.required]))

    @property
    def eigenvalues(self) -> np.ndarray:
        return self.result.eigenvalues

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no eigenvectors)."""
        r = self.result
        return {"params": "all", "d": self.d, "p": self.p, "P": self.P, "sigma": self.sigma,
                "method": r.method, "eigenvalues": [float(x) for x in r.eigenvalues],
                "residuals": [float(x) for x in r.residuals], "required": self.required,
                "converged": self.converged, "converged_pairs": int(np.count_nonzero(r.converged)),
                "max_residual": r.max_residual,
                "tol": r.tol, "start": r.start, "products": r.products, "matvecs": r.matvecs,
                "trace": self.trace, "mean_eigenvalue": self.mean_eigenvalue, "second_moment": self.second_moment,
                "second_moment_method": self.second_moment_method, "lambda_max": self.lambda_max,
                "lambda_max_share": self.lambda_max_share,
                "top_share": float(r.eigenvalues.sum() / self.trace) if self.trace else None,
                "clusters": [c.to_dict() for c in self.clusters],
                "null_space_dimension": self.null_space.dimension, "null_space": self.null_space.to_dict(),
                "readout": {"eigenvalues": [float(x) for x in self.readout.eigenvalues],
                            "clusters": [c.to_dict() for c in self.readout.clusters],
                            "trace": self.readout.trace, "max_residual": self.readout.max_residual},
                "all_eigenvalues": None if self.all_eigenvalues is None else [float(x) for x in self.all_eigenvalues],
                "workers": [{"address": w.address, "blocks": w.blocks, "entries_per_second": w.entries_per_second}
                            for w in r.workers]}


def full_spectrum_route(P: int, k: int | Literal["clusters", "all"] = "clusters", *,
                        method: Literal["auto", "dense", "matrix-free"] = "auto", distributed: bool = False) -> Route:
    r"""Where :func:`full_spectrum` computes the spectrum of the FIM of ``P`` parameters (theory §15.5).

    ``"dense"`` forms ``F`` (LAPACK for every eigenvalue with ``k="all"``, else the block solver on
    it); ``"matrix-free"`` runs the block solver on products of
    :func:`~relufim.fim.full.full_fisher_operator`; ``"distributed"`` runs those products on a Dask
    cluster (theory §10.6).

    Parameters
    ----------
    P : int
        Parameters ``p(d+1)`` (:func:`~relufim.fim.full.full_parameter_count`).
    k : int, "clusters" or "all"
        As in :func:`full_spectrum`: ``"all"`` (every eigenvalue) needs the dense route.
    method : {"auto", "dense", "matrix-free"}
        ``"auto"``: dense up to ``P =`` :data:`FULL_DENSE_LIMIT`, else matrix-free.
    distributed : bool
        The products run on a cluster (:func:`full_spectrum` with ``client=``): top pairs only, matrix-free.

    Returns
    -------
    {"dense", "matrix-free", "distributed"}

    Raises
    ------
    ValueError
        For a cluster with ``k="all"`` or ``method="dense"``, and for ``k="all"`` with ``method="matrix-free"``.

    Examples
    --------
    >>> full_spectrum_route(1800), full_spectrum_route(8800), full_spectrum_route(8800, "all")
    ('dense', 'matrix-free', 'dense')
    >>> full_spectrum_route(1800, method="matrix-free"), full_spectrum_route(1800, distributed=True)
    ('matrix-free', 'distributed')
    """
    P = check_positive_int(P, "P")
    check_choice(method, "method", ("auto", "dense", "matrix-free"))
    if not isinstance(distributed, (bool, np.bool_)):
        raise TypeError(f"distributed must be True or False (whether the products run on a Dask cluster), "
                        f"got {type(distributed).__name__}.")
    if isinstance(k, str):
        every = check_choice(k, "k", ("clusters", "all")) == "all"
    else:
        check_positive_int(k, "k")
        every = False
    if distributed and (method == "dense" or every):
        raise ValueError("client= runs the matrix-free products on a cluster; ask for top pairs (an int k or "
                         "'clusters') with method 'auto' or 'matrix-free', or drop client for the dense route.")
    if every and method == "matrix-free":
        raise ValueError("k='all' needs the dense route (every eigenvalue of a P x P matrix); ask the matrix-free "
                         "route for top pairs (an int k or 'clusters').")
    if distributed:
        return "distributed"
    return "dense" if every or method == "dense" or (method == "auto" and P <= FULL_DENSE_LIMIT) else "matrix-free"


def full_spectrum(W: np.ndarray, v: np.ndarray, k: int | Literal["clusters", "all"] = "clusters", *,
                  sigma: float = 1.0, method: Literal["auto", "dense", "matrix-free"] = "auto", extra: int = 10,
                  tol: float = 1e-10, maxiter: int = 300, gap: float = 1.4, block: int | None = None,
                  progress: Progress | None = None, product_progress: Progress | None = None,
                  client: Any = None, seed_degree: int | Literal["auto"] = "auto") -> FullSpectrum:
    r"""Top eigenpairs of the FIM of all parameters with residuals; its statistics, clusters and null space.

    Theory §15.5.

    Parameters
    ----------
    W : array (d, p), d < p
    v : array (p,)
    k : int, "clusters" or "all"
        ``"clusters"``: ``d(d+3)/2 + extra`` pairs, of which the first ``d(d+3)/2`` must converge
        (the size of the top group the measurements show, theory §15.5; the ``extra`` ones are
        flagged by their residuals); an int: that many pairs, all required; ``"all"``: every
        eigenvalue (dense route only) and the numerical null space.
    sigma : float
        Eigenvalues of :math:`F/\sigma^2`.
    method : {"auto", "dense", "matrix-free"}
        ``"auto"``: dense up to ``P = 6000`` (:data:`FULL_DENSE_LIMIT`), else matrix-free (the block
        solver on :func:`~relufim.fim.full.full_fisher_operator`, started from the Hermite features);
        :func:`full_spectrum_route` decides.
    extra : int
        Pairs beyond ``d(d+3)/2`` with ``k="clusters"``.
    tol : float
        Residual tolerance relative to :math:`\lambda_{max}`.
    maxiter : int
        Products of the block solver before it gives up (unconverged pairs are flagged).
    gap : float
        The measured clusters are split where :math:`\lambda_i/\lambda_{i+1} >` ``gap``.
    block : int, optional
        Tile edge of the operator.
    progress : callable(converged, required), optional
        After each product of the block solver.
    product_progress : callable(done, total), optional
        Within each matrix-free product (tiles, or row blocks with a ``client``).
    client : dask.distributed.Client, optional
        Run the products on a Dask cluster (:func:`~relufim.fim.full.full_fisher_operator` with
        ``client=``; theory §10.6); implies the matrix-free route. The second moment is summed on
        the workers too.
    seed_degree : {"auto", 2, 4}
        What the block solver starts from (theory §15.5): 2, the Hermite features of degree <= 2;
        4, the top eigenvectors of the degree-4 truncation :math:`F_4`
        (:func:`~relufim.fim.full.full_series_preconditioner`), which also turns the residuals into
        Davidson corrections. ``"auto"``: 4 on the matrix-free route when more than the top
        ``d(d+3)/2`` pairs are required (they reach into the degree-4 group) and its features take
        at most an eighth of the free memory, else 2. Only for top pairs (an int ``k`` or
        ``"clusters"``).

    Returns
    -------
    FullSpectrum

    Notes
    -----
    The second moment is exact on both routes: the sum of squares of the dense ``F``, or the
    closed form per pair of units summed over the tiles (:meth:`FullFisherOperator.frobenius_norm_squared`).
    The numerical null space needs every eigenvalue (``k="all"``); on the other routes the null
    space is reported through the residuals of the rescaling directions.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(3, 200, seed=0)
    >>> v = np.random.default_rng(1).standard_normal(200) / np.sqrt(200)
    >>> s = full_spectrum(W, v, k="all")
    >>> s.P, s.null_space.dimension, s.null_space.expected
    (800, 200, 200)
    >>> [c.size for c in s.clusters][:3], bool(abs(s.mean_eigenvalue * s.P - s.trace) < 1e-12)
    ([1, 3, 5], True)
    """
    W, v = check_network(W, v)
    sigma = check_sigma(sigma)
    extra = check_positive_int(extra, "extra", minimum=0)
    maxiter = check_positive_int(maxiter, "maxiter")
    d, p = W.shape
    P = p * (d + 1)
    if isinstance(k, str):
        check_choice(k, "k", ("clusters", "all"))
        kk = None if k == "all" else min(P, n_top(d) + extra)
        required = None if k == "all" else min(P, n_top(d))
    else:
        kk = check_positive_int(k, "k")
        if kk > P:
            raise ValueError(f"k = {kk} exceeds the number of parameters P = p(d+1) = {P}.")
        required = kk
    route = full_spectrum_route(P, k, method=method, distributed=client is not None)  # checks method
    degree = _full_seed_degree(seed_degree, route, required, d, P)
    # both formed on first use, after the route's memory checks: the degree-4 preconditioner, and the degree-2
    # features (the start and the clusters' spans), which with degree 4 are the preconditioner's leading rows
    # (scaled by 1/sqrt(alpha!), the same spans) rather than a second pass
    preconditioner = functools.cache(lambda: full_series_preconditioner(W, v, 4))
    n2 = n_full_hermite_features(d, 2)
    features = functools.cache(lambda: preconditioner().features[:n2].T if degree == 4 else full_hermite_features(W, v))
    all_eigs = None
    op: FullFisherOperator | DistributedFullFisherOperator | None = None

    def top_pairs(matmat: Callable[[np.ndarray], np.ndarray], label: str) -> tuple[Any, SpectrumResult]:
        M = preconditioner() if degree == 4 else None
        start = features() if M is None else M.seeds(min(kk + max(4, kk // 8), M.eigenvalues.size))  # solver's width
        r = block_eigsh(matmat, P, kk, X0=start, tol=tol, maxiter=maxiter, progress=progress, required=required,
                        krylov_blocks=KRYLOV_BLOCKS, preconditioner=M)
        return r, _result(r, P, label, tol, trace, sigma, degree)

    if route == "dense":
        if kk is None:  # F, its eigenvectors and LAPACK's workspace
            check_dense_fits(P, what=f"every eigenpair of the {P} x {P} FIM of all parameters", copies=3.0,
                             alternative="ask for top eigenpairs (an int k or 'clusters'), which the matrix-free "
                                         "route computes without forming F")
        Z = rescaling_directions(W, v)
        F = full_fisher_matrix(W, v)
        trace, fro2, fro_method = float(np.trace(F)), float(np.sum(F * F)), "dense sum of squares"
        if kk is None:
            lam, U = np.linalg.eigh(F)
            lmax = float(lam[-1])
            dim, thr, ratio, cos = _numerical_null_space(lam, U, Z)
            null = NullSpace(dimension=dim, threshold=thr, gap=ratio, min_cosine=cos, expected=p,
                             rescaling_residual=_rescaling_residual(F @ Z, Z, lmax), method="dense eigenvalues")
            lam, U = lam[::-1].copy(), U[:, ::-1].copy()
            all_eigs = lam / sigma**2
            top = min(P, n_top(d) + extra)
            vecs = U[:, :top]
            res = SpectrumResult.from_pairs(lam[:top], vecs, residual_norms(F.__matmul__, lam[:top], vecs),
                                            tol=tol, d=None, p=P, method="dense", fisher="full", trace=trace,
                                            sigma=sigma, iterations=1)
        else:
            r, res = top_pairs(F.__matmul__, "block")
            lmax = float(r.eigenvalues[0])
            null = _null_space_by_theorem(W, v, _rescaling_residual(F @ Z, Z, lmax), f"all {p}")
    else:
        op = full_fisher_operator(W, v, block=block, client=client)  # returned without the caller's callback
        b = kk + max(4, kk // 8)
        n_features = n_full_hermite_features(d, degree)
        check_memory(8.0 * P * (2 * KRYLOV_BLOCKS * b + 6 * b + n_features) + op.memory_bytes(b),
                     f"the block solver's search space and the {n_features} Hermite features for P = {P}, k = {kk}"
                     + (" (with the degree-4 preconditioner)" if degree == 4 else ""),
                     "ask for fewer eigenpairs k" + (", or seed_degree=2" if degree == 4 else ""))
        trace, fro2, fro_method = op.trace(), op.frobenius_norm_squared(), "exact, per pair of units over the tiles"
        with op.reporting(product_progress):
            r, res = top_pairs(op.matmat, route)
            if route == "distributed":
                res = replace(res, workers=tuple(op.throughput()))
            lmax = float(r.eigenvalues[0])
            Zs = rescaling_directions(W, v, units=np.linspace(0, p - 1, min(p, 8)).astype(int))  # 8 of them
            null = _null_space_by_theorem(W, v, _rescaling_residual(op.matmat(Zs), Zs, lmax),
                                          f"{Zs.shape[1]} sampled")
    J = readout_spectrum(W, k=min(p, kk if kk is not None else n_top(d) + extra), sigma=sigma)
    clusters = measured_clusters(res.eigenvalues, res.eigenvectors, p, d, gap=gap, features=features())
    return FullSpectrum(result=res, readout=J, d=d, p=p, P=P, sigma=sigma, trace=trace / sigma**2,
                        mean_eigenvalue=trace / P / sigma**2, second_moment=fro2 / P / sigma**4,
                        second_moment_method=fro_method, lambda_max=lmax / sigma**2,
                        lambda_max_share=lmax / trace, clusters=clusters, null_space=null,
                        required=res.eigenvalues.size if required is None else required, all_eigenvalues=all_eigs,
                        operator=op)


def _result(r: Any, P: int, method: str, tol: float, trace: float, sigma: float, degree: int) -> SpectrumResult:
    start = "Hermite features degree 2" if degree == 2 else f"Hermite features degree {degree}, preconditioned"
    return SpectrumResult.from_pairs(r.eigenvalues, r.eigenvectors, r.residuals, tol=tol, d=None, p=P, method=method,
                                     fisher="full", trace=trace, sigma=sigma, iterations=r.iterations,
                                     matvecs=r.matvecs, start=start)


def _full_seed_degree(seed_degree: Any, route: str, required: int | None, d: int, P: int) -> int:
    """The start :func:`full_spectrum` takes: 2 or 4 as asked, or by the ``"auto"`` rule; checked up front.

    ``"auto"``: 4 on the matrix-free routes when the required pairs reach past the top group of
    ``d(d+3)/2`` (which the degree-2 features already hold) into the degree-4 group, and the
    features take at most an eighth of the free memory; else 2.
    """
    if seed_degree == "auto" and not isinstance(seed_degree, bool):
        if required is None or route == "dense" or required <= n_top(d):
            return 2
        return 4 if 8.0 * P * n_full_hermite_features(d, 4) <= available_memory_bytes() / 8 else 2
    if isinstance(seed_degree, bool) or not isinstance(seed_degree, (int, np.integer)) \
            or seed_degree not in HERMITE_DEGREES:
        raise ValueError(f"seed_degree must be 'auto', 2 or 4 (the Hermite degree of the start), got {seed_degree!r}.")
    if required is None and seed_degree == 4:
        raise ValueError("seed_degree=4 starts the block solver for top pairs; k='all' takes every eigenvalue by "
                         "LAPACK. Ask for an int k or 'clusters', or leave seed_degree out.")
    return int(seed_degree)


def _rescaling_residual(FZ: np.ndarray, Z: np.ndarray, lmax: float) -> float:
    norms = np.linalg.norm(Z, axis=0)
    ok = norms > 0
    if not ok.any():
        return 0.0
    return float((np.linalg.norm(FZ[:, ok], axis=0) / norms[ok]).max() / lmax)


# ----------------------------------------------------------------------------- K-FAC and the other approximations

@dataclass(frozen=True)
class KFACFactors:
    r"""The Kronecker factors of K-FAC for the two layers, in closed form for Gaussian inputs (theory §15.7).

    Hidden layer (input :math:`a = x`, back-propagated :math:`\delta_j = v_j\mathbf 1[w_j\cdot x > 0]`):
    :math:`A_1 = E[xx^\top] = I_d`, :math:`G_1 = E[\delta\delta^\top]/\sigma^2 = D_vK_0D_v/\sigma^2`.
    Readout (input :math:`a = \mathrm{ReLU}(W^\top x)`, :math:`\delta = 1`): :math:`A_2 = E[aa^\top] = J`,
    :math:`G_2 = 1/\sigma^2`. K-FAC's FIM is :math:`\mathrm{blockdiag}(G_2A_2,\ G_1\otimes A_1)` in the
    order of :func:`relufim.fim.full.full_fisher_matrix` (``w_j`` blocks contiguous, so the ``(i, j)``
    block of the hidden part is :math:`(G_1)_{ij}A_1`).
    """

    hidden_input: np.ndarray
    hidden_output: np.ndarray
    readout_input: np.ndarray
    readout_output: float

    def dense(self) -> np.ndarray:
        """The ``P x P`` K-FAC matrix."""
        p, d = self.hidden_output.shape[0], self.hidden_input.shape[0]
        P = p * (d + 1)
        out = np.zeros((P, P))
        out[:p, :p] = self.readout_output * self.readout_input
        out[p:, p:] = np.kron(self.hidden_output, self.hidden_input)
        return out


def kfac_factors(W: np.ndarray, v: np.ndarray, sigma: float = 1.0) -> KFACFactors:
    r"""K-FAC's Kronecker factors in closed form for :math:`x\sim N(0, I_d)` (theory §15.7).

    Examples
    --------
    >>> f = kfac_factors(np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), np.array([1.0, 2.0, 1.0]))
    >>> f.hidden_output
    array([[0.5, 0.5, 0. ],
           [0.5, 2. , 0.5],
           [0. , 0.5, 0.5]])
    """
    W, v = check_network(W, v)
    sigma = check_sigma(sigma)
    d = W.shape[0]
    s2 = sigma * sigma
    return KFACFactors(hidden_input=np.eye(d), hidden_output=v[:, None] * step_kernel_matrix(W) * v[None, :] / s2,
                       readout_input=fisher_matrix(W), readout_output=1.0 / s2)


def kfac_fisher(W: np.ndarray, v: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    r"""K-FAC's approximation of the FIM of all parameters, dense ``P x P`` (theory §15.7).

    Exact on the readout block (``J``); the ``v``-``w`` blocks dropped; each ``w``-``w`` block
    :math:`v_iv_j\kappa_0(\theta_{ij})I`, i.e. :math:`M_{ij}` without its rank-two :math:`\sin\theta` part.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 5, seed=0)
    >>> v = np.ones(5)
    >>> K, F = kfac_fisher(W, v), rf.fim.full.full_fisher_matrix(W, v)
    >>> bool(np.allclose(K[:5, :5], F[:5, :5])), bool(np.allclose(np.trace(K), np.trace(F)))
    (True, True)
    """
    return kfac_factors(W, v, sigma).dense()


def block_diagonal_fisher(W: np.ndarray, v: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """The FIM with the ``v``-``w`` blocks set to zero: one block per layer, each exact (theory §15.7)."""
    W, v = check_network(W, v)
    F = full_fisher_matrix(W, v, sigma)
    p = W.shape[1]
    F[:p, p:] = 0.0
    F[p:, :p] = 0.0
    return F


def diagonal_fisher(W: np.ndarray, v: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    r"""The diagonal of the FIM as a dense matrix (theory §15.7).

    :math:`\|w_i\|^2/2` at ``v_i``, :math:`v_j^2/2` at each entry of ``w_j``.
    """
    W, v = check_network(W, v)
    sigma = check_sigma(sigma)
    return np.diag(full_fisher_operator(W, v, sigma).diagonal())


# ----------------------------------------------------------------------------- natural gradients

def teacher_gradient(W: np.ndarray, v: np.ndarray, W_teacher: np.ndarray, v_teacher: np.ndarray) -> np.ndarray:
    r"""The exact gradient of the population squared loss :math:`\frac12E[(f(x) - f^*(x))^2]` for a teacher :math:`f^*`.

    :math:`g = E[(f - f^*)\nabla_\theta f]`, ``(P,)``, in the order of the student's parameters. Both
    networks are ReLU networks on the same inputs; treating the teacher's units as extra units of one
    network (readout ``(v, v*)``), :math:`f - f^* = \nabla_{v}f_{joint}\cdot(v, -v^*)`, so ``g`` is one
    product of the joint network's exact FIM (:func:`~relufim.fim.full.full_fisher_operator`) with that
    vector, read at the student's coordinates (theory §15.8). ``g`` is orthogonal to every rescaling
    direction: the natural gradient :math:`F^+g` exists.

    Examples
    --------
    >>> import relufim as rf
    >>> W, Ws = rf.sample_weights(2, 6, seed=0), rf.sample_weights(2, 4, seed=1)
    >>> v, vs = np.ones(6), np.ones(4)
    >>> g = teacher_gradient(W, v, Ws, vs)
    >>> bool(np.abs(g @ rf.fim.full.rescaling_directions(W, v)).max() < 1e-14)
    True
    """
    W, v = check_network(W, v)
    Wt = np.asarray(W_teacher, dtype=float)
    if Wt.ndim != 2 or Wt.shape[0] != W.shape[0]:
        raise ValueError(f"W_teacher must have shape (d, q) = ({W.shape[0]}, q) like W, got {Wt.shape}.")
    vt = check_vector(v_teacher, Wt.shape[1], "v_teacher", what="the {p} columns of W_teacher")
    d, p = W.shape
    q = Wt.shape[1]
    Wj = np.hstack([W, Wt])
    op = full_fisher_operator(Wj, np.concatenate([v, vt]))
    u = np.zeros(op.shape[0])
    u[:p] = v
    u[p:p + q] = -vt
    g = op.matvec(u)
    return np.concatenate([g[:p], g[p + q:p + q + p * d]])


def natural_gradient(A: np.ndarray, g: np.ndarray, damping: float) -> np.ndarray:
    r"""The damped natural-gradient direction :math:`(A + \lambda I)^{-1}g` by Cholesky (theory §15.8).

    ``A`` is a symmetric PSD ``P x P`` curvature matrix, ``damping`` is :math:`\lambda > 0` (absolute).

    Examples
    --------
    >>> natural_gradient(np.diag([1.0, 0.0]), np.array([1.0, 1.0]), 1.0)
    array([0.5, 1. ])
    """
    damping = check_positive_float(damping, "damping")
    A = check_square_matrix(A, "A")
    g = check_vector(g, A.shape[0], "g", what="the {p} rows of A")
    M = np.array(A, dtype=np.float64, order="F", copy=True)
    M.flat[:: M.shape[0] + 1] += damping
    return sla.cho_solve(sla.cho_factor(M, lower=True, overwrite_a=True, check_finite=False), g, check_finite=False)


# ----------------------------------------------------------------------------- judging approximations

@dataclass(frozen=True)
class CurvatureReference:
    r"""The exact quantities every approximation is compared with (:func:`curvature_reference`).

    ``dampings`` are absolute (``relative_dampings`` times :math:`\lambda_{max}`); column ``i`` of
    ``natural_gradients`` is :math:`(F + \lambda_iI)^{-1}g`.
    """

    F: np.ndarray = field(repr=False)
    p: int
    d: int
    k: int
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray = field(repr=False)
    gradient: np.ndarray = field(repr=False)
    relative_dampings: tuple[float, ...]
    dampings: tuple[float, ...]
    natural_gradients: np.ndarray = field(repr=False)
    frobenius_norm: float
    gap: float


def curvature_reference(W: np.ndarray, v: np.ndarray, g: np.ndarray, *, k: int | None = None,
                        damping: float | tuple[float, ...] = 1e-3, sigma: float = 1.0,
                        tol: float = 1e-9) -> CurvatureReference:
    r"""Build the exact FIM, its top ``k`` eigenpairs and the exact damped natural gradients of ``g`` (theory §15.8).

    ``k`` defaults to ``d(d+3)/2``, where the measured spectrum has its widest gap (the ratio
    :math:`\lambda_k/\lambda_{k+1}` is kept as ``gap``: top-``k`` subspaces are well defined only at a gap).
    ``damping`` (one value or several) is relative to :math:`\lambda_{max}`: :math:`\lambda = `
    ``damping`` :math:`\cdot\lambda_{max}`. ``F`` is singular (the rescaling directions) and ``g`` is
    orthogonal to its null space, so :math:`F^+g` exists; but the positive eigenvalues reach down to
    ~1e-10 of :math:`\lambda_{max}` and :math:`F^+g` is then governed by the least informative
    directions: a damped direction is what is used in practice, and the comparison is reported as
    a function of the damping.
    """
    W, v = check_network(W, v)
    d, p = W.shape
    P = p * (d + 1)
    k = n_top(d) if k is None else check_positive_int(k, "k")
    if k >= P:
        raise ValueError(f"k = {k} must be smaller than P = {P}.")
    rel = tuple(check_positive_float(x, "damping") for x in np.atleast_1d(damping).tolist())
    if not rel:
        raise ValueError("damping must hold at least one value.")
    g = check_vector(g, P, "g", what="the P = {p} parameters")
    F = full_fisher_matrix(W, v, sigma)
    r = block_eigsh(F.__matmul__, P, k + 1, X0=full_hermite_features(W, v), tol=tol, maxiter=300)
    lam = r.eigenvalues
    lmax = float(lam[0])
    absolute = tuple(x * lmax for x in rel)
    nat = np.column_stack([natural_gradient(F, g, a) for a in absolute])
    return CurvatureReference(F=F, p=p, d=d, k=k, eigenvalues=lam[:k], eigenvectors=r.eigenvectors[:, :k],
                              gradient=g, relative_dampings=rel, dampings=absolute, natural_gradients=nat,
                              frobenius_norm=float(np.linalg.norm(F)), gap=float(lam[k - 1] / lam[k]))


@dataclass(frozen=True)
class CurvatureComparison:
    r"""How one approximation ``A`` of the FIM compares with the exact ``F`` (:func:`compare_curvature`).

    ``relative_frobenius_error`` :math:`\|A - F\|_F/\|F\|_F`; ``eigenvalue_errors`` the relative
    errors :math:`|\tilde\lambda_i - \lambda_i|/\lambda_i` of the top ``k``; ``principal_cosines`` of the
    top-``k`` eigenspaces; ``natural_gradient_cosines`` the cosines between
    :math:`(A + \lambda I)^{-1}g` and :math:`(F + \lambda I)^{-1}g`, one per damping of the reference.
    """

    name: str
    relative_frobenius_error: float
    eigenvalues: np.ndarray
    eigenvalue_errors: np.ndarray
    principal_cosines: np.ndarray
    natural_gradient_cosines: np.ndarray
    relative_dampings: tuple[float, ...]
    n: int | None = None
    eigen_converged: bool = True

    @property
    def max_eigenvalue_error(self) -> float:
        return float(self.eigenvalue_errors.max())

    @property
    def min_principal_cosine(self) -> float:
        return float(self.principal_cosines.min())

    @property
    def natural_gradient_cosine(self) -> float:
        """The cosine at the first damping."""
        return float(self.natural_gradient_cosines[0])

    @property
    def natural_gradient_angles(self) -> np.ndarray:
        """The angles between the two natural-gradient directions, in degrees, one per damping."""
        return np.degrees(np.arccos(np.clip(self.natural_gradient_cosines, -1.0, 1.0)))

    @property
    def natural_gradient_angle(self) -> float:
        """The angle at the first damping, in degrees."""
        return float(self.natural_gradient_angles[0])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "relative_frobenius_error": self.relative_frobenius_error,
                "max_eigenvalue_error": self.max_eigenvalue_error,
                "median_eigenvalue_error": float(np.median(self.eigenvalue_errors)),
                "eigenvalues": [float(x) for x in self.eigenvalues],
                "min_principal_cosine": self.min_principal_cosine,
                "subspace_overlap": float(np.mean(self.principal_cosines**2)),
                "max_principal_angle": math.degrees(math.acos(min(1.0, self.min_principal_cosine))),
                "natural_gradient_cosine": self.natural_gradient_cosine,
                "natural_gradient_angle": self.natural_gradient_angle,
                "damping": self.relative_dampings[0], "dampings": list(self.relative_dampings),
                "natural_gradient_angles": [float(x) for x in self.natural_gradient_angles],
                "eigen_converged": self.eigen_converged}


def compare_curvature(ref: CurvatureReference, A: np.ndarray, name: str, *, n: int | None = None,
                      tol: float = 1e-8, seed: int = 0,
                      eigenpairs: tuple[np.ndarray, np.ndarray] | None = None) -> CurvatureComparison:
    """Judge a dense approximation ``A`` (``P x P``) of the FIM against the exact reference (theory §15.8).

    The top ``k`` eigenpairs of ``A`` come from the block solver started from the exact top
    eigenvectors (residuals to ``tol`` of its largest eigenvalue, flagged in ``eigen_converged``);
    the natural gradients use the reference's absolute dampings for both matrices. ``eigenpairs``
    (values ``(k,)``, vectors ``(P, k)``) gives the top pairs when they are known in closed form, as
    for a diagonal ``A`` (its largest entries and unit vectors): a Krylov solver needs many products
    to sort a diagonal whose entries lie close together.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 8, seed=0)
    >>> v = np.random.default_rng(0).standard_normal(8)
    >>> ref = curvature_reference(W, v, teacher_gradient(W, v, rf.sample_weights(2, 3, seed=5), np.ones(3)))
    >>> c = compare_curvature(ref, ref.F, "exact")
    >>> c.relative_frobenius_error, round(c.min_principal_cosine, 9), round(c.natural_gradient_cosine, 9)
    (0.0, 1.0, 1.0)
    """
    if not isinstance(ref, CurvatureReference):
        raise TypeError(f"ref must be the CurvatureReference of relufim.curvature_reference(W, v, g), got "
                        f"{type(ref).__name__}; the approximation to judge is the second argument A.")
    A = check_square_matrix(A, "A")
    P = ref.F.shape[0]
    if A.shape != (P, P):
        raise ValueError(f"A must be the P x P = {P} x {P} approximation of the FIM, got shape {A.shape}.")
    err = float(np.linalg.norm(A - ref.F) / ref.frobenius_norm)
    if eigenpairs is None:
        # started from the exact top eigenvectors: a start only, the solver converges to A's own top pairs
        r = block_eigsh(A.__matmul__, P, ref.k, X0=ref.eigenvectors, tol=tol, maxiter=300, seed=seed)
        lam, vecs, converged = r.eigenvalues, r.eigenvectors, bool(r.converged.all())
    else:
        lam, vecs = np.asarray(eigenpairs[0], dtype=float), np.asarray(eigenpairs[1], dtype=float)
        if lam.shape != (ref.k,) or vecs.shape != (P, ref.k):
            raise ValueError(f"eigenpairs must be (values ({ref.k},), vectors ({P}, {ref.k})), got shapes "
                             f"{lam.shape} and {vecs.shape}.")
        converged = bool(residual_norms(A.__matmul__, lam, vecs).max() <= tol * max(abs(lam[0]), 1e-300))
    eig_err = np.abs(lam - ref.eigenvalues) / ref.eigenvalues
    cos = principal_cosines(ref.eigenvectors, vecs)
    ng = []
    for i, a in enumerate(ref.dampings):
        nat = natural_gradient(A, ref.gradient, a)
        exact = ref.natural_gradients[:, i]
        ng.append(float(nat @ exact / (np.linalg.norm(nat) * np.linalg.norm(exact))))
    return CurvatureComparison(name=name, relative_frobenius_error=err, eigenvalues=lam, eigenvalue_errors=eig_err,
                               principal_cosines=cos, natural_gradient_cosines=np.asarray(ng),
                               relative_dampings=ref.relative_dampings, n=n, eigen_converged=converged)

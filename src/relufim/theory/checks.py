r"""Computed spectrum against the theory (theory §4–5, §17): Theorem 2, Lemma 2, Theorem 3, alignment.

:func:`check_theory` measures, for one ``W``, every statement of the 2023 paper that
can be checked numerically; :func:`spectrum_summary` is the JSON-ready record used by
``relufim spectrum --json``, ``relufim reproduce`` and sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import available_memory_bytes, check_weights
from ..fim.exact import fisher_matrix
from ..fim.operator import fisher_operator
from ..model.activations import get_activation
from ..model.weights import sample_weights
from ..spectrum.result import SpectrumResult, n_top, predicted_cluster_sizes, principal_cosines
from ..spectrum.solve import matrix_spectrum, spectrum
from .vectors import (
    TRACE_SHARE_BOUND,
    TheoryVectors,
    theorem2_coefficients,
    theorem3_bounds,
    theory_vectors,
)

__all__ = ["TheoryCheck", "check_theory", "spectrum_summary", "summarize_result", "theorem2_remainder",
           "lemma2_statistics", "rayleigh_quotients", "cluster_cosines", "cluster_alignment"]

#: Widths up to which Theorem 2's remainder is checked by a dense eigendecomposition.
REMAINDER_DENSE_LIMIT = 4000


def theorem2_low_rank_factor(th: TheoryVectors) -> np.ndarray:
    r"""``G`` (r, p) with :math:`G^\top G` = Theorem 2's explicit part of ``J`` (everything but ``R``)."""
    c = theorem2_coefficients(th.d)
    return np.vstack([
        math.sqrt(c["v0"]) * th.v0[None, :],
        math.sqrt(c["rows"]) * th.rows,
        math.sqrt(c["third"]) * th.v_gamma,
        math.sqrt(c["third"]) * th.v_ab_offdiag,
    ])


def theorem2_remainder(W: np.ndarray, J: np.ndarray | None = None) -> np.ndarray:
    r"""Theorem 2's remainder ``R`` as a dense matrix (theory §4).

    :math:`R = J - \frac{2d+1}{4\pi}v^{(0)}v^{(0)\top} - \frac14\sum_l W_l^\top W_l - \frac{1}{2\pi d}(\dots)`.

    Theorem 2 says ``R`` is positive semidefinite (it is the series tail from :math:`t^4` on).

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(3, 200, seed=0)
    >>> bool(np.linalg.eigvalsh(theorem2_remainder(W)).min() > -1e-12)
    True
    """
    W = check_weights(W)
    if J is None:
        J = fisher_matrix(W)
    G = theorem2_low_rank_factor(theory_vectors(W))
    return J - G.T @ G


def lemma2_statistics(th: TheoryVectors) -> dict[str, Any]:
    r"""Norms and mutual inner products of the vectors of Lemma 2, with finite-``d`` expectations.

    At finite ``d`` (default draw, derived in theory §5): :math:`E\|v^{(\alpha,\beta)}\|^2 = d/(d+2)`,
    :math:`E\|v^{(\gamma)}\|^2 = (d-1)/(d+2)`, :math:`E\,v^{(\gamma)}\cdot v^{(\gamma')} = -1/(d+2)`;
    :math:`\|v^{(0)}\|^2` and :math:`\|W_l\|^2` have mean 1.
    """
    d = th.d
    groups = {"v0": th.v0[None, :], "rows": th.rows, "v_ab": th.v_ab_offdiag, "v_gamma": th.v_gamma}
    expected = {"v0": 1.0, "rows": 1.0, "v_ab": d / (d + 2), "v_gamma": (d - 1) / (d + 2)}
    stats: dict[str, Any] = {}
    for name, V in groups.items():
        if V.shape[0] == 0:
            continue
        sq = np.einsum("ij,ij->i", V, V)
        stats[name] = {"count": int(V.shape[0]), "mean_sq_norm": float(sq.mean()),
                       "max_dev_from_1": float(np.abs(sq - 1).max()),
                       "expected_sq_norm_finite_d": expected[name],
                       "max_dev_from_expected": float(np.abs(sq - expected[name]).max())}
    allv = np.vstack([V for V in groups.values() if V.shape[0]])
    labels = np.concatenate([[name] * V.shape[0] for name, V in groups.items() if V.shape[0]])
    G = allv @ allv.T
    iu = np.triu_indices(G.shape[0], 1)
    both_gamma = (labels[iu[0]] == "v_gamma") & (labels[iu[1]] == "v_gamma")
    off = np.abs(G[iu][~both_gamma])
    stats["max_abs_inner_product"] = float(off.max()) if off.size else 0.0
    if d >= 2:
        gg = G[iu][both_gamma]
        stats["v_gamma_inner_product"] = {"mean": float(gg.mean()), "lemma_limit": -1.0 / (d - 1),
                                          "expected_finite_d": -1.0 / (d + 2)}
    return stats


def rayleigh_quotients(matmat: Callable[[np.ndarray], np.ndarray], th: TheoryVectors) -> dict[str, np.ndarray]:
    """Rayleigh quotients ``v^T J v / v^T v`` of every theory vector, by group (one block product)."""
    groups = {"v0": th.v0[None, :], "rows": th.rows, "v_ab": th.v_ab_offdiag, "v_gamma": th.v_gamma}
    V = np.vstack([g for g in groups.values()]).T
    JV = matmat(V)
    rq = np.einsum("ij,ij->j", V, JV) / np.einsum("ij,ij->j", V, V)
    out, start = {}, 0
    for name, g in groups.items():
        out[name] = rq[start:start + g.shape[0]]
        start += g.shape[0]
    return out


@dataclass(frozen=True)
class TheoryCheck:
    r"""Every checkable statement of the 2023 paper for one ``W``, measured.

    Attributes
    ----------
    trace, trace_bound : float
        :math:`\operatorname{tr}J = \|W\|_F^2/2` and Theorem 3's ``d/2``.
    top_fraction : float
        Share of the trace in the top ``d(d+3)/2`` eigenvalues (Theorem 3: >= 0.977 asymptotically).
    perron_frobenius : bool
        The top eigenvector has entries of one sign.
    remainder_min_eigenvalue, remainder_trace_share : float or None
        Theorem 2: smallest eigenvalue of ``R`` (should be >= 0 up to round-off) and ``tr R / tr J``.
    theorem3 : dict
        For each group: min / mean Rayleigh quotient and the bound.
    lemma2 : dict
        See :func:`lemma2_statistics`.
    alignment : dict
        For each cluster, the smallest cosine of the principal angles between the computed
        eigenspace and the predicted span (1 = identical), and for the first and third
        clusters together against the span of all Hadamard products.
    """

    d: int
    p: int
    trace: float
    trace_bound: float
    top_fraction: float | None
    top_fraction_bound: float
    perron_frobenius: bool
    remainder_min_eigenvalue: float | None
    remainder_trace_share: float
    theorem3: dict[str, Any]
    lemma2: dict[str, Any]
    alignment: dict[str, float]
    cluster_sizes: list[int]
    predicted_cluster_sizes: list[int]
    spectrum: SpectrumResult = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "d": self.d, "p": self.p, "trace": self.trace, "trace_bound": self.trace_bound,
            "top_fraction": self.top_fraction, "top_fraction_bound": self.top_fraction_bound,
            "perron_frobenius": self.perron_frobenius, "remainder_min_eigenvalue": self.remainder_min_eigenvalue,
            "remainder_trace_share": self.remainder_trace_share, "theorem3": self.theorem3, "lemma2": self.lemma2,
            "alignment": self.alignment, "cluster_sizes": self.cluster_sizes,
            "predicted_cluster_sizes": self.predicted_cluster_sizes,
        }


def _fisher_matmat(W: np.ndarray, J: np.ndarray | None, dense: bool,
                   client: Any = None) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray | None]:
    """Products with J: the given matrix, a dense one, or the matrix-free operator.

    A dense one when ``dense`` (the remainder check needs it) and it fits comfortably; else the
    operator, whose products cost about what dense ones do without the 8 p^2 bytes.
    """
    if J is not None:
        return J.__matmul__, J
    p = W.shape[1]
    if dense and client is None and 8.0 * p * p < 0.4 * available_memory_bytes():
        J = fisher_matrix(W)
        return J.__matmul__, J
    return fisher_operator(W, client=client).matmat, None


def cluster_cosines(th: TheoryVectors, result: SpectrumResult) -> dict[str, np.ndarray]:
    """Principal cosines between each computed cluster eigenspace and its predicted span (theory §4, §10).

    Keys ``cluster1..3`` and ``hadamard`` (clusters 1 and 3 together against the span of all
    Hadamard products); empty when the detected sizes differ from the predicted ones.
    """
    if result.eigenvectors is None or [c.size for c in result.clusters][:3] != list(predicted_cluster_sizes(th.d)):
        return {}
    out = {f"cluster{i}": principal_cosines(result.cluster_vectors(i), basis)
           for i, basis in enumerate(th.predicted_bases(), start=1)}
    comp = np.hstack([result.cluster_vectors(1), result.cluster_vectors(3)])
    out["hadamard"] = principal_cosines(comp, th.hadamard_basis())
    return out


def cluster_alignment(th: TheoryVectors, result: SpectrumResult) -> dict[str, float]:
    """The smallest principal cosine of each entry of :func:`cluster_cosines` (1 = identical spans)."""
    return {key: float(c.min()) for key, c in cluster_cosines(th, result).items()}


def check_theory(W: np.ndarray, *, result: SpectrumResult | None = None, J: np.ndarray | None = None,
                 remainder: bool | None = None, client: Any = None) -> TheoryCheck:
    r"""Check the 2023 paper's statements (Theorem 2, Lemma 2, Theorem 3, Perron–Frobenius, alignment) on ``W``.

    Parameters
    ----------
    W : array (d, p)
    result : SpectrumResult, optional
        The exact spectrum ``spectrum(W, k="clusters")`` if already computed.
    J : array (p, p), optional
        The exact FIM if already built.
    remainder : bool, optional
        Compute the smallest eigenvalue of Theorem 2's remainder ``R`` densely
        (default: when ``p <= 4000``; ``tr R`` is always reported).
    client : dask.distributed.Client, optional
        Run the products with ``J`` (the Rayleigh quotients of Theorem 3) on a cluster.

    Examples
    --------
    >>> import relufim as rf
    >>> chk = rf.check_theory(rf.sample_weights(d=3, p=600, seed=0))
    >>> chk.perron_frobenius, chk.remainder_min_eigenvalue > -1e-12, chk.cluster_sizes
    (True, True, [1, 3, 5])
    """
    W = check_weights(W)
    d, p = W.shape
    th = theory_vectors(W)
    matmat, J = _fisher_matmat(W, J, dense=remainder if remainder is not None else p <= REMAINDER_DENSE_LIMIT,
                               client=client)
    if result is None:
        result = matrix_spectrum(J, "clusters", d=d, X0=th.seed_block()) if J is not None else \
            spectrum(W, client=client)
    if result.eigenvectors is None:
        raise ValueError("check_theory needs eigenvectors: pass a result computed with vectors=True.")
    trace = float(0.5 * np.sum(W * W))

    # Theorem 2: R = J - G^T G is PSD, and carries a small share of the trace
    G = theorem2_low_rank_factor(th)
    trace_R = trace - float(np.sum(G * G))
    if remainder is None:
        remainder = J is not None and p <= REMAINDER_DENSE_LIMIT
    r_min = float(np.linalg.eigvalsh(J - G.T @ G)[0]) if remainder and J is not None else None

    # Theorem 3: Rayleigh quotients against their lower bounds
    bounds = theorem3_bounds(d)
    rq = rayleigh_quotients(matmat, th)
    t3 = {name: {"min": float(v.min()), "mean": float(v.mean()), "bound": bounds[name],
                 "min_over_bound": float(v.min() / bounds[name])}
          for name, v in rq.items() if v.size}

    # Perron-Frobenius: the top eigenvector has one sign
    top = result.eigenvectors[:, 0]
    pf = bool(np.all(top >= -1e-12 * np.abs(top).max()) or np.all(top <= 1e-12 * np.abs(top).max()))

    # alignment: principal angles between computed clusters and predicted spans
    sizes = [c.size for c in result.clusters]
    predicted = list(predicted_cluster_sizes(d))
    align = cluster_alignment(th, result)

    return TheoryCheck(
        d=d, p=p, trace=trace, trace_bound=bounds["trace"], top_fraction=result.top_fraction,
        top_fraction_bound=TRACE_SHARE_BOUND, perron_frobenius=pf, remainder_min_eigenvalue=r_min,
        remainder_trace_share=trace_R / trace, theorem3=t3, lemma2=lemma2_statistics(th), alignment=align,
        cluster_sizes=sizes, predicted_cluster_sizes=predicted, spectrum=result,
    )


def summarize_result(W: np.ndarray, res: SpectrumResult, chk: TheoryCheck | None, *, seed: int | None,
                     fisher: str = "exact", n: int | None = None, activation: str = "relu",
                     scale: str | float = "1/p") -> dict[str, Any]:
    """JSON-ready record of one computed spectrum with the theory checks (see :func:`spectrum_summary`).

    ``chk`` is :func:`check_theory` of ``W`` (exact J; ReLU only) or ``None``. The
    alignment is always that of ``res``'s own eigenvectors with the predicted spans.
    """
    d, p = W.shape
    out: dict[str, Any] = {"d": d, "p": p, "seed": seed, "fisher": fisher, "method": fisher, "activation": activation,
                           "scale": scale, "n": n, "solver": res.method}
    full = res.to_dict()
    for key in ("eigenvalues", "trace", "top_fraction", "clusters", "iterations", "products", "matvecs",
                "low_matvecs", "matvecs_per_pair", "workers", "start"):
        out[key] = full[key]
    # the d(d+3)/2 cluster pairs are what the theory is about; the extras beyond them sit inside the
    # wide degree-4 cluster and converge slowly, so they are reported with their own residuals
    m = min(n_top(d), res.eigenvalues.size)
    out["max_residual"] = float(np.max(res.residuals[:m])) if m else 0.0
    out["converged"] = bool(np.all(res.converged[:m]))
    out["max_residual_extra"] = float(np.max(res.residuals[m:])) if res.eigenvalues.size > m else None
    out["extra_converged"] = int(np.count_nonzero(res.converged[m:]))
    out["extra"] = int(res.eigenvalues.size - m)
    out["top_fraction_bound"] = TRACE_SHARE_BOUND
    out["predicted_cluster_sizes"] = list(predicted_cluster_sizes(d))
    top = res.eigenvectors[:, 0]
    out["perron_frobenius"] = bool(np.all(top >= 0) or np.all(top <= 0))
    out["alignment"] = cluster_alignment(theory_vectors(W), res)
    if chk is not None:
        out["theorem3"] = chk.theorem3
        out["lemma2"] = chk.lemma2
        out["remainder_min_eigenvalue"] = chk.remainder_min_eigenvalue if fisher == "exact" else None
        out["remainder_trace_share"] = chk.remainder_trace_share
        out["trace_exact"] = chk.trace
    else:
        out["theorem3"] = {}
    return out


def spectrum_summary(d: int, p: int, seed: int | None = 0, *, fisher: str = "exact", n: int | None = None,
                     activation: str = "relu", scale: str | float = "1/p", extra: int = 10,
                     W: np.ndarray | None = None, progress: Callable[[int, int], None] | None = None,
                     **solver: Any) -> dict[str, Any]:
    """The JSON-ready record of one setting: spectrum, clusters and theory checks.

    Keys: ``d, p, seed, method, fisher, activation, scale, n, eigenvalues`` (descending, top
    ``d(d+3)/2 + extra``), ``trace, top_fraction, top_fraction_bound, clusters`` (``size,
    predicted_size, mean, min, max``), ``perron_frobenius, alignment`` (smallest principal-angle
    cosine per cluster), ``theorem3, lemma2, remainder_min_eigenvalue, remainder_trace_share,
    max_residual, converged`` (over the ``d(d+3)/2`` cluster pairs), ``max_residual_extra,
    extra_converged`` (the pairs beyond), and the solver's ``products, matvecs, low_matvecs,
    matvecs_per_pair, workers``. Theory checks (Theorems 2–3, Lemma 2) are for ReLU and use the
    exact J. ``**solver`` goes to :func:`relufim.spectrum` (``method, tol, seed_degree, precision,
    client, product_progress``); with a ``client`` the theory checks' products run on the cluster too.

    Examples
    --------
    >>> s = spectrum_summary(d=3, p=400, seed=0)
    >>> [c["size"] for c in s["clusters"]], len(s["eigenvalues"])
    ([1, 3, 5], 19)
    """
    if W is None:
        W = sample_weights(d, p, seed=seed, scale=scale)
    W = check_weights(W)
    if W.shape != (d, p):
        raise ValueError(f"W has shape {W.shape} but d = {d}, p = {p} were given; they must agree.")
    res = spectrum(W, k="clusters", fisher=fisher, n=n, seed=seed, activation=activation, extra=extra,
                   progress=progress, **solver)
    chk = None
    if get_activation(activation).name == "relu":
        chk = check_theory(W, result=res if fisher == "exact" else None, client=solver.get("client"))
    return summarize_result(W, res, chk, seed=seed, fisher=fisher, n=n, activation=activation, scale=scale)

r"""Risk of the output weights, split by cluster, and the spectral functionals of theory §13.

The generalization error of ``v`` is :math:`(v - v^*)^\top J (v - v^*) + \sigma^2` (theory §1);
:func:`risk` splits its excess part over the cluster eigenvectors, :func:`estimator_risk`
gives the expected excess risk of least squares and ridge from ``n`` samples (closed forms
where they exist, and simulation). The spectral functionals take eigenvalues (a 1-D array)
or a :class:`~relufim.spectrum.result.SpectrumResult`, never a matrix: the counting function
:math:`\#\{\lambda_i\ge\varepsilon\}`, the tail sums :math:`\sum_{i>k}\lambda_i`, and the
redundancy :math:`\tfrac12\log\det(I + nJ/\sigma^2)` of a Bayes mixture code (theory §13; it is
not a two-stage code length, theory §16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._validation import (
    check_dense_fits,
    check_eigenvalues,
    check_positive_float,
    check_positive_int,
    check_sigma,
    check_square_matrix,
    check_symmetric,
    check_vector,
    check_weights,
)
from ..fim.exact import fisher_matrix
from ..fim.operator import fisher_operator
from ..spectrum.result import SpectrumResult, n_top, predicted_cluster_sizes
from ..spectrum.solve import spectrum
from .dynamics import cluster_eigenpairs, default_target

__all__ = [
    "EstimatorRisk",
    "RiskResult",
    "counting_function",
    "estimator_risk",
    "mixture_redundancy",
    "risk",
    "tail_sums",
]

Spectrum = np.ndarray | SpectrumResult

@dataclass(frozen=True)
class RiskResult:
    r"""Generalization error :math:`(v-v^*)^\top J(v-v^*) + \sigma^2`, split by cluster.

    ``by_cluster[i]`` is :math:`\sum_{j\in C_i}\lambda_j(u_j^\top(v-v^*))^2`; ``rest`` is the
    excess risk outside the three clusters.
    """

    total: float
    excess: float
    noise: float
    by_cluster: tuple[float, ...]
    rest: float
    cluster_sizes: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "excess": self.excess, "noise": self.noise, "by_cluster": list(self.by_cluster),
                "rest": self.rest, "cluster_sizes": list(self.cluster_sizes)}


def risk(W: np.ndarray, v: np.ndarray, v_star: np.ndarray, sigma: float = 1.0) -> RiskResult:
    r"""Generalization error of ``v`` for data from ``v_star`` with noise ``sigma`` (theory §1, §13), by cluster.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 50, seed=0)
    >>> r = rf.risk(W, W[0], np.zeros(50), sigma=0.5)
    >>> round(r.noise, 2), r.cluster_sizes, bool(np.isclose(sum(r.by_cluster) + r.rest, r.excess))
    (0.25, (1, 2, 2), True)
    """
    W = check_weights(W)
    p = W.shape[1]
    v = check_vector(v, p, "v")
    v_star = check_vector(v_star, p, "v_star")
    sigma = check_sigma(sigma)
    e = v - v_star
    excess = float(e @ (fisher_operator(W) @ e))
    lam, U, sizes = cluster_eigenpairs(spectrum(W, k=n_top(W.shape[0])))
    c = U.T @ e
    per = lam * c * c
    bounds = np.cumsum((0,) + sizes)
    by = tuple(float(per[lo:hi].sum()) for lo, hi in zip(bounds[:-1], bounds[1:]))
    return RiskResult(total=excess + sigma**2, excess=excess, noise=sigma**2, by_cluster=by,
                      rest=max(excess - sum(by), 0.0), cluster_sizes=sizes)


def _values(spectrum_: Spectrum, what: str, complete: bool = True) -> tuple[np.ndarray, bool]:
    """Descending eigenvalues from a 1-D array or a SpectrumResult, and whether they are all ``p`` of them."""
    if isinstance(spectrum_, SpectrumResult):
        lam = spectrum_.eigenvalues
        whole = lam.size == spectrum_.p
        if complete and not whole:
            raise ValueError(f"{what} needs every eigenvalue, but this result holds {lam.size} of {spectrum_.p}: "
                             "compute it with k='all' (dense), or pass eigenvalues.")
        return lam, whole
    return check_eigenvalues(spectrum_), True


def counting_function(eigenvalues: Spectrum, eps: float | np.ndarray) -> int | np.ndarray:
    r""":math:`N(\varepsilon) = \#\{i: \lambda_i \ge \varepsilon\}` (theory §13).

    ``eigenvalues`` is a 1-D array or a :class:`SpectrumResult`; a result with only the top
    eigenvalues is enough when every :math:`\varepsilon` lies above its smallest one.

    Examples
    --------
    >>> counting_function(np.array([3.0, 1.0, 0.5, 0.01]), 0.5)
    3
    >>> counting_function(np.array([3.0, 1.0]), np.array([0.1, 2.0, 5.0])).tolist()
    [2, 1, 0]
    """
    lam, whole = _values(eigenvalues, "counting_function", complete=False)
    e = np.asarray(eps, dtype=np.float64)
    if not np.all(np.isfinite(e)):
        raise ValueError(f"eps must be finite, got {eps!r}.")
    if not whole and np.any(e <= lam[-1]):
        raise ValueError(f"this result holds the top {lam.size} eigenvalues, down to {lam[-1]:.3g}: the count at "
                         f"eps <= {lam[-1]:.3g} needs more of them (a larger k, or k='all').")
    counts = np.searchsorted(-lam, -e, side="right")
    return int(counts) if counts.ndim == 0 else counts


def tail_sums(eigenvalues: Spectrum, k: int | np.ndarray | None = None) -> float | np.ndarray:
    r"""Tail sums :math:`T_k = \sum_{i>k}\lambda_i` (1-based ``i``), all ``k = 0..p`` by default (theory §13).

    Examples
    --------
    >>> tail_sums(np.array([3.0, 1.0, 0.5]))
    array([4.5, 1.5, 0.5, 0. ])
    >>> tail_sums(np.array([3.0, 1.0, 0.5]), 1)
    1.5
    """
    lam, _ = _values(eigenvalues, "tail_sums")
    tails = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])
    if k is None:
        return tails
    kk = np.asarray(k)
    if not np.issubdtype(kk.dtype, np.integer) or np.any(kk < 0) or np.any(kk > lam.size):
        raise ValueError(f"k must be integers in 0..{lam.size}, got {k!r}.")
    out = tails[kk]
    return float(out) if out.ndim == 0 else out


def mixture_redundancy(eigenvalues: Spectrum, n: int, sigma: float = 1.0) -> float:
    r""":math:`\tfrac12\log\det(I + nJ/\sigma^2) = \tfrac12\sum_i\log(1 + n\lambda_i/\sigma^2)` in nats (theory §13).

    The redundancy of a Bayes mixture code with a Gaussian prior; not a two-stage code length
    (theory §16). ``eigenvalues`` are those of ``J`` (not divided by :math:`\sigma^2`).

    Examples
    --------
    >>> bool(np.isclose(mixture_redundancy(np.array([1.0, 0.0]), n=3), 0.5 * np.log(4)))
    True
    """
    lam, _ = _values(eigenvalues, "mixture_redundancy")
    n = check_positive_int(n, "n")
    sigma = check_sigma(sigma)
    return float(0.5 * np.sum(np.log1p(n * np.maximum(lam, 0.0) / sigma**2)))


# ----------------------------------------------------------------------------- estimators

@dataclass(frozen=True)
class EstimatorRisk:
    r"""Expected excess risk :math:`E[(\hat v - v^*)^\top J(\hat v - v^*)]` of an estimator from ``n`` samples.

    Attributes
    ----------
    predicted, predicted_by_cluster :
        Closed form (``None`` where there is none): ridge uses the population
        approximation :math:`X^\top X/n\to J`, bias :math:`\sum_i\lambda_i(\ell/(\lambda_i+\ell))^2(u_i^\top v^*)^2`
        plus variance :math:`\frac{\sigma^2}{n}\sum_i\lambda_i^2/(\lambda_i+\ell)^2`; least squares
        with ``n > p + 1`` uses the Gaussian-design value :math:`\sigma^2 p/(n-p-1)` (each
        eigendirection :math:`\sigma^2/(n-p-1)`).
    simulated, simulated_stderr, simulated_by_cluster :
        Mean (and its standard error) over ``sims`` independent data sets.
    rest : the part outside the three clusters (predicted and simulated).
    """

    estimator: str
    n: int
    sigma: float
    lam: float | None
    sims: int
    predicted: float | None
    predicted_by_cluster: tuple[float, ...] | None
    predicted_rest: float | None
    simulated: float
    simulated_stderr: float
    simulated_by_cluster: tuple[float, ...]
    simulated_by_cluster_stderr: tuple[float, ...]
    simulated_rest: float
    cluster_sizes: tuple[int, ...]

    @property
    def risk(self) -> float:
        r"""Simulated expected risk including the noise, excess + :math:`\sigma^2`."""
        return self.simulated + self.sigma**2

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()} | {"risk": self.risk}


def _check_fim(fim: Any, p: int) -> np.ndarray:
    """The caller's dense FIM of ``W``: a finite symmetric ``p x p`` matrix."""
    J = check_square_matrix(fim, "fim", size=p, what="relufim.fisher_matrix(W) for this W")
    check_symmetric(J, "fim", "it must be relufim.fisher_matrix(W).")
    return J


def estimator_risk(W: np.ndarray, n: int, sigma: float = 1.0,
                   estimator: Literal["least-squares", "ridge"] = "ridge", lam: float | None = None,
                   sims: int = 20, seed: int | None = 0, v_star: np.ndarray | None = None, *,
                   eigh: tuple[np.ndarray, np.ndarray] | None = None,
                   fim: np.ndarray | None = None) -> EstimatorRisk:
    r"""Expected excess risk of least squares or ridge from ``n`` samples, by cluster, with a simulation check.

    Data: :math:`y = X(x)\cdot v^* + \sigma\varepsilon` with Gaussian ``x``. Least squares is
    :math:`\hat v = X^+y` (the minimum-norm interpolant when ``n <= p``); ridge is
    :math:`\hat v = (X^\top X + n\ell I)^{-1}X^\top y`. The excess risk of each simulated
    :math:`\hat v` is split over the cluster eigenvectors of the exact ``J``.

    Parameters
    ----------
    W : array (d, p)
    n : int
        Samples per data set.
    sigma : float
        Noise standard deviation.
    estimator : {"least-squares", "ridge"}
    lam : float
        Ridge penalty :math:`\ell > 0` (required for ridge).
    sims : int
        Number of simulated data sets (>= 2 for an error bar).
    seed : int, optional
    v_star : array (p,), optional
        True weights (default :func:`default_target`).
    eigh : (eigenvalues, eigenvectors), optional
        ``numpy.linalg.eigh(relufim.fisher_matrix(W))`` when the caller already has it (several
        estimators or sample sizes on one ``W``: the O(p^3) step); otherwise computed here.
    fim : array (p, p), optional
        ``relufim.fisher_matrix(W)`` when the caller already has it (checked: square, of size
        ``p``, finite and symmetric); otherwise built here.

    Returns
    -------
    EstimatorRisk

    Examples
    --------
    >>> import relufim as rf
    >>> er = rf.estimator_risk(rf.sample_weights(2, 40, seed=0), n=400, sigma=0.1, lam=1e-3, sims=5)
    >>> bool(abs(er.simulated - er.predicted) < 0.5 * er.predicted)
    True
    """
    W = check_weights(W)
    d, p = W.shape
    n = check_positive_int(n, "n")
    sigma = check_sigma(sigma)
    sims = check_positive_int(sims, "sims", minimum=2)
    if estimator not in ("least-squares", "ridge"):
        raise ValueError(f"estimator must be 'least-squares' or 'ridge', got {estimator!r}.")
    if estimator == "ridge":
        if lam is None:
            raise ValueError("estimator='ridge' needs the penalty lam > 0, e.g. lam=1e-3.")
        lam = check_positive_float(lam, "lam")
    elif lam is not None:
        raise ValueError("lam is only used with estimator='ridge'.")
    check_dense_fits(p, what=f"the dense {p} x {p} FIM", copies=2.0)
    vs = default_target(W) if v_star is None else check_vector(v_star, p, "v_star")

    J = fisher_matrix(W) if fim is None else _check_fim(fim, p)
    evals, evecs = np.linalg.eigh(J) if eigh is None else eigh
    if np.shape(evals) != (p,) or np.shape(evecs) != (p, p):
        raise ValueError(f"eigh must be numpy.linalg.eigh of the {p} x {p} FIM of W: eigenvalues (p,) and eigenvectors "
                         f"(p, p), got shapes {np.shape(evals)} and {np.shape(evecs)}.")
    evals, evecs = np.maximum(evals[::-1], 0.0), evecs[:, ::-1]
    sizes = tuple(s for s in predicted_cluster_sizes(d) if s > 0)
    ktop = min(sum(sizes), p)
    bounds = np.cumsum((0,) + sizes)
    bounds = np.minimum(bounds, ktop)

    def split(per: np.ndarray) -> tuple[tuple[float, ...], float]:
        by = tuple(float(per[lo:hi].sum()) for lo, hi in zip(bounds[:-1], bounds[1:]))
        return by, float(per[ktop:].sum())

    pred = pred_by = pred_rest = None
    if estimator == "ridge":
        cs = evecs.T @ vs
        per = evals * (lam / (evals + lam)) ** 2 * cs**2 + sigma**2 / n * evals**2 / (evals + lam) ** 2
        pred_by, pred_rest = split(per)
        pred = float(per.sum())
    elif n > p + 1:
        per = np.full(p, sigma**2 / (n - p - 1))
        pred_by, pred_rest = split(per)
        pred = float(per.sum())

    rng = np.random.default_rng(seed)
    totals = np.empty(sims)
    parts = np.empty((sims, len(sizes)))
    rests = np.empty(sims)
    Utop = evecs[:, :ktop]
    for s in range(sims):
        x = rng.standard_normal((n, d))
        X = np.maximum(x @ W, 0.0)
        y = X @ vs + sigma * rng.standard_normal(n)
        if estimator == "ridge":
            if n < p:
                vhat = X.T @ np.linalg.solve(X @ X.T + n * lam * np.eye(n), y)
            else:
                vhat = np.linalg.solve(X.T @ X + n * lam * np.eye(p), X.T @ y)
        else:
            vhat = np.linalg.lstsq(X, y, rcond=None)[0]
        e = vhat - vs
        totals[s] = float(e @ J @ e)
        c = Utop.T @ e
        by, _ = split(np.concatenate([evals[:ktop] * c * c, np.zeros(p - ktop)]))
        parts[s] = by
        rests[s] = totals[s] - sum(by)
    se = lambda a: float(a.std(ddof=1) / math.sqrt(sims))
    return EstimatorRisk(
        estimator=estimator, n=n, sigma=sigma, lam=lam, sims=sims, predicted=pred, predicted_by_cluster=pred_by,
        predicted_rest=pred_rest, simulated=float(totals.mean()), simulated_stderr=se(totals),
        simulated_by_cluster=tuple(float(m) for m in parts.mean(0)),
        simulated_by_cluster_stderr=tuple(se(parts[:, i]) for i in range(parts.shape[1])),
        simulated_rest=float(rests.mean()), cluster_sizes=sizes)

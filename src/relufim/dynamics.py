r"""Learning the output weights: gradient descent, risk and estimators, split by cluster (DESIGN §8).

The generalization error of ``v`` is :math:`(v - v^*)^\top J (v - v^*) + \sigma^2` (DESIGN §1).
Population gradient descent on half the excess risk, :math:`v \leftarrow v - \eta J (v - v^*)`,
is linear: along a unit eigenvector :math:`u_i` of ``J`` the error is multiplied by
:math:`1 - \eta\lambda_i` per step, so after ``k`` steps (time :math:`t = \eta k`)

.. math::  u_i^\top(v_k - v^*) = (1-\eta\lambda_i)^k\,u_i^\top(v_0 - v^*) \;\approx\; e^{-\lambda_i t}\,u_i^\top(v_0 - v^*),

the exponential being the gradient flow :math:`\dot v = -J(v - v^*)`. The clusters of the
spectrum are therefore learned in order: the :math:`\|x\|` part at rate :math:`\lambda_0`,
the linear part at :math:`\lambda_1`, the degree-2 part at :math:`\lambda_2`
(:math:`\lambda_k = p E\|w\|^2\mu_k`, DESIGN §4). The iteration is stable only for
:math:`\eta < 2/\lambda_{max}`.

Risk primitives: the counting function :math:`\#\{\lambda_i\ge\varepsilon\}`, tail sums
:math:`\sum_{i>k}\lambda_i`, :math:`\tfrac12\log\det(I + nJ/\sigma^2)`, and the expected risk
of least squares / ridge from ``n`` samples (closed forms where they exist, and simulation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ._validation import (
    check_dense_fits,
    check_positive_float,
    check_positive_int,
    check_sigma,
    check_weights,
)
from .fisher import fisher_matrix, gaussian_input_chunks

__all__ = [
    "EstimatorRisk",
    "GradientDescentResult",
    "RiskResult",
    "cluster_eigenpairs",
    "counting_function",
    "default_target",
    "estimator_risk",
    "gradient_descent",
    "log_det_term",
    "risk",
    "tail_sums",
]

CLUSTER_NAMES = ("||x|| (degree 0)", "linear (degree 1)", "degree 2")


# ----------------------------------------------------------------------------- helpers

def _check_vector(v: Any, p: int, name: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.shape != (p,):
        raise ValueError(f"{name} must have shape (p,) = ({p},) to match W of shape (d, {p}), got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    return arr


def cluster_eigenpairs(W: np.ndarray | None = None, J: np.ndarray | None = None,
                       d: int | None = None) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    r"""Top :math:`d(d+3)/2` eigenpairs of ``J`` (exact FIM of ``W`` unless ``J`` is given), and the cluster sizes.

    The split uses the predicted sizes ``(1, d, d(d+1)/2 - 1)`` (DESIGN §3); callers compare
    the eigenvalues with their predictions to see that the split is right.

    Returns
    -------
    eigenvalues : (k,) descending
    eigenvectors : (p, k)
    sizes : tuple of int
    """
    from .spectrum import n_top, spectrum
    from .theory import predicted_cluster_sizes

    d = W.shape[0] if d is None else d
    sizes = tuple(s for s in predicted_cluster_sizes(d) if s > 0)
    p = (W.shape[1] if W is not None else J.shape[0])
    k = min(n_top(d) if d > 1 else 2, p)
    if J is None and d >= 2:
        res = spectrum(W, k=k)
    else:
        res = spectrum(fisher_matrix(W) if J is None else J, k=k, input="matrix")
    total = 0
    out = []
    for s in sizes:
        s = min(s, k - total)
        if s <= 0:
            break
        out.append(s)
        total += s
    return res.eigenvalues[:total], res.eigenvectors[:, :total], tuple(out)


def default_target(W: np.ndarray) -> np.ndarray:
    r"""A target :math:`v^*` with one unit part in each cluster: :math:`\hat v^{(0)} + \hat W_1 + \hat v^{(1,2)}`.

    Its function is close to :math:`c(\sqrt{\mu_0}\|x\| + x_1/2 + \sqrt{d(d+2)\mu_2}\,x_1x_2/\|x\|)`
    (DESIGN §5), so gradient descent shows the order in which the three parts are learned.
    For ``d = 1`` the third part is left out.

    Examples
    --------
    >>> import relufim as rf
    >>> default_target(rf.sample_weights(3, 100, seed=0)).shape
    (100,)
    """
    from .theory import theory_vectors

    W = check_weights(W)
    th = theory_vectors(W)
    parts = [th.v0, th.rows[0]]
    if W.shape[0] >= 2:
        parts.append(th.v_ab[th.pairs.index((0, 1))])
    return sum(v / np.linalg.norm(v) for v in parts)


# ----------------------------------------------------------------------------- gradient descent

@dataclass(frozen=True)
class GradientDescentResult:
    r"""Trajectory of gradient descent on ``v``, with the error split by cluster.

    Attributes
    ----------
    times : (steps+1,)
        :math:`t = \eta k`.
    errors : (steps+1, n_clusters + 1)
        Excess risk carried by each cluster, :math:`\sum_{i\in C}\lambda_i c_i^2`, and by the
        rest of the spectrum (last column), where :math:`c_i` is the error along eigenvector
        :math:`u_i` (for a target function: :math:`u_i^\top v - u_i^\top b/\lambda_i`).
    predicted : (steps+1, n_clusters)
        :math:`\sum_{i\in C}\lambda_i(1-\eta\lambda_i)^{2k}c_i(0)^2` (exact for the recursion).
    predicted_flow : (steps+1, n_clusters)
        :math:`\sum_{i\in C}\lambda_i e^{-2\lambda_i t}c_i(0)^2` (gradient flow).
    total : (steps+1,)
        Excess risk :math:`(v-v^*)^\top J(v-v^*)` (for a target function: :math:`E[(f_v - y)^2]`,
        with :math:`E[y^2]` by Monte Carlo).
    eigenvalues : (k,)
        Cluster eigenvalues of the matrix used (``J`` or :math:`J^{(n)}`).
    """

    times: np.ndarray = field(repr=False)
    errors: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    predicted_flow: np.ndarray = field(repr=False)
    total: np.ndarray = field(repr=False)
    eigenvalues: np.ndarray = field(repr=False)
    cluster_sizes: tuple[int, ...]
    lr: float
    steps: int
    n: int | None
    v_final: np.ndarray = field(repr=False)
    stability_limit: float

    def learning_times(self, fraction: float = 0.01) -> list[float | None]:
        """First time each cluster's error falls below ``fraction`` of its initial value (None if never)."""
        out: list[float | None] = []
        for c in range(len(self.cluster_sizes)):
            e = self.errors[:, c]
            if e[0] <= 0:
                out.append(0.0)
                continue
            hit = np.nonzero(e <= fraction * e[0])[0]
            out.append(float(self.times[hit[0]]) if hit.size else None)
        return out

    def learning_order(self, fraction: float = 0.01) -> list[int]:
        """Cluster indices (1-based) in the order they are learned (never-learned ones last)."""
        t = self.learning_times(fraction)
        return [i + 1 for i in sorted(range(len(t)), key=lambda i: (t[i] is None, t[i] or 0.0))]

    def to_dict(self) -> dict[str, Any]:
        sizes = self.cluster_sizes
        bounds = np.cumsum((0,) + sizes)
        return {
            "lr": self.lr, "steps": self.steps, "n": self.n, "stability_limit": self.stability_limit,
            "cluster_sizes": list(sizes),
            "cluster_mean_eigenvalues": [float(self.eigenvalues[bounds[i]:bounds[i + 1]].mean())
                                         for i in range(len(sizes))],
            "initial_errors": self.errors[0].tolist(), "final_errors": self.errors[-1].tolist(),
            "max_rel_deviation_from_prediction": float(
                np.max(np.abs(self.errors[:, :-1] - self.predicted) / max(self.errors[0, :-1].max(), 1e-300))),
            "learning_times": self.learning_times(), "learning_order": self.learning_order(),
        }


def gradient_descent(W: np.ndarray, v_star: np.ndarray | None = None,
                     target: Callable[[np.ndarray], np.ndarray] | None = None, lr: float | None = None,
                     steps: int = 1000, n: int | None = None, seed: int | None = 0,
                     v0: np.ndarray | None = None, n_target: int = 20000) -> GradientDescentResult:
    r"""Gradient descent on the output weights, population (``n=None``) or on ``n`` samples.

    Population: :math:`v \leftarrow v - \eta\,(Jv - b)` with :math:`b = Jv^*` (or
    :math:`b = E_x[X(x)y(x)]` for a ``target`` function, by Monte Carlo with ``n_target``
    inputs); the discrete version of :math:`\dot v = -J(v - v^*)`. Samples: the same with
    :math:`J^{(n)} = X^\top X/n` and :math:`b = X^\top y/n` on ``n`` Gaussian inputs from ``seed``.

    Parameters
    ----------
    W : array (d, p)
    v_star : array (p,), optional
        Target weights (default :func:`default_target`); exclusive with ``target``.
    target : callable, optional
        ``target(x) -> (n,)`` for inputs ``(n, d)``: learn a function instead of weights.
    lr : float, optional
        Step size :math:`\eta`; default :math:`0.5/\lambda_{max}` (a quarter of the stability limit). Must satisfy
        :math:`0 < \eta < 2/\lambda_{max}` (the stability limit), else ``ValueError``.
    steps : int
        Number of steps (>= 1).
    n : int, optional
        Sample size for sample GD; ``None`` for population GD.
    seed : int, optional
        Seed of the inputs (sample GD and the Monte Carlo ``b`` for a target function).
    v0 : array (p,), optional
        Starting point (default 0).

    Returns
    -------
    GradientDescentResult

    Raises
    ------
    ValueError
        Mismatched shapes, ``steps``/``lr`` not positive, or ``lr >= 2/lambda_max`` (the
        message gives :math:`2/\lambda_{max}`).

    Examples
    --------
    >>> import relufim as rf
    >>> gd = rf.gradient_descent(rf.sample_weights(3, 200, seed=0), steps=300)
    >>> gd.learning_order()
    [1, 2, 3]
    >>> bool(np.allclose(gd.errors[:, :3], gd.predicted, atol=1e-10))
    True
    """
    W = check_weights(W)
    d, p = W.shape
    steps = check_positive_int(steps, "steps")
    if v_star is not None and target is not None:
        raise ValueError("give either v_star (target weights) or target (a function of x), not both.")
    if target is not None and not callable(target):
        raise TypeError("target must be a callable y(x) for inputs x of shape (n, d).")
    if lr is not None:
        lr = check_positive_float(lr, "lr")
    v_init = np.zeros(p) if v0 is None else _check_vector(v0, p, "v0")
    check_dense_fits(p, what=f"the dense {p} x {p} FIM for gradient descent")

    y2 = None
    if n is None:
        A = fisher_matrix(W)
        lam, U, sizes = cluster_eigenpairs(W)
        if target is None:
            vs = default_target(W) if v_star is None else _check_vector(v_star, p, "v_star")
            b = A @ vs
        else:
            n_target = check_positive_int(n_target, "n_target")
            b = np.zeros(p)
            y2 = 0.0
            for x in gaussian_input_chunks(n_target, d, seed):
                y = _call_target(target, x)
                b += np.maximum(x @ W, 0.0).T @ y
                y2 += float(y @ y)
            b /= n_target
            y2 /= n_target
    else:
        n = check_positive_int(n, "n")
        x = np.vstack(list(gaussian_input_chunks(n, d, seed)))
        X = np.maximum(x @ W, 0.0)
        A = X.T @ X / n
        lam, U, sizes = cluster_eigenpairs(J=A, d=d, W=W)
        if target is None:
            vs = default_target(W) if v_star is None else _check_vector(v_star, p, "v_star")
            y = X @ vs
        else:
            y = _call_target(target, x)
        b = X.T @ y / n
        y2 = float(y @ y / n)

    lam_max = float(lam[0])
    limit = 2.0 / lam_max
    if lr is None:
        lr = 0.5 / lam_max
    if lr >= limit:
        raise ValueError(f"lr = {lr:.6g} is at or above the stability limit 2/lambda_max = {limit:.6g} "
                         f"(lambda_max = {lam_max:.6g}); gradient descent would diverge. Use lr < {limit:.6g}.")

    safe = np.where(lam > 0, lam, np.inf)
    c_star = (U.T @ b) / safe  # error coordinates are c_i = u_i.v - u_i.b / lambda_i
    k = np.arange(steps + 1)
    bounds = np.cumsum((0,) + sizes)
    errors = np.empty((steps + 1, len(sizes) + 1))
    total = np.empty(steps + 1)
    const = float(vs @ b) if y2 is None else y2  # E[y^2]: v*^T J v* for target weights
    v = v_init.copy()
    for s in range(steps + 1):
        Av = A @ v
        total[s] = float(v @ Av - 2 * v @ b) + const
        c = U.T @ v - c_star
        per = lam * c * c
        errors[s, :-1] = [per[lo:hi].sum() for lo, hi in zip(bounds[:-1], bounds[1:])]
        errors[s, -1] = total[s] - per.sum()
        if s < steps:
            v -= lr * (Av - b)
    c0 = U.T @ v_init - c_star
    factor = (1 - lr * lam)[None, :] ** (2 * k[:, None])
    flow = np.exp(-2 * lam[None, :] * (lr * k)[:, None])
    e0 = lam * c0 * c0
    pred = np.stack([(factor[:, lo:hi] * e0[lo:hi]).sum(1) for lo, hi in zip(bounds[:-1], bounds[1:])], axis=1)
    pflow = np.stack([(flow[:, lo:hi] * e0[lo:hi]).sum(1) for lo, hi in zip(bounds[:-1], bounds[1:])], axis=1)
    return GradientDescentResult(times=lr * k, errors=errors, predicted=pred, predicted_flow=pflow, total=total,
                                 eigenvalues=lam, cluster_sizes=sizes, lr=lr, steps=steps, n=n, v_final=v,
                                 stability_limit=limit)


def _call_target(target: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    y = np.asarray(target(x), dtype=np.float64).reshape(-1)
    if y.shape != (x.shape[0],):
        raise ValueError(f"target(x) must return shape (n,) = ({x.shape[0]},) for x of shape {x.shape}, "
                         f"got {np.shape(y)}.")
    if not np.all(np.isfinite(y)):
        raise ValueError("target(x) returned non-finite values.")
    return y


# ----------------------------------------------------------------------------- risk

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
    r"""Generalization error of ``v`` for data from ``v_star`` with noise ``sigma`` (DESIGN §1, §8), by cluster.

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
    v = _check_vector(v, p, "v")
    v_star = _check_vector(v_star, p, "v_star")
    sigma = check_sigma(sigma)
    from .functions import _kernel_matmat
    from .kernels import arccos_kernel

    e = v - v_star
    excess = float(e @ _kernel_matmat(W, e[:, None], arccos_kernel)[:, 0])
    lam, U, sizes = cluster_eigenpairs(W)
    c = U.T @ e
    per = lam * c * c
    bounds = np.cumsum((0,) + sizes)
    by = tuple(float(per[lo:hi].sum()) for lo, hi in zip(bounds[:-1], bounds[1:]))
    return RiskResult(total=excess + sigma**2, excess=excess, noise=sigma**2, by_cluster=by,
                      rest=max(excess - sum(by), 0.0), cluster_sizes=sizes)


def _eigenvalues(A: Any) -> np.ndarray:
    """Descending eigenvalues: from a 1-D array as given, or all of the exact FIM of ``W`` (d, p)."""
    arr = np.asarray(A, dtype=np.float64)
    if arr.ndim == 1:
        if not np.all(np.isfinite(arr)):
            raise ValueError("eigenvalues contain non-finite values.")
        return np.sort(arr)[::-1]
    W = check_weights(arr)
    check_dense_fits(W.shape[1], what=f"all eigenvalues of the dense {W.shape[1]} x {W.shape[1]} FIM")
    return np.linalg.eigvalsh(fisher_matrix(W))[::-1].copy()


def counting_function(A: Any, eps: float | np.ndarray) -> int | np.ndarray:
    r""":math:`N(\varepsilon) = \#\{i: \lambda_i \ge \varepsilon\}` for eigenvalues ``A`` (1-D) or the FIM of ``W`` (d, p).

    Examples
    --------
    >>> counting_function(np.array([3.0, 1.0, 0.5, 0.01]), 0.5)
    3
    >>> counting_function(np.array([3.0, 1.0]), np.array([0.1, 2.0, 5.0])).tolist()
    [2, 1, 0]
    """
    lam = _eigenvalues(A)
    e = np.asarray(eps, dtype=np.float64)
    counts = np.searchsorted(-lam, -e, side="right")
    return int(counts) if counts.ndim == 0 else counts


def tail_sums(A: Any, k: int | np.ndarray | None = None) -> float | np.ndarray:
    r"""Tail sums :math:`T_k = \sum_{i>k}\lambda_i` (eigenvalues descending, 1-based ``i``); all ``k = 0..p`` by default.

    Examples
    --------
    >>> tail_sums(np.array([3.0, 1.0, 0.5]))
    array([4.5, 1.5, 0.5, 0. ])
    >>> tail_sums(np.array([3.0, 1.0, 0.5]), 1)
    1.5
    """
    lam = _eigenvalues(A)
    tails = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])
    if k is None:
        return tails
    kk = np.asarray(k)
    if np.any(kk < 0) or np.any(kk > lam.size):
        raise ValueError(f"k must lie in 0..{lam.size}, got {k!r}.")
    out = tails[kk]
    return float(out) if out.ndim == 0 else out


def log_det_term(A: Any, n: int, sigma: float = 1.0) -> float:
    r""":math:`\tfrac12\log\det(I + nJ/\sigma^2) = \tfrac12\sum_i\log(1 + n\lambda_i/\sigma^2)` (DESIGN §8).

    Examples
    --------
    >>> bool(np.isclose(log_det_term(np.array([1.0, 0.0]), n=3), 0.5 * np.log(4)))
    True
    """
    lam = _eigenvalues(A)
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
        """Simulated expected risk including the noise, excess + :math:`\\sigma^2`."""
        return self.simulated + self.sigma**2

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()} | {"risk": self.risk}


def estimator_risk(W: np.ndarray, n: int, sigma: float = 1.0,
                   estimator: Literal["least-squares", "ridge"] = "ridge", lam: float | None = None,
                   sims: int = 20, seed: int | None = 0, v_star: np.ndarray | None = None) -> EstimatorRisk:
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
    vs = default_target(W) if v_star is None else _check_vector(v_star, p, "v_star")

    J = fisher_matrix(W)
    evals, evecs = np.linalg.eigh(J)
    evals, evecs = np.maximum(evals[::-1], 0.0), evecs[:, ::-1]
    from .spectrum import n_top
    from .theory import predicted_cluster_sizes
    sizes = tuple(s for s in predicted_cluster_sizes(d) if s > 0)
    ktop = min(sum(sizes), p) if d > 1 else min(2, p)
    bounds = np.cumsum((0,) + sizes)
    bounds = np.minimum(bounds, ktop)
    del n_top

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

r"""Learning the output weights by gradient descent, with the error split by cluster (theory §13).

The generalization error of ``v`` is :math:`(v - v^*)^\top J (v - v^*) + \sigma^2` (theory §1).
Population gradient descent on half the excess risk, :math:`v \leftarrow v - \eta J (v - v^*)`,
is linear: along a unit eigenvector :math:`u_i` of ``J`` the error is multiplied by
:math:`1 - \eta\lambda_i` per step, so after ``k`` steps (time :math:`t = \eta k`)

.. math::  u_i^\top(v_k - v^*) = (1-\eta\lambda_i)^k\,u_i^\top(v_0 - v^*)
           \;\approx\; e^{-\lambda_i t}\,u_i^\top(v_0 - v^*),

the exponential being the gradient flow :math:`\dot v = -J(v - v^*)`. The clusters of the
spectrum are therefore learned in order: the :math:`\|x\|` part at rate :math:`\lambda_0`,
the linear part at :math:`\lambda_1`, the degree-2 part at :math:`\lambda_2`
(:math:`\lambda_k = p E\|w\|^2\mu_k`, theory §7). The iteration is stable only for
:math:`\eta < 2/\lambda_{max}`.

Risk and the spectral functionals live in :mod:`relufim.theory.risk`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_dense_fits, check_positive_float, check_positive_int, check_vector, check_weights
from ..fim.exact import fisher_matrix
from ..fim.sampled import gaussian_input_chunks
from ..spectrum.result import SpectrumResult, n_top
from ..spectrum.solve import matrix_spectrum, spectrum
from .vectors import theory_vectors

__all__ = [
    "GradientDescentResult",
    "cluster_eigenpairs",
    "default_target",
    "gradient_descent",
]

CLUSTER_NAMES = ("||x|| (degree 0)", "linear (degree 1)", "degree 2")


# ----------------------------------------------------------------------------- helpers

def cluster_eigenpairs(result: SpectrumResult) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    r"""The top eigenpairs of ``result`` cut at the predicted cluster sizes ``(1, d, d(d+1)/2 - 1)`` (theory §4).

    Returns the eigenvalues (descending), the eigenvectors ``(p, k)`` and the sizes; callers
    compare the eigenvalues with their predictions to see that the split is right.
    """
    members = result.predicted_members()
    total = int(members[-1][-1]) + 1
    return result.eigenvalues[:total], result.eigenvectors[:, :total], tuple(m.size for m in members)


def default_target(W: np.ndarray) -> np.ndarray:
    r"""A target :math:`v^*` with one unit part in each cluster: :math:`\hat v^{(0)} + \hat W_1 + \hat v^{(1,2)}`.

    Its function is close to :math:`c(\sqrt{\mu_0}\|x\| + x_1/2 + \sqrt{d(d+2)\mu_2}\,x_1x_2/\|x\|)`
    (theory §11), so gradient descent shows the order in which the three parts are learned.
    For ``d = 1`` the third part is left out.

    Examples
    --------
    >>> import relufim as rf
    >>> default_target(rf.sample_weights(3, 100, seed=0)).shape
    (100,)
    """
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
    v_init = np.zeros(p) if v0 is None else check_vector(v0, p, "v0")
    check_dense_fits(p, what=f"the dense {p} x {p} FIM for gradient descent")

    y2 = None
    if n is None:
        A = fisher_matrix(W)
        lam, U, sizes = cluster_eigenpairs(spectrum(W, k=n_top(d)))
        if target is None:
            vs = default_target(W) if v_star is None else check_vector(v_star, p, "v_star")
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
        lam, U, sizes = cluster_eigenpairs(matrix_spectrum(A, n_top(d), d=d))
        if target is None:
            vs = default_target(W) if v_star is None else check_vector(v_star, p, "v_star")
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



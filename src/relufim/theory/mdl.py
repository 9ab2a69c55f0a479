r"""Two-stage codes for the output weights, the MDL estimator and its risk bound (theory §16).

A two-stage code describes the outputs :math:`y_1..y_n` (given the inputs) by first
describing a weight vector ``v`` from a countable set with lengths :math:`L(v)` satisfying
Kraft's inequality, then the outputs with :math:`-\log p_v(y\mid x)` nats. With the
multiplier :math:`\beta > 1` the MDL estimator minimizes :math:`-\log p_v(y^n\mid x^n) + \beta L(v)`,
and (Barron & Cover 1991; random design: Kawakita & Takeuchi 2020) its Rényi risk of order
:math:`\lambda = 1 - 1/\beta` is at most the index of resolvability

.. math::  E\,d_\lambda(p^*, p_{\hat v}) \le R_n = \min_v\{D(p^*\Vert p_v) + \beta L(v)/n\}.

The code here is relufim's own (theory §16.5–16.6): a box of a lattice in the eigenbasis of
``J`` whose steps :math:`\delta_i^2 = 4\beta\sigma^2/(n\lambda_i)` and coded directions (those with
:math:`n\lambda_iR^2/(\beta\sigma^2) > 1 + 2\log 3`) are fixed by :math:`(W, n, \sigma, \beta, R)`
before the data.

* :func:`two_stage_code` designs it: :class:`TwoStageCode` gives the code length of any
  lattice point, the exact Kraft sum and the split of the length by cluster;
* :func:`mdl_estimate` computes :math:`\hat v` from data, exactly (sphere decoding, a
  closest-vector problem in the metric :math:`\mathbf X^\top\mathbf X` over the box) or fast
  (Babai rounding plus local search);
* :func:`index_of_resolvability` gives :math:`R_n` exactly over the lattice (the same
  closest-vector solver, in the metric ``J``) with its closed-form upper estimates;
* :func:`kl_divergence` (exact, through :func:`relufim.fisher_operator`) and
  :func:`renyi_divergence` (Monte Carlo over the inputs, with an error bar) are the risks;
* :func:`simulate_mdl_risk` repeats the whole estimation over fresh data.

The Bayes-mixture counterpart, :math:`\tfrac12\log\det(I + nJ/\sigma^2)`, is
:func:`relufim.theory.risk.mixture_redundancy`; it is not a two-stage code length (theory §16.10).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import scipy.linalg as sla

from .._validation import (
    check_choice,
    check_inputs,
    check_positive_float,
    check_positive_int,
    check_sigma,
    check_vector,
    check_weights,
)
from ..fim.operator import fisher_operator
from ..fim.sampled import gaussian_input_chunks
from ..spectrum.result import SpectrumResult, n_top, predicted_cluster_sizes
from ..spectrum.solve import spectrum

__all__ = [
    "CODING_THRESHOLD",
    "NODE_BUDGET",
    "CLUSTER_GROUPS",
    "RadiusWarning",
    "TwoStageCode",
    "MDLEstimate",
    "Resolvability",
    "DivergenceEstimate",
    "MDLSimulation",
    "two_stage_code",
    "mdl_estimate",
    "index_of_resolvability",
    "kl_divergence",
    "renyi_divergence",
    "simulate_mdl_risk",
    "leading_term",
]

Progress = Callable[[int, int], None]

CODING_THRESHOLD = 1.0 + 2.0 * math.log(3.0)
r"""The threshold rule codes direction i when :math:`x_i = n\lambda_iR^2/(\beta\sigma^2)` exceeds :math:`1 + 2\log 3`
(theory §16.6)."""

#: Names of the groups of coded directions, in eigenvalue order: the three clusters, then the rest.
CLUSTER_GROUPS = ("norm", "linear", "degree2", "remaining")

NODE_BUDGET = 200_000
"""Default node budget of the exact estimator (a few seconds of enumeration in Python)."""

#: Rows of hidden features formed at once (about 64 MB of float64 at p = 1000 and 8 MB per 1000 columns).
_FEATURE_BYTES = 64 * 2**20


class RadiusWarning(UserWarning):
    """The target lies outside the radius the code was designed for; the message says how it enters the bound."""


# ----------------------------------------------------------------------------- validation

def _check_beta(beta: Any) -> float:
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise TypeError(f"beta must be a real number > 1, got {beta!r}.")
    beta = float(beta)
    if not math.isfinite(beta) or beta <= 1.0:
        raise ValueError(f"beta must be finite and > 1 (the MDL multiplier; the risk is the Renyi divergence of "
                         f"order 1 - 1/beta, and beta = 2 gives order 1/2), got {beta}.")
    return beta


def _check_code(code: Any) -> TwoStageCode:
    if not isinstance(code, TwoStageCode):
        raise TypeError(f"code must be a TwoStageCode from relufim.two_stage_code(W, n, radius=...), "
                        f"got {type(code).__name__}.")
    return code


def _check_budget(node_budget: Any) -> int:
    return check_positive_int(node_budget, "node_budget")


# ----------------------------------------------------------------------------- the code

@dataclass(frozen=True)
class TwoStageCode:
    r"""A uniform code over a box of a lattice in the eigenbasis of ``J`` (theory §16.5–16.6).

    Lattice points are :math:`v = \sum_{i\le k} m_i\delta_iu_i` with integers :math:`|m_i|\le M_i`;
    every point has the same length :math:`L = \sum_{i\le k}\log(2M_i+1)` nats.

    Attributes
    ----------
    W : (d, p) hidden weights
    n, sigma, beta, radius : what the code was designed for, before the data
    eigenvalues : (K,) the top ``K`` eigenvalues of ``J`` that were considered (descending, not
        divided by :math:`\sigma^2`), ``K > k`` unless every direction is coded
    basis : (p, k) the coded unit eigenvectors :math:`u_1..u_k`
    steps : (k,) :math:`\delta_i = \sqrt{4\beta\sigma^2/(n\lambda_i)}`
    box : (k,) int :math:`M_i = \lceil R/\delta_i - 1/2\rceil`
    threshold : the eigenvalue above which a direction is coded,
        :math:`(1 + 2\log3)\beta\sigma^2/(nR^2)` (``nan`` when ``directions`` was given)
    next_eigenvalue : :math:`\lambda_{k+1}`, the largest uncoded eigenvalue (0 when ``k = p``)
    max_residual : largest residual of the ``k + 1`` eigenpairs used (coded and the next), relative to
        :math:`\lambda_1`
    coding : how ``k`` was chosen: ``"bound"``, ``"threshold"``, ``"clusters"`` or ``"directions"`` (given)
    eigenpairs : the :class:`SpectrumResult` the code was built from (pass it to design codes for
        smaller ``n`` without a new eigensolve)
    """

    W: np.ndarray = field(repr=False)
    n: int
    sigma: float
    beta: float
    radius: float
    eigenvalues: np.ndarray = field(repr=False)
    basis: np.ndarray = field(repr=False)
    steps: np.ndarray = field(repr=False)
    box: np.ndarray = field(repr=False)
    threshold: float
    next_eigenvalue: float
    max_residual: float
    coding: str = "bound"
    eigenpairs: SpectrumResult | None = field(default=None, repr=False)

    # -- sizes
    @property
    def d(self) -> int:
        return int(self.W.shape[0])

    @property
    def p(self) -> int:
        return int(self.W.shape[1])

    @property
    def coded(self) -> int:
        """Number ``k`` of coded directions."""
        return int(self.steps.size)

    @property
    def order(self) -> float:
        r"""Order :math:`\lambda = 1 - 1/\beta` of the Rényi divergence the risk bound controls."""
        return 1.0 - 1.0 / self.beta

    @property
    def points(self) -> int:
        r"""Number of lattice points, :math:`\prod_i(2M_i+1)` (an exact integer)."""
        return math.prod(2 * int(M) + 1 for M in self.box)

    @property
    def direction_lengths(self) -> np.ndarray:
        r"""Nats per coded direction, :math:`\log(2M_i+1)`."""
        return np.log(2.0 * self.box + 1.0)

    @property
    def length(self) -> float:
        r"""Code length :math:`L` of every lattice point (nats)."""
        return float(math.fsum(self.direction_lengths))

    # -- points
    def _check_m(self, m: Any) -> np.ndarray:
        arr = np.asarray(m)
        if arr.shape != (self.coded,):
            raise ValueError(f"m must hold one integer per coded direction, shape ({self.coded},), got {arr.shape}.")
        if not np.issubdtype(arr.dtype, np.integer):
            if (not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr))
                    or np.any(arr != np.round(arr))):
                raise TypeError("m must hold integers (lattice coordinates); use code.coordinates(v) for a vector v.")
        arr = arr.astype(np.int64)
        if np.any(np.abs(arr) > self.box):
            i = int(np.argmax(np.abs(arr) > self.box))
            raise ValueError(f"m[{i}] = {arr[i]} lies outside the box |m_i| <= M_i = {int(self.box[i])}: not a point "
                             "of the code.")
        return arr

    def point(self, m: Any) -> np.ndarray:
        r"""The lattice point :math:`v = \sum_i m_i\delta_iu_i` ``(p,)`` of integer coordinates ``m`` ``(k,)``."""
        return self.basis @ (self._check_m(m) * self.steps)

    def coordinates(self, v: Any, *, atol: float = 1e-8) -> np.ndarray:
        r"""Integer coordinates ``m`` of a lattice point ``v``; a ``ValueError`` when ``v`` is not one.

        ``atol`` is the tolerance, in units of a step, on the coordinates and on the part of ``v``
        outside the coded span (relative to the smallest step).
        """
        v = check_vector(v, self.p, "v")
        c = self.basis.T @ v
        off = float(np.linalg.norm(v - self.basis @ c))
        scale = float(self.steps.min()) if self.coded else 1.0
        if off > atol * scale:
            raise ValueError(f"v is not a lattice point: its part outside the {self.coded} coded directions has norm "
                             f"{off:.3g}.")
        m = c / self.steps
        r = np.round(m)
        if np.any(np.abs(m - r) > atol):
            raise ValueError(f"v is not a lattice point: coordinate {int(np.argmax(np.abs(m - r)))} is "
                             f"{float(m[np.argmax(np.abs(m - r))]):.6g} steps, not an integer.")
        return self._check_m(r.astype(np.int64))

    def code_length(self, m: Any) -> float:
        r"""Code length (nats) of the lattice point with coordinates ``m``: :math:`\sum_i\log(2M_i+1)`.

        Raises for coordinates outside the box (those points are not in the code: infinite length).
        """
        self._check_m(m)
        return self.length

    def kraft_sum(self) -> Fraction:
        r"""The Kraft sum :math:`\sum_v e^{-L(v)}` in exact rational arithmetic.

        The code is a product over directions, so the sum is the product of the per-direction
        sums :math:`\sum_{|m|\le M_i} e^{-\log(2M_i+1)}`; each is computed as the number of values
        times their weight, :math:`(2M_i+1)\cdot\frac{1}{2M_i+1}`, as fractions (the tests check it
        against enumeration of every point).
        """
        total = Fraction(1)
        for M in self.box:
            count = 2 * int(M) + 1
            total *= Fraction(count) * Fraction(1, count)
        return total

    # -- the split by cluster
    def groups(self) -> dict[str, np.ndarray]:
        """Indices of the coded directions in each group of :data:`CLUSTER_GROUPS` (eigenvalue order, predicted sizes).

        The first ``1``, ``d`` and ``d(d+1)/2 - 1`` eigendirections are the three clusters
        (theory §4); the coded directions beyond them are ``"remaining"``.
        """
        sizes = list(predicted_cluster_sizes(self.d)) + [max(self.coded - n_top(self.d), 0)]
        out, start = {}, 0
        for name, size in zip(CLUSTER_GROUPS, sizes):
            stop = min(start + size, self.coded)
            out[name] = np.arange(start, max(stop, start))
            start = max(stop, start)
        return out

    def length_by_cluster(self) -> dict[str, dict[str, float | int]]:
        """Nats and coded directions per group: ``{"norm": {"directions": 1, "nats": ...}, "linear": ...}``."""
        lens = self.direction_lengths
        return {name: {"directions": int(idx.size), "nats": float(math.fsum(lens[idx]))}
                for name, idx in self.groups().items()}

    # -- the bound's closed forms (for a target with ||v*|| <= R)
    def bound_with_lengths(self) -> float:
        r"""The bound of theory §16.5 with the exact lengths, for targets with :math:`\|v^*\|\le R`.

        :math:`\sum_{i\le k}[\lambda_i\delta_i^2/(8\sigma^2) + \frac\beta n\log(2M_i+1)]
        + \lambda_{k+1}R^2/(2\sigma^2)`.

        An upper bound on :math:`R_n` for every target in the model with :math:`\|v^*\|\le R`.
        """
        lam = self.eigenvalues[:self.coded]
        s2 = self.sigma**2
        return float(math.fsum(lam * self.steps**2 / (8 * s2)) + self.beta / self.n * self.length
                     + self.next_eigenvalue * self.radius**2 / (2 * s2))

    def bound_estimate(self) -> dict[str, float]:
        r"""Theory §16.6, the closed-form estimate and its three terms (nats per sample).

        ``leading`` :math:`\frac{\beta}{2n}\sum_{i\le k}[1 + \log x_i]`, ``rounding``
        :math:`\frac\beta n\sum_{i\le k}\log(1 + 2/\sqrt{x_i})`, ``uncoded``
        :math:`\lambda_{k+1}R^2/(2\sigma^2)`, with :math:`x_i = n\lambda_iR^2/(\beta\sigma^2)`;
        ``total`` is their sum, an upper bound on :math:`R_n` for :math:`\|v^*\|\le R`.
        """
        x = self._x()
        lead = self.beta / (2 * self.n) * float(math.fsum(1.0 + np.log(x)))
        rnd = self.beta / self.n * float(math.fsum(np.log1p(2.0 / np.sqrt(x))))
        unc = self.next_eigenvalue * self.radius**2 / (2 * self.sigma**2)
        return {"leading": lead, "rounding": rnd, "uncoded": unc, "total": lead + rnd + unc}

    def _x(self) -> np.ndarray:
        return self.n * self.eigenvalues[:self.coded] * self.radius**2 / (self.beta * self.sigma**2)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the code (no basis)."""
        return {"d": self.d, "p": self.p, "n": self.n, "sigma": self.sigma, "beta": self.beta, "order": self.order,
                "radius": self.radius, "coded_directions": self.coded, "considered_directions": self.eigenvalues.size,
                "threshold": None if math.isnan(self.threshold) else self.threshold,
                "next_eigenvalue": self.next_eigenvalue, "code_length_nats": self.length,
                "kraft_sum": float(self.kraft_sum()), "points_log10": self.length / math.log(10),
                "steps": self.steps.tolist(), "box": [int(M) for M in self.box],
                "length_by_cluster": self.length_by_cluster(), "bound_with_lengths": self.bound_with_lengths(),
                "bound_estimate": self.bound_estimate(), "max_residual": self.max_residual}


def _box_sizes(radius: float, steps: np.ndarray) -> np.ndarray:
    r""":math:`M_i = \lceil R/\delta_i - 1/2\rceil`, the smallest integer with :math:`(M_i + 1/2)\delta_i \ge R`."""
    M = np.ceil(radius / steps - 0.5).astype(np.int64)
    # guard against round-off in the ceiling: the cells must cover [-R, R]
    M = np.where((M + 0.5) * steps < radius, M + 1, M)
    return np.maximum(M, 0)


#: Relative residual tolerance of the design's eigenpairs: every pair the code uses is converged to it.
EIGEN_TOL = 1e-8


def _eigenpairs(W: np.ndarray, eigenpairs: SpectrumResult | None, count: int,
                progress: Progress | None) -> tuple[np.ndarray, np.ndarray, SpectrumResult]:
    """Top ``count`` eigenpairs of ``J`` (eigenvalues not divided by sigma^2), and the result they come from.

    The code needs every pair it uses converged, the ones beyond the three clusters included (their
    eigenvalues set the steps and the bound's uncoded term; a Ritz value short of convergence lies
    below the eigenvalue): :func:`relufim.spectrum` with every pair required (its matrix-free route,
    ``p > 3000``, would otherwise converge only the clusters).
    """
    if eigenpairs is not None:
        return (eigenpairs.eigenvalues[:count] * eigenpairs.sigma**2, eigenpairs.eigenvectors[:, :count],
                eigenpairs)
    res = spectrum(W, k=count, tol=EIGEN_TOL, required=count, progress=progress)
    return res.eigenvalues[:count], res.eigenvectors[:, :count], res


def _relative_residual(res: SpectrumResult, k: int) -> float:
    """Largest residual of the first ``k`` pairs relative to the top eigenvalue (0 for none)."""
    r = res.residuals[:k]
    if not r.size or np.all(np.isnan(r)) or res.eigenvalues[0] <= 0:
        return 0.0
    return float(np.nanmax(r) / res.eigenvalues[0])


def _check_given_pairs(W: np.ndarray, res: SpectrumResult) -> None:
    """The given pairs must be J's: the top one is checked with one product through ``fisher_operator``."""
    u = res.eigenvectors[:, 0]
    lam = res.eigenvalues[0] * res.sigma**2
    r = float(np.linalg.norm(fisher_operator(W) @ u - lam * u))
    if not r <= 1e-6 * max(lam, 1e-300):
        raise ValueError(f"eigenpairs are not those of this W's FIM: the top pair has residual {r:.3g} against "
                         f"fisher_operator(W) (eigenvalue {lam:.6g}); compute them with relufim.spectrum(W, k=...).")


def _bound_curve(lam: np.ndarray, n: int, sigma: float, beta: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Theory §16.5's bound :math:`B(k)` for ``k = 0..K-1`` coded directions, and the coded cost :math:`C_k`.

    :math:`C_k = \sum_{i\le k}[\frac{\beta}{2n} + \frac\beta n\log(2M_i+1)]` (with the optimal steps,
    :math:`\lambda_i\delta_i^2/(8\sigma^2) = \beta/(2n)`) and :math:`B(k) = C_k + \lambda_{k+1}R^2/(2\sigma^2)`.
    """
    pos = lam > 0
    steps = np.sqrt(4.0 * beta * sigma**2 / (n * np.where(pos, lam, 1.0)))
    per = np.where(pos, beta / (2 * n) + beta / n * np.log(2.0 * _box_sizes(radius, steps) + 1.0), np.inf)
    C = np.concatenate([[0.0], np.cumsum(per)])[:-1]  # C_0 .. C_{K-1}
    return C + np.maximum(lam, 0.0) * radius**2 / (2 * sigma**2), C


def two_stage_code(W: np.ndarray, n: int, *, radius: float, sigma: float = 1.0, beta: float = 2.0,
                   coding: Literal["bound", "threshold", "clusters"] = "bound", directions: int | None = None,
                   eigenpairs: SpectrumResult | None = None, max_directions: int = 2000,
                   progress: Progress | None = None) -> TwoStageCode:
    r"""Design the two-stage code of theory §16.5–16.6 for ``n`` samples, before seeing the data.

    Steps :math:`\delta_i^2 = 4\beta\sigma^2/(n\lambda_i)` minimize each direction's cost
    :math:`\lambda_i\delta^2/(8\sigma^2) + \frac\beta n\log(2R/\delta)`; box sizes
    :math:`M_i = \lceil R/\delta_i - 1/2\rceil` make the cells cover :math:`[-R, R]`. The coded
    directions are a leading block :math:`1..k` of eigendirections, ``k`` chosen by ``coding``:

    * ``"bound"`` (default): the ``k`` that minimizes the code's own guarantee, the bound of
      theory §16.5, :math:`B(k) = \sum_{i\le k}[\frac{\beta}{2n} + \frac\beta n\log(2M_i+1)]
      + \lambda_{k+1}R^2/(2\sigma^2)`, over all ``k`` (the smallest such ``k`` on ties);
    * ``"threshold"``: every direction whose worst-case cost uncoded, :math:`\lambda_iR^2/(2\sigma^2)`,
      exceeds its cost coded, i.e. :math:`x_i = n\lambda_iR^2/(\beta\sigma^2) > 1 + 2\log 3`;
    * ``"clusters"``: the ``d(d+3)/2`` directions of the three clusters (theory §16.7), whatever ``n``.

    The threshold's ``k`` bounds the minimizer of ``B`` from above (theory §16.6), so both need the
    same eigenpairs: those above the threshold and one more. The top ``d(d+3)/2 + 16`` are
    computed and the count doubles until the threshold is crossed, or (``"bound"``) until the
    coded cost of the pairs computed exceeds the best ``B`` found, so that no larger ``k`` can
    do better; at most ``max_directions + 1`` pairs.

    Parameters
    ----------
    W : array (d, p), d < p
        Hidden weights.
    n : int
        Number of samples the code is designed for.
    radius : float
        :math:`R > 0`, the radius the targets are assumed to lie in, :math:`\|v^*\|\le R`.
    sigma : float
        Noise standard deviation (known).
    beta : float
        The MDL multiplier :math:`\beta > 1`; the risk bound is for the Rényi divergence of order
        :math:`1 - 1/\beta`.
    coding : {"bound", "threshold", "clusters"}
        How many directions to code (above).
    directions : int, optional
        Code exactly the top ``directions`` eigendirections instead (``coding`` is then unused).
    eigenpairs : SpectrumResult, optional
        Precomputed eigenpairs of the exact FIM of ``W`` (``relufim.spectrum(W, k=...)``), with
        vectors; they must reach below the threshold (or hold ``directions + 1`` pairs).
    max_directions : int
        Most eigendirections that may be coded.
    progress : callable(converged, wanted), optional
        Passed to the eigensolver.

    Returns
    -------
    TwoStageCode

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(3, 60, seed=0)
    >>> code = two_stage_code(W, n=5000, radius=2.0)
    >>> code.coded, code.kraft_sum(), round(code.bound_with_lengths(), 5)
    (9, Fraction(1, 1), 0.01636)
    >>> two_stage_code(W, n=5000, radius=2.0, coding="threshold").coded
    18
    """
    W = check_weights(W)
    d, p = W.shape
    n = check_positive_int(n, "n")
    radius = check_positive_float(radius, "radius")
    sigma = check_sigma(sigma)
    beta = _check_beta(beta)
    check_choice(coding, "coding", ("bound", "threshold", "clusters"))
    max_directions = check_positive_int(max_directions, "max_directions")
    if directions is not None:
        directions = check_positive_int(directions, "directions")
        if directions > p:
            raise ValueError(f"directions = {directions} exceeds the number of eigendirections p = {p}.")
    if eigenpairs is not None:
        if not isinstance(eigenpairs, SpectrumResult):
            raise TypeError(f"eigenpairs must be a SpectrumResult (relufim.spectrum(W, k=...)), got "
                            f"{type(eigenpairs).__name__}.")
        if eigenpairs.p != p or eigenpairs.eigenvectors is None or eigenpairs.fisher not in ("exact", "matrix"):
            raise ValueError(f"eigenpairs must be those of the exact FIM of this W (p = {p}) with eigenvectors: "
                             f"relufim.spectrum(W, k=...), got fisher={eigenpairs.fisher!r}, p = {eigenpairs.p}, "
                             f"vectors {'present' if eigenpairs.eigenvectors is not None else 'absent'}.")
        _check_given_pairs(W, eigenpairs)
    threshold = CODING_THRESHOLD * beta * sigma**2 / (n * radius**2)
    given = directions is not None
    if coding == "clusters" and not given:
        directions = min(n_top(d), p)

    if directions is not None:
        want = min(directions + 1, p)
        lam, U, res = _eigenpairs(W, eigenpairs, want, progress)
        if lam.size < want:
            raise ValueError(f"directions = {directions} needs {want} eigenpairs, but eigenpairs holds {lam.size}.")
        if np.any(lam[:directions] <= 0):
            raise ValueError(f"directions = {directions} reaches eigenvalues <= 0, which cannot be coded.")
        k = directions
        threshold = float("nan")
    else:
        count = min(p, n_top(d) + 16, max_directions + 1)
        if eigenpairs is not None:  # all the pairs given
            count = min(eigenpairs.eigenvalues.size, max_directions + 1)
        while True:
            lam, U, res = _eigenpairs(W, eigenpairs, count, progress)
            k_thr = int(np.count_nonzero(lam > threshold))
            crossed = k_thr < lam.size or lam.size == p
            top = k_thr if crossed else lam.size - 1  # largest k whose lambda_{k+1} is known
            B, C = _bound_curve(lam, n, sigma, beta, radius)
            if coding == "bound":
                k = int(np.argmin(B[:top + 1]))
                done = crossed or C[-1] >= B[k]  # every larger k costs more than B[k] in its coded part alone
            else:
                k = top
                done = crossed
            if done:
                break
            if lam.size >= max_directions + 1:
                warnings.warn(f"coding={coding!r} would code more than max_directions = {max_directions} directions "
                              f"(lambda_{lam.size} = {lam[-1]:.3g} is above the threshold {threshold:.3g}); the top "
                              f"{k} are coded.", UserWarning, stacklevel=2)
                break
            if eigenpairs is not None:
                raise ValueError(f"the {lam.size} eigenpairs given all lie above the coding threshold {threshold:.3g}: "
                                 "the code needs one more beyond the coded block; pass more eigenpairs (a larger k).")
            count = min(p, 2 * count, max_directions + 1)
    lam_k = lam[:k]
    steps = np.sqrt(4.0 * beta * sigma**2 / (n * lam_k)) if k else np.zeros(0)
    box = _box_sizes(radius, steps)
    nxt = float(max(lam[k], 0.0)) if k < lam.size else 0.0
    rel = _relative_residual(res, min(k + 1, lam.size))
    if rel > 1e-6:
        warnings.warn(f"the eigenpairs the code uses have relative residuals up to {rel:.1e} (of lambda_1): the steps "
                      "and the bound's uncoded term are that inexact; pass better converged eigenpairs.",
                      UserWarning, stacklevel=2)
    return TwoStageCode(W=W, n=n, sigma=sigma, beta=beta, radius=radius, eigenvalues=lam,
                        basis=np.ascontiguousarray(U[:, :k]), steps=steps, box=box, threshold=threshold,
                        next_eigenvalue=nxt, max_residual=rel,
                        coding="directions" if given else coding, eigenpairs=res)


# ----------------------------------------------------------------------------- closest vectors in a box

class _BudgetExceeded(Exception):
    pass


def _babai(R: np.ndarray, t: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Babai's nearest plane: sequential rounding from the last coordinate, clipped to the box."""
    k = R.shape[0]
    m = np.zeros(k, dtype=np.int64)
    for i in range(k - 1, -1, -1):
        c = (t[i] - R[i, i + 1:] @ m[i + 1:]) / R[i, i]
        m[i] = min(max(int(np.rint(c)), -int(M[i])), int(M[i]))
    return m


def _local_search(G: np.ndarray, h: np.ndarray, M: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, int]:
    r"""Descend :math:`f(m) = m^\top Gm - 2h^\top m` over the box by exact coordinate moves, then pair moves ±1.

    Returns the local minimum and the number of moves made.
    """
    m = m.copy()
    g = G @ m - h
    diag = np.diag(G).copy()
    scale = max(float(np.abs(h).max(initial=0.0)), float(diag.max(initial=0.0)), 1e-300)
    tol = 1e-12 * scale
    moves = 0
    k = m.size
    iu = np.triu_indices(k, 1)
    while True:
        improved = False
        for j in range(k):  # the best integer step along coordinate j
            if diag[j] <= 0:
                continue
            s = int(np.rint(-g[j] / diag[j]))
            s = min(max(s, -int(M[j]) - int(m[j])), int(M[j]) - int(m[j]))
            if s and 2 * s * g[j] + s * s * diag[j] < -tol:
                m[j] += s
                g += s * G[:, j]
                moves += 1
                improved = True
        if improved or k < 2:
            if improved:
                continue
            break
        best, move = -tol, None
        for si in (-1, 1):
            for sj in (-1, 1):
                D = (2 * si * g[:, None] + 2 * sj * g[None, :] + diag[:, None] + diag[None, :] + 2 * si * sj * G)
                ok_i = np.abs(m + si) <= M
                ok_j = np.abs(m + sj) <= M
                vals = np.where(ok_i[:, None] & ok_j[None, :], D, np.inf)[iu]
                a = int(np.argmin(vals))
                if vals[a] < best:
                    best, move = vals[a], (iu[0][a], iu[1][a], si, sj)
        if move is None:
            break
        i, j, si, sj = move
        m[i] += si
        m[j] += sj
        g += si * G[:, i] + sj * G[:, j]
        moves += 1
    return m, moves


@dataclass(frozen=True)
class _CVP:
    r"""A closest-vector problem :math:`\min_{|m_i|\le M_i} m^\top Gm - 2h^\top m + c`, in the search order.

    The coordinates are permuted (``perm``: search position -> original coordinate) so that the
    clearest ones come last, where the enumeration starts (:func:`_search_order`). ``R``, ``t``:
    :math:`G = R^\top R`, :math:`h = R^\top t` (``None`` when ``G`` is singular); the objective is
    then :math:`\|t - Rm\|^2 + \text{const}`.
    """

    G: np.ndarray
    h: np.ndarray
    M: np.ndarray
    perm: np.ndarray
    const: float
    R: np.ndarray | None
    t: np.ndarray | None


def _search_order(G: np.ndarray, h: np.ndarray, M: np.ndarray) -> np.ndarray:
    r"""Coordinates sorted by how clearly the unconstrained optimum ``z`` rounds (most ambiguous first).

    The clarity of coordinate ``j`` is the cost gap between its two best box values when the
    others sit at ``z``: :math:`G_{jj}(1 - 2f_j)` for a fractional distance :math:`f_j\le 1/2` to the
    nearest integer inside the box, :math:`G_{jj}(2e_j + 1)` at a distance :math:`e_j` beyond its edge.
    Enumeration starts from the last position, so clear coordinates branch near the root and
    ambiguous ones near the leaves, where little budget is left (in tests, 2-20x fewer nodes).
    """
    z = np.linalg.lstsq(G, h, rcond=None)[0]
    nearest = np.clip(np.rint(z), -M, M)
    off = np.abs(z - nearest)
    inside = np.abs(z) <= M
    gap = np.where(inside, 1.0 - 2.0 * np.minimum(off, 0.5), 2.0 * off + 1.0) * np.diag(G)
    return np.argsort(gap, kind="stable")


def _cvp(G: np.ndarray, h: np.ndarray, const: float, M: np.ndarray, Z: np.ndarray | None = None,
         y: np.ndarray | None = None) -> _CVP:
    """Order the coordinates and factor: by QR of the design ``Z`` when given (better conditioned), else Cholesky."""
    k = M.size
    if k == 0:
        return _CVP(G=G, h=h, M=M, perm=np.zeros(0, np.int64), const=const, R=np.zeros((0, 0)), t=np.zeros(0))
    perm = _search_order(G, h, M)
    Gp, hp, Mp = G[np.ix_(perm, perm)], h[perm], M[perm]
    R = t = None
    if Z is not None:
        if Z.shape[0] >= k:
            Q, R = np.linalg.qr(Z[:, perm])
            sgn = np.where(np.diag(R) < 0, -1.0, 1.0)
            R = R * sgn[:, None]
            t = (Q.T @ y) * sgn
    else:
        try:
            L = np.linalg.cholesky(Gp)
        except np.linalg.LinAlgError:
            L = None
        if L is not None:
            R, t = L.T, np.linalg.solve(L, hp)
    if R is not None:
        dg = np.abs(np.diag(R))
        if dg.min() > 1e-10 * dg.max():
            return _CVP(G=Gp, h=hp, M=Mp, perm=perm, const=const - float(t @ t), R=R, t=t)
    return _CVP(G=Gp, h=hp, M=Mp, perm=perm, const=const, R=None, t=None)


def _cvp_from_design(Z: np.ndarray, y: np.ndarray, M: np.ndarray) -> _CVP:
    r""":math:`\|y - Zm\|^2` over the box ``M``."""
    return _cvp(Z.T @ Z, Z.T @ y, float(y @ y), M, Z, y)


def _objective(cvp: _CVP, m: np.ndarray) -> float:
    """The CVP's objective at ``m`` (search order): the residual sum of squares, or the J-distance²."""
    if cvp.R is not None:
        r = cvp.t - cvp.R @ m
        return float(r @ r) + cvp.const
    return float(m @ (cvp.G @ m) - 2.0 * cvp.h @ m) + cvp.const


class _Enumeration:
    r"""Schnorr–Euchner enumeration of :math:`\min\|t - Rm\|^2` over the box, with a separable lower bound.

    Depth-first from the last coordinate. At level ``i``, given :math:`m_{>i}`, the conditional
    optimum of the coordinates :math:`\le i` is ``ctr[i]``; its last entry is the centre of the
    zig-zag over :math:`m_i` (candidates in order of distance, clipped to the box), and fixing
    :math:`m_i = v` moves the rest by :math:`-P_i(v - c_i)`, :math:`P_i = R_{<i,<i}^{-1}R_{<i,i}`.
    A level ends when its next candidate's partial distance reaches the best complete one. A
    candidate is also cut when its partial distance plus a lower bound on the levels below does:
    with :math:`G_{<i} = R_{<i,<i}^\top R_{<i,<i}\succeq\mu_i\,\mathrm{diag}(G_{<i})` (:math:`\mu_i`
    the least eigenvalue of the diagonally scaled block), the remaining cost is at least
    :math:`\mu_i\sum_{j<i}G_{jj}\,\mathrm{dist}(c_j, \mathbb Z\cap[-M_j, M_j])^2`.
    """

    def __init__(self, R: np.ndarray, t: np.ndarray, M: np.ndarray):
        k = R.shape[0]
        self.k, self.R, self.t, self.M = k, R, t, M
        G = R.T @ R
        self.Gd = np.diag(G).copy()
        self.P = [np.zeros(0)] + [sla.solve_triangular(R[:i, :i], R[:i, i]) for i in range(1, k)]
        # mu_i for every block size i: the least eigenvalue of a leading block never increases with its size,
        # so the value at any computed size j >= i is valid for i; about 16 sizes are computed
        sizes = sorted({int(j) for j in np.unique(np.ceil(np.geomspace(1, k, min(k, 16))))} | {k})
        self.mu = [0.0] * (k + 1)
        for lo_size, j in zip([0, *sizes[:-1]], sizes):
            s = 1.0 / np.sqrt(self.Gd[:j])
            mu_j = max(float(np.linalg.eigvalsh(G[:j, :j] * s[:, None] * s[None, :])[0]), 0.0) * (1 - 1e-9)
            for i in range(lo_size + 1, j + 1):
                self.mu[i] = mu_j
        self.z = sla.solve_triangular(R, t)
        self.Mf = M.astype(np.float64)

    def lower_bound(self, i: int, centres: np.ndarray) -> float:
        """Lower bound on the cost of the coordinates below level ``i`` given their conditional optimum."""
        r = centres - np.clip(np.rint(centres), -self.Mf[:i], self.Mf[:i])
        return self.mu[i] * float(self.Gd[:i] @ (r * r))

    def search(self, m0: np.ndarray, rho0: float, budget: int) -> tuple[np.ndarray, float, int]:
        """The exact minimizer (``m0`` when nothing is strictly closer than ``rho0``), its value, nodes visited."""
        k, R, P = self.k, self.R, self.P
        diag = [float(x) for x in np.diag(R)]
        Mi = [int(x) for x in self.M]
        best, best_m = float(rho0), m0.copy()
        m = np.zeros(k, dtype=np.int64)
        ctr: list[np.ndarray] = [np.zeros(0)] * k
        ctr[k - 1] = self.z
        c = [0.0] * k
        lo = [0] * k
        hi = [0] * k
        dist = [0.0] * (k + 1)
        nodes = 0

        def enter(i: int) -> None:
            c[i] = ci = float(ctr[i][i])
            f = math.floor(ci)
            lo[i] = min(f, Mi[i])
            hi[i] = max(f + 1, -Mi[i])

        i = k - 1
        enter(i)
        while True:
            ci, Mv = c[i], Mi[i]
            dl = ci - lo[i] if lo[i] >= -Mv else math.inf
            dh = hi[i] - ci if hi[i] <= Mv else math.inf
            take_lo = dl <= dh
            dv = dl if take_lo else dh
            cost = dist[i + 1] + (diag[i] * dv) ** 2 if dv != math.inf else math.inf
            if cost >= best:  # every further candidate of this level is farther: back up
                i += 1
                if i == k:
                    break
                continue
            if take_lo:
                val = lo[i]
                lo[i] -= 1
            else:
                val = hi[i]
                hi[i] += 1
            nodes += 1
            if nodes > budget:
                raise _BudgetExceeded(nodes)
            m[i] = val
            if i == 0:
                best, best_m = cost, m.copy()
                continue
            child = ctr[i][:i] - P[i] * (val - ci)
            if cost + self.lower_bound(i, child) >= best:
                continue
            dist[i] = cost
            ctr[i - 1] = child
            i -= 1
            enter(i)
        return best_m, best, nodes

    def estimate(self, rho: float, probes: int, seed: int = 0) -> float:
        r"""Knuth's (1975) estimate of the number of nodes :meth:`search` visits from radius² ``rho``.

        Each probe walks from the root to a leaf, at each level counting the candidates within the
        radius (the nodes visited there) and those that pass the lower bound (expanded), and
        following one of the latter at random; the sum over levels of the products of the expanded
        counts above times the nodes counted is an unbiased estimate of the tree's size for a
        fixed radius (the search only shrinks it).
        """
        rng = np.random.default_rng(seed)
        k, R, P = self.k, self.R, self.P
        diag = np.abs(np.diag(R))
        total = 0.0
        for _ in range(probes):
            centres, dist, weight, size = self.z, 0.0, 1.0, 0.0
            for i in range(k - 1, -1, -1):
                ci = float(centres[i])
                h = math.sqrt(max(rho - dist, 0.0)) / diag[i]
                lo = max(math.ceil(ci - h), -int(self.M[i]))
                hi = min(math.floor(ci + h), int(self.M[i]))
                vals = [v for v in range(lo, hi + 1) if dist + (diag[i] * (v - ci)) ** 2 < rho]
                size += weight * len(vals)
                if i == 0 or not vals:
                    break
                ok = []
                for v in vals:
                    child = centres[:i] - P[i] * (v - ci)
                    cost = dist + (diag[i] * (v - ci)) ** 2
                    if cost + self.lower_bound(i, child) < rho:
                        ok.append((v, child, cost))
                if not ok:
                    break
                weight *= len(ok)
                _, centres, dist = ok[int(rng.integers(len(ok)))]
            total += size
        return total / probes


@dataclass(frozen=True)
class _Solution:
    m: np.ndarray
    objective: float
    method: str
    nodes: int
    estimated_nodes: float | None
    fast_objective: float


#: Probes of Knuth's estimate of the enumeration size, made when a search outgrows ``_TRIAL_NODES``.
_PROBES = 64
_TRIAL_NODES = 2000


def _solve_cvp(cvp: _CVP, method: str, budget: int) -> _Solution:
    """Fast (Babai + local search) always; then the exact enumeration if asked and within the budget.

    Solutions are returned in the original coordinate order.
    """
    M, k = cvp.M, cvp.M.size
    inv = np.argsort(cvp.perm)
    if k == 0:
        return _Solution(np.zeros(0, np.int64), cvp.const, "exact", 0, 0.0, cvp.const)
    if cvp.R is not None:
        start = _babai(cvp.R, cvp.t, M)
    else:
        z = np.linalg.lstsq(cvp.G, cvp.h, rcond=None)[0]
        start = np.clip(np.rint(z), -M, M).astype(np.int64)
    m_fast, _ = _local_search(cvp.G, cvp.h, M, start)
    f_fast = _objective(cvp, m_fast)
    if method == "fast":
        return _Solution(m_fast[inv], f_fast, "fast", 0, None, f_fast)
    if cvp.R is None:
        if method == "exact":
            raise ValueError(f"the exact MDL estimate needs the {k} coded coordinates to be determined by the data, "
                             "but "
                             "the design matrix X B has rank below k (fewer samples than coded directions, or "
                             "collinear features); use method='fast' (Babai rounding + local search).")
        return _Solution(m_fast[inv], f_fast, "fast", 0, None, f_fast)
    r = cvp.t - cvp.R @ m_fast
    rho = float(r @ r)
    enum = _Enumeration(cvp.R, cvp.t, M)
    est = None
    try:  # most searches are small: try a few thousand nodes before estimating the whole tree
        m_ex, _, nodes = enum.search(m_fast, rho, min(budget, _TRIAL_NODES))
    except _BudgetExceeded:
        est = enum.estimate(rho, _PROBES)
        if est > budget:
            if method == "exact":
                raise ValueError(f"the exact MDL estimate would enumerate about {est:.3g} lattice nodes (> node_budget "
                                 f"= {budget}; k = {k} coded directions); use method='fast' (Babai rounding + local "
                                 "search, gap to the optimum unknown) or method='auto', or raise node_budget."
                                 ) from None
            return _Solution(m_fast[inv], f_fast, "fast", 0, est, f_fast)
        try:
            m_ex, _, nodes = enum.search(m_fast, rho, budget)
        except _BudgetExceeded as exc:
            if method == "exact":
                raise ValueError(f"the exact MDL estimate exceeded node_budget = {budget} lattice nodes (estimated "
                                 f"{est:.3g} up front; k = {k} coded directions); use method='fast' (Babai rounding + "
                                 "local search) or method='auto', or raise node_budget.") from None
            return _Solution(m_fast[inv], f_fast, "fast", int(exc.args[0]), est, f_fast)
    return _Solution(m_ex[inv], _objective(cvp, m_ex), "exact", nodes, est, f_fast)


# ----------------------------------------------------------------------------- the estimator

def _chunk_rows(p: int) -> int:
    return int(max(1, min(4096, _FEATURE_BYTES // (8 * p))))


def _feature_products(W: np.ndarray, x: np.ndarray, V: np.ndarray) -> np.ndarray:
    r""":math:`\mathrm{ReLU}(xW)\,V` ``(n, b)`` in row chunks, never holding the ``n x p`` features."""
    rows = _chunk_rows(W.shape[1])
    out = np.empty((x.shape[0], V.shape[1]))
    for s in range(0, x.shape[0], rows):
        F = x[s:s + rows] @ W
        np.maximum(F, 0.0, out=F)
        out[s:s + rows] = F @ V
    return out


@dataclass(frozen=True)
class MDLEstimate:
    r"""The MDL estimate :math:`\hat v = \sum_i\hat m_i\delta_iu_i` on one data set (theory §16.9).

    Attributes
    ----------
    v : (p,) the estimate
    m : (k,) its integer lattice coordinates
    residual_sum_squares : :math:`\|y - \mathbf X\hat v\|^2`
    description_length : :math:`-\log p_{\hat v}(y\mid x) + \beta L` in nats, the minimized criterion
    method : ``"exact"`` (sphere decoding proved it optimal) or ``"fast"`` (Babai + local search)
    nodes : lattice nodes enumerated by the exact search (0 for fast)
    estimated_nodes : Knuth's estimate of the enumeration, made when the search outgrew its first
        2000 nodes (``None`` when it finished within them, or for ``"fast"``)
    gap : description length of the fast solution minus the exact one, in nats, when both ran
        (0 when the fast solution was optimal); ``None`` otherwise
    """

    v: np.ndarray = field(repr=False)
    m: np.ndarray = field(repr=False)
    residual_sum_squares: float
    description_length: float
    method: str
    nodes: int
    estimated_nodes: float | None
    gap: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"m": self.m.tolist(), "residual_sum_squares": self.residual_sum_squares,
                "description_length": self.description_length, "method": self.method, "nodes": self.nodes,
                "estimated_nodes": self.estimated_nodes, "gap": self.gap}


def _estimate_from(code: TwoStageCode, cvp: _CVP, method: str, budget: int, n_data: int) -> MDLEstimate:
    sol = _solve_cvp(cvp, method, budget)
    s2 = code.sigma**2
    rss = max(sol.objective, 0.0)
    nll = 0.5 * n_data * math.log(2 * math.pi * s2) + rss / (2 * s2)
    gap = (sol.fast_objective - sol.objective) / (2 * s2) if sol.method == "exact" else None
    return MDLEstimate(v=code.basis @ (sol.m * code.steps), m=sol.m, residual_sum_squares=rss,
                       description_length=nll + code.beta * code.length, method=sol.method, nodes=sol.nodes,
                       estimated_nodes=sol.estimated_nodes, gap=None if gap is None else max(gap, 0.0))


def mdl_estimate(code: TwoStageCode, x: np.ndarray, y: np.ndarray, *,
                 method: Literal["exact", "fast", "auto"] = "exact",
                 node_budget: int = NODE_BUDGET) -> MDLEstimate:
    r"""The MDL estimator :math:`\arg\min_v\{-\log p_v(y\mid x) + \beta L(v)\}` over the lattice (theory §16.9).

    The code is uniform (``L`` the same for every point), so :math:`\hat v = B\hat m` with
    :math:`B = [\delta_1u_1,\dots,\delta_ku_k]` and :math:`\hat m` the integer point of the box
    :math:`|m_i|\le M_i` closest to ``y`` in :math:`\|y - \mathbf XBm\|^2`: a closest-vector problem
    in the metric :math:`\mathbf X^\top\mathbf X`. With :math:`\mathbf XB = QR`, it is
    :math:`\min\|Q^\top y - Rm\|^2`.

    Parameters
    ----------
    code : TwoStageCode
        Designed for ``n = len(y)`` samples before the data were seen.
    x : array (n, d)
        Inputs.
    y : array (n,)
        Outputs.
    method : {"exact", "fast", "auto"}
        ``"fast"``: Babai rounding (nearest plane) then local search (exact coordinate moves and
        ±1 pair moves until none improves). ``"exact"``: the same, then Schnorr–Euchner sphere
        decoding from the fast solution's radius, which proves optimality. A search that outgrows
        its first 2000 nodes estimates the size of its tree first (Knuth's estimator) and is
        refused when that exceeds ``node_budget`` (or the design does not determine the
        coordinates), with the fast one offered. ``"auto"``: exact when within the budget, else fast.
    node_budget : int
        Most lattice nodes the exact search may visit (estimated before a long search, enforced during it).

    Returns
    -------
    MDLEstimate
        With ``gap``, the fast solution's excess description length, when the exact search ran.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 20, seed=0)
    >>> code = two_stage_code(W, n=200, radius=2.0)
    >>> rng = np.random.default_rng(1)
    >>> x = rng.standard_normal((200, 2))
    >>> y = rf.hidden_features(W, x) @ code.point(np.ones(code.coded, int)) + rng.standard_normal(200)
    >>> est = mdl_estimate(code, x, y)
    >>> est.method, est.gap
    ('exact', 0.0)
    """
    code = _check_code(code)
    check_choice(method, "method", ("exact", "fast", "auto"))
    node_budget = _check_budget(node_budget)
    x = check_inputs(x, code.d)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape (n,) = ({x.shape[0]},) to match x of shape {x.shape}, got {y.shape}.")
    y = check_vector(y, x.shape[0], "y", what="x with {p} rows")
    if x.shape[0] != code.n:
        raise ValueError(f"the code was designed for n = {code.n} samples but the data hold {x.shape[0]}: the steps "
                         f"depend on n; design it for these data with two_stage_code(W, n={x.shape[0]}, ...).")
    Z = _feature_products(code.W, x, code.basis * code.steps)
    return _estimate_from(code, _cvp_from_design(Z, y, code.box), method, node_budget, x.shape[0])


# ----------------------------------------------------------------------------- divergences

def kl_divergence(W: np.ndarray, v: np.ndarray, v_star: np.ndarray, sigma: float = 1.0) -> float:
    r"""Kullback–Leibler divergence :math:`D(p^*\Vert p_v) = (v - v^*)^\top J(v - v^*)/(2\sigma^2)` (theory §16.3).

    Averaged over Gaussian inputs, for the target in the model :math:`f^* = f_{v^*}`: half the
    excess risk in units of :math:`\sigma^2`. Exact, through :func:`relufim.fisher_operator`.

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 10, seed=0)
    >>> bool(np.isclose(kl_divergence(W, W[0], np.zeros(10)), W[0] @ rf.fisher_matrix(W) @ W[0] / 2))
    True
    """
    W = check_weights(W)
    p = W.shape[1]
    e = check_vector(v, p, "v") - check_vector(v_star, p, "v_star")
    sigma = check_sigma(sigma)
    return float(e @ (fisher_operator(W) @ e)) / (2 * sigma**2)


@dataclass(frozen=True)
class DivergenceEstimate:
    """A divergence estimated by Monte Carlo: its value, standard error, order and number of samples."""

    value: float
    stderr: float
    order: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _renyi_from_deltas(delta: np.ndarray, d: int | None, order: float, sigma: float) -> tuple[float, float]:
    r"""Rényi divergence from :math:`\Delta` on sphere points (``d`` given: radial part integrated) or at inputs.

    With ``d``: the average of :math:`(1 + \lambda(1-\lambda)\Delta(u)^2/\sigma^2)^{-d/2}`; without:
    of :math:`\exp(-\lambda(1-\lambda)\Delta(x)^2/(2\sigma^2))`. Value :math:`-\beta\log` of the mean,
    standard error by the delta method.
    """
    a = order * (1.0 - order) / sigma**2
    if d is None:
        vals = np.exp(-0.5 * a * delta**2)
    else:
        vals = np.exp(-0.5 * d * np.log1p(a * delta**2))
    mean = float(vals.mean())
    beta = 1.0 / (1.0 - order)
    se = float(vals.std(ddof=1) / math.sqrt(vals.size)) if vals.size > 1 else float("nan")
    return -beta * math.log(mean), beta * se / mean


def _sphere_deltas(W: np.ndarray, E: np.ndarray, samples: int, seed: Any) -> np.ndarray:
    r""":math:`\Delta(u) = \mathrm{ReLU}(uW)\,e` at ``samples`` uniform points ``u`` of the sphere, per column ``e``."""
    out = []
    for chunk in gaussian_input_chunks(samples, W.shape[0], seed):
        u = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
        out.append(_feature_products(W, u, E))
    return np.vstack(out)


def renyi_divergence(W: np.ndarray, v: np.ndarray, v_star: np.ndarray, *, beta: float = 2.0, sigma: float = 1.0,
                     samples: int = 4096, seed: int | None = None, x: np.ndarray | None = None) -> DivergenceEstimate:
    r"""Rényi divergence :math:`d_\lambda(p^*, p_v)`, :math:`\lambda = 1 - 1/\beta` (random design, theory §16.3).

    For two Gaussians of equal variance, :math:`\int p^{*\lambda}p_v^{1-\lambda}dy =
    \exp(-\lambda(1-\lambda)\Delta(x)^2/(2\sigma^2))` with :math:`\Delta = f_{v^*} - f_v`, so

    .. math::  d_\lambda = -\frac1{1-\lambda}\log E_x\exp\Big(-\frac{\lambda(1-\lambda)\Delta(x)^2}{2\sigma^2}\Big)
               = -\beta\log E_u\Big(1 + \frac{\lambda(1-\lambda)\Delta(u)^2}{\sigma^2}\Big)^{-d/2}.

    The second form integrates the radius exactly: ``Δ`` is positively homogeneous,
    :math:`x = ru` with :math:`r^2\sim\chi^2_d` independent of the uniform direction ``u``, and
    :math:`E e^{-sr^2} = (1+2s)^{-d/2}`. The expectation over ``u`` is a Monte Carlo average over
    ``samples`` directions (Gaussian draws normalized), with a delta-method standard error.

    Parameters
    ----------
    W : array (d, p)
    v, v_star : arrays (p,)
        The model's and the target's output weights.
    beta : float
        :math:`\beta > 1`; the order is :math:`1 - 1/\beta`.
    sigma : float
    samples : int
        Monte Carlo directions.
    seed : int, optional
    x : array (m, d), optional
        Average over these inputs instead (fixed design): :math:`-\beta\log\frac1m\sum_t
        \exp(-\lambda(1-\lambda)\Delta(x_t)^2/(2\sigma^2))`; ``samples`` and ``seed`` are then unused.

    Returns
    -------
    DivergenceEstimate

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 10, seed=0)
    >>> r = renyi_divergence(W, 0.1 * W[0], np.zeros(10), samples=20000, seed=0)
    >>> bool(0 < r.value <= 0.5 * kl_divergence(W, 0.1 * W[0], np.zeros(10)))
    True
    """
    W = check_weights(W)
    d, p = W.shape
    e = check_vector(v_star, p, "v_star") - check_vector(v, p, "v")
    beta = _check_beta(beta)
    sigma = check_sigma(sigma)
    order = 1.0 - 1.0 / beta
    if x is not None:
        x = check_inputs(x, d)
        val, se = _renyi_from_deltas(_feature_products(W, x, e[:, None])[:, 0], None, order, sigma)
        return DivergenceEstimate(value=val, stderr=se, order=order, samples=x.shape[0])
    samples = check_positive_int(samples, "samples", minimum=2)
    delta = _sphere_deltas(W, e[:, None], samples, seed)[:, 0]
    val, se = _renyi_from_deltas(delta, d, order, sigma)
    return DivergenceEstimate(value=val, stderr=se, order=order, samples=samples)


# ----------------------------------------------------------------------------- the index of resolvability

@dataclass(frozen=True)
class Resolvability:
    r"""The index of resolvability :math:`R_n = \min_v\{D(p^*\Vert p_v) + \beta L(v)/n\}` of a code for one target.

    Attributes
    ----------
    value : :math:`R_n`, exact over the lattice (theory §16.8)
    code_term : :math:`\beta L/n`
    approximation_term : :math:`\min_v D(p^*\Vert p_v)`, split into ``coded_term`` (the coded
        coordinates' rounding, including ``clipped_term``, the part of coordinates beyond the box)
        and ``uncoded_term`` :math:`\sum_{i>k}\lambda_ic_i^2/(2\sigma^2)`
    m : (k,) the minimizing lattice point
    bound_with_lengths, estimate : the upper estimates of theory §16.5 and §16.6 (valid for
        :math:`\|v^*\|\le R`); ``estimate_terms`` splits the closed form
    target_norm, within_radius : :math:`\|v^*\|` and whether it is at most ``R``
    leading : :math:`\beta\,d(d+3)/4\cdot\log n/n`, the leading term at moderate ``n`` (theory §16.7)
    """

    value: float
    code_term: float
    approximation_term: float
    coded_term: float
    clipped_term: float
    uncoded_term: float
    m: np.ndarray = field(repr=False)
    bound_with_lengths: float
    estimate: float
    estimate_terms: dict[str, float]
    target_norm: float
    within_radius: bool
    leading: float
    # the J-metric quantities the simulation reuses (Gram B^T J B, B^T J v*, v*^T J v*)
    gram: np.ndarray = field(repr=False)
    target_products: np.ndarray = field(repr=False)
    target_energy: float = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "code_term": self.code_term, "approximation_term": self.approximation_term,
                "coded_term": self.coded_term, "clipped_term": self.clipped_term, "uncoded_term": self.uncoded_term,
                "bound_with_lengths": self.bound_with_lengths, "estimate": self.estimate,
                "estimate_terms": dict(self.estimate_terms), "target_norm": self.target_norm,
                "within_radius": self.within_radius, "leading": self.leading}


def leading_term(d: int, n: int, beta: float = 2.0) -> float:
    r"""The leading term :math:`\beta\,\frac{d(d+3)}{4}\,\frac{\log n}{n}` of :math:`R_n` (theory §16.7).

    Examples
    --------
    >>> round(leading_term(10, 10_000), 6)
    0.059867
    """
    d = check_positive_int(d, "d")
    n = check_positive_int(n, "n")
    beta = _check_beta(beta)
    return beta * n_top(d) / 2 * math.log(n) / n


def index_of_resolvability(code: TwoStageCode, v_star: np.ndarray, *, warn: bool = True) -> Resolvability:
    r"""The exact index of resolvability of ``code`` for the in-model target ``v_star`` (theory §16.8).

    Because ``L`` is the same for every lattice point,
    :math:`R_n = \beta L/n + \min_{|m_i|\le M_i}(Bm - v^*)^\top J(Bm - v^*)/(2\sigma^2)`: a
    closest-vector problem in the metric ``J``, solved exactly by the sphere decoder of
    :func:`mdl_estimate` on the Gram matrix :math:`B^\top JB` (formed with
    :func:`relufim.fisher_operator`, with :math:`Jv^*`). In the eigenbasis it separates, each
    coordinate rounded to the nearest box value; the decoder does not rely on that.

    A target with :math:`\|v^*\| > R` gets a :class:`RadiusWarning` that says how it enters
    the bound: the theorem and the exact :math:`R_n` still hold, but coordinates beyond the box
    are clipped (``clipped_term``) and the uncoded term is bounded by
    :math:`\lambda_{k+1}\|v^*\|^2/(2\sigma^2)` instead of :math:`\lambda_{k+1}R^2/(2\sigma^2)`, so the
    estimates of §16.5–16.6 are no longer guaranteed to bound :math:`R_n`.

    Examples
    --------
    >>> import relufim as rf
    >>> from relufim.theory import default_target
    >>> W = rf.sample_weights(3, 60, seed=0)
    >>> code = two_stage_code(W, n=5000, radius=2.0)
    >>> r = index_of_resolvability(code, default_target(W))
    >>> bool(r.value <= r.bound_with_lengths <= r.estimate), r.within_radius
    (True, True)
    """
    code = _check_code(code)
    v_star = check_vector(v_star, code.p, "v_star")
    B = code.basis * code.steps
    JV = fisher_operator(code.W) @ np.column_stack([B, v_star])
    G = B.T @ JV[:, :-1]
    G = 0.5 * (G + G.T)
    hvec = B.T @ JV[:, -1]
    energy = float(v_star @ JV[:, -1])
    s2 = code.sigma**2
    sol = _solve_cvp(_cvp(G, hvec, energy, code.box), "exact", max(NODE_BUDGET, 10 * code.coded))
    dist2 = max(sol.objective, 0.0)
    c = code.basis.T @ v_star
    lam = code.eigenvalues[:code.coded]
    uncoded = max(energy - float(np.sum(lam * c * c)), 0.0) / (2 * s2)
    beyond = np.abs(c) > (code.box + 0.5) * code.steps
    clipped = float(np.sum(lam[beyond] * (np.abs(c[beyond]) - code.box[beyond] * code.steps[beyond]) ** 2)) / (2 * s2)
    norm = float(np.linalg.norm(v_star))
    est = code.bound_estimate()
    code_term = code.beta * code.length / code.n
    approx = dist2 / (2 * s2)
    res = Resolvability(value=code_term + approx, code_term=code_term, approximation_term=approx,
                        coded_term=max(approx - uncoded, 0.0), clipped_term=clipped, uncoded_term=uncoded, m=sol.m,
                        bound_with_lengths=code.bound_with_lengths(), estimate=est["total"], estimate_terms=est,
                        target_norm=norm, within_radius=norm <= code.radius * (1 + 1e-12),
                        leading=leading_term(code.d, code.n, code.beta), gram=G, target_products=hvec,
                        target_energy=energy)
    if warn and not res.within_radius:
        warnings.warn(_radius_message(code, res, int(np.count_nonzero(beyond))), RadiusWarning, stacklevel=2)
    return res


def _radius_message(code: TwoStageCode, r: Resolvability, n_beyond: int) -> str:
    s2 = code.sigma**2
    unc_norm = code.next_eigenvalue * r.target_norm**2 / (2 * s2)
    unc_radius = code.next_eigenvalue * code.radius**2 / (2 * s2)
    return (f"the target has norm {r.target_norm:.4g} > R = {code.radius:.4g}, the radius the code was designed for. "
            f"The risk bound still holds with the exact R_n = {r.value:.4g} of this target, but the estimates of "
            f"theory §16.5-16.6 ({r.bound_with_lengths:.4g}, {r.estimate:.4g}) assume ||v*|| <= R and no longer "
            f"guarantee to bound it. The target enters R_n through the box term: {n_beyond} coded coordinate(s) lie "
            f"beyond the box (|c_i| > (M_i + 1/2) delta_i) and are clipped, costing "
            f"sum lambda_i (|c_i| - M_i delta_i)^2/(2 sigma^2) = {r.clipped_term:.4g} instead of at most "
            f"lambda_i delta_i^2/(8 sigma^2) each; and through the uncoded term "
            f"sum_(i>k) lambda_i c_i^2/(2 sigma^2) = {r.uncoded_term:.4g}, bounded by "
            f"lambda_(k+1) ||v*||^2/(2 sigma^2) = {unc_norm:.4g} instead of lambda_(k+1) R^2/(2 sigma^2) = "
            f"{unc_radius:.4g}. Design the code with radius >= {r.target_norm:.4g} to restore them.")


# ----------------------------------------------------------------------------- simulation

@dataclass(frozen=True)
class MDLSimulation:
    r"""The MDL estimator over ``reps`` fresh data sets of ``n`` samples, against the bound (theory §16.4).

    Attributes
    ----------
    code : dict, :meth:`TwoStageCode.to_dict`
    resolvability : Resolvability (the bound :math:`R_n` and its estimates)
    risk : (reps,) :math:`d_\lambda(p^*, p_{\hat v})` per data set (Monte Carlo over the inputs)
    risk_mc_stderr : (reps,) the Monte Carlo standard error of each
    kl : (reps,) :math:`D(p^*\Vert p_{\hat v})`, exact
    methods : how many data sets were solved ``"exact"`` and ``"fast"``
    max_gap : the largest gap (nats) of the fast solution where the exact one also ran
    nodes_mean : mean lattice nodes of the exact searches
    """

    n: int
    reps: int
    code: dict[str, Any]
    resolvability: Resolvability
    risk: np.ndarray = field(repr=False)
    risk_mc_stderr: np.ndarray = field(repr=False)
    kl: np.ndarray = field(repr=False)
    methods: dict[str, int]
    max_gap: float | None
    nodes_mean: float
    mc_samples: int

    @property
    def risk_mean(self) -> float:
        return float(self.risk.mean())

    @property
    def risk_se(self) -> float:
        """Standard error of the mean risk over data sets (the Monte Carlo error of each is part of the spread)."""
        return float(self.risk.std(ddof=1) / math.sqrt(self.reps)) if self.reps > 1 else float("nan")

    @property
    def kl_mean(self) -> float:
        return float(self.kl.mean())

    @property
    def kl_se(self) -> float:
        return float(self.kl.std(ddof=1) / math.sqrt(self.reps)) if self.reps > 1 else float("nan")

    @property
    def bound(self) -> float:
        r""":math:`R_n`, exact."""
        return self.resolvability.value

    @property
    def excess_over_bound(self) -> float:
        """(mean risk - R_n) in standard errors (negative: below the bound)."""
        se = self.risk_se
        return (self.risk_mean - self.bound) / se if se > 0 else (0.0 if self.risk_mean <= self.bound else math.inf)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "reps": self.reps, "bound": self.bound, "estimate": self.resolvability.estimate,
                "bound_with_lengths": self.resolvability.bound_with_lengths, "leading": self.resolvability.leading,
                "risk_mean": self.risk_mean, "risk_se": self.risk_se, "kl_mean": self.kl_mean, "kl_se": self.kl_se,
                "risk_mc_stderr_mean": float(self.risk_mc_stderr.mean()), "mc_samples": self.mc_samples,
                "excess_over_bound_se": self.excess_over_bound,
                "coded_directions": self.code["coded_directions"], "code_length_nats": self.code["code_length_nats"],
                "kraft_sum": self.code["kraft_sum"], "length_by_cluster": self.code["length_by_cluster"],
                "methods": dict(self.methods), "max_gap": self.max_gap, "nodes_mean": self.nodes_mean,
                "resolvability": self.resolvability.to_dict()}


def simulate_mdl_risk(code: TwoStageCode, v_star: np.ndarray, *, reps: int = 20, seed: int | None = 0,
                      method: Literal["exact", "fast", "auto"] = "exact", node_budget: int = NODE_BUDGET,
                      mc_samples: int = 4096, progress: Progress | None = None) -> MDLSimulation:
    r"""Risk of the MDL estimator over ``reps`` fresh data sets, next to the index of resolvability (theory §16.4).

    Each data set draws ``n`` Gaussian inputs and :math:`y = X(x)\cdot v^* + \sigma\varepsilon`,
    computes :math:`\hat v` (:func:`mdl_estimate`), its exact KL divergence and its Rényi
    divergence of order :math:`1 - 1/\beta` by Monte Carlo over ``mc_samples`` fresh directions
    (:func:`renyi_divergence`). The theorem says the mean of the latter is at most :math:`R_n`.

    Parameters
    ----------
    code : TwoStageCode
    v_star : array (p,)
        The target (in the model).
    reps : int
        Data sets (>= 2 for an error bar).
    seed : int, optional
    method, node_budget :
        As in :func:`mdl_estimate`; the bound is a statement about the exact estimator.
    mc_samples : int
        Monte Carlo directions per Rényi divergence.
    progress : callable(done, reps), optional
        Called after each data set.

    Returns
    -------
    MDLSimulation

    Examples
    --------
    >>> import relufim as rf
    >>> from relufim.theory import default_target
    >>> W = rf.sample_weights(2, 20, seed=0)
    >>> code = two_stage_code(W, n=100, radius=2.0)
    >>> sim = simulate_mdl_risk(code, default_target(W), reps=5, mc_samples=2000)
    >>> sim.methods, bool(sim.risk_mean < sim.bound)
    ({'exact': 5, 'fast': 0}, True)
    """
    code = _check_code(code)
    v_star = check_vector(v_star, code.p, "v_star")
    reps = check_positive_int(reps, "reps")
    check_choice(method, "method", ("exact", "fast", "auto"))
    node_budget = _check_budget(node_budget)
    mc_samples = check_positive_int(mc_samples, "mc_samples", minimum=2)
    res = index_of_resolvability(code, v_star, warn=False)
    if not res.within_radius:
        c = code.basis.T @ v_star
        beyond = int(np.count_nonzero(np.abs(c) > (code.box + 0.5) * code.steps))
        warnings.warn(_radius_message(code, res, beyond), RadiusWarning, stacklevel=2)
    B = code.basis * code.steps
    BV = np.column_stack([B, v_star])
    s2 = code.sigma**2
    risk = np.empty(reps)
    mc_se = np.empty(reps)
    kl = np.empty(reps)
    counts = {"exact": 0, "fast": 0}
    gaps: list[float] = []
    nodes: list[int] = []
    seeds = np.random.SeedSequence(seed).spawn(reps)
    for r in range(reps):
        s_data, s_noise, s_mc = seeds[r].spawn(3)
        x = np.vstack(list(gaussian_input_chunks(code.n, code.d, s_data)))
        Z = _feature_products(code.W, x, BV)
        y = Z[:, -1] + code.sigma * np.random.default_rng(s_noise).standard_normal(code.n)
        est = _estimate_from(code, _cvp_from_design(Z[:, :-1], y, code.box), method, node_budget, code.n)
        counts[est.method] += 1
        if est.gap is not None:
            gaps.append(est.gap)
            nodes.append(est.nodes)
        m = est.m.astype(np.float64)
        kl[r] = max(float(m @ res.gram @ m - 2 * m @ res.target_products) + res.target_energy, 0.0) / (2 * s2)
        delta = _sphere_deltas(code.W, (v_star - est.v)[:, None], mc_samples, s_mc)[:, 0]
        risk[r], mc_se[r] = _renyi_from_deltas(delta, code.d, code.order, code.sigma)
        if progress is not None:
            progress(r + 1, reps)
    return MDLSimulation(n=code.n, reps=reps, code=code.to_dict(), resolvability=res, risk=risk, risk_mc_stderr=mc_se,
                         kl=kl, methods=counts, max_gap=max(gaps) if gaps else None,
                         nodes_mean=float(np.mean(nodes)) if nodes else 0.0, mc_samples=mc_samples)

r"""The infinite-width spectrum of the FIM (theory §7–8): one eigenvalue per harmonic degree.

For i.i.d. columns :math:`w = r\,u` with :math:`u` uniform on :math:`S^{d-1}` independent of
the radius :math:`r = \|w\|`, :math:`J/p` converges to an integral operator on the law of
:math:`w`. Its degree-``k`` spherical harmonics :math:`Y_k(u)` span invariant subspaces of
dimension :math:`N(d,k) = \binom{k+d-1}{k} - \binom{k+d-3}{k-2}`.

**Homogeneous activations** (ReLU, leaky ReLU, abs): :math:`J_{ij} = r_ir_j\,k(t_{ij})`, the
operator factors into radius x sphere and degree ``k`` has the single eigenvalue
:math:`\lambda_k = p\,E\|w\|^2\,\mu_k` (:math:`= d\,\mu_k` for the default draw), with the
Funk–Hecke coefficient :math:`\mu_k` of the unit dual (theory §6).

The closed forms of the leaky-ReLU family (theory §7) and every other formula of the sphere
live in :mod:`relufim.model.harmonics`.

**Non-homogeneous activations** (softplus, GELU, tanh, erf, callables): by Mehler's formula
:math:`J_{ij} = \sum_n \hat c_n(r_i)\hat c_n(r_j)t_{ij}^n` and the Funk–Hecke coefficients
:math:`b_{n,k}` of :math:`t^n` (:func:`relufim.model.harmonics.monomial_funk_hecke`, theory §6),
degree ``k`` carries the *radial* operator with kernel
:math:`K_k(r,r') = \sum_n b_{n,k}\hat c_n(r)\hat c_n(r')` on the law of :math:`r`. What is
computed: its eigenvalues (Gauss–Laguerre nodes for :math:`r^2/s\sim\chi^2_d`, or the point
:math:`r=1` for unit columns), times ``p``. The largest is the degree-``k`` cluster
eigenvalue :math:`\lambda_k` (multiplicity :math:`N(d,k)`); the next ones
(``radial_eigenvalues``) are further eigenvalues of the same degree. The law of ``r``
depends on ``p`` for ``scale="1/p"``: then these are the eigenvalues of ``p`` times the
limit operator with the radius law of that draw (the first-order large-``p`` prediction),
and ``p`` is required.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from .._validation import check_positive_int, check_sphere_dimension
from ..model.activations import Activation, get_activation, mehler_truncation
from ..model.harmonics import (
    check_degree,
    funk_hecke_coefficients,
    harmonic_multiplicity,
    monomial_funk_hecke,
    relu_family_funk_hecke_coefficients,
)
from ..model.weights import Scale, entry_variance, expected_squared_norm

__all__ = [
    "LimitDegree",
    "LimitSpectrum",
    "limit_spectrum",
    "limit_cluster_values",
    "trace_share_curve",
]


# ----------------------------------------------------------------------------- results

@dataclass(frozen=True)
class LimitDegree:
    """One harmonic degree of a limit spectrum, at one hidden layer or at depth ``L`` (theory §7–8, §14.3).

    The row of :class:`LimitSpectrum` and of :class:`relufim.theory.depth.DepthLimit` (whose
    ``DepthDegree`` is this class).
    """

    k: int
    eigenvalue: float
    """The degree-k eigenvalue of J (the largest one of this degree for non-homogeneous activations)."""
    multiplicity: int
    mu: float
    """The eigenvalue normalized as its spectrum says. In :class:`LimitSpectrum`: ``eigenvalue / (p E||w||^2)``
    (the Funk–Hecke coefficient of the unit dual for homogeneous activations). In ``DepthLimit``:
    ``eigenvalue / trace`` (the Funk–Hecke coefficient of the normalized composed kernel K_L)."""
    cumulative_share: float
    """Share of tr J in the degree-<=k cluster eigenvalues (with multiplicity); also read as ``cumulative_fraction``."""
    share: float
    """Share of tr J in this degree's cluster, ``N(d, k) * eigenvalue / tr J`` up to rounding, so that the
    shares of degrees ``0..k`` add up to ``cumulative_share``."""
    radial_eigenvalues: tuple[float, ...] = ()
    """Further eigenvalues of this degree (non-homogeneous activations; each with multiplicity N(d, k))."""

    @property
    def cumulative_fraction(self) -> float:
        """``cumulative_share``, under the name :class:`LimitSpectrum` has always used."""
        return self.cumulative_share

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record.

        Keys ``k, multiplicity, eigenvalue, share, cumulative_share, cumulative_fraction, mu`` (the
        cumulative share under both names), plus ``radial_eigenvalues`` where there are any.
        """
        out = {"k": self.k, "multiplicity": self.multiplicity, "eigenvalue": self.eigenvalue, "share": self.share,
               "cumulative_share": self.cumulative_share, "cumulative_fraction": self.cumulative_share,
               "mu": self.mu}
        if self.radial_eigenvalues:
            out["radial_eigenvalues"] = list(self.radial_eigenvalues)
        return out


@dataclass(frozen=True)
class LimitSpectrum:
    r"""Infinite-width FIM spectrum, one row per harmonic degree ``k <= kmax``.

    Attributes
    ----------
    d : int
    activation : str
    scale : str or float
    p : int or None
        Width used to scale the eigenvalues (None when they do not depend on it).
    degrees : tuple of LimitDegree
    top_fraction : float
        :math:`F(d)`: share of the trace in degrees <= 2 (the three clusters).
    total : float
        Sum over all degrees of :math:`N(d,k)\mu_k`, :math:`= k(1)` for homogeneous
        activations (1/2 for ReLU), :math:`E\phi(rz)^2/E r^2` otherwise.
    trace : float
        :math:`\operatorname{tr} J` in the limit, :math:`p\,E\|w\|^2\cdot` ``total``.
    method : str
        ``"closed form"`` or what was computed numerically.
    """

    d: int
    activation: str
    scale: Scale
    p: int | None
    degrees: tuple[LimitDegree, ...]
    top_fraction: float
    total: float
    trace: float
    method: str

    @property
    def eigenvalues(self) -> np.ndarray:
        """The degree eigenvalues ``lambda_k``, ``k = 0..kmax``."""
        return np.array([row.eigenvalue for row in self.degrees])

    @property
    def multiplicities(self) -> list[int]:
        return [row.multiplicity for row in self.degrees]

    @property
    def mu(self) -> np.ndarray:
        return np.array([row.mu for row in self.degrees])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record.

        Keys ``d, activation, scale, p, degrees [{k, multiplicity, eigenvalue, share, cumulative_share,
        cumulative_fraction, mu}], top_fraction, total, trace, method``.
        """
        return {"d": self.d, "activation": self.activation, "scale": self.scale, "p": self.p,
                "degrees": [row.to_dict() for row in self.degrees], "top_fraction": self.top_fraction,
                "total": self.total, "trace": self.trace, "method": self.method}


# ----------------------------------------------------------------------------- computation

def _homogeneous_mu(act: Activation, d: int, kmax: int) -> tuple[np.ndarray, str]:
    """Funk–Hecke coefficients of a homogeneous activation's unit dual: closed forms where known."""
    if act.relu_slope is not None:
        return relu_family_funk_hecke_coefficients(d, kmax, act.relu_slope), "closed form"
    kernel = act.unit_dual if act.unit_dual is not None else (lambda t: act.dual(1.0, 1.0, t))
    return funk_hecke_coefficients(kernel, d, kmax), "Funk-Hecke quadrature of the unit dual"


def radial_rule(d: int, p: int, scale: Scale, nodes: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for the law of ||w||: r^2 = var * chi2_d (generalized Gauss–Laguerre), or r = 1."""
    var = entry_variance(scale, d, p)
    if var is None:
        return np.ones(1), np.ones(1)
    v, w = special.roots_genlaguerre(nodes, d / 2.0 - 1.0)
    w = w / w.sum()
    return np.sqrt(2.0 * var * v), w


def _nonhomogeneous_degrees(act: Activation, d: int, kmax: int, p: int, scale: Scale):
    r_nodes, omega = radial_rule(d, p, scale)
    C, _tail, m2 = mehler_truncation(act, r_nodes)
    K = C.shape[1] - 1
    top, radial, traces = [], [], []
    for k in range(kmax + 1):
        ns = list(range(k, K + 1, 2))
        if not ns:
            top.append(0.0)
            radial.append(())
            traces.append(0.0)
            continue
        b = np.array([monomial_funk_hecke(d, n, k) for n in ns])
        A = np.sqrt(omega)[:, None] * C[:, ns] * np.sqrt(b)[None, :]
        ev = np.sort(np.clip(np.linalg.eigvalsh(A.T @ A), 0.0, None))[::-1]
        top.append(float(ev[0]))
        radial.append(tuple(float(x) for x in ev[1:4]))
        traces.append(float(np.sum(A * A)))
    mean_m2 = float(omega @ m2)
    mean_r2 = float(omega @ r_nodes**2)
    return np.array(top), radial, mean_m2, mean_r2, K


def limit_spectrum(d: int = 10, kmax: int = 12, activation: str | Activation = "relu", scale: Scale = "1/p",
                   p: int | None = None) -> LimitSpectrum:
    r"""Infinite-width FIM eigenvalue of every harmonic degree ``k <= kmax`` (theory §7–8).

    Parameters
    ----------
    d : int
        Input dimension (>= 2).
    kmax : int
        Largest harmonic degree (>= 0).
    activation : str, Activation or callable
    scale : {"1/p", "1/d", "unit"} or float
        The draw of ``W`` (as in :func:`relufim.sample_weights`).
    p : int, optional
        Width. Needed whenever the eigenvalues depend on it: homogeneous activations
        with a scale other than ``"1/p"`` (:math:`\lambda_k = p\,E\|w\|^2\mu_k`) and every
        non-homogeneous activation (module docstring).

    Returns
    -------
    LimitSpectrum
        One :class:`LimitDegree` per degree: ``k``, ``eigenvalue`` :math:`\lambda_k`,
        ``multiplicity`` :math:`N(d,k)`, ``mu``, ``cumulative_share`` (also ``cumulative_fraction``), ``share``; plus
        ``top_fraction`` :math:`F(d)` and ``total`` (:math:`\kappa(1) = 1/2` for ReLU).

    Examples
    --------
    >>> import relufim as rf
    >>> res = rf.limit_spectrum(d=10, kmax=4)
    >>> [row.multiplicity for row in res.degrees]
    [1, 10, 54, 210, 660]
    >>> round(res.degrees[1].eigenvalue, 12), res.degrees[3].eigenvalue   # d/(4d); odd k >= 3 vanish
    (0.25, 0.0)
    >>> round(res.top_fraction, 6), res.total
    (0.983929, 0.5)
    """
    d = check_sphere_dimension(d)
    kmax_out = check_degree(kmax)
    kmax = max(kmax_out, 2)  # degrees <= 2 are always computed, for F(d)
    act = get_activation(activation)
    entry_variance(scale, d, 1)  # validates the scale
    if p is not None:
        p = check_positive_int(p, "p")
    scale_is_1p = isinstance(scale, str) and scale.strip().lower().replace(" ", "") == "1/p"
    mult = [harmonic_multiplicity(d, k) for k in range(kmax + 1)]
    radial: list[tuple[float, ...]] = [()] * (kmax + 1)

    if act.homogeneous:
        mu, method = _homogeneous_mu(act, d, kmax)
        k1 = float(np.asarray(act.unit_dual(1.0)) if act.unit_dual is not None else act.dual(1.0, 1.0, 1.0))
        total = k1
        if scale_is_1p:
            factor = float(d)  # p * E||w||^2 = p * d/p
            p_used = p
        else:
            if p is None:
                raise ValueError(f"with scale={scale!r} the eigenvalues are p * E||w||^2 * mu_k and grow with p: "
                                 "pass the width p=... (only scale='1/p' gives p-free limits).")
            factor = p * expected_squared_norm(d, p, scale)
            p_used = p
        eig = factor * mu
        trace = factor * total
        share_den = total
        shares = np.array(mult, dtype=float) * mu
    else:
        if p is None:
            raise ValueError(f"activation {act.name!r} is not homogeneous: its limit eigenvalues depend on the width "
                             "through the radius law of the columns; pass p=....")
        top, radial_ev, mean_m2, mean_r2, K = _nonhomogeneous_degrees(act, d, kmax, p, scale)
        eig = p * top
        radial = [tuple(p * x for x in ev) for ev in radial_ev]
        mu = top / mean_r2
        total = mean_m2 / mean_r2
        trace = p * mean_m2
        p_used = p
        share_den = mean_m2
        shares = np.array(mult, dtype=float) * top
        method = (f"top eigenvalue of the degree-k radial operator sum_n b_(n,k) c_n(r) c_n(r') (Mehler, {K + 1} "
                  "Hermite terms; radius law of the draw at this p)")
    cum = np.cumsum(shares) / share_den
    step = np.diff(cum, prepend=0.0)
    top_fraction = float(cum[2])
    rows = tuple(LimitDegree(k=k, eigenvalue=float(eig[k]), multiplicity=int(mult[k]), mu=float(mu[k]),
                             cumulative_share=float(cum[k]), share=float(step[k]), radial_eigenvalues=radial[k])
                 for k in range(kmax_out + 1))
    return LimitSpectrum(d=d, activation=act.name, scale=scale, p=p_used, degrees=rows, top_fraction=top_fraction,
                         total=float(total), trace=float(trace), method=method)


def limit_cluster_values(d: int, activation: str | Activation = "relu", scale: Scale = "1/p",
                         p: int | None = None) -> dict[str, float]:
    r"""Predicted limit eigenvalues of the three clusters and :math:`F(d)`.

    Returns ``{"cluster1": lambda_0, "cluster2": lambda_1, "cluster3": lambda_2, "top_fraction": F(d)}``
    (for putting the limit next to finite-``p`` cluster means).

    Examples
    --------
    >>> v = limit_cluster_values(10)
    >>> round(v["cluster2"], 12), round(v["cluster3"], 6)
    (0.25, 0.013827)
    """
    res = limit_spectrum(d, 2, activation, scale, p)
    return {"cluster1": res.degrees[0].eigenvalue, "cluster2": res.degrees[1].eigenvalue,
            "cluster3": res.degrees[2].eigenvalue, "top_fraction": res.top_fraction}


def trace_share_curve(ds: Iterable[int], activation: str | Activation = "relu", scale: Scale = "1/p",
                      p: int | None = None) -> np.ndarray:
    r""":math:`F(d)`, the limit share of the trace in degrees <= 2, for each ``d`` in ``ds``.

    For ReLU it decreases with ``d`` toward :math:`1/2 + 3/(2\pi) = 0.977465` (Theorem 3's
    bound; theory §7).

    Examples
    --------
    >>> F = trace_share_curve([2, 10, 1000])
    >>> bool(np.all(np.diff(F) < 0)) and bool(F[-1] > 0.977465)
    True
    """
    arr = np.asarray(ds)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"ds must be a non-empty 1-D sequence of input dimensions, got shape {arr.shape}.")
    return np.array([limit_spectrum(check_positive_int(d, "d"), 2, activation, scale, p).top_fraction
                     for d in arr.tolist()])

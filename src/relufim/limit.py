r"""The infinite-width spectrum of the FIM (DESIGN §4, §7): one eigenvalue per harmonic degree.

For i.i.d. columns :math:`w = r\,u` with :math:`u` uniform on :math:`S^{d-1}` independent of
the radius :math:`r = \|w\|`, :math:`J/p` converges to an integral operator on the law of
:math:`w`. Its degree-``k`` spherical harmonics :math:`Y_k(u)` span invariant subspaces of
dimension :math:`N(d,k) = \binom{k+d-1}{k} - \binom{k+d-3}{k-2}`.

**Homogeneous activations** (ReLU, leaky ReLU, abs): :math:`J_{ij} = r_ir_j\,k(t_{ij})`, the
operator factors into radius x sphere and degree ``k`` has the single eigenvalue
:math:`\lambda_k = p\,E\|w\|^2\,\mu_k` (:math:`= d\,\mu_k` for the default draw), with the
Funk–Hecke coefficient

.. math::  \mu_k = \frac{\Gamma(d/2)}{\sqrt\pi\,\Gamma((d-1)/2)}\int_{-1}^1 k(t)\,P_k^{(d)}(t)\,(1-t^2)^{(d-3)/2}\,dt .

ReLU closed forms (derived, DESIGN §4; tested against quadrature):
:math:`\mu_0 = d\,\Gamma(d/2)^2/(4\pi\Gamma((d+1)/2)^2)`, :math:`\mu_1 = 1/(4d)`,
:math:`\mu_{k+2} = ((k-1)/(k+d+1))^2\mu_k`, :math:`\mu_k = 0` for odd :math:`k\ge3`; all in
log space (no Gamma overflow). Leaky ReLU with slope ``a`` (from
:math:`k(t) = (1+a^2)\kappa(t) - 2a\kappa(-t)` and :math:`P_k(-t) = (-1)^kP_k(t)`):
:math:`\mu_k = ((1+a^2) - 2a(-1)^k)\,\mu_k^{\mathrm{relu}}`; abs is ``a = -1``.

**Non-homogeneous activations** (softplus, GELU, tanh, erf, callables): by Mehler's formula
:math:`J_{ij} = \sum_n \hat c_n(r_i)\hat c_n(r_j)t_{ij}^n` and the Funk–Hecke coefficients
:math:`b_{n,k}` of :math:`t^n`,

.. math::  b_{n,k} = \frac{\Gamma(d/2)}{\sqrt\pi\,2^k}\,\frac{n!}{(n-k)!}\,
           \frac{\Gamma((n-k+1)/2)}{\Gamma((n+k+d)/2)}\quad(n\ge k,\ n\equiv k \bmod 2)

(Rodrigues' formula and ``k`` integrations by parts; derived, tested against quadrature),
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

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from ._validation import check_positive_int
from .activations import Activation, get_activation, mehler_truncation
from .weights import Scale, _entry_variance, expected_squared_norm

__all__ = [
    "LimitDegree",
    "LimitSpectrum",
    "limit_spectrum",
    "limit_cluster_values",
    "trace_share_curve",
    "harmonic_multiplicity",
    "relu_funk_hecke_coefficients",
    "funk_hecke_coefficients",
    "monomial_funk_hecke",
]


# ----------------------------------------------------------------------------- validation

def _check_d(d: Any) -> int:
    d = check_positive_int(d, "d")
    if d < 2:
        raise ValueError(f"d must be >= 2 for the harmonic expansion on the sphere S^(d-1), got d = {d}.")
    return d


def _check_kmax(kmax: Any) -> int:
    kmax = check_positive_int(kmax, "kmax", minimum=0)
    if kmax > 1000:
        raise ValueError(f"kmax must be <= 1000, got {kmax}.")
    return kmax


# ----------------------------------------------------------------------------- harmonics

def harmonic_multiplicity(d: int, k: int) -> int:
    r"""Dimension :math:`N(d,k) = \binom{k+d-1}{k} - \binom{k+d-3}{k-2}` of degree-``k`` harmonics on :math:`S^{d-1}`.

    Exact integer (Python ints do not overflow).

    Examples
    --------
    >>> [harmonic_multiplicity(10, k) for k in range(4)]
    [1, 10, 54, 210]
    >>> [harmonic_multiplicity(2, k) for k in range(4)]
    [1, 2, 2, 2]
    """
    d = _check_d(d)
    k = check_positive_int(k, "k", minimum=0)
    if k < 2:
        return math.comb(k + d - 1, k)
    return math.comb(k + d - 1, k) - math.comb(k + d - 3, k - 2)


def _log_gamma_ratio_half(d: int) -> float:
    r""":math:`\log(\Gamma(d/2)/\Gamma((d+1)/2))`, accurate to a few ulps (product of ratios, summed with fsum)."""
    if d > 20000:
        return math.lgamma(d / 2) - math.lgamma((d + 1) / 2)
    start = 2 if d % 2 == 0 else 3
    base = math.log(2.0 / math.sqrt(math.pi)) if start == 2 else math.log(math.sqrt(math.pi) / 2.0)
    # Gamma(j/2 + 1)/Gamma(j/2 + 3/2) = Gamma(j/2)/Gamma((j+1)/2) * j/(j+1)
    return math.fsum([base] + [math.log1p(-1.0 / (j + 1)) for j in range(start, d, 2)])


def _relu_log_mu(d: int, kmax: int) -> list[float]:
    """log mu_k for ReLU, k = 0..kmax (-inf where mu_k = 0)."""
    logs = [-math.inf] * (kmax + 1)
    log_mu0 = math.fsum([math.log(d), -math.log(4.0 * math.pi), 2.0 * _log_gamma_ratio_half(d)])
    logs[0] = log_mu0
    if kmax >= 1:
        logs[1] = -math.log(4.0 * d)
    terms = [log_mu0]
    for k in range(0, kmax - 1, 2):  # mu_{k+2} = ((k-1)/(k+d+1))^2 mu_k
        terms += [2.0 * math.log(abs(k - 1)), -2.0 * math.log(k + d + 1)]
        logs[k + 2] = math.fsum(terms)
    return logs


def relu_funk_hecke_coefficients(d: int, kmax: int) -> np.ndarray:
    r"""ReLU's :math:`\mu_k`, ``k = 0..kmax``, from the closed forms (DESIGN §4), computed in log space.

    Relative accuracy ~1e-15 for any ``d >= 2`` and ``kmax`` up to 1000 (a fsum of
    logarithms of exact rationals); values below the float range underflow to 0.

    Examples
    --------
    >>> mu = relu_funk_hecke_coefficients(3, 4)
    >>> [round(float(m), 12) for m in mu]
    [0.1875, 0.083333333333, 0.01171875, 0.0, 0.000325520833]
    """
    d = _check_d(d)
    kmax = _check_kmax(kmax)
    return np.array([math.exp(v) if v > -math.inf else 0.0 for v in _relu_log_mu(d, kmax)])


def _funk_hecke_rule(d: int, kmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes in the angle, the Funk–Hecke weights and P_k^{(d)}(cos theta) for k <= kmax."""
    n = int(min(4000, 200 + 4 * kmax + 12 * math.sqrt(d)))
    x, wx = special.roots_legendre(n)
    theta = 0.5 * math.pi * (x + 1.0)
    log_cd = math.lgamma(d / 2) - math.lgamma((d - 1) / 2) - 0.5 * math.log(math.pi)
    with np.errstate(divide="ignore", under="ignore"):
        w = 0.5 * math.pi * wx * np.exp(log_cd + (d - 2) * np.log(np.sin(theta)))
    t = np.cos(theta)
    a = (d - 3) / 2.0
    P = np.empty((kmax + 1, n))
    for k in range(kmax + 1):
        P[k] = special.eval_jacobi(k, a, a, t) / special.eval_jacobi(k, a, a, 1.0)
    return t, w, P


def funk_hecke_coefficients(kernel, d: int, kmax: int) -> np.ndarray:
    r"""Numerical :math:`\mu_k = E_t[k(t)P_k^{(d)}(t)]`, ``k = 0..kmax``, for a dot-product kernel ``k(t)``.

    ``t`` has the density :math:`\frac{\Gamma(d/2)}{\sqrt\pi\Gamma((d-1)/2)}(1-t^2)^{(d-3)/2}`
    (the cosine of a uniform direction with a fixed one). Gauss–Legendre quadrature in the
    angle :math:`\theta = \arccos t`, where the arc-cosine kernels are smooth;
    :math:`P_k^{(d)}` is the Jacobi polynomial :math:`P_k^{(a,a)}`, :math:`a = (d-3)/2`,
    normalized to 1 at ``t = 1``. Absolute accuracy about ``1e-16 * max|k|`` (cancellation
    limits the relative accuracy of tiny coefficients).

    Examples
    --------
    >>> from relufim.kernels import arccos_kernel
    >>> mu = funk_hecke_coefficients(arccos_kernel, 3, 2)
    >>> bool(np.allclose(mu, relu_funk_hecke_coefficients(3, 2), rtol=1e-12))
    True
    """
    d = _check_d(d)
    kmax = _check_kmax(kmax)
    t, w, P = _funk_hecke_rule(d, kmax)
    vals = np.asarray(kernel(t), dtype=np.float64)
    return P @ (w * vals)


def monomial_funk_hecke(d: int, n: int, k: int) -> float:
    r"""Funk–Hecke coefficient :math:`b_{n,k} = E_t[t^nP_k^{(d)}(t)]` of the monomial :math:`t^n`.

    Zero unless :math:`n\ge k` and :math:`n-k` is even; then
    :math:`\frac{\Gamma(d/2)}{\sqrt\pi\,2^k}\frac{n!}{(n-k)!}\frac{\Gamma((n-k+1)/2)}{\Gamma((n+k+d)/2)}`.
    :math:`\sum_k N(d,k)\,b_{n,k} = 1` (the value of :math:`t^n` at 1).

    Examples
    --------
    >>> round(monomial_funk_hecke(5, 2, 0), 14), round(monomial_funk_hecke(5, 1, 1), 14)   # E t^2 = E t P_1 = 1/d
    (0.2, 0.2)
    """
    if k > n or (n - k) % 2:
        return 0.0
    log_b = (math.lgamma(d / 2) - 0.5 * math.log(math.pi) - k * math.log(2.0) + math.lgamma(n + 1)
             - math.lgamma(n - k + 1) + math.lgamma((n - k + 1) / 2) - math.lgamma((n + k + d) / 2))
    return math.exp(log_b)


# ----------------------------------------------------------------------------- results

@dataclass(frozen=True)
class LimitDegree:
    """One harmonic degree of the limit spectrum."""

    k: int
    eigenvalue: float
    """The degree-k eigenvalue of J (the largest one of this degree for non-homogeneous activations)."""
    multiplicity: int
    mu: float
    """``eigenvalue / (p E||w||^2)`` (the Funk–Hecke coefficient for homogeneous activations)."""
    cumulative_fraction: float
    """Share of tr J in the degree-<=k cluster eigenvalues (with multiplicity)."""
    radial_eigenvalues: tuple[float, ...] = ()
    """Further eigenvalues of this degree (non-homogeneous activations; each with multiplicity N(d, k))."""

    def to_dict(self) -> dict[str, Any]:
        out = {"k": self.k, "eigenvalue": self.eigenvalue, "multiplicity": self.multiplicity,
               "cumulative_fraction": self.cumulative_fraction, "mu": self.mu}
        if self.radial_eigenvalues:
            out["radial_eigenvalues"] = list(self.radial_eigenvalues)
        return out


@dataclass(frozen=True)
class LimitSpectrum:
    """Infinite-width FIM spectrum, one row per harmonic degree ``k <= kmax``.

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
        Sum over all degrees of :math:`N(d,k)\\mu_k`, :math:`= k(1)` for homogeneous
        activations (1/2 for ReLU), :math:`E\\phi(rz)^2/E r^2` otherwise.
    trace : float
        :math:`\\operatorname{tr} J` in the limit, :math:`p\\,E\\|w\\|^2\\cdot` ``total``.
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
        """JSON-ready: ``d, activation, scale, p, degrees [{k, eigenvalue, multiplicity, cumulative_fraction, mu}], top_fraction, total, trace, method``."""
        return {"d": self.d, "activation": self.activation, "scale": self.scale, "p": self.p,
                "degrees": [row.to_dict() for row in self.degrees], "top_fraction": self.top_fraction,
                "total": self.total, "trace": self.trace, "method": self.method}

    def format_table(self) -> str:
        """A readable plain-text table."""
        lines = [f"Infinite-width FIM spectrum: d = {self.d}, activation = {self.activation}, scale = {self.scale}"
                 + (f", p = {self.p}" if self.p is not None else "") + f"  ({self.method})", ""]
        head = f"{'k':>4}  {'eigenvalue':>13}  {'multiplicity':>14}  {'mu_k':>13}  {'cumulative share':>16}"
        lines += [head, "-" * len(head)]
        for row in self.degrees:
            lines.append(f"{row.k:>4}  {row.eigenvalue:>13.6g}  {row.multiplicity:>14}  {row.mu:>13.6g}  "
                         f"{row.cumulative_fraction:>16.6%}")
        lines += ["", f"F(d) = share of degrees <= 2: {self.top_fraction:.6%}   (asymptotic bound 97.7465%)",
                  f"total sum_k N(d,k) mu_k = {self.total:.12g};  limit trace = {self.trace:.6g}"]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- computation

def _homogeneous_mu(act: Activation, d: int, kmax: int) -> tuple[np.ndarray, str]:
    """Funk–Hecke coefficients of a homogeneous activation's unit dual: closed forms where known."""
    if act.name in ("relu", "leaky-relu", "abs") and act.closed_form:
        a = {"relu": 0.0, "abs": -1.0}.get(act.name, float(act.params.get("a", 0.0)))
        mu = relu_funk_hecke_coefficients(d, kmax)
        signs = np.array([(-1.0) ** k for k in range(kmax + 1)])
        return ((1.0 + a * a) - 2.0 * a * signs) * mu, "closed form"
    kernel = act.unit_dual if act.unit_dual is not None else (lambda t: act.dual(1.0, 1.0, t))
    return funk_hecke_coefficients(kernel, d, kmax), "Funk-Hecke quadrature of the unit dual"


def _radial_rule(d: int, p: int, scale: Scale, nodes: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for the law of ||w||: r^2 = var * chi2_d (generalized Gauss–Laguerre), or r = 1."""
    var = _entry_variance(scale, d, p)
    if var is None:
        return np.ones(1), np.ones(1)
    v, w = special.roots_genlaguerre(nodes, d / 2.0 - 1.0)
    w = w / w.sum()
    return np.sqrt(2.0 * var * v), w


def _nonhomogeneous_degrees(act: Activation, d: int, kmax: int, p: int, scale: Scale):
    r_nodes, omega = _radial_rule(d, p, scale)
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
    r"""Infinite-width FIM eigenvalue of every harmonic degree ``k <= kmax`` (DESIGN §4, §7).

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
        ``multiplicity`` :math:`N(d,k)`, ``mu``, ``cumulative_fraction``; plus
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
    d = _check_d(d)
    kmax_out = _check_kmax(kmax)
    kmax = max(kmax_out, 2)  # degrees <= 2 are always computed, for F(d)
    act = get_activation(activation)
    _entry_variance(scale, d, 1)  # validates the scale
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
    top_fraction = float(cum[2])
    rows = tuple(LimitDegree(k=k, eigenvalue=float(eig[k]), multiplicity=int(mult[k]), mu=float(mu[k]),
                             cumulative_fraction=float(cum[k]), radial_eigenvalues=radial[k])
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
    bound; DESIGN §4).

    Examples
    --------
    >>> F = trace_share_curve([2, 10, 1000])
    >>> bool(np.all(np.diff(F) < 0)) and bool(F[-1] > 0.977465)
    True
    """
    return np.array([limit_spectrum(int(d), 2, activation, scale, p).top_fraction for d in ds])

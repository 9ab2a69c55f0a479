r"""Harmonic analysis on the sphere :math:`S^{d-1}`: the one home of every formula of theory §6–7.

Multiplicities :math:`N(d,k)`, zonal (Gegenbauer) polynomials :math:`P_k^{(d)}`, the
Funk–Hecke coefficients of a zonal kernel (by quadrature), those of the monomials
:math:`t^n` (closed form), and the closed forms of the ReLU family (theory §7):
:math:`\mu_k` of ReLU, leaky ReLU and the absolute value, :math:`F(d)` and :math:`a_0`.

**The d = 1 convention** (theory §6). :math:`S^0 = \{-1, +1\}` with the uniform measure.
Only degrees 0 (even functions) and 1 (odd functions) exist: :math:`N(1,0) = N(1,1) = 1`
and :math:`N(1,k) = 0` for :math:`k\ge2`; :math:`P_0 = 1`, :math:`P_1(t) = t`, and
:math:`P_k = 0` for :math:`k\ge2`; the Funk–Hecke coefficients are
:math:`\mu_0 = (h(1)+h(-1))/2`, :math:`\mu_1 = (h(1)-h(-1))/2` and :math:`\mu_k = 0` for
:math:`k\ge2`. Every function here follows it, so :math:`F(1) = 1`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special

from .._validation import check_positive_int, check_sphere_dimension

__all__ = [
    "harmonic_multiplicity",
    "zonal_polynomial",
    "zonal_power_coefficients",
    "funk_hecke_quadrature",
    "funk_hecke_coefficients",
    "monomial_funk_hecke",
    "relu_funk_hecke_coefficients",
    "relu_family_funk_hecke_coefficients",
    "low_degree_polynomial",
    "degree_le2_fraction",
    "relu_a0",
    "check_dimension",
    "check_degree",
    "MAX_DEGREE",
]

#: Largest harmonic degree accepted anywhere (closed forms stay accurate; quadrature uses up to 4000 nodes).
MAX_DEGREE = 1000


def check_dimension(d: Any, name: str = "d") -> int:
    """The input dimension as an int ``>= 1`` (``d = 1`` follows the convention of the module docstring)."""
    return check_positive_int(d, name)


def check_degree(k: Any, name: str = "kmax") -> int:
    """A harmonic degree as an int in ``0..MAX_DEGREE``."""
    k = check_positive_int(k, name, minimum=0)
    if k > MAX_DEGREE:
        raise ValueError(f"{name} must be <= {MAX_DEGREE}, got {k}.")
    return k


def _comb(n: int, r: int) -> int:
    return math.comb(n, r) if 0 <= r <= n else 0


def harmonic_multiplicity(d: int, k: int) -> int:
    r"""Dimension :math:`N(d,k) = \binom{k+d-1}{k} - \binom{k+d-3}{k-2}` of the degree-``k`` harmonics (theory §6).

    Binomials outside their range count as 0, which gives the ``d = 1`` convention
    (``N(1, 0) = N(1, 1) = 1``, zero above). Exact integers.

    Examples
    --------
    >>> [harmonic_multiplicity(10, k) for k in range(4)]
    [1, 10, 54, 210]
    >>> [harmonic_multiplicity(2, k) for k in range(4)]
    [1, 2, 2, 2]
    >>> [harmonic_multiplicity(1, k) for k in range(4)]
    [1, 1, 0, 0]
    """
    d = check_dimension(d)
    k = check_degree(k, "k")
    return _comb(k + d - 1, k) - _comb(k + d - 3, k - 2)


def zonal_polynomial(k: int, d: int, t: np.ndarray | float) -> np.ndarray:
    r"""The zonal polynomial :math:`P_k^{(d)}(t)`, normalised to :math:`P_k(1) = 1` (theory §6).

    Three-term recurrence :math:`P_{k+1} = ((2k+d-2)\,tP_k - kP_{k-1})/(k+d-2)` (Legendre for
    ``d = 3``, Chebyshev for ``d = 2``); bounded by 1 on :math:`[-1, 1]`, so it is stable.
    ``d = 1``: ``1``, ``t`` and zero above (the convention of this module).

    Examples
    --------
    >>> float(zonal_polynomial(2, 3, 0.5))   # Legendre P_2(0.5) = (3 * 0.25 - 1) / 2
    -0.125
    >>> bool(np.isclose(zonal_polynomial(3, 2, np.cos(0.3)), np.cos(0.9), rtol=0, atol=1e-15))   # Chebyshev T_3
    True
    """
    k = check_degree(k, "k")
    d = check_dimension(d)
    t = np.asarray(t, dtype=np.float64)
    if k == 0:
        return np.ones_like(t)
    if d == 1:
        return t.copy() if k == 1 else np.zeros_like(t)
    prev, cur = np.ones_like(t), t.copy()
    for j in range(1, k):
        prev, cur = cur, ((2 * j + d - 2) * t * cur - j * prev) / (j + d - 2)
    return cur


def zonal_power_coefficients(k: int, d: int) -> np.ndarray:
    r"""Coefficients ``c`` of :math:`P_k^{(d)}(t) = \sum_j c_j t^j` (``j = 0..k``), by the same recurrence.

    Used to subtract low harmonic degrees from a kernel tile in place (theory §9).

    Examples
    --------
    >>> zonal_power_coefficients(2, 3)        # (3 t^2 - 1) / 2
    array([-0.5,  0. ,  1.5])
    """
    k = check_degree(k, "k")
    d = check_dimension(d)
    if k == 0:
        return np.ones(1)
    if d == 1:
        return np.array([0.0, 1.0]) if k == 1 else np.zeros(k + 1)
    prev, cur = np.array([1.0]), np.array([0.0, 1.0])
    for j in range(1, k):
        nxt = np.zeros(j + 2)
        nxt[1:] += (2 * j + d - 2) * cur
        nxt[: j] -= j * prev
        prev, cur = cur, nxt / (j + d - 2)
    return cur


def funk_hecke_quadrature(d: int, kmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Nodes ``t``, weights ``w`` and :math:`P_k^{(d)}(t_a)` of the Funk–Hecke quadrature rule (theory §6.6).

    Gauss–Legendre in the angle :math:`\theta = \arccos t` on :math:`[0, \pi]`, where the law of
    :math:`t` is :math:`c_d\sin^{d-2}\theta\,d\theta` (theory §6.3); ``n = min(4000, 200 + 4 kmax +
    12 sqrt(d))`` nodes. Then :math:`E_t[h(t)] \approx \sum_a w_ah(t_a)` and
    :math:`\mu_k \approx \sum_a w_ah(t_a)P_k(t_a)` = ``P @ (w * h(t))``, exactly as
    :func:`funk_hecke_coefficients` computes them; use the rule directly to evaluate a kernel on
    its nodes once and contract it in bulk. Cached per ``(d, kmax)``; the arrays are read-only.

    Parameters
    ----------
    d : int
        Dimension of the inputs (>= 2; ``d = 1`` has no angle: :func:`funk_hecke_coefficients` follows the
        d = 1 convention of the module docstring).
    kmax : int
        Largest degree of the tabulated zonal polynomials (it also sets the number of nodes).

    Returns
    -------
    t : array (n,)
        The nodes (cosines), decreasing from near 1 to near -1.
    w : array (n,)
        The weights (they sum to 1).
    P : array (kmax + 1, n)
        :math:`P_k^{(d)}(t_a)` for ``k = 0..kmax``.

    Examples
    --------
    >>> t, w, P = funk_hecke_quadrature(3, 4)
    >>> P.shape == (5, t.size), round(float(w.sum()), 12), round(float(w @ t ** 2), 12)   # E t^2 = 1/d
    (True, 1.0, 0.333333333333)
    >>> from relufim.model.kernels import arccos_kernel
    >>> bool(np.array_equal(P @ (w * arccos_kernel(t)), funk_hecke_coefficients(arccos_kernel, 3, 4)))
    True
    """
    d = check_sphere_dimension(d, fix="funk_hecke_coefficients(kernel, 1, kmax) follows that convention.")
    kmax = check_degree(kmax)
    return _funk_hecke_quadrature(d, kmax)


@functools.lru_cache(maxsize=32)
def _funk_hecke_quadrature(d: int, kmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`funk_hecke_quadrature` for validated ``d >= 2`` and ``kmax`` (cached on the ints)."""
    n = int(min(4000, 200 + 4 * kmax + 12 * math.sqrt(d)))
    x, wx = special.roots_legendre(n)
    theta = 0.5 * math.pi * (x + 1.0)
    log_cd = math.lgamma(d / 2) - math.lgamma((d - 1) / 2) - 0.5 * math.log(math.pi)
    with np.errstate(divide="ignore", under="ignore"):
        w = 0.5 * math.pi * wx * np.exp(log_cd + (d - 2) * np.log(np.sin(theta)))
    t = np.cos(theta)
    P = np.empty((kmax + 1, n))
    P[0] = 1.0
    if kmax >= 1:
        P[1] = t
    for j in range(1, kmax):
        P[j + 1] = ((2 * j + d - 2) * t * P[j] - j * P[j - 1]) / (j + d - 2)
    for a in (t, w, P):
        a.setflags(write=False)
    return t, w, P


def funk_hecke_coefficients(kernel: Callable[[np.ndarray], np.ndarray], d: int, kmax: int) -> np.ndarray:
    r"""Funk–Hecke coefficients :math:`\mu_k = E_t[h(t)P_k^{(d)}(t)]`, ``k <= kmax``, of a zonal kernel (theory §6).

    ``t`` is the cosine between a uniform direction and a fixed one, with density
    :math:`c_d(1-t^2)^{(d-3)/2}`; then :math:`h(t) = \sum_k N(d,k)\mu_kP_k^{(d)}(t)`.
    Gauss–Legendre quadrature in the angle :math:`\theta = \arccos t` (where the arc-cosine
    kernels are smooth): absolute accuracy about :math:`10^{-16}\max|h|`. ``d = 1`` follows
    the convention of this module (two point evaluations).

    Examples
    --------
    >>> from relufim.model.kernels import arccos_kernel
    >>> mu = funk_hecke_coefficients(arccos_kernel, 3, 4)
    >>> bool(np.allclose(mu, relu_funk_hecke_coefficients(3, 4), rtol=0, atol=1e-14))
    True
    >>> funk_hecke_coefficients(arccos_kernel, 1, 3)   # (h(1) + h(-1))/2, (h(1) - h(-1))/2, 0, 0
    array([0.25, 0.25, 0.  , 0.  ])
    """
    d = check_dimension(d)
    kmax = check_degree(kmax)
    if d == 1:
        h = np.asarray(kernel(np.array([1.0, -1.0])), dtype=np.float64).reshape(2)
        out = np.zeros(kmax + 1)
        out[0] = 0.5 * (h[0] + h[1])
        if kmax >= 1:
            out[1] = 0.5 * (h[0] - h[1])
        return out
    t, w, P = _funk_hecke_quadrature(d, kmax)
    vals = np.asarray(kernel(t), dtype=np.float64)
    return P @ (w * vals)


def monomial_funk_hecke(d: int, n: int, k: int) -> float:
    r"""Funk–Hecke coefficient :math:`b_{n,k} = E_t[t^nP_k^{(d)}(t)]` of the monomial :math:`t^n` (theory §6).

    Zero unless :math:`n\ge k` and :math:`n-k` is even; then
    :math:`\frac{\Gamma(d/2)}{\sqrt\pi\,2^k}\frac{n!}{(n-k)!}\frac{\Gamma((n-k+1)/2)}{\Gamma((n+k+d)/2)}`
    (derived by Rodrigues' formula). :math:`\sum_kN(d,k)\,b_{n,k} = 1`. ``d = 1``: zero for ``k >= 2``.

    Examples
    --------
    >>> round(monomial_funk_hecke(5, 2, 0), 14), round(monomial_funk_hecke(5, 1, 1), 14)   # E t^2 = E t P_1 = 1/d
    (0.2, 0.2)
    """
    if k > n or (n - k) % 2 or (d == 1 and k >= 2):
        return 0.0
    log_b = (math.lgamma(d / 2) - 0.5 * math.log(math.pi) - k * math.log(2.0) + math.lgamma(n + 1)
             - math.lgamma(n - k + 1) + math.lgamma((n - k + 1) / 2) - math.lgamma((n + k + d) / 2))
    return math.exp(log_b)


def _log_gamma_ratio_half(d: int) -> float:
    r""":math:`\log(\Gamma(d/2)/\Gamma((d+1)/2))` to a few ulps: a product of exact ratios summed with ``fsum``."""
    if d == 1:
        return 0.5 * math.log(math.pi)
    if d > 20000:
        return math.lgamma(d / 2) - math.lgamma((d + 1) / 2)
    start = 2 if d % 2 == 0 else 3
    base = math.log(2.0 / math.sqrt(math.pi)) if start == 2 else math.log(math.sqrt(math.pi) / 2.0)
    # Gamma(j/2 + 1)/Gamma(j/2 + 3/2) = Gamma(j/2)/Gamma((j+1)/2) * j/(j+1)
    return math.fsum([base] + [math.log1p(-1.0 / (j + 1)) for j in range(start, d, 2)])


def relu_a0(d: int) -> float:
    r""":math:`a_0 = \Gamma(d/2)/(2\sqrt\pi\,\Gamma((d+1)/2))`; ReLU's :math:`\mu_0 = d\,a_0^2` (theory §7, §11).

    Examples
    --------
    >>> bool(np.isclose(relu_a0(3) ** 2 * 3, relu_funk_hecke_coefficients(3, 0)[0]))
    True
    """
    d = check_dimension(d)
    return math.exp(_log_gamma_ratio_half(d) - math.log(2.0 * math.sqrt(math.pi)))


def relu_funk_hecke_coefficients(d: int, kmax: int) -> np.ndarray:
    r"""ReLU's :math:`\mu_k`, ``k = 0..kmax``, from the closed forms of theory §7, in log space.

    :math:`\mu_0 = d\,\Gamma(d/2)^2/(4\pi\Gamma((d+1)/2)^2)`, :math:`\mu_1 = 1/(4d)`,
    :math:`\mu_{k+2} = ((k-1)/(k+d+1))^2\mu_k`, zero for odd :math:`k\ge3`. Relative accuracy
    about 1e-15 for any ``d`` and ``kmax <= 1000``; values below the float range underflow
    to 0. ``d = 1``: ``1/4, 1/4`` and zero above (the convention of this module).

    Examples
    --------
    >>> mu = relu_funk_hecke_coefficients(3, 4)
    >>> [round(float(m), 12) for m in mu]
    [0.1875, 0.083333333333, 0.01171875, 0.0, 0.000325520833]
    """
    d = check_dimension(d)
    kmax = check_degree(kmax)
    logs = [-math.inf] * (kmax + 1)
    log_mu0 = math.fsum([math.log(d), -math.log(4.0 * math.pi), 2.0 * _log_gamma_ratio_half(d)])
    logs[0] = log_mu0
    if kmax >= 1:
        logs[1] = -math.log(4.0 * d)
    if d >= 2:
        terms = [log_mu0]
        for k in range(0, kmax - 1, 2):  # mu_{k+2} = ((k-1)/(k+d+1))^2 mu_k
            terms += [2.0 * math.log(abs(k - 1)), -2.0 * math.log(k + d + 1)]
            logs[k + 2] = math.fsum(terms)
    return np.array([math.exp(v) if v > -math.inf else 0.0 for v in logs])


def relu_family_funk_hecke_coefficients(d: int, kmax: int, a: float = 0.0) -> np.ndarray:
    r""":math:`\mu_k` of the leaky-ReLU family's unit dual :math:`k_a(t) = (1-a)^2\kappa(t) + a\,t` (theory §7).

    :math:`\mu_k(k_a) = (1-a)^2\mu_k + a\,[k=1]/d`: ``a = 0`` is ReLU, ``a = -1`` the absolute
    value, ``a = 1`` the identity.

    Examples
    --------
    >>> relu_family_funk_hecke_coefficients(4, 3, a=1.0)      # the identity: only degree 1, 1/d
    array([0.  , 0.25, 0.  , 0.  ])
    """
    a = float(a)
    mu = (1.0 - a) ** 2 * relu_funk_hecke_coefficients(d, kmax)
    if kmax >= 1:
        mu[1] += a / d
    return mu


def low_degree_polynomial(d: int, degrees: int, a: float = 0.0) -> np.ndarray:
    r"""Power-basis coefficients of :math:`\sum_{k<K}N(d,k)\,\mu_k(k_a)\,P_k^{(d)}(t)`, ``K = degrees`` (theory §9).

    The part of the leaky-ReLU unit dual :math:`k_a` in harmonic degrees below ``K``;
    :math:`k_a(t)` minus it is the kernel of :math:`J_{\ge K}`. For ReLU and ``K = 3``:
    :math:`\mu_0 + t/4 + \mu_2(d+2)(dt^2-1)/2`.

    Examples
    --------
    >>> c = low_degree_polynomial(3, 3)
    >>> mu = relu_funk_hecke_coefficients(3, 2)
    >>> bool(np.allclose(c, [mu[0] - mu[2] * 5 / 2, 0.25, mu[2] * 5 * 3 / 2]))
    True
    """
    K = check_degree(degrees, "degrees")
    out = np.zeros(max(K, 1))
    if K == 0:
        return out
    mu = relu_family_funk_hecke_coefficients(d, K - 1, a)
    for k in range(K):
        out[: k + 1] += mu[k] * harmonic_multiplicity(d, k) * zonal_power_coefficients(k, d)
    return out


def degree_le2_fraction(d: int) -> float:
    r""":math:`F(d) = 2\sum_{k\le2}N(d,k)\mu_k`: ReLU's share of the trace in harmonic degrees ``<= 2`` (theory §7).

    Decreases from :math:`F(1) = 1` toward :math:`1/2 + 3/(2\pi) = 0.977465\ldots`.

    Examples
    --------
    >>> round(degree_le2_fraction(1), 15)
    1.0
    >>> round(degree_le2_fraction(10), 6)
    0.983929
    """
    mu = relu_funk_hecke_coefficients(d, 2)
    return float(2.0 * sum(harmonic_multiplicity(d, k) * mu[k] for k in range(3)))

r"""The degree-1 arc-cosine kernel :math:`\kappa` of ReLU and its family, evaluated with care (theory §2, §7).

For unit vectors at angle :math:`\theta` (:math:`t = \cos\theta`),

.. math::  E_x[\mathrm{ReLU}(u\cdot x)\,\mathrm{ReLU}(v\cdot x)] = \kappa(t)
           = \frac{\sqrt{1-t^2} + (\pi - \arccos t)\,t}{2\pi}.

Near :math:`t=-1` the value is :math:`\approx\delta^3/(6\pi)` with :math:`\delta = \pi-\theta`,
and both ``arccos`` and the sum above lose relative accuracy; there we take
:math:`\delta` from :math:`\|u+v\| = 2\sin(\delta/2)` and sum the series
:math:`\sin\delta - \delta\cos\delta = \delta^3/3 - \delta^5/30 + \delta^7/840 - \dots`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import check_positive_int

__all__ = [
    "arccos_kernel",
    "arccos_kernel_from_angle_complement",
    "arccos_kernel_series_coefficients",
    "relu_family_kernel",
    "step_kernel",
    "two_pi_kappa_inplace",
    "compiled_kernel_available",
    "two_pi_kappa_from_sum_norm",
    "ANTIPARALLEL_THRESHOLD",
]

_INV_2PI = 1.0 / (2.0 * math.pi)

#: Cosines below this are recomputed from ``||u + v||`` (rare for random weights).
ANTIPARALLEL_THRESHOLD = -0.99


try:  # the same formula compiled into one pass (optional: built with the package where a C compiler is found)
    from . import _ckernel
except ImportError:  # pragma: no cover - depends on the installation
    _ckernel = None


def compiled_kernel_available() -> bool:
    """Whether the fused compiled kernel is in use (else the NumPy formula; the results agree to round-off)."""
    return _ckernel is not None


def two_pi_kappa_inplace(K: Any, S: Any, S2: Any, xp: Any = np, *, keep_one_minus_t: bool = True) -> None:
    r"""Overwrite cosines ``K`` with :math:`2\pi\kappa(K)`, in place: the one home of the formula (theory §2, §9).

    :math:`2\pi\kappa(t) = \sqrt{(1-t)(1+t)} + (\pi - \arccos t)\,t`, with the square root
    taken of :math:`(1-t)(1+t)` (no cancellation near :math:`|t| = 1`). Eight elementwise
    passes with the two scratch arrays ``S, S2`` of ``K``'s shape and no other temporaries.
    ``K`` is first clipped to [-1, 1]; on return ``S2`` holds :math:`1 - t` (callers that
    combine :math:`\kappa` with a polynomial in :math:`t` reuse it). ``xp`` is the array
    namespace: ``numpy`` for NumPy arrays, ``torch`` for tensors (the same code serves both
    backends of the product engine). Relative accuracy near :math:`t = -1` needs the
    vectors themselves: see :func:`two_pi_kappa_from_sum_norm`.

    Examples
    --------
    >>> K = np.array([[1.0, 0.0], [-1.0, 0.5]])
    >>> two_pi_kappa_inplace(K, np.empty_like(K), np.empty_like(K))
    >>> bool(np.allclose(K / (2 * np.pi), [[0.5, 1 / (2 * np.pi)], [0.0, arccos_kernel(0.5)]]))
    True
    """
    if _ckernel is not None and xp is np and K.ndim == 2 and K.strides[1] == K.itemsize \
            and K.dtype in (np.float64, np.float32):
        _ckernel.two_pi_kappa(K, S2 if keep_one_minus_t else None)
        return
    xp.clip(K, -1.0, 1.0, out=K)
    xp.arccos(K, out=S)
    S *= -1.0
    S += math.pi  # pi - theta
    S *= K  # (pi - theta) t
    S2[...] = K
    S2 *= -1.0
    S2 += 1.0  # 1 - t
    K += 1.0
    K *= S2  # (1 - t)(1 + t)
    xp.sqrt(K, out=K)
    K += S


def arccos_kernel(t: np.ndarray | float) -> np.ndarray:
    r"""Elementwise :math:`\kappa(t)` for cosines ``t`` of any shape, clipped to [-1, 1] (theory §2).

    :func:`two_pi_kappa_inplace` on a copy, and for ``t < -0.5`` the odd series in
    :math:`\delta = \arccos(-t)`, so the value is relatively accurate for the given ``t``
    everywhere. (When ``t`` is itself a rounded dot product, :math:`\delta` must come from
    the vectors, as the product engine does.)

    Examples
    --------
    >>> float(arccos_kernel(1.0)), round(float(arccos_kernel(0.0)), 12)
    (0.5, 0.159154943092)
    >>> float(arccos_kernel(-1.0))
    0.0
    """
    out = np.array(t, dtype=np.float64, copy=True, ndmin=1)
    shape = np.shape(t)
    two_pi_kappa_inplace(out, np.empty_like(out), np.empty_like(out))
    out *= _INV_2PI
    low = np.asarray(t, dtype=np.float64).reshape(out.shape) < -0.5
    if np.any(low):
        # delta = pi - theta = arccos(-t) is relatively accurate; the odd series keeps kappa so too
        tl = np.clip(np.asarray(t, dtype=np.float64).reshape(out.shape)[low], -1.0, 1.0)
        out[low] = _sin_minus_x_cos(np.arccos(-tl)) * _INV_2PI
    return out.reshape(shape)


def relu_family_kernel(t: np.ndarray | float, a: float = 0.0) -> np.ndarray:
    r"""Unit dual of leaky ReLU with slope ``a``: :math:`k_a(t) = (1-a)^2\kappa(t) + a\,t` (theory §7).

    Equal to :math:`(1+a^2)\kappa(t) - 2a\kappa(-t)` because :math:`\kappa(t) - \kappa(-t) = t/2`;
    ``a = 0`` is ReLU, ``a = -1`` the absolute value, ``a = 1`` the identity.

    Examples
    --------
    >>> float(relu_family_kernel(0.3, a=1.0)), float(relu_family_kernel(1.0, a=-1.0))
    (0.3, 1.0)
    """
    t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
    return (1.0 - a) ** 2 * arccos_kernel(t) + a * t


def step_kernel(t: np.ndarray | float) -> np.ndarray:
    r"""The step kernel :math:`\kappa_0(t) = (\pi - \arccos t)/(2\pi)` (theory §12, §15).

    :math:`\kappa_0(u\cdot v) = P(u\cdot x > 0,\ v\cdot x > 0)` for unit ``u, v`` and Gaussian ``x``.

    Examples
    --------
    >>> float(step_kernel(1.0)), float(step_kernel(0.0)), float(step_kernel(-1.0))
    (0.5, 0.25, 0.0)
    """
    t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
    return (math.pi - np.arccos(t)) * _INV_2PI


def _sin_minus_x_cos(delta: np.ndarray) -> np.ndarray:
    r""":math:`\sin\delta - \delta\cos\delta`, by its series for small :math:`\delta`."""
    delta = np.asarray(delta, dtype=np.float64)
    out = np.empty_like(delta)
    small = delta < 0.5
    big = ~small
    out[big] = np.sin(delta[big]) - delta[big] * np.cos(delta[big])
    ds = delta[small]
    d2 = ds * ds
    # sum_{n>=1} (-1)^{n+1} 2n delta^{2n+1} / (2n+1)!, Horner from n = 10 down
    acc = np.zeros_like(ds)
    for n in range(10, 0, -1):
        coef = (-1) ** (n + 1) * 2 * n / math.factorial(2 * n + 1)
        acc = acc * d2 + coef
    out[small] = acc * d2 * ds
    return out


def arccos_kernel_from_angle_complement(delta: np.ndarray | float) -> np.ndarray:
    r""":math:`\kappa` as a function of :math:`\delta = \pi - \theta \in [0, \pi]`, accurate near :math:`\delta=0`.

    Examples
    --------
    >>> d = 1e-3
    >>> bool(abs(arccos_kernel_from_angle_complement(d) / (d**3 / (6 * np.pi)) - 1) < 1e-6)
    True
    """
    delta = np.clip(np.asarray(delta, dtype=np.float64), 0.0, np.pi)
    return _sin_minus_x_cos(delta) * _INV_2PI


def two_pi_kappa_from_sum_norm(s: np.ndarray) -> np.ndarray:
    r""":math:`2\pi\kappa` of unit vectors ``u, v`` from :math:`s = \|u+v\| = 2\sin(\delta/2)` (theory §2).

    Relatively accurate near :math:`t = -1`, where the cosine itself has lost the small angle.

    Examples
    --------
    >>> bool(np.isclose(two_pi_kappa_from_sum_norm(np.sqrt(2.0)), 2 * np.pi * float(arccos_kernel(0.0))))
    True
    """
    delta = 2.0 * np.arcsin(np.clip(np.asarray(s, dtype=np.float64) / 2.0, 0.0, 1.0))
    return arccos_kernel_from_angle_complement(delta) * (2.0 * math.pi)


def arccos_kernel_series_coefficients(n_terms: int) -> np.ndarray:
    r"""Taylor coefficients :math:`a_k` of :math:`\kappa(t) = \sum_k a_k t^k` (theory §2), ``k < n_terms``.

    :math:`a_0 = 1/(2\pi)`, :math:`a_1 = 1/4`, :math:`a_2 = 1/(4\pi)`, odd :math:`a_k = 0` for
    :math:`k\ge3`, :math:`a_{2n+2} = \binom{2n}{n} / (2\pi\,4^n (2n+1)(2n+2))`.

    Examples
    --------
    >>> a = arccos_kernel_series_coefficients(6)
    >>> bool(np.isclose(a[4], 1 / (2 * np.pi * 4 * 3 * 4) * 2))
    True
    """
    n_terms = check_positive_int(n_terms, "n_terms", minimum=0)
    a = np.zeros(n_terms)
    if n_terms > 0:
        a[0] = _INV_2PI
    if n_terms > 1:
        a[1] = 0.25
    if n_terms > 2:
        a[2] = 1.0 / (4.0 * math.pi)
    n = 1
    while 2 * n + 2 < n_terms:
        # log-space to avoid overflow of the binomial at large n
        log_c = math.lgamma(2 * n + 1) - 2 * math.lgamma(n + 1) - n * math.log(4.0)
        a[2 * n + 2] = math.exp(log_c) / (2 * math.pi * (2 * n + 1) * (2 * n + 2))
        n += 1
    return a

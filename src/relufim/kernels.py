r"""The degree-1 arc-cosine kernel :math:`\kappa` of ReLU, evaluated with care.

DESIGN §2: for unit vectors at angle :math:`\theta` (:math:`t = \cos\theta`),

.. math::  E_x[\mathrm{ReLU}(u\cdot x)\,\mathrm{ReLU}(v\cdot x)] = \kappa(t)
           = \frac{\sqrt{1-t^2} + (\pi - \arccos t)\,t}{2\pi}.

Near :math:`t=-1` the value is :math:`\approx\delta^3/(6\pi)` with :math:`\delta = \pi-\theta`,
and both ``arccos`` and the sum above lose relative accuracy; there we take
:math:`\delta` from :math:`\|u+v\| = 2\sin(\delta/2)` and sum the series
:math:`\sin\delta - \delta\cos\delta = \delta^3/3 - \delta^5/30 + \delta^7/840 - \dots`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "arccos_kernel",
    "arccos_kernel_from_angle_complement",
    "arccos_kernel_series_coefficients",
    "ANTIPARALLEL_THRESHOLD",
    "two_pi_kappa_tile",
    "two_pi_kappa_from_sum_norm",
]

_INV_2PI = 1.0 / (2.0 * math.pi)

#: Cosines below this are recomputed from ``||u + v||`` (rare for random weights).
ANTIPARALLEL_THRESHOLD = -0.99


def arccos_kernel(t: np.ndarray | float) -> np.ndarray:
    r"""Elementwise :math:`\kappa(t)` for cosines ``t`` (clipped to [-1, 1]).

    Relatively accurate for the given ``t`` everywhere: for ``t < -0.5`` it sums the
    series in :math:`\delta = \arccos(-t)`. (When ``t`` is itself a rounded dot product,
    compute :math:`\delta` from the vectors, as :func:`relufim.fisher_matrix` does.)

    Examples
    --------
    >>> float(arccos_kernel(1.0)), round(float(arccos_kernel(0.0)), 12)
    (0.5, 0.159154943092)
    >>> float(arccos_kernel(-1.0))
    0.0
    """
    t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
    # (1 - t)(1 + t) is exact-ish where 1 - t*t would round away the small difference near |t| = 1
    out = (np.sqrt((1.0 - t) * (1.0 + t)) + (np.pi - np.arccos(t)) * t) * _INV_2PI
    low = t < -0.5
    if np.any(low):
        # delta = pi - theta = arccos(-t) is relatively accurate; the odd series keeps kappa so too
        out = np.where(low, _sin_minus_x_cos(np.arccos(-np.where(low, t, -1.0))) * _INV_2PI, out)
    return out


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
    r""":math:`2\pi\kappa` of unit vectors ``u, v`` from :math:`s = \|u+v\| = 2\sin(\delta/2)`, relatively accurate near :math:`t=-1`.

    Examples
    --------
    >>> bool(np.isclose(two_pi_kappa_from_sum_norm(np.sqrt(2.0)), 2 * np.pi * float(arccos_kernel(0.0))))
    True
    """
    delta = 2.0 * np.arcsin(np.clip(np.asarray(s, dtype=np.float64) / 2.0, 0.0, 1.0))
    return arccos_kernel_from_angle_complement(delta) * (2.0 * math.pi)


def two_pi_kappa_tile(K: np.ndarray, Ua: np.ndarray, Ub: np.ndarray, scratch: np.ndarray,
                      scratch2: np.ndarray) -> None:
    r"""Overwrite a tile of cosines ``K = Ua.T @ Ub`` (unit columns) with :math:`2\pi\kappa(K)`, in place.

    Nine elementwise passes with two scratch buffers of ``K``'s shape, no other temporaries;
    :math:`\sqrt{1-t^2}` is taken as :math:`\sqrt{(1-t)(1+t)}` (no cancellation near
    :math:`|t|=1`). Pairs with :math:`t <` ``ANTIPARALLEL_THRESHOLD`` are recomputed from
    :math:`\|u+v\|` (:func:`two_pi_kappa_from_sum_norm`); they are located only in the rare
    tiles whose minimum cosine is below the threshold. The factor :math:`1/(2\pi)` is left to
    the caller, who scales rows and columns anyway.

    Examples
    --------
    >>> U = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> K = U.T @ U
    >>> two_pi_kappa_tile(K, U, U, np.empty_like(K), np.empty_like(K))
    >>> bool(np.allclose(K / (2 * np.pi), arccos_kernel(U.T @ U)))
    True
    """
    pairs = np.nonzero(K < ANTIPARALLEL_THRESHOLD) if K.min() < ANTIPARALLEL_THRESHOLD else None
    np.clip(K, -1.0, 1.0, out=K)
    np.arccos(K, out=scratch)
    np.subtract(math.pi, scratch, out=scratch)  # pi - theta
    scratch *= K  # (pi - theta) t
    np.subtract(1.0, K, out=scratch2)
    K += 1.0
    K *= scratch2  # (1 - t)(1 + t)
    np.sqrt(K, out=K)
    K += scratch
    if pairs is not None:
        ii, jj = pairs
        K[ii, jj] = two_pi_kappa_from_sum_norm(np.linalg.norm(Ua[:, ii] + Ub[:, jj], axis=0))


def arccos_kernel_series_coefficients(n_terms: int) -> np.ndarray:
    r"""Taylor coefficients :math:`a_k` of :math:`\kappa(t) = \sum_k a_k t^k` (DESIGN §2), ``k < n_terms``.

    :math:`a_0 = 1/(2\pi)`, :math:`a_1 = 1/4`, :math:`a_2 = 1/(4\pi)`, odd :math:`a_k = 0` for
    :math:`k\ge3`, :math:`a_{2n+2} = \binom{2n}{n} / (2\pi\,4^n (2n+1)(2n+2))`.

    Examples
    --------
    >>> a = arccos_kernel_series_coefficients(6)
    >>> bool(np.isclose(a[4], 1 / (2 * np.pi * 4 * 3 * 4) * 2))
    True
    """
    a = np.zeros(int(n_terms))
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

r"""Activations and their dual kernels: the registry that ``fisher_matrix`` and friends use.

An :class:`Activation` knows its pointwise function ``phi`` and how to evaluate the
two-unit expectation :math:`E_x[\phi(w_i\cdot x)\,\phi(w_j\cdot x)]` for Gaussian ``x``
given the two column norms and their cosine (theory §2, §8).

* Positively 1-homogeneous activations use closed forms built from the arc-cosine
  kernel :math:`\kappa` of :mod:`relufim.kernels`: ReLU; leaky ReLU
  :math:`\phi(z) = \mathrm{relu}(z) - a\,\mathrm{relu}(-z)`, whose dual is
  :math:`r_1r_2[(1+a^2)\kappa(t) - 2a\,\kappa(-t)]`; and the absolute value (``a = -1``).
* ``erf`` has the closed form :math:`E[\mathrm{erf}(r_1z_1)\mathrm{erf}(r_2z_2)] =
  \frac2\pi\arcsin\frac{2r_1r_2t}{\sqrt{(1+2r_1^2)(1+2r_2^2)}}` (Williams 1997).
* Every other activation (softplus, GELU, tanh, a user's callable) is integrated
  numerically. Two engines were compared:

  - :func:`gauss_hermite_dual` — a direct tensor-product (2-D) Gauss–Hermite rule,
    :math:`\sum_{a,b}\omega_a\omega_b\,\phi(r_1z_a)\,\phi(r_2(tz_a+\sqrt{1-t^2}z_b))`
    (``64^2`` evaluations of ``phi`` per entry);
  - :func:`hermite_coefficients` and :func:`mehler_dual` — Mehler's formula
    :math:`\sum_n \hat c_n(r_1)\hat c_n(r_2)t^n` (theory §8), with the normalized Hermite
    coefficients :math:`\hat c_n(r) = E_z[\phi(rz)\mathrm{He}_n(z)]/\sqrt{n!}` computed once
    per column by the trapezoidal rule on a fine uniform grid, truncated where the Parseval
    tail bound :math:`|t|^{K+1}\sqrt{\tau_1\tau_2}` is below ``1e-13`` of the largest second
    moment. This is :meth:`Activation.dual` and what ``fisher_matrix`` uses: a few
    multiply-adds per entry and retained term.

  Why Mehler: measured absolute errors relative to :math:`\max E\phi(rz)^2` for one entry
  with norms ``(r, 1.1 r)`` and cosine ``t = 0.99`` (reference: nested adaptive
  Gauss–Kronrod quadrature, ``scipy.integrate.quad`` at 1e-13, and the closed form for erf):

  ==========  =====  ====================  ==========================
  activation  r      2-D Gauss–Hermite 64  Mehler (terms K, error)
  ==========  =====  ====================  ==========================
  softplus    0.1    2e-16                 K = 4,    1e-16
  softplus    1.0    0                     K = 28,   1.4e-14
  softplus    3.0    2.2e-08               K = 164,  4.8e-15
  gelu        1.0    3e-16                 K = 42,   6.5e-15
  gelu        3.0    1.9e-05               K = 199,  4.7e-13
  tanh        1.0    7.2e-09               K = 127,  4.7e-15
  tanh        3.0    1.9e-03               K = 199,  5.5e-08 (bound 5e-07, warned)
  erf         1.0    9.6e-13               K = 69,   3.9e-15
  erf         3.0    2.0e-03               K = 199,  1.1e-08
  ==========  =====  ====================  ==========================

  (``t = 0.3``: both engines <= 1e-10 at r <= 1; the direct rule's error grows with
  ``r`` because ``phi(r z)`` bends on the scale ``1/r``, which the trapezoidal rule of the
  coefficients resolves.) Cost for a whole ``p = 5000`` matrix (d = 10, 2 cores): the
  Mehler path takes 2–4 s at ``scale="1/p"`` (K <= 8) and 2–12 s at ``"1/d"``; the direct
  rule needs 4 096 evaluations of ``phi`` per entry, ~5e10 for the matrix.

Divergent integrals (e.g. :math:`\phi(z) = e^{z^2}` at :math:`r \ge 1/2`) are detected by
comparing the rule on :math:`|z|\le 38.5` with the rule on :math:`|z|\le 19` (and overflow),
unresolved ones by comparing steps ``h`` and ``2h``; both raise a ``ValueError``.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import special

from .kernels import relu_family_kernel

__all__ = [
    "Activation",
    "get_activation",
    "known_activations",
    "register_activation",
    "leaky_relu",
    "relu_family",
    "activation_from_callable",
    "hermite_coefficients",
    "gaussian_second_moment",
    "mehler_dual",
    "mehler_truncation",
    "mehler_sum",
    "gauss_hermite_dual",
    "AccuracyWarning",
    "MEASURED_ERRORS",
]


@dataclass(frozen=True)
class Activation:
    """A pointwise activation with its dual kernel.

    Attributes
    ----------
    name : str
        Registry name (``"relu"``, ...).
    phi : callable
        ``phi(z)`` elementwise on arrays.
    dual : callable
        ``dual(r1, r2, t)`` -> ``E[phi(r1 z1) phi(r2 z2)]`` for standard Gaussians with
        correlation ``t``; broadcasts over its arguments.
    homogeneous : bool
        Positively 1-homogeneous (``phi(c z) = c phi(z)`` for ``c > 0``): then
        ``dual(r1, r2, t) = r1 r2 dual(1, 1, t)`` and the limit factors into radius x sphere.
    description : str
        One line for listings.
    params : dict
        Parameters (``{"a": 0.1}`` for leaky ReLU).
    unit_dual : callable or None
        For homogeneous activations, ``k(t) = dual(1, 1, t)`` (vectorized over ``t``).
    closed_form : bool
        ``dual`` is a closed form (not a quadrature).
    relu_slope : float or None
        The slope ``a`` when this is a member of the leaky-ReLU family (:func:`relu_family`),
        whose kernels the product engine evaluates in place; ``None`` otherwise.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray]
    dual: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    homogeneous: bool = False
    description: str = ""
    params: dict = field(default_factory=dict)
    unit_dual: Callable[[np.ndarray], np.ndarray] | None = None
    closed_form: bool = False
    relu_slope: float | None = None


# ----------------------------------------------------------------------------- quadrature machinery

#: Nodes per axis of the direct 2-D Gauss–Hermite rule (:func:`gauss_hermite_dual`).
DUAL_NODES = 64
#: One-dimensional Gaussian expectations use the trapezoidal rule on the uniform grid
#: ``z = j h``, ``|z| <= 38.5``, ``h = 1/32`` (2 465 nodes): for integrands analytic in a strip
#: of half-width ``a`` around the real axis its error is about ``exp(-2 pi a / h)`` (spectral
#: accuracy; Trefethen & Weideman, SIAM Review 2014), and it resolves Hermite polynomials up
#: to degree 200 and features of ``phi(r z)`` down to widths ``~ 1/r`` for ``r`` up to about 20.
TRAP_STEP = 1.0 / 32.0
TRAP_HALF_WIDTH = 38.5
#: Relative disagreement of the checks (half step count; half range) that declares a 1-D
#: integral divergent or unresolved.
CHECK_RTOL = 1e-7


@functools.lru_cache(maxsize=16)
def _gh_rule(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Hermite nodes and weights for ``E_{z~N(0,1)}`` (weights sum to 1)."""
    z, w = special.roots_hermitenorm(m)
    w = w / w.sum()
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


@functools.lru_cache(maxsize=1)
def _trap_rule() -> tuple[np.ndarray, np.ndarray]:
    """Trapezoidal nodes and weights for ``E_{z~N(0,1)}`` on the uniform grid (odd count, 0 in the middle)."""
    n = int(round(TRAP_HALF_WIDTH / TRAP_STEP))
    n += n % 2  # even half-count: every other node (step 2h) still includes z = 0 and both ends
    z = np.arange(-n, n + 1) * TRAP_STEP
    w = TRAP_STEP * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


@functools.lru_cache(maxsize=8)
def _normalized_hermite(n_terms: int) -> np.ndarray:
    r"""``H[q, n] = He_n(z_q)/\sqrt{n!}`` on the trapezoidal nodes, by the stable three-term recurrence."""
    z, _ = _trap_rule()
    H = np.empty((z.size, n_terms))
    H[:, 0] = 1.0
    if n_terms > 1:
        H[:, 1] = z
    for n in range(1, n_terms - 1):
        H[:, n + 1] = (z * H[:, n] - math.sqrt(n) * H[:, n - 1]) / math.sqrt(n + 1)
    H.setflags(write=False)
    return H


def _phi_on(phi: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return np.asarray(phi(x), dtype=np.float64)


def gaussian_second_moment(act: Activation | str, r: np.ndarray | float, *, check: bool = True) -> np.ndarray:
    r""":math:`E_z[\phi(rz)^2]`, :math:`z\sim N(0,1)`, for each norm ``r`` (the diagonal of ``J``).

    Closed form for homogeneous activations (:math:`r^2 k(1)`) and ``erf``; otherwise the
    trapezoidal rule of this module, checked twice: against the rule with twice the step
    (resolution) and against the rule restricted to :math:`|z|\le 19` (tails). A relative
    disagreement above ``1e-7`` or a non-finite value raises ``ValueError`` (a divergent or
    unresolved integral).

    Examples
    --------
    >>> float(gaussian_second_moment("relu", 2.0))
    2.0
    >>> round(float(gaussian_second_moment("tanh", 1.0)), 10)
    0.3942944904
    """
    act = get_activation(act)
    r = np.asarray(r, dtype=np.float64)
    if act.homogeneous or act.closed_form:
        return np.asarray(act.dual(r, r, np.ones_like(r)), dtype=np.float64)
    return _second_moment_quadrature(act, r, check=check)


def _second_moment_quadrature(act: Activation, r: np.ndarray, check: bool = True) -> np.ndarray:
    z, w = _trap_rule()
    flat = np.asarray(r, dtype=np.float64).reshape(-1)
    out = np.empty(flat.size)
    inner = np.abs(z) <= 0.5 * TRAP_HALF_WIDTH
    for lo in range(0, flat.size, 512):
        rr = flat[lo:lo + 512]
        with np.errstate(over="ignore", invalid="ignore"):
            V = _phi_on(act.phi, rr[:, None] * z) ** 2
            m2 = V @ w
            if check:
                coarse = V[:, ::2] @ (2.0 * w[::2])
                short = V[:, inner] @ w[inner]
                _raise_if_divergent(act, rr, m2, coarse, short)
        out[lo:lo + 512] = m2
    return out.reshape(np.shape(r))


def _raise_if_divergent(act: Activation, r: np.ndarray, m2: np.ndarray, coarse: np.ndarray,
                        short: np.ndarray) -> None:
    scale = np.maximum(np.abs(m2), 1e-300)
    bad_tail = ~np.isfinite(m2) | ~np.isfinite(short) | (np.abs(m2 - short) > CHECK_RTOL * scale)
    if np.any(bad_tail):
        r_bad = float(r[np.argmax(bad_tail)])
        raise ValueError(
            f"the Gaussian integral E[phi(r z)^2] of activation {act.name!r} diverges at column norm r = {r_bad:.4g}: "
            "phi grows too fast (e.g. like exp(z^2)) for its Gaussian moments to exist; use an activation with "
            "finite Gaussian second moments or smaller weights."
        )
    bad_res = ~np.isfinite(coarse) | (np.abs(m2 - coarse) > CHECK_RTOL * scale)
    if np.any(bad_res):
        r_bad = float(r[np.argmax(bad_res)])
        raise ValueError(
            f"the Gaussian integrals of activation {act.name!r} are not resolved at column norm r = {r_bad:.4g}: "
            f"phi(r z) varies on a scale finer than the quadrature step {TRAP_STEP:g}; rescale W (smaller norms)."
        )


#: Largest number of Hermite coefficients :func:`hermite_coefficients` computes.
MAX_HERMITE_TERMS = 200


def hermite_coefficients(act: Activation | str, r: np.ndarray | float, n_terms: int) -> np.ndarray:
    r"""Normalized Hermite coefficients :math:`\hat c_n(r) = E_z[\phi(rz)\,\mathrm{He}_n(z)]/\sqrt{n!}`.

    Mehler's formula (theory §8) then reads :math:`E[\phi(r_1z_1)\phi(r_2z_2)] =
    \sum_n \hat c_n(r_1)\hat c_n(r_2)\,t^n` and Parseval
    :math:`\sum_n \hat c_n(r)^2 = E\phi(rz)^2`.

    Parameters
    ----------
    act : Activation or str
    r : array_like
        Column norms (any shape).
    n_terms : int
        Number of coefficients ``n = 0 .. n_terms - 1`` (at most 200).

    Returns
    -------
    numpy.ndarray of shape ``r.shape + (n_terms,)``

    Notes
    -----
    The trapezoidal rule of this module (2 465 nodes); the normalized polynomials come
    from the stable recurrence :math:`h_{n+1} = (z h_n - \sqrt n\,h_{n-1})/\sqrt{n+1}`. The
    absolute error of each coefficient is about :math:`10^{-16}\sqrt{E\phi^2}` for smooth
    ``phi`` (non-smooth ``phi`` such as ReLU converge only algebraically: they use closed forms).

    Examples
    --------
    >>> c = hermite_coefficients("erf", 1.0, 4)
    >>> bool(abs(c[1] - 2 / np.sqrt(3 * np.pi)) < 1e-14)   # E[erf(z) z] = 2/sqrt(3 pi)
    True
    >>> bool(abs(c[0]) < 1e-15 and abs(c[2]) < 1e-15)         # erf is odd
    True
    """
    act = get_activation(act)
    n_terms = int(n_terms)
    if not 1 <= n_terms <= MAX_HERMITE_TERMS:
        raise ValueError(f"n_terms must be between 1 and {MAX_HERMITE_TERMS}, got {n_terms}.")
    r = np.asarray(r, dtype=np.float64)
    z, w = _trap_rule()
    H = _normalized_hermite(n_terms)
    flat = r.reshape(-1)
    out = np.empty((flat.size, n_terms))
    for lo in range(0, flat.size, 512):
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            F = _phi_on(act.phi, flat[lo:lo + 512, None] * z) * w
        if not np.all(np.isfinite(F)):
            raise ValueError(f"the Gaussian integrals of activation {act.name!r} diverge (phi(r z) overflows on the "
                             "quadrature grid); phi grows too fast, e.g. like exp(z^2).")
        out[lo:lo + 512] = F @ H
    return out.reshape(r.shape + (n_terms,))


#: Retained Mehler terms are capped here (the truncation bound is then reported, see
#: :class:`AccuracyWarning`).
MEHLER_MAX_TERMS = 200
#: Truncation target: retained terms make the Parseval tail below this times max E phi^2.
MEHLER_RTOL = 1e-13


def mehler_truncation(act: Activation, r: np.ndarray, *, rtol: float = MEHLER_RTOL,
                      max_terms: int = MEHLER_MAX_TERMS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Hermite coefficients of each norm, truncated where the Mehler tail is negligible.

    Returns ``(C, tail, m2)``: ``C`` of shape ``(len(r), K+1)``, the Parseval tails
    :math:`\tau_i = E\phi(r_iz)^2 - \sum_{n\le K}\hat c_n(r_i)^2 \ge 0` and the second moments
    ``m2`` (checked for divergence as in :func:`gaussian_second_moment`). The truncation
    error of an entry is bounded by Cauchy–Schwarz,
    :math:`|\sum_{n>K}\hat c_n(r_i)\hat c_n(r_j)t^n| \le |t|^{K+1}\sqrt{\tau_i\tau_j}`;
    ``K`` is the smallest order with :math:`\max_i\tau_i \le` ``rtol`` :math:`\max_i E\phi^2`
    (or ``max_terms - 1``).

    Examples
    --------
    >>> C, tail, m2 = mehler_truncation(get_activation("softplus"), np.array([0.1, 0.2]))
    >>> C.shape[1] < 10 and bool(np.all(tail <= 1e-13 * m2.max()))
    True
    """
    act = get_activation(act)
    r = np.asarray(r, dtype=np.float64).reshape(-1)
    z, w = _trap_rule()
    inner = np.abs(z) <= 0.5 * TRAP_HALF_WIDTH
    first = min(24, max_terms)
    H = _normalized_hermite(first)
    m2 = np.empty(r.size)
    C = np.empty((r.size, first))
    for lo in range(0, r.size, 512):
        rr = r[lo:lo + 512]
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            F = _phi_on(act.phi, rr[:, None] * z)
            V = F * F
            m2[lo:lo + 512] = V @ w
            _raise_if_divergent(act, rr, m2[lo:lo + 512], V[:, ::2] @ (2.0 * w[::2]), V[:, inner] @ w[inner])
            C[lo:lo + 512] = (F * w) @ H
    target = rtol * max(float(m2.max(initial=0.0)), 1e-300)
    for attempt in (0, 1):
        tails = np.maximum(m2[:, None] - np.cumsum(C * C, axis=1), 0.0)
        ok = np.nonzero(tails.max(axis=0, initial=0.0) <= target)[0]
        if ok.size or C.shape[1] >= max_terms or attempt == 1:
            K = int(ok[0]) if ok.size else C.shape[1] - 1
            return C[:, : K + 1].copy(), tails[:, K].copy(), m2
        C = hermite_coefficients(act, r, max_terms)
    raise AssertionError("unreachable")  # pragma: no cover


def mehler_sum(C1: np.ndarray, C2: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Horner evaluation of Mehler's series ``sum_n C1[..., n] C2[..., n] t^n`` (theory §8), broadcasting."""
    acc = np.zeros(np.broadcast_shapes(C1.shape[:-1], C2.shape[:-1], t.shape))
    for n in range(C1.shape[-1] - 1, -1, -1):
        acc *= t
        acc += C1[..., n] * C2[..., n]
    return acc


class AccuracyWarning(UserWarning):
    """A numerical result is less accurate than the library's usual target (the bound is in the message)."""


#: Mehler truncation bounds above this (relative to max E phi^2) trigger an :class:`AccuracyWarning`.
MEHLER_WARN_RTOL = 1e-10


def warn_if_truncated(act: Activation, bound: float, m2max: float, stacklevel: int = 3) -> None:
    """Warn when the Mehler truncation bound ``bound`` is above ``1e-10 * m2max``."""
    if bound > MEHLER_WARN_RTOL * max(m2max, 1e-300):
        warnings.warn(
            f"Mehler series for {act.name!r} truncated at {MEHLER_MAX_TERMS} terms: entries may be off by up to "
            f"{bound:.2g} (relative {bound / max(m2max, 1e-300):.2g}); the column norms are large for this "
            "activation (rescale W for full accuracy).", AccuracyWarning, stacklevel=stacklevel)


def mehler_dual(act: Activation | str, r1: np.ndarray | float, r2: np.ndarray | float,
                t: np.ndarray | float) -> np.ndarray:
    r"""Dual kernel by Mehler's series :math:`\sum_{n\le K}\hat c_n(r_1)\hat c_n(r_2)t^n` (broadcasting).

    ``K`` is chosen by :func:`mehler_truncation`; entries with ``r1 == r2`` and ``t = 1``
    take the second moment directly. The truncation error of each entry is at most
    :math:`|t|^{K+1}\sqrt{\tau_1\tau_2}`; an :class:`AccuracyWarning` reports it when it
    exceeds ``1e-10`` of the largest second moment (large norms with saturating ``phi``).

    Examples
    --------
    >>> a = get_activation("erf")
    >>> bool(abs(mehler_dual(a, 0.7, 1.2, 0.4) - a.dual(0.7, 1.2, 0.4)) < 1e-14)
    True
    """
    act = get_activation(act)
    r1, r2, t = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (r1, r2, t)))
    shape = r1.shape
    r1, r2, t = r1.reshape(-1), r2.reshape(-1), np.clip(t.reshape(-1), -1.0, 1.0)
    C, tail, m2 = mehler_truncation(act, np.concatenate([r1, r2]))
    n = r1.size
    out = mehler_sum(C[:n], C[n:], t)
    same = (r1 == r2) & (t == 1.0)
    out[same] = m2[:n][same]
    bound = np.abs(t) ** C.shape[1] * np.sqrt(tail[:n] * tail[n:])
    bound[same] = 0.0
    warn_if_truncated(act, float(bound.max(initial=0.0)), float(m2.max(initial=0.0)))
    return out.reshape(shape)


def gauss_hermite_dual(act: Activation | str, r1, r2, t, nodes: int = DUAL_NODES) -> np.ndarray:
    r"""Dual kernel by the direct tensor-product Gauss–Hermite rule (``nodes`` per axis).

    :math:`\sum_{a,b}\omega_a\omega_b\,\phi(r_1z_a)\,\phi(r_2(tz_a+\sqrt{1-t^2}z_b))`;
    ``nodes**2`` evaluations of ``phi`` per entry, so for a few entries at a time (an
    independent check of the Mehler series, and its fallback where that converges slowly).

    Examples
    --------
    >>> bool(abs(gauss_hermite_dual("erf", 0.5, 0.8, 0.3) - get_activation("erf").dual(0.5, 0.8, 0.3)) < 1e-15)
    True
    """
    act = get_activation(act)
    r1, r2, t = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (r1, r2, t)))
    shape = r1.shape
    a, b, c = r1.reshape(-1), r2.reshape(-1), np.clip(t.reshape(-1), -1.0, 1.0)
    z, w = _gh_rule(int(nodes))
    out = np.empty(a.size)
    chunk = max(1, 2_000_000 // (z.size * z.size))
    s = np.sqrt(np.maximum(1.0 - c * c, 0.0))
    for lo in range(0, a.size, chunk):
        sl = slice(lo, lo + chunk)
        f1 = _phi_on(act.phi, a[sl, None] * z)
        x2 = c[sl, None, None] * z[None, :, None] + s[sl, None, None] * z[None, None, :]
        f2 = _phi_on(act.phi, b[sl, None, None] * x2) @ w
        out[sl] = np.sum(f1 * f2 * w, axis=1)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"the Gaussian integral of activation {act.name!r} is not finite for these norms; "
                         "phi grows too fast (e.g. like exp(z^2)).")
    return out.reshape(shape)


# ----------------------------------------------------------------------------- the activations

def relu_family(a: float = 0.0) -> Activation:
    r"""The leaky-ReLU family :math:`\phi_a(z) = \max(z,0) + a\min(z,0)`: one parametrised closed form (theory §7).

    Unit dual :math:`k_a(t) = (1-a)^2\kappa(t) + a\,t` (:func:`relufim.model.kernels.relu_family_kernel`),
    dual :math:`r_1r_2\,k_a(t)`. ``a = 0`` is registered as ``"relu"``, ``a = -1`` as ``"abs"``,
    any other slope as ``"leaky-relu"`` (``a = 1`` is the identity).

    Examples
    --------
    >>> act = relu_family(1.0)
    >>> float(act.dual(2.0, 3.0, 0.5))   # identity: E[2 z1 * 3 z2] = 6 t
    3.0
    >>> relu_family(0.0).name, relu_family(-1.0).name, relu_family(0.1).name
    ('relu', 'abs', 'leaky-relu')
    """
    if isinstance(a, bool) or not isinstance(a, numbers.Real) or not math.isfinite(float(a)):
        raise TypeError(f"leaky ReLU slope a must be a finite real number, got {a!r}.")
    a = float(a)
    name = {0.0: "relu", -1.0: "abs"}.get(a, "leaky-relu")
    descriptions = {"relu": "max(z, 0); closed-form arc-cosine kernel",
                    "abs": "|z| = relu(z) + relu(-z); closed form (leaky ReLU with a = -1)"}

    def phi(z):
        z = np.asarray(z, dtype=np.float64)
        return np.maximum(z, 0.0) if a == 0.0 else np.where(z >= 0, z, a * z)

    def unit_dual(t):
        return relu_family_kernel(t, a)

    def dual(r1, r2, t):
        return np.asarray(r1, dtype=np.float64) * np.asarray(r2, dtype=np.float64) * unit_dual(t)

    return Activation(name, phi, dual, homogeneous=True,
                      description=descriptions.get(name, f"max(z, 0) + a min(z, 0) with a = {a:g}; closed form"),
                      params={} if name != "leaky-relu" else {"a": a}, unit_dual=unit_dual, closed_form=True,
                      relu_slope=a)


def leaky_relu(a: float = 0.01) -> Activation:
    r"""Leaky ReLU with slope ``a`` for negative inputs: :func:`relu_family` under the name ``"leaky-relu"``.

    Examples
    --------
    >>> leaky_relu(0.2).params
    {'a': 0.2}
    """
    act = relu_family(a)
    return act if act.name == "leaky-relu" else replace(act, name="leaky-relu", params={"a": act.relu_slope})


def _erf_dual(r1, r2, t):
    r1, r2, t = (np.asarray(v, dtype=np.float64) for v in (r1, r2, t))
    t = np.clip(t, -1.0, 1.0)
    arg = 2.0 * r1 * r2 * t / np.sqrt((1.0 + 2.0 * r1 * r1) * (1.0 + 2.0 * r2 * r2))
    return (2.0 / np.pi) * np.arcsin(np.clip(arg, -1.0, 1.0))


def _softplus(z):
    return np.logaddexp(0.0, np.asarray(z, dtype=np.float64))


def _gelu(z):
    z = np.asarray(z, dtype=np.float64)
    return z * special.ndtr(z)


def _numerical(name: str, phi, description: str, params: dict | None = None) -> Activation:
    holder: list[Activation] = []

    def dual(r1, r2, t):
        return mehler_dual(holder[0], r1, r2, t)

    dual.__doc__ = f"E[phi(r1 z1) phi(r2 z2)] for {name} by Mehler's series (see mehler_dual)."
    act = Activation(name, phi, dual, homogeneous=False, description=description, params=dict(params or {}))
    holder.append(act)
    return act


_REGISTRY: dict[str, Activation] = {}
_FACTORIES: dict[str, Callable[..., Activation]] = {"leaky-relu": leaky_relu}


def register_activation(act: Activation) -> Activation:
    """Add ``act`` to the registry (replacing one of the same name) and return it."""
    if not isinstance(act, Activation):
        raise TypeError(f"register_activation expects an Activation, got {type(act).__name__}.")
    _REGISTRY[act.name] = act
    return act


register_activation(relu_family(0.0))
register_activation(leaky_relu(0.01))
register_activation(relu_family(-1.0))
register_activation(_numerical("softplus", _softplus, "log(1 + e^z) (the 2022 paper); Gauss-Hermite / Mehler"))
register_activation(_numerical("gelu", _gelu, "z Phi(z) (exact GELU); Gauss-Hermite / Mehler"))
register_activation(_numerical("tanh", np.tanh, "tanh(z); Gauss-Hermite / Mehler"))
register_activation(Activation("erf", special.erf, _erf_dual, homogeneous=False,
                               description="erf(z); closed-form arcsine kernel", closed_form=True))


def known_activations() -> list[str]:
    """Names accepted by :func:`get_activation`, sorted.

    Examples
    --------
    >>> known_activations()
    ['abs', 'erf', 'gelu', 'leaky-relu', 'relu', 'softplus', 'tanh']
    """
    return sorted(_REGISTRY)


def activation_from_callable(func: Callable[[np.ndarray], np.ndarray], name: str | None = None) -> Activation:
    r"""Wrap a user function ``func(z)`` (vectorized over NumPy arrays) as an :class:`Activation`.

    Its dual is computed numerically (Gauss–Hermite; Mehler's series inside
    ``fisher_matrix``). ``func`` is called once on a small test array; it must return
    finite values of the same shape.

    Examples
    --------
    >>> act = activation_from_callable(lambda z: z**2, name="square")
    >>> round(float(act.dual(1.0, 1.0, 0.5)), 12)   # E[z1^2 z2^2] = 1 + 2 t^2
    1.5
    """
    if not callable(func):
        raise TypeError(f"activation must be a name, an Activation or a callable phi(z), got {func!r}.")
    label = name or getattr(func, "__name__", None) or "custom"
    if label == "<lambda>":
        label = "custom"
    probe = np.linspace(-3.0, 3.0, 7)
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(func(probe), dtype=np.float64)
    except Exception as exc:
        raise TypeError(f"activation callable {label!r} failed on a NumPy array: {exc}; "
                        "it must accept and return arrays (use numpy functions).") from exc
    if out.shape != probe.shape:
        raise ValueError(f"activation callable {label!r} must act elementwise: got shape {out.shape} for input "
                         f"shape {probe.shape}.")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"activation callable {label!r} returned non-finite values on [-3, 3].")

    def phi(z):
        return np.asarray(func(np.asarray(z, dtype=np.float64)), dtype=np.float64)

    return _numerical(label, phi, "user-supplied callable; Gauss-Hermite / Mehler")


def get_activation(activation: str | Activation | Callable, **params) -> Activation:
    """Look up an activation by name (case-insensitive), wrap a callable, or pass an :class:`Activation` through.

    Parameters
    ----------
    activation : str, Activation or callable
        A name from :func:`known_activations` (``"leaky-relu:0.1"`` sets the slope), an
        :class:`Activation`, or a function ``phi(z)`` on arrays.
    **params
        Parameters of parametrized activations: ``get_activation("leaky-relu", a=0.1)``.

    Raises
    ------
    ValueError
        for an unknown name, listing the known ones, or a bad parameter.
    TypeError
        for anything that is neither a name, an :class:`Activation` nor a callable.

    Examples
    --------
    >>> get_activation("Leaky_ReLU", a=0.2).params
    {'a': 0.2}
    >>> get_activation("leaky-relu:0.5").params
    {'a': 0.5}
    """
    if isinstance(activation, Activation):
        if params:
            raise ValueError("parameters can only be given with an activation name, not an Activation object.")
        return activation
    if not isinstance(activation, str):
        if callable(activation):
            if params:
                raise ValueError("parameters cannot be given with a callable activation.")
            return activation_from_callable(activation)
        raise TypeError(f"activation must be a name such as 'relu', an Activation or a callable phi(z), "
                        f"got {activation!r}.")
    key = activation.strip().lower().replace("_", "-")
    if ":" in key:
        key, _, arg = key.partition(":")
        if key not in _FACTORIES:
            raise ValueError(f"activation {key!r} takes no parameter; known activations: "
                             f"{', '.join(known_activations())}.")
        try:
            params = {"a": float(arg), **params}
        except ValueError:
            raise ValueError(f"bad parameter in activation {activation!r}: expected a number after ':'.") from None
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {activation!r}; known activations: {', '.join(known_activations())}.")
    if params:
        if key not in _FACTORIES:
            raise ValueError(f"activation {key!r} takes no parameters, got {sorted(params)}.")
        try:
            return _FACTORIES[key](**params)
        except TypeError as exc:
            raise ValueError(f"bad parameters for activation {key!r}: {exc}") from None
    return _REGISTRY[key]


#: Measured errors of the two numerical engines (table in the module docstring): activation ->
#: {norm r: (direct 2-D Gauss–Hermite 64x64, Mehler)} at t = 0.99, relative to max E phi^2.
MEASURED_ERRORS: dict = {
    "softplus": {0.1: (2e-16, 1e-16), 1.0: (0.0, 1.4e-14), 3.0: (2.2e-08, 4.8e-15)},
    "gelu": {1.0: (3e-16, 6.5e-15), 3.0: (1.9e-05, 4.7e-13)},
    "tanh": {1.0: (7.2e-09, 4.7e-15), 3.0: (1.9e-03, 5.5e-08)},
    "erf": {1.0: (9.6e-13, 3.9e-15), 3.0: (2.0e-03, 1.1e-08)},
}

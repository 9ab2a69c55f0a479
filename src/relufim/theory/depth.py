r"""Deep networks with fixed random hidden layers: the infinite-width limit at any depth and the predicted subspaces.

**The limit** (theory §14.2–14.3). As every inner width grows, a unit of layer ``l`` has the
covariance :math:`q_l(x,x')` of the layer recursion: the pre-activations of layer ``l`` are Gaussian
with covariance :math:`g_l\,q_{l-1}(x,x')` (:math:`g_1 = s_1`, :math:`q_0(x,x') = x\cdot x'`,
:math:`g_l = s_lp_{l-1}`: :attr:`relufim.model.network.Network.gains`), so
:math:`q_l = E[\phi(u)\phi(u')]` over that pair, the activation's dual kernel. The nonzero spectrum of
:math:`J` tends to that of the kernel operator :math:`p_L\,q_L` on :math:`L^2(N(0,I_d))`.

* *Homogeneous activations* (ReLU, leaky ReLU, abs) keep the form
  :math:`q_l = c_l\|x\|\|x'\|K_l(\hat x\cdot\hat x')` with :math:`K_l = \tilde k^{\circ l}`, the
  ``l``-fold composition of the normalized unit dual :math:`\tilde k = k/k(1)`, and
  :math:`c_l = k(1)^l\prod_{m\le l}g_m`. Degree ``k`` then has the single eigenvalue
  :math:`\lambda_k = p_Lc_L\,d\,\mu_k(K_L)`, multiplicity :math:`N(d,k)`, eigenfunctions
  :math:`\|x\|Y_k(\hat x)`; :math:`\mu_k(K_L)` is the Funk–Hecke coefficient of the composed kernel,
  computed by the one Funk–Hecke engine (:func:`relufim.model.harmonics.funk_hecke_coefficients`).
  The shares :math:`N(d,k)\mu_k(K_L)` sum to 1 (:math:`K_L(1) = 1`).
* *Other activations* (softplus, GELU, tanh, erf, callables) lose the radial factorization: the
  norms enter every layer nonlinearly. The kernel is still rotation invariant, so degree ``k``
  carries a *radial* operator with kernel :math:`p_L\,\mu_k[q_L(r,r',\cdot)]` on the law of
  :math:`r = \|x\|` (:math:`\chi_d`), as :mod:`relufim.theory.limit` does at one layer. It is
  computed on a grid: 48 generalized Gauss–Laguerre radii (the rule of :mod:`relufim.theory.limit`)
  times the Funk–Hecke angle nodes, each layer of the recursion by Mehler's series of the
  activation (:func:`relufim.model.activations.mehler_truncation`; closed forms where the
  registry has them). The largest eigenvalue of degree ``k`` is :math:`\lambda_k` (multiplicity
  :math:`N(d,k)`); the next ones are further levels of the same degree.

One hidden layer is delegated to :func:`relufim.limit_spectrum` (the closed forms of the leaky-ReLU
family, theory §7), so that ``L = 1`` reproduces it exactly.

**The predicted subspaces** (theory §14.5). The FIM is the Gram operator of :math:`v\mapsto f_v =
h_L(\cdot)\cdot v`; an eigenfunction :math:`\psi` of the kernel operator maps to the eigenvector
:math:`E_x[h_L(x)\psi(x)]` of :math:`J`. For the predicted eigenfunctions :math:`\|x\|`, :math:`x_l`
and the degree-2 forms :math:`x_ax_b/\|x\|`, :math:`(x_g^2 - \|x\|^2/d)/\|x\|`
(:func:`relufim.theory.predicted_eigenfunctions`, evaluated on the whitened inputs
:math:`z = x\Sigma^{-1/2}` when the inputs have covariance :math:`\Sigma`) these vectors are estimated
in the same streamed pass as :math:`J` (:func:`relufim.fim.deep.feature_moments`), with their
standard errors, and compared with the computed clusters by principal angles.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._validation import check_positive_int, check_sphere_dimension
from ..fim.deep import Progress, feature_moments
from ..model.activations import (
    MEHLER_MAX_TERMS,
    MEHLER_WARN_RTOL,
    AccuracyWarning,
    Activation,
    get_activation,
    mehler_sum,
    mehler_truncation,
)
from ..model.harmonics import check_degree, funk_hecke_coefficients, funk_hecke_quadrature, harmonic_multiplicity
from ..model.network import Network, check_layer_weights, check_widths, layer_variances, network, whitened_weights
from ..spectrum.result import SpectrumResult, n_top, predicted_cluster_sizes, principal_cosines
from .functions import predicted_eigenfunctions
from .limit import LimitDegree, limit_spectrum, radial_rule

__all__ = [
    "DepthDegree",
    "DepthLimit",
    "depth_limit_spectrum",
    "network_limit_spectrum",
    "composed_kernel",
    "top_fraction_by_depth",
    "PredictedSubspaces",
    "predicted_functions",
    "predicted_subspaces",
    "subspace_alignment",
]

#: Radial nodes of the non-homogeneous limit (the generalized Gauss–Laguerre rule of :mod:`relufim.theory.limit`).
RADIAL_NODES = 48
#: Radial nodes whose weight is below this fraction of the largest are dropped (see ``_nonhomogeneous_degrees``).
NEGLIGIBLE_WEIGHT = 1e-16
#: Outermost radial nodes the activation's quadrature cannot resolve may be dropped up to this total mass.
DROPPABLE_MASS = 1e-12


# ----------------------------------------------------------------------------- results

DepthDegree = LimitDegree
"""One harmonic degree of the depth-``L`` limit spectrum: :class:`~relufim.theory.limit.LimitDegree`, the one row
class of every limit spectrum (here ``mu = eigenvalue / trace``, the Funk–Hecke coefficient of the normalized
composed kernel K_L; theory §14.3)."""


@dataclass(frozen=True)
class DepthLimit:
    r"""Infinite-width FIM spectrum of a depth-``L`` network, one row per harmonic degree (theory §14.3).

    Attributes
    ----------
    d, depth : int
    widths : tuple of int or None
        The widths used (None where the limit does not depend on them).
    activation : str
    scale : str or None
        The weight convention (None for explicit variances).
    variances : tuple of float or None
    degrees : tuple of LimitDegree (``DepthDegree``)
    top_fraction : float
        :math:`F_L(d)`: share of the limit trace in degrees <= 2.
    trace : float
        :math:`\operatorname{tr}J` in the limit.
    method : str
    truncation_bound : float
        Non-homogeneous activations: a bound on the error of the Mehler series relative to the trace
        (an ``AccuracyWarning`` is raised above ``1e-10``); 0 for closed forms.
    """

    d: int
    depth: int
    widths: tuple[int, ...] | None
    activation: str
    scale: str | None
    variances: tuple[float, ...] | None
    degrees: tuple[LimitDegree, ...]
    top_fraction: float
    trace: float
    method: str
    truncation_bound: float = 0.0

    @property
    def eigenvalues(self) -> np.ndarray:
        """``lambda_k``, ``k = 0..kmax``."""
        return np.array([row.eigenvalue for row in self.degrees])

    @property
    def shares(self) -> np.ndarray:
        """Share of the trace per degree."""
        return np.array([row.share for row in self.degrees])

    @property
    def multiplicities(self) -> list[int]:
        return [row.multiplicity for row in self.degrees]

    def cluster_values(self) -> dict[str, float]:
        """``{"cluster1": lambda_0, "cluster2": lambda_1, "cluster3": lambda_2, "top_fraction": F_L}``."""
        return {"cluster1": self.degrees[0].eigenvalue, "cluster2": self.degrees[1].eigenvalue,
                "cluster3": self.degrees[2].eigenvalue, "top_fraction": self.top_fraction}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record.

        Keys ``d, depth, widths, activation, scale, variances, degrees [{k, multiplicity, eigenvalue, share,
        cumulative_share, cumulative_fraction, mu}], top_fraction, trace, method``.
        """
        return {"d": self.d, "depth": self.depth, "widths": None if self.widths is None else list(self.widths),
                "activation": self.activation, "scale": self.scale,
                "variances": None if self.variances is None else list(self.variances),
                "degrees": [row.to_dict() for row in self.degrees], "top_fraction": self.top_fraction,
                "trace": self.trace, "method": self.method, "truncation_bound": self.truncation_bound}


# ----------------------------------------------------------------------------- composed kernels

def _unit_dual(act: Activation) -> Callable[[np.ndarray], np.ndarray]:
    return act.unit_dual if act.unit_dual is not None else (lambda t: act.dual(1.0, 1.0, t))


def composed_kernel(t: np.ndarray | float, depth: int, activation: str | Activation = "relu") -> np.ndarray:
    r""":math:`K_L(t) = \tilde k^{\circ L}(t)`, the normalized dual of a homogeneous activation composed ``L`` times.

    :math:`\tilde k = k/k(1)` with the unit dual :math:`k(t) = E[\phi(u)\phi(u')]` of unit Gaussians
    with correlation ``t`` (theory §14.2); for ReLU :math:`\tilde k = 2\kappa`. :math:`K_L(1) = 1`.

    Examples
    --------
    >>> float(composed_kernel(1.0, 3)), round(float(composed_kernel(0.0, 1)), 12)   # 2 kappa(0) = 1/pi
    (1.0, 0.318309886184)
    >>> bool(np.isclose(composed_kernel(0.3, 2), composed_kernel(composed_kernel(0.3, 1), 1)))
    True
    """
    act = get_activation(activation)
    depth = check_positive_int(depth, "depth")
    if not act.homogeneous:
        raise ValueError(f"activation {act.name!r} is not homogeneous: its layer kernels depend on the norms of the "
                         "inputs, not on their cosine alone (use depth_limit_spectrum, which handles both).")
    k = _unit_dual(act)
    k1 = float(np.asarray(k(np.array(1.0))))
    out = np.asarray(t, dtype=np.float64)
    for _ in range(depth):
        out = np.clip(np.asarray(k(np.clip(out, -1.0, 1.0)), dtype=np.float64) / k1, -1.0, 1.0)
    return out


def _pair_dual(act: Activation, sigma: np.ndarray, corr: np.ndarray,
               omega: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``E[phi(u) phi(u')]`` for std ``sigma[i], sigma[j]`` and correlations ``corr[i, j, :]``.

    Also ``E phi(u)^2`` and a bound on the Mehler truncation error relative to the weighted second
    moment (0 for closed forms).
    """
    if act.closed_form:
        q = act.dual(sigma[:, None, None], sigma[None, :, None], corr)
        return np.asarray(q, dtype=np.float64), np.asarray(act.dual(sigma, sigma, np.ones_like(sigma))), 0.0
    C, tail, m2 = mehler_truncation(act, sigma)
    q = mehler_sum(C[:, None, None, :], C[None, :, None, :], corr)
    # Mehler's tail |t|^(K+1) sqrt(tau_i tau_j) (theory §8) is a rank-one bound b b^T with b_i = sqrt(tau_i): on
    # L^2 of the radius law it moves the operator by at most max|t|^(K+1) sum_i omega_i tau_i
    bound = float(np.max(np.abs(corr))) ** C.shape[1] * float(omega @ tail)
    return q, m2, bound / max(float(omega @ m2), 1e-300)


def _layer_recursion(act: Activation, gains: Sequence[float], r: np.ndarray, omega: np.ndarray,
                     t: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    r"""Layer kernels on a grid: ``Q[i, j, a] = q_L(r_i, r_j, t_a)`` and the diagonal ``V[i] = q_L(x, x)``.

    Layer 1: pre-activation standard deviations :math:`\sqrt{g_1}r_i`, correlation :math:`t`. Layer
    ``l``: :math:`\sqrt{g_lV_{l-1}[i]}` and correlation :math:`Q_{l-1}/\sqrt{V_{l-1}[i]V_{l-1}[j]}`
    (theory §14.2). Also returns the largest relative Mehler truncation bound over the layers.
    """
    sigma = math.sqrt(gains[0]) * r
    corr = np.broadcast_to(t, (r.size, r.size, t.size))
    Q, V, worst = _pair_dual(act, sigma, corr, omega)
    for g in gains[1:]:
        Vs = np.where(V > 0, V, 1.0)
        corr = np.clip(Q / np.sqrt(Vs[:, None, None] * Vs[None, :, None]), -1.0, 1.0)
        sigma = np.sqrt(g * np.maximum(V, 0.0))
        Q, V, bound = _pair_dual(act, sigma, corr, omega)
        worst = max(worst, bound)
    return Q, V, worst


def _nonhomogeneous_degrees(act: Activation, d: int, kmax: int, gains: Sequence[float],
                            p_last: int) -> tuple[np.ndarray, list[tuple[float, ...]], float, float]:
    """Top eigenvalue and further levels of each degree's radial operator, the limit trace and the error bound.

    Radial nodes of relative weight below ``NEGLIGIBLE_WEIGHT`` are dropped (they carry a mass below 1e-17;
    removing a node of weight w moves the eigenvalues by O(w), relative). Where the activation's quadrature
    cannot resolve the pre-activation scale of the outermost radii, those radii are dropped too as long as
    their total mass stays below ``DROPPABLE_MASS``; the dropped mass is added to the error bound.
    """
    r, omega = radial_rule(d, 1, 1.0, RADIAL_NODES)  # ||x|| for x ~ N(0, I_d)
    keep = omega >= NEGLIGIBLE_WEIGHT * omega.max()
    dropped = float(omega[~keep].sum())
    r, omega = r[keep], omega[keep]
    t, w, P = funk_hecke_quadrature(d, kmax)
    while True:
        try:
            Q, V, bound = _layer_recursion(act, gains, r, omega, t)
            break
        except ValueError as exc:
            if r.size > 2 and dropped + omega[-1] <= DROPPABLE_MASS:
                dropped += float(omega[-1])
                r, omega = r[:-1], omega[:-1]
                continue
            raise ValueError(f"the layer recursion of activation {act.name!r} needs pre-activation scales its "
                             f"Gaussian quadrature cannot resolve (input radius {r[-1]:.3g}, layer gains "
                             f"{[round(g, 4) for g in gains]}): {exc} Use smaller entry variances (scale=...)."
                             ) from None
    bound += dropped
    if bound > MEHLER_WARN_RTOL:
        warnings.warn(f"the depth limit of {act.name!r} may be off by up to {bound:.2g} of the trace (Mehler series "
                      f"truncated at {MEHLER_MAX_TERMS} terms, or outer radii dropped: large pre-activation scales "
                      "for this activation).", AccuracyWarning, stacklevel=4)
    K = np.moveaxis((Q * w) @ P.T, -1, 0)  # K[k, i, j] = mu_k[q_L(r_i, r_j, .)], every pair in one product
    sw = np.sqrt(omega)
    top, radial = np.empty(kmax + 1), []
    for k in range(kmax + 1):
        A = p_last * sw[:, None] * K[k] * sw[None, :]
        ev = np.sort(np.linalg.eigvalsh(0.5 * (A + A.T)))[::-1]
        ev = np.clip(ev, 0.0, None)
        top[k] = ev[0]
        radial.append(tuple(float(x) for x in ev[1:4]))
    trace = float(p_last * (omega @ V))
    return top, radial, trace, bound


# ----------------------------------------------------------------------------- the limit spectrum

def _from_limit_spectrum(net: Network | None, d: int, kmax: int, act: Activation, scale: Any,
                         widths: tuple[int, ...] | None) -> DepthLimit:
    """One hidden layer: :func:`limit_spectrum` itself (so that L = 1 reproduces it exactly)."""
    s = None if net is None else net.variances[0]
    if isinstance(scale, str) and scale in ("1/p", "1/width"):
        lim = limit_spectrum(d, kmax, act, "1/p", None if widths is None else widths[0])
    elif isinstance(scale, str) and scale == "1/d":
        lim = limit_spectrum(d, kmax, act, "1/d", None if widths is None else widths[0])
    else:
        lim = limit_spectrum(d, kmax, act, s, None if widths is None else widths[0])
    trace = float(lim.trace)
    rows = tuple(replace(row, mu=row.eigenvalue / trace) for row in lim.degrees)  # mu normalized by the trace
    return DepthLimit(d=d, depth=1, widths=widths, activation=act.name,
                      scale=scale if isinstance(scale, str) else None,
                      variances=None if net is None else net.variances, degrees=rows, top_fraction=lim.top_fraction,
                      trace=trace, method=f"one hidden layer: {lim.method} (relufim.limit_spectrum)")


def _width_free_factor(act: Activation, depth: int, scale: str) -> float:
    r""":math:`p_Lc_L` of a homogeneous activation under a width-free convention (theory §14.4)."""
    k1 = float(np.asarray(_unit_dual(act)(np.array(1.0))))
    if scale == "1/width":
        return k1 ** depth
    return k1 ** depth * 2.0 ** (depth - 1)  # "1/p": (2/d) 2^(L-2) (d/p_L) p_L k(1)^L


def depth_limit_spectrum(d: int = 10, depth: int = 1, kmax: int = 12, activation: str | Activation = "relu", *,
                         scale: str | float | Sequence[float] = "1/p",
                         widths: int | Sequence[int] | None = None) -> DepthLimit:
    r"""Infinite-width FIM spectrum of a network with ``depth`` random hidden layers, per harmonic degree (theory §14).

    Parameters
    ----------
    d : int
        Input dimension (>= 2).
    depth : int
        Number of hidden layers ``L`` (>= 1).
    kmax : int
        Largest harmonic degree.
    activation : str, Activation or callable
        Any activation of the registry.
    scale : {"1/p", "he", "1/d", "1/width"}, float or sequence
        The weight convention of :func:`relufim.model.network.network`.
    widths : int or sequence of int, optional
        Hidden widths (an int: every layer that wide). Needed where the limit depends on them:
        non-homogeneous activations, and the conventions ``"he"``, ``"1/d"`` and explicit variances
        (their eigenvalues grow with :math:`p_L`). With ReLU and the default convention
        :math:`\lambda_k = \tfrac d2\mu_k(K_L)` at every depth and width.

    Returns
    -------
    DepthLimit
        ``degrees``: ``k``, ``multiplicity`` :math:`N(d,k)`, ``eigenvalue`` :math:`\lambda_k`, ``share``,
        ``cumulative_share``, ``mu``; ``top_fraction`` :math:`F_L(d)`.

    Examples
    --------
    >>> lim = depth_limit_spectrum(d=10, depth=2, kmax=4)
    >>> [row.multiplicity for row in lim.degrees]
    [1, 10, 54, 210, 660]
    >>> round(lim.top_fraction, 4), lim.degrees[3].eigenvalue > 0   # odd degree 3 appears at L = 2
    (0.9489, True)
    >>> depth_limit_spectrum(d=10, depth=1, kmax=4).eigenvalues.tolist() == \
    ...     __import__("relufim").limit_spectrum(d=10, kmax=4).eigenvalues.tolist()
    True
    """
    d = check_sphere_dimension(d)
    depth = check_positive_int(depth, "depth")
    if widths is None:
        return _limit(None, d, depth, kmax, get_activation(activation), scale, None)
    widths = check_widths(widths if not isinstance(widths, int) or isinstance(widths, bool) else (widths,) * depth)
    if len(widths) != depth:
        raise ValueError(f"widths has {len(widths)} layers but depth = {depth}; give one width per layer (or one int "
                         "for all).")
    net = network(d, widths, activation, scale)
    return _limit(net, d, depth, kmax, net.activation, scale, widths)


def network_limit_spectrum(net: Network, kmax: int = 12) -> DepthLimit:
    """:func:`depth_limit_spectrum` of a :class:`~relufim.model.network.Network` (its widths, variances, activation).

    Examples
    --------
    >>> from relufim.model.network import network
    >>> lim = network_limit_spectrum(network(10, [2000, 2000, 1000]), kmax=2)
    >>> round(lim.trace, 12)   # d/2 at every depth under the default convention
    5.0
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a Network (relufim.model.network.network(d, widths)), got {type(net).__name__}.")
    scale = net.scale if net.scale is not None else list(net.variances)
    return _limit(net, check_sphere_dimension(net.d), net.depth, kmax, net.activation, scale, net.widths)


def _limit(net: Network | None, d: int, depth: int, kmax: int, act: Activation, scale: Any,
           widths: tuple[int, ...] | None) -> DepthLimit:
    kmax_out = check_degree(kmax)
    kmax = max(kmax_out, 2)
    key = scale.strip().lower().replace(" ", "") if isinstance(scale, str) else scale
    if net is None:
        layer_variances(d, (1,) * depth, key)  # validates the convention
        if not (act.homogeneous and isinstance(key, str) and key in ("1/p", "1/width")):
            why = (f"activation {act.name!r} is not homogeneous: the layer kernels depend on the pre-activation "
                   "scales, which depend on the widths" if not act.homogeneous else
                   f"under scale={scale!r} the eigenvalues grow with the last width p_L")
            raise ValueError(f"{why}; pass widths=(p_1, ..., p_L) (an int for equal widths; CLI: --p).")
    if depth == 1:
        res = _from_limit_spectrum(net, d, kmax, act, key, widths)
        return _truncate(res, kmax_out)
    mult = np.array([harmonic_multiplicity(d, k) for k in range(kmax + 1)], dtype=float)
    radial: list[tuple[float, ...]] = [()] * (kmax + 1)
    error_bound = 0.0
    if act.homogeneous:
        mu = funk_hecke_coefficients(lambda t: composed_kernel(t, depth, act), d, kmax)
        if net is None:
            factor = _width_free_factor(act, depth, key)
        else:
            k1 = float(np.asarray(_unit_dual(act)(np.array(1.0))))
            factor = net.widths[-1] * k1 ** depth * math.prod(net.gains)
        trace = factor * d
        eig = trace * mu
        shares = mult * mu
        method = (f"Funk-Hecke quadrature of the {depth}-fold composed normalized dual "
                  f"(closed-form {act.name} dual per layer)")
    else:
        eig, radial, trace, error_bound = _nonhomogeneous_degrees(act, d, kmax, net.gains, net.widths[-1])
        mu = eig / trace
        shares = mult * mu
        method = (f"top eigenvalue of each degree's radial operator: layer recursion on {RADIAL_NODES} Gauss-Laguerre "
                  "radii x the Funk-Hecke angle nodes, Mehler's series per layer")
    cum = np.cumsum(shares)
    rows = tuple(LimitDegree(k=k, multiplicity=int(mult[k]), eigenvalue=float(eig[k]), mu=float(mu[k]),
                             share=float(shares[k]), cumulative_share=float(cum[k]), radial_eigenvalues=radial[k])
                 for k in range(kmax_out + 1))
    return DepthLimit(d=d, depth=depth, widths=widths, activation=act.name,
                      scale=key if isinstance(key, str) else None,
                      variances=None if net is None else net.variances, degrees=rows, top_fraction=float(cum[2]),
                      trace=float(trace), method=method, truncation_bound=error_bound)


def _truncate(res: DepthLimit, kmax: int) -> DepthLimit:
    if len(res.degrees) == kmax + 1:
        return res
    return DepthLimit(**{**res.__dict__, "degrees": res.degrees[:kmax + 1]})


def top_fraction_by_depth(d: int, depths: Iterable[int], activation: str | Activation = "relu", *,
                          scale: str | float = "1/p", width: int | None = None) -> np.ndarray:
    r""":math:`F_L(d)`, the limit share of the trace in harmonic degrees <= 2, for each depth ``L`` in ``depths``.

    ``width`` (every hidden layer that wide) is needed where :func:`depth_limit_spectrum` needs widths.

    Examples
    --------
    >>> top_fraction_by_depth(10, [1, 2, 3]).round(4).tolist()
    [0.9839, 0.9489, 0.9327]
    """
    arr = np.asarray(list(depths) if not isinstance(depths, np.ndarray) else depths)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"depths must be a non-empty 1-D sequence of depths, got shape {arr.shape}.")
    if width is not None:
        width = check_positive_int(width, "width")
    return np.array([depth_limit_spectrum(d, check_positive_int(L, "depth"), 2, activation, scale=scale,
                                          widths=width).top_fraction for L in arr.tolist()])


# ----------------------------------------------------------------------------- predicted subspaces

def predicted_functions(x: np.ndarray, whitening: np.ndarray | None = None) -> np.ndarray:
    r"""The predicted eigenfunctions of the three clusters on inputs ``x`` (n, d), side by side: ``(n, d(d+3)/2)``.

    Columns: :math:`\|z\|`, then :math:`z_l` (``d``), then the degree-2 forms
    (:func:`relufim.theory.predicted_eigenfunctions`), of :math:`z = x\,` ``whitening`` (the whitened
    inputs :math:`x\Sigma^{-1/2}` for inputs of covariance :math:`\Sigma`; ``x`` itself by default).

    Examples
    --------
    >>> predicted_functions(np.ones((4, 3))).shape
    (4, 9)
    """
    x = np.asarray(x, dtype=np.float64)
    z = x if whitening is None else x @ whitening
    return np.hstack(predicted_eigenfunctions(z))


@dataclass(frozen=True)
class PredictedSubspaces:
    r"""The vectors :math:`E_x[h_L(x)\psi(x)]` of the three predicted clusters, with their standard errors.

    Attributes
    ----------
    vectors : tuple of three arrays (p_L, m_k)
        For :math:`\psi = \|x\|` (``m = 1``), :math:`x_l` (``m = d``) and the degree-2 forms
        (``m = d(d+1)/2 - 1``).
    stderr : tuple of three arrays
        Entrywise standard errors of the Monte Carlo (or empirical) means.
    gram : (p_L, p_L) or None
        The sampled :math:`J` of the same pass (None with ``gram=False``).
    gram_stderr : (p_L, p_L) or None
    n : int
    d : int
    source : str
    """

    vectors: tuple[np.ndarray, ...] = field(repr=False)
    stderr: tuple[np.ndarray, ...] = field(repr=False)
    gram: np.ndarray | None = field(repr=False)
    gram_stderr: np.ndarray | None = field(repr=False)
    n: int
    d: int
    source: str

    def relative_errors(self) -> list[float]:
        """``||stderr||_F / ||vectors||_F`` per cluster: the size of the sampling noise in each span."""
        return [float(np.linalg.norm(s) / max(np.linalg.norm(v), 1e-300)) for v, s in zip(self.vectors, self.stderr)]


def predicted_subspaces(weights: list[np.ndarray], *, n: int | None = None, x: np.ndarray | None = None,
                        seed: int | None = None, activation: str | Activation = "relu",
                        input_cov: np.ndarray | None = None, whiten: np.ndarray | None = None,
                        gram: bool = True, gram_stderr: bool = False,
                        progress: Progress | None = None) -> PredictedSubspaces:
    r"""The predicted cluster vectors :math:`E_x[h_L(x)\psi(x)]` and :math:`J`, in one streamed pass (theory §14.5).

    Give ``n`` (Monte Carlo over :math:`N(0,\Sigma)`, ``Sigma = input_cov``; the functions are
    evaluated on the whitened inputs :math:`x\Sigma^{-1/2}`) or ``x`` (the user's inputs; ``whiten``
    is an optional ``(d, d)`` matrix applied before the functions, e.g. :math:`\Sigma^{-1/2}` of the
    data's own covariance). ``gram=False`` skips :math:`J` (``gram`` is then None), which costs ``p_L^2`` per
    input, when it is known otherwise (one hidden layer: Lemma 1).

    Examples
    --------
    >>> from relufim.model.network import network
    >>> ps = predicted_subspaces(network(3, [200, 100]).sample(0), n=4000, seed=1)
    >>> [v.shape for v in ps.vectors]
    [(100, 1), (100, 3), (100, 5)]
    """
    weights = check_layer_weights(weights)
    d = weights[0].shape[0]
    white = None
    if n is not None:
        if whiten is not None:
            raise ValueError("whiten is for your inputs x; with n the Monte Carlo inputs are whitened by "
                             "input_cov^(-1/2) automatically.")
        if input_cov is not None:
            # x = z Sigma^(1/2) with z ~ N(0, I): the same features from z through the whitened weights (theory
            # §14.6), and the functions then see the whitened inputs z themselves
            weights, input_cov = whitened_weights(weights, input_cov), None
    elif whiten is not None:
        white = np.asarray(whiten, dtype=np.float64)
        if white.shape != (d, d):
            raise ValueError(f"whiten must be a ({d}, {d}) matrix, got shape {white.shape}.")
    mom = feature_moments(weights, n=n, x=x, seed=seed, activation=activation, input_cov=input_cov,
                          functions=lambda chunk: predicted_functions(chunk, white), stderr=gram and gram_stderr,
                          cross_stderr=True, gram=gram, progress=progress)
    sizes = predicted_cluster_sizes(d)
    cuts = np.cumsum((0,) + sizes)
    vectors = tuple(mom.cross[:, cuts[i]:cuts[i + 1]] for i in range(3) if sizes[i] > 0)
    errs = tuple(mom.cross_stderr[:, cuts[i]:cuts[i + 1]] for i in range(3) if sizes[i] > 0)
    return PredictedSubspaces(vectors=vectors, stderr=errs, gram=mom.gram, gram_stderr=mom.gram_stderr, n=mom.n, d=d,
                              source=mom.source)


def subspace_alignment(result: SpectrumResult, vectors: Sequence[np.ndarray]) -> dict[str, Any]:
    r"""How the computed top eigenvectors sit against the predicted cluster subspaces (theory §14.5).

    The computed eigenpairs are cut at the predicted sizes :math:`1, d, d(d+1)/2-1`
    (:meth:`SpectrumResult.predicted_members`). For each cluster ``k``:

    * ``cosines``: principal cosines between the computed cluster's eigenvectors and the span of
      ``vectors[k]``; ``min_cosine`` the smallest (1 = identical spans);
    * ``captured``: the share of the predicted subspace that the top :math:`d(d+3)/2` computed
      eigenvectors capture, :math:`\|U^\top Q_k\|_F^2/\dim` (:math:`Q_k` an orthonormal basis of the
      predicted span, ``U`` the top eigenvectors; 1 = contained).

    Examples
    --------
    >>> import relufim as rf
    >>> from relufim.model.network import network
    >>> ps = predicted_subspaces(network(3, [300]).sample(0), n=20000, seed=1)
    >>> res = rf.matrix_spectrum(ps.gram, "clusters", d=3)
    >>> al = subspace_alignment(res, ps.vectors)
    >>> [round(c["captured"], 2) for c in al["clusters"]]
    [1.0, 1.0, 1.0]
    """
    if not isinstance(result, SpectrumResult) or result.eigenvectors is None or result.d is None:
        raise ValueError("result must be a SpectrumResult with eigenvectors and d (e.g. matrix_spectrum(J, "
                         "'clusters', d=d)).")
    members = result.predicted_members()
    total = n_top(result.d)
    if result.eigenvectors.shape[1] < total:
        raise ValueError(f"the result holds {result.eigenvectors.shape[1]} eigenvectors; the three clusters need "
                         f"{total} (k='clusters').")
    U = result.eigenvectors[:, :total]
    out = []
    for k, (idx, V) in enumerate(zip(members, vectors)):
        V = np.asarray(V, dtype=np.float64)
        Q, _ = np.linalg.qr(V)
        cos = principal_cosines(result.eigenvectors[:, idx], V)
        out.append({"cluster": k + 1, "size": int(len(idx)), "predicted_size": int(V.shape[1]),
                    "cosines": cos.tolist(), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                    "captured": float(np.sum((U.T @ Q) ** 2) / Q.shape[1])})
    sizes = [c.size for c in result.clusters][:3]
    return {"clusters": out, "detected_sizes": sizes, "predicted_sizes": list(predicted_cluster_sizes(result.d)),
            "sizes_match": sizes == [s for s in predicted_cluster_sizes(result.d) if s > 0]}

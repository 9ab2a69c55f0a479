r"""The neural tangent kernel (NTK) of ``f(x) = ReLU(xW)·v`` and its map to the FIM (theory §12).

With respect to the output weights ``v`` (the parameters the FIM is about) the NTK is
:math:`\Theta(x, x') = X(x)\cdot X(x')`, :math:`X(x) = \mathrm{ReLU}(xW)`. Writing
:math:`\Phi: v\mapsto f_v`, :math:`J = \Phi^*\Phi` and the kernel operator is
:math:`T_\Theta = \Phi\Phi^*`: the two share their nonzero eigenvalues, and a unit
eigenvector ``u`` of ``J`` maps to the unit eigenfunction :math:`X(\cdot)u/\sqrt\lambda`.

On ``n`` samples the same holds exactly between :math:`J^{(n)} = X^\top X/n` and the
Gram :math:`K/n = XX^\top/n`: :func:`fisher_ntk_map` computes both sides and checks it.

The full NTK (both layers; ``∂f/∂W_{lj} = v_j 1[w_j·x>0] x_l``) adds
:math:`(x\cdot x')\sum_j v_j^2\,1[w_j\cdot x>0]\,1[w_j\cdot x'>0]`.

Infinite width (derived, theory §7, §12): :math:`\Theta_\infty(x,x') = c\,\|x\|\|x'\|\,\kappa(\hat x\cdot\hat x')`
with :math:`c = p\,E\|w\|^2/d` (``c = 1`` for the default draw), whose Mercer decomposition in
:math:`L^2(N(0, I_d))` has eigenvalue :math:`\lambda_k = c\,d\,\mu_k` of multiplicity :math:`N(d,k)`
on the eigenfunctions :math:`\|x\|Y_k(\hat x)/\sqrt d`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .._validation import check_choice, check_inputs, check_positive_int, check_vector, check_weights
from ..fim.sampled import gaussian_input_chunks
from ..fim.series import series_features
from ..model.harmonics import (
    funk_hecke_coefficients,
    harmonic_multiplicity,
    relu_funk_hecke_coefficients,
    zonal_polynomial,
)
from ..model.kernels import arccos_kernel, step_kernel
from ..model.weights import Scale, expected_squared_norm
from ..spectrum.eigensolver import residual_norms
from ..spectrum.result import n_top, predicted_cluster_sizes, principal_cosines
from ..spectrum.solve import matrix_spectrum
from .functions import predicted_eigenfunctions

__all__ = [
    "FisherNTKMap",
    "NTKLimit",
    "fisher_ntk_map",
    "ntk_gram",
    "ntk_limit",
]


def _step_kernel_times_t(t: np.ndarray) -> np.ndarray:
    r""":math:`t\,\kappa_0(t)`: the zonal part of the full NTK's hidden-layer term (theory §12)."""
    return np.clip(t, -1.0, 1.0) * step_kernel(t)


# ----------------------------------------------------------------------------- finite width

def ntk_gram(W: np.ndarray, x: np.ndarray, x2: np.ndarray | None = None, v: np.ndarray | None = None,
             which: Literal["v", "full"] = "v") -> np.ndarray:
    r"""Finite-width NTK Gram matrix of :math:`f(x) = \mathrm{ReLU}(xW)\cdot v`.

    .. math::
        \Theta_v(x, x') = \sum_j \mathrm{ReLU}(w_j\cdot x)\,\mathrm{ReLU}(w_j\cdot x'),\qquad
        \Theta_{full} = \Theta_v + (x\cdot x')\sum_j v_j^2\,1[w_j\cdot x>0]\,1[w_j\cdot x'>0].

    Parameters
    ----------
    W : array (d, p)
    x : array (n, d)
    x2 : array (m, d), optional
        Second set of inputs (default ``x``).
    v : array (p,), required for ``which="full"``
    which : {"v", "full"}
        ``"v"``: the NTK of the output weights only (theory §12); ``"full"``: both layers.

    Returns
    -------
    numpy.ndarray (n, m)
        Not divided by ``n``; :math:`K/n` has the nonzero spectrum of :math:`J^{(n)}`.

    Examples
    --------
    >>> W = np.array([[1.0, -1.0]])
    >>> ntk_gram(W, np.array([[2.0], [-3.0]]))
    array([[4., 0.],
           [0., 9.]])
    >>> ntk_gram(W, np.array([[2.0]]), v=np.array([1.0, 3.0]), which="full")
    array([[8.]])
    """
    W = check_weights(W)
    d, p = W.shape
    x = check_inputs(x, d)
    x2 = x if x2 is None else check_inputs(x2, d, name="x2")
    check_choice(which, "which", ("v", "full"))
    Z1, Z2 = x @ W, x2 @ W
    K = np.maximum(Z1, 0.0) @ np.maximum(Z2, 0.0).T
    if which == "full":
        if v is None:
            raise ValueError("which='full' needs the output weights v of shape (p,).")
        v = check_vector(v, p, "v")
        S1 = (Z1 > 0) * (v * v)
        K += (x @ x2.T) * (S1 @ (Z2 > 0).T.astype(np.float64))
    return K


# ----------------------------------------------------------------------------- infinite width

@dataclass(frozen=True)
class NTKLimit:
    r"""Infinite-width NTK on given inputs and its Mercer decomposition by harmonic degree.

    Attributes
    ----------
    values : (n, m)
        :math:`\Theta_\infty(x_i, x'_j)`.
    degrees : (K+1,)
        ``0..max_degree``.
    components : (K+1, n, m)
        Degree-``k`` part :math:`\|x\|\|x'\| m_k N(d,k) P_k^{(d)}(\hat x\cdot\hat x')`.
    eigenvalues : (K+1,)
        Mercer eigenvalue of degree ``k`` in :math:`L^2(N(0,I_d))`, :math:`d\,m_k`
        (for ``which="v"``: :math:`\lambda_k = c\,d\,\mu_k`, the FIM limit eigenvalues).
    multiplicities : (K+1,)
        :math:`N(d,k)`.
    remainder : (n, m)
        ``values - components.sum(0)``: the degrees above ``max_degree``.
    """

    values: np.ndarray
    degrees: np.ndarray
    components: np.ndarray = field(repr=False)
    eigenvalues: np.ndarray
    multiplicities: np.ndarray
    remainder: np.ndarray = field(repr=False)
    which: str
    scale_factor: float

    def to_dict(self) -> dict[str, Any]:
        return {"which": self.which, "scale_factor": self.scale_factor,
                "degrees": self.degrees.tolist(), "eigenvalues": [float(e) for e in self.eigenvalues],
                "multiplicities": self.multiplicities.tolist(),
                "max_abs_remainder": float(np.abs(self.remainder).max())}


def ntk_limit(x: np.ndarray, x2: np.ndarray | None = None, which: Literal["v", "full"] = "v",
              scale: Scale = "1/p", d: int | None = None, *, p: int | None = None, v_sq_norm: float = 1.0,
              max_degree: int = 8) -> NTKLimit:
    r"""Infinite-width NTK :math:`\Theta_\infty` and its Mercer decomposition by degree (theory §12).

    .. math::
        \Theta_\infty(x,x') = c\,\|x\|\|x'\|\,\kappa(t)
        \;[+\;\|v\|^2 (x\cdot x')\,\kappa_0(t)\ \text{for "full"}],\qquad t = \hat x\cdot\hat x',

    with :math:`c = p\,E\|w\|^2/d` and :math:`\kappa_0(t) = (\pi-\arccos t)/(2\pi)`.

    Parameters
    ----------
    x, x2 : arrays (n, d), (m, d)
    which : {"v", "full"}
        ``"full"`` adds the hidden-layer term, whose limit assumes ``v`` independent of ``W``
        (e.g. i.i.d. entries) with :math:`\sum_j v_j^2 \to` ``v_sq_norm``.
    scale : {"1/p", "1/d", "unit"} or float
        Draw of ``W`` (as in :func:`relufim.sample_weights`). Only the default ``"1/p"`` has
        a ``p``-free limit (``c = 1``); the others need ``p`` (``c = p/d`` or ``p * variance``).
    d : int, optional
        Input dimension; checked against ``x`` if given.
    p : int, optional
        Width, needed for scales other than ``"1/p"``.
    v_sq_norm : float
        :math:`\|v\|^2` for ``which="full"``.
    max_degree : int
        Highest degree in the decomposition (``remainder`` holds the rest).

    Returns
    -------
    NTKLimit

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> lim = ntk_limit(x)
    >>> lim.values.round(6)   # kappa(1)=1/2 on the diagonal, kappa(0)=1/(2 pi) off it
    array([[0.5    , 0.31831],
           [0.31831, 2.     ]])
    >>> bool(np.allclose(lim.components.sum(0) + lim.remainder, lim.values))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, d), got {x.shape}.")
    dx = x.shape[1]
    if d is not None and check_positive_int(d, "d") != dx:
        raise ValueError(f"d = {d} does not match x of shape {x.shape}.")
    d = dx
    x = check_inputs(x, d)
    x2 = x if x2 is None else check_inputs(x2, d, name="x2")
    if which not in ("v", "full"):
        raise ValueError(f"which must be 'v' or 'full', got {which!r}.")
    max_degree = check_positive_int(max_degree, "max_degree", minimum=0)
    is_default = isinstance(scale, str) and scale.strip().replace(" ", "") == "1/p"
    if p is None and not is_default:
        raise ValueError(f"scale={scale!r} has no width-free limit: pass the width p (c = p E||w||^2 / d).")
    p_eff = 1 if p is None else check_positive_int(p, "p")
    c = p_eff * expected_squared_norm(d, p_eff, scale) / d

    r1, r2 = np.linalg.norm(x, axis=1), np.linalg.norm(x2, axis=1)
    rr = np.outer(r1, r2)
    safe = np.where(rr > 0, rr, 1.0)
    t = np.clip((x @ x2.T) / safe, -1.0, 1.0)
    values = c * rr * arccos_kernel(t)
    m = c * relu_funk_hecke_coefficients(d, max_degree)
    if which == "full":
        values = values + v_sq_norm * rr * _step_kernel_times_t(t)
        m = m + v_sq_norm * funk_hecke_coefficients(_step_kernel_times_t, d, max_degree)
    ks = np.arange(max_degree + 1)
    mult = np.array([harmonic_multiplicity(d, k) for k in ks])
    comps = np.stack([rr * m[k] * mult[k] * zonal_polynomial(k, d, t) for k in ks])
    return NTKLimit(values=values, degrees=ks, components=comps, eigenvalues=d * m, multiplicities=mult,
                    remainder=values - comps.sum(axis=0), which=which, scale_factor=float(c))


# ----------------------------------------------------------------------------- FIM <-> NTK

@dataclass(frozen=True)
class FisherNTKMap:
    r"""Eigenpairs of :math:`J^{(n)} = X^\top X/n` and of the NTK Gram :math:`K/n = XX^\top/n`, side by side.

    Attributes
    ----------
    fim_eigenvalues, ntk_eigenvalues : (k,)
        Top ``k`` eigenvalues of each side (descending).
    fim_vectors : (p, k), ntk_vectors : (n, k)
        Unit eigenvectors.
    eigenvalue_rel_diff : (k,)
        :math:`|\lambda^{FIM}_i - \lambda^{NTK}_i|/\lambda^{FIM}_1`.
    mapped_residuals : (k,)
        :math:`\|(K/n)a_i - \lambda_i a_i\|/\lambda_1` for :math:`a_i = Xu_i/\sqrt{n\lambda_i}` (FIM -> NTK).
    back_residuals : (k,)
        :math:`\|J^{(n)}b_i - \lambda_i b_i\|/\lambda_1` for :math:`b_i = X^\top a^{NTK}_i/\sqrt{n\lambda_i}`
        (NTK -> FIM).
    mapped_norms : (k,)
        :math:`\|a_i\|` (1 for an exact map).
    cluster_cosines : list of arrays
        Principal cosines, per cluster, between the mapped FIM eigenvectors and the NTK eigenvectors.
    """

    fim_eigenvalues: np.ndarray
    ntk_eigenvalues: np.ndarray
    fim_vectors: np.ndarray = field(repr=False)
    ntk_vectors: np.ndarray = field(repr=False)
    eigenvalue_rel_diff: np.ndarray = field(repr=False)
    mapped_residuals: np.ndarray = field(repr=False)
    back_residuals: np.ndarray = field(repr=False)
    mapped_norms: np.ndarray = field(repr=False)
    cluster_sizes: tuple[int, ...]
    cluster_cosines: list = field(repr=False)
    n: int
    p: int
    d: int
    x: np.ndarray = field(repr=False, default=None)

    def captured_fractions(self, g: np.ndarray | Callable[[np.ndarray], np.ndarray]) -> list[float]:
        r"""Share of a function's energy on the samples in each cluster's NTK eigenspace.

        ``g`` is a callable of the inputs ``(n, d)`` or its ``(n,)`` values on the samples;
        returns :math:`\sum_{i\in C}(a_i^\top g)^2/\|g\|^2` per cluster.
        """
        vals = np.asarray(g(self.x) if callable(g) else g, dtype=np.float64).reshape(-1)
        if vals.shape != (self.n,):
            raise ValueError(f"g must give {self.n} values (one per sample), got shape {vals.shape}.")
        norm2 = float(vals @ vals)
        coef = self.ntk_vectors.T @ vals
        bounds = np.cumsum((0,) + self.cluster_sizes)
        return [float(np.sum(coef[lo:hi] ** 2) / norm2) if norm2 > 0 else 0.0
                for lo, hi in zip(bounds[:-1], bounds[1:])]

    @property
    def max_discrepancy(self) -> float:
        r"""Largest of the eigenvalue differences and residuals (relative to :math:`\lambda_1`)."""
        return float(max(self.eigenvalue_rel_diff.max(), self.mapped_residuals.max(), self.back_residuals.max(),
                         np.abs(self.mapped_norms - 1).max()))

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "p": self.p, "d": self.d,
                "fim_eigenvalues": self.fim_eigenvalues.tolist(), "ntk_eigenvalues": self.ntk_eigenvalues.tolist(),
                "max_eigenvalue_rel_diff": float(self.eigenvalue_rel_diff.max()),
                "max_mapped_residual": float(self.mapped_residuals.max()),
                "max_back_residual": float(self.back_residuals.max()),
                "cluster_sizes": list(self.cluster_sizes),
                "min_cluster_cosine": [float(c.min()) for c in self.cluster_cosines],
                "max_discrepancy": self.max_discrepancy}


def _top_pairs(A: np.ndarray | LinearOperator, k: int, X0: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` eigenpairs of a dense matrix (LAPACK) or an operator (block solver, failures in the residuals)."""
    method = "dense" if isinstance(A, np.ndarray) else "block"
    r = matrix_spectrum(A, k, method=method, X0=X0, tol=tol, maxiter=60)
    return r.eigenvalues, r.eigenvectors


def fisher_ntk_map(W: np.ndarray, n: int = 2000, seed: int | None = None, k: int | None = None,
                   x: np.ndarray | None = None, method: Literal["auto", "dense", "block"] = "auto",
                   tol: float = 1e-12) -> FisherNTKMap:
    r"""Eigenpairs of :math:`J^{(n)}` and of :math:`K/n` computed independently, mapped onto each other and compared.

    Both matrices are formed from the same hidden features :math:`X` (``n`` Gaussian inputs
    from ``seed``, the stream of :func:`relufim.monte_carlo_fisher`, or the given ``x``) and
    diagonalized separately (``method``). A unit eigenvector ``u`` of :math:`J^{(n)}` maps to
    :math:`a = Xu/\sqrt{n\lambda}` (the values on the samples of the unit eigenfunction
    :math:`X(\cdot)u/\sqrt\lambda`, scaled by :math:`1/\sqrt n`), and back with :math:`X^\top a/\sqrt{n\lambda}`.

    Parameters
    ----------
    W : array (d, p)
    n : int
        Number of samples (ignored when ``x`` is given).
    seed : int, optional
    k : int, optional
        Number of top eigenpairs (default: the three clusters, ``d(d+3)/2``, capped at ``min(n, p)``).
    x : array (n, d), optional
    method : {"auto", "dense", "block"}
        LAPACK on the dense ``p x p`` and ``n x n`` matrices, or the block Krylov solver on
        products with :math:`X` (never forming them); ``"auto"`` is dense up to 1500.
    tol : float
        Residual tolerance of the block solver, relative to :math:`\lambda_1`.

    Returns
    -------
    FisherNTKMap

    Examples
    --------
    >>> import relufim as rf
    >>> m = rf.fisher_ntk_map(rf.sample_weights(3, 200, seed=0), n=300, seed=1)
    >>> bool(m.max_discrepancy < 1e-9), m.cluster_sizes
    (True, (1, 3, 5))
    """
    W = check_weights(W)
    d, p = W.shape
    if x is None:
        n = check_positive_int(n, "n")
        x = np.vstack(list(gaussian_input_chunks(n, d, seed)))
    else:
        x = check_inputs(x, d)
        n = x.shape[0]
    check_choice(method, "method", ("auto", "dense", "block"))
    k = min(n_top(d), n, p) if k is None else check_positive_int(k, "k")
    if k > min(n, p):
        raise ValueError(f"k = {k} exceeds min(n, p) = {min(n, p)}, the rank of J^(n).")
    X = np.maximum(x @ W, 0.0)
    use_dense = method == "dense" or (method == "auto" and max(n, p) <= 1500)
    # both sides are diagonalized independently: the FIM side seeded with the degree-<=2 features of W
    # (theory §4, §9), the NTK side with the predicted eigenfunctions on the samples (theory §11-12)
    if use_dense:
        J_side, K_side = X.T @ X / n, X @ X.T / n
    else:
        fj, fk = (lambda V: X.T @ (X @ V) / n), (lambda V: X @ (X.T @ V) / n)
        J_side = LinearOperator((p, p), matvec=fj, matmat=fj, dtype=np.float64)
        K_side = LinearOperator((n, n), matvec=fk, matmat=fk, dtype=np.float64)
    lf, U = _top_pairs(J_side, k, series_features(W, 2), tol)
    ln, A = _top_pairs(K_side, k, np.hstack(predicted_eigenfunctions(x)), tol)
    scale = lf[0]
    safe_f = np.where(lf > 0, lf, np.inf)
    safe_n = np.where(ln > 0, ln, np.inf)
    Amap = X @ U / np.sqrt(n * safe_f)
    Bmap = X.T @ A / np.sqrt(n * safe_n)
    mapped_res = residual_norms(lambda V: X @ (X.T @ V) / n, lf, Amap) / scale
    back_res = residual_norms(lambda V: X.T @ (X @ V) / n, ln, Bmap) / scale
    sizes = predicted_cluster_sizes(d)
    bounds = np.cumsum((0,) + sizes)
    cosines = []
    used = []
    for i, s in enumerate(sizes):
        lo, hi = bounds[i], bounds[i + 1]
        if hi > k or s == 0:
            break
        cosines.append(principal_cosines(Amap[:, lo:hi], A[:, lo:hi]))
        used.append(s)
    return FisherNTKMap(fim_eigenvalues=lf, ntk_eigenvalues=ln, fim_vectors=U, ntk_vectors=A,
                        eigenvalue_rel_diff=np.abs(lf - ln) / scale, mapped_residuals=mapped_res,
                        back_residuals=back_res, mapped_norms=np.linalg.norm(Amap, axis=0),
                        cluster_sizes=tuple(used), cluster_cosines=cosines, n=n, p=p, d=d, x=x)

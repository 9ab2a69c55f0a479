r"""The eigenvectors of the FIM as functions of the input (theory §11; the 2025 papers).

A vector of output weights ``v`` is the function :math:`f_v(x) = \mathrm{ReLU}(xW)\cdot v`,
positively 1-homogeneous in ``x``, and the FIM is the Gram operator of this map:
:math:`u^\top J v = E_x[f_u(x) f_v(x)]` (:func:`fisher_inner_product`).

* :func:`function_forms` evaluates :math:`f_v` for the approximate eigenvectors of the theory
  and for the computed eigenvectors of each cluster, and compares them with the predicted
  limiting forms :math:`\|x\|\times` (spherical harmonics of degree 0, 1, 2).
* :func:`approximate_function` gives the exact :math:`L^2` projection of :math:`f_v` onto
  those degrees, :math:`A\|x\| + b^\top x + x^\top C x/\|x\|`, and its error
  :math:`v^\top J_{\ge4} v`.

Derived facts used here (checked in ``tests/test_functions.py`` against independent oracles):
with columns :math:`w_i = r_i u_i` and :math:`c = \|W\|_F/\sqrt d` (:math:`\approx\sqrt{pE\|w\|^2/d}`,
1 for the default draw), a unit vector of the form :math:`r\,Y_k(u)` maps, as :math:`p\to\infty`,
to :math:`\sqrt{\lambda_k}\,\|x\|Y_k(\hat x)/\sqrt d` with :math:`\lambda_k = c^2 d\,\mu_k`
(theory §7), and for Gaussian ``W`` Stein's lemma gives the forms of theory §11 for
:math:`\mathbf 1/\sqrt p`, :math:`W_l`, :math:`W_\alpha\circ W_\beta`,
:math:`W_\alpha\circ W_\alpha - W_\beta\circ W_\beta`, all times ``c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_inputs, check_positive_int, check_vector, check_weights
from ..fim.operator import fisher_operator
from ..fim.sampled import gaussian_input_chunks
from ..model.harmonics import degree_le2_fraction, relu_a0, relu_funk_hecke_coefficients
from ..model.weights import column_norms
from ..spectrum.result import predicted_cluster_sizes, principal_cosines
from ..spectrum.solve import spectrum
from .vectors import theory_vectors

__all__ = [
    "ClusterForm",
    "FunctionApproximation",
    "FunctionForms",
    "GroupForm",
    "InnerProduct",
    "approximate_function",
    "predicted_eigenfunctions",
    "fisher_inner_product",
    "function_forms",
    "network_function",
]


# ----------------------------------------------------------------------------- basics

def _check_v(v: Any, p: int) -> np.ndarray:
    """Output weights ``(p,)`` or ``m`` of them as the columns of ``(p, m)``."""
    arr = np.asarray(v)
    if arr.ndim == 2 and arr.shape[0] == p:
        return np.column_stack([check_vector(arr[:, j], p, f"v[:, {j}]") for j in range(arr.shape[1])]) \
            if arr.shape[1] else arr.astype(np.float64)
    if arr.ndim == 2:
        raise ValueError(f"v must have shape ({p},) or ({p}, m) to match W of shape (d, {p}), got {arr.shape}.")
    return check_vector(v, p, "v")


def network_function(W: np.ndarray, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    r""":math:`f_v(x) = \mathrm{ReLU}(xW)\cdot v` for inputs ``x`` (n, d).

    Parameters
    ----------
    W : array (d, p)
    v : array (p,) or (p, m)
        Output weights; with ``m`` columns, ``m`` functions at once.
    x : array (n, d)

    Returns
    -------
    numpy.ndarray (n,) or (n, m)

    Examples
    --------
    >>> W = np.array([[1.0, -1.0]])
    >>> network_function(W, np.array([1.0, 2.0]), np.array([[3.0], [-1.0]]))
    array([3., 2.])
    """
    W = check_weights(W)
    v = _check_v(v, W.shape[1])
    x = check_inputs(x, W.shape[0])
    return np.maximum(x @ W, 0.0) @ v


def _gaussian_inputs(n: int, d: int, seed: int | None) -> np.ndarray:
    return np.vstack(list(gaussian_input_chunks(n, d, seed)))


# ----------------------------------------------------------------------------- inner products

@dataclass(frozen=True)
class InnerProduct:
    r""":math:`u^\top J v` and its Monte Carlo counterpart :math:`\frac1n\sum_t f_u(x_t)f_v(x_t)`.

    ``stderr`` is the standard error of the Monte Carlo mean (sample standard deviation of
    the products over :math:`\sqrt n`); ``z = (monte_carlo - exact) / stderr``.
    """

    exact: float
    monte_carlo: float
    stderr: float
    n: int

    @property
    def z(self) -> float:
        return (self.monte_carlo - self.exact) / self.stderr if self.stderr > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"exact": self.exact, "monte_carlo": self.monte_carlo, "stderr": self.stderr, "n": self.n,
                "z": self.z}


def fisher_inner_product(W: np.ndarray, u: np.ndarray, v: np.ndarray, n: int | None = None,
                         seed: int | None = None) -> InnerProduct:
    r"""FIM-induced inner product :math:`u^\top J v = E_x[f_u(x) f_v(x)]` (theory §11), exact and sampled.

    The exact value is :math:`u^\top(Jv)` by the matrix-free operator (Lemma 1, tile by tile),
    never storing ``J``; the Monte Carlo one draws ``n`` Gaussian inputs (default 20 000) from
    ``seed`` and reports the standard error of the mean.

    Parameters
    ----------
    W : array (d, p)
    u, v : arrays (p,)
    n : int, optional
    seed : int, optional

    Returns
    -------
    InnerProduct

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(3, 400, seed=0)
    >>> ip = rf.fisher_inner_product(W, W[0], W[0], n=20000, seed=1)
    >>> round(ip.exact, 2), bool(abs(ip.z) < 5)
    (0.25, True)
    """
    W = check_weights(W)
    d, p = W.shape
    u = check_vector(u, p, "u")
    v = check_vector(v, p, "v")
    n = 20000 if n is None else check_positive_int(n, "n", minimum=2)
    exact = float(u @ (fisher_operator(W) @ v))
    s = s2 = 0.0
    for x in gaussian_input_chunks(n, d, seed):
        X = np.maximum(x @ W, 0.0)
        prod = (X @ u) * (X @ v)
        s += prod.sum()
        s2 += (prod * prod).sum()
    mean = s / n
    var = max(s2 / n - mean * mean, 0.0) * n / (n - 1)
    return InnerProduct(exact=exact, monte_carlo=float(mean), stderr=float(math.sqrt(var / n)), n=n)


# ----------------------------------------------------------------------------- approximation formula

@dataclass(frozen=True)
class FunctionApproximation:
    r"""The degree-<=2 projection :math:`f_v(x)\approx A\|x\| + b^\top x + x^\top Cx/\|x\|` and its error.

    Attributes
    ----------
    A : float
    b : (d,)
    C : (d, d) symmetric
    energy : float
        :math:`\|f_v\|^2 = v^\top Jv`.
    error : float
        Exact :math:`L^2` error :math:`\|f_v - \hat f_v\|^2 = v^\top J_{\ge4}v` (harmonic degrees >= 4).
    relative_error : float
        ``error / energy``.
    theorem2_remainder : float
        :math:`v^\top R v`, Theorem 2's Taylor tail (an upper bound on ``error``).
    expected_relative_error : float
        :math:`1 - F(d)`, the average of ``error/energy``-weighted energy over isotropic random ``v``.
    """

    A: float
    b: np.ndarray
    C: np.ndarray
    energy: float
    error: float
    theorem2_remainder: float
    d: int

    @property
    def relative_error(self) -> float:
        return self.error / self.energy if self.energy > 0 else 0.0

    @property
    def expected_relative_error(self) -> float:
        return 1.0 - degree_le2_fraction(self.d)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Values of the approximation at inputs ``x`` (n, d) (0 at ``x = 0``)."""
        x = check_inputs(x, self.d)
        r = np.linalg.norm(x, axis=1)
        quad = np.einsum("ni,ij,nj->n", x, self.C, x)
        return self.A * r + x @ self.b + np.divide(quad, r, out=np.zeros_like(r), where=r > 0)

    def to_dict(self) -> dict[str, Any]:
        return {"A": self.A, "b": self.b.tolist(), "C": self.C.tolist(), "energy": self.energy,
                "error": self.error, "relative_error": self.relative_error,
                "theorem2_remainder": self.theorem2_remainder,
                "expected_relative_error": self.expected_relative_error}


def approximate_function(W: np.ndarray, v: np.ndarray) -> FunctionApproximation:
    r"""Exact projection of :math:`f_v` onto :math:`\|x\|\times` (harmonics of degree <= 2) (theory §11, derived).

    .. math::
        f_v(x) \approx \frac{d\,a_0}{2(d+1)}\Big[(a^\top v)\|x\| + (d+2)\frac{x^\top M_v x}{\|x\|}\Big]
        + \tfrac12 x^\top W v,\qquad M_v = W\operatorname{diag}(v\oslash a)W^\top,

    :math:`a_j = \|w_j\|`, :math:`a_0 = \Gamma(d/2)/(2\sqrt\pi\,\Gamma((d+1)/2))`, for any finite ``W``.
    The projection is orthogonal in :math:`L^2(N(0, I_d))`, so its error is exactly
    :math:`v^\top J_{\ge4}v` (``fisher_operator(W, min_degree=4)``); over isotropic random ``v`` the
    expected error is the fraction :math:`1-F(d)` of the expected energy.

    Parameters
    ----------
    W : array (d, p)
    v : array (p,)

    Returns
    -------
    FunctionApproximation

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(4, 300, seed=0)
    >>> ap = rf.approximate_function(W, W[1])    # a row of W: f is close to x_2 / 2
    >>> bool(ap.relative_error < 0.05), int(np.argmax(ap.b))
    (True, 1)
    """
    W = check_weights(W)
    d, p = W.shape
    v = check_vector(v, p, "v")
    a = column_norms(W)
    ratio = np.divide(v, a, out=np.zeros_like(v), where=a > 0)
    M = (W * ratio) @ W.T
    M = (M + M.T) / 2
    a0 = relu_a0(d)
    pref = d * a0 / (2 * (d + 1))
    A = pref * float(a @ v)
    C = pref * (d + 2) * M
    b = 0.5 * (W @ v)
    energy = float(v @ (fisher_operator(W) @ v))
    error = float(v @ (fisher_operator(W, min_degree=4) @ v))
    rem = float(v @ (fisher_operator(W, taylor_from=4) @ v))
    return FunctionApproximation(A=A, b=b, C=C, energy=energy, error=max(error, 0.0),
                                 theorem2_remainder=max(rem, 0.0), d=d)


# ----------------------------------------------------------------------------- function forms

@dataclass(frozen=True)
class GroupForm:
    """One group of vectors, their functions on the inputs, and the predicted limiting forms.

    ``vectors`` are unit vectors (rows); ``values`` and ``predicted`` are ``(n, m)``;
    ``cosines`` and ``rel_errors`` (``||f - g|| / ||g||`` on the inputs) are ``(m,)``.
    """

    name: str
    description: str
    form: str
    labels: tuple[str, ...]
    vectors: np.ndarray = field(repr=False)
    values: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    cosines: np.ndarray = field(repr=False)
    rel_errors: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "form": self.form, "count": len(self.labels),
                "min_cosine": float(self.cosines.min()), "mean_cosine": float(self.cosines.mean()),
                "max_rel_error": float(self.rel_errors.max()), "mean_rel_error": float(self.rel_errors.mean())}


@dataclass(frozen=True)
class ClusterForm:
    """Computed eigenvectors of one cluster as functions, against the span of the predicted forms.

    ``principal_cosines`` are the cosines of the principal angles between the span of
    :math:`f_u` over the cluster's eigenvectors and the span of the predicted forms, on the inputs.
    """

    index: int
    size: int
    predicted_size: int
    eigenvalues: np.ndarray = field(repr=False)
    predicted_eigenvalue: float
    form: str
    values: np.ndarray = field(repr=False)
    principal_cosines: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        pc = self.principal_cosines
        return {"index": self.index, "size": self.size, "predicted_size": self.predicted_size,
                "mean_eigenvalue": float(self.eigenvalues.mean()), "predicted_eigenvalue": self.predicted_eigenvalue,
                "form": self.form, "min_principal_cosine": float(pc.min()) if pc.size else None,
                "mean_principal_cosine": float(pc.mean()) if pc.size else None}


@dataclass(frozen=True)
class FunctionForms:
    """Result of :func:`function_forms`: one :class:`GroupForm` per group, one :class:`ClusterForm` per cluster."""

    x: np.ndarray = field(repr=False)
    groups: tuple[GroupForm, ...]
    clusters: tuple[ClusterForm, ...]
    scale: float
    d: int
    p: int

    def group(self, name: str) -> GroupForm:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no group {name!r}; have {[g.name for g in self.groups]}")

    def to_dict(self) -> dict[str, Any]:
        return {"d": self.d, "p": self.p, "n": int(self.x.shape[0]), "scale": self.scale,
                "groups": [g.to_dict() for g in self.groups], "clusters": [c.to_dict() for c in self.clusters]}


def _cosines_and_errors(F: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nf, ng = np.linalg.norm(F, axis=0), np.linalg.norm(G, axis=0)
    cos = np.einsum("ij,ij->j", F, G) / np.where(nf * ng > 0, nf * ng, 1.0)
    err = np.linalg.norm(F - G, axis=0) / np.where(ng > 0, ng, 1.0)
    return cos, err


def predicted_eigenfunctions(x: np.ndarray) -> list[np.ndarray]:
    r"""Values on inputs ``x`` (n, d) of functions spanning the three predicted eigenspaces (theory §11–12).

    ``[||x||]``, ``[x_l]`` and ``[x_a x_b/||x||, (x_g^2 - ||x||^2/d)/||x||]`` (``a < b``, ``g < d``):
    arrays of shapes ``(n, 1)``, ``(n, d)``, ``(n, d(d+1)/2 - 1)``.

    Examples
    --------
    >>> [b.shape for b in predicted_eigenfunctions(np.ones((4, 3)))]
    [(4, 1), (4, 3), (4, 5)]
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D inputs of shape (n, d), got shape {x.shape}.")
    x = check_inputs(x, x.shape[1])
    n, d = x.shape
    r = np.linalg.norm(x, axis=1)
    rs = np.where(r > 0, r, 1.0)
    cols = [x[:, a] * x[:, b] / rs for a in range(d) for b in range(a + 1, d)]
    cols += [(x[:, g] ** 2 - r * r / d) / rs for g in range(d - 1)]  # the d-th is minus their sum
    third = np.stack(cols, axis=1) if cols else np.zeros((n, 0))
    return [r[:, None], x.copy(), third]


def function_forms(W: np.ndarray, x: np.ndarray | None = None, n: int = 2000, seed: int | None = 0,
                   clusters: bool = True) -> FunctionForms:
    r"""The approximate and computed eigenvectors of the FIM as functions, against their predicted forms (theory §11).

    Groups (every vector unit-normalized, ``c = ||W||_F / sqrt(d)``, :math:`\lambda_k = c^2d\mu_k`):

    ============== ====================================== ==============================================================
    group          vectors                                 predicted :math:`f` as :math:`p\to\infty`
    ============== ====================================== ==============================================================
    ``v0``         :math:`v^{(0)}`                         :math:`c\sqrt{\mu_0}\,\|x\|`
    ``ones``       :math:`\mathbf 1/\sqrt p`               :math:`c\,\|x\|/\sqrt{2\pi}`
    ``rows``       :math:`W_l`                             :math:`c\,x_l/2`
    ``v_ab``       :math:`v^{(\alpha,\beta)}`, α<β         :math:`c\sqrt{d(d+2)\mu_2}\;x_\alpha x_\beta/\|x\|`
    ``hadamard``   :math:`W_\alpha\circ W_\beta`, α<β      :math:`c\,x_\alpha x_\beta/(\sqrt{2\pi}\|x\|)`
    ``v_gamma``    :math:`v^{(\gamma)}`                    :math:`c_\gamma(x_\gamma^2-\|x\|^2/d)/\|x\|`
    ``hadamard_diff`` :math:`W_\alpha^{\circ2}-W_\beta^{\circ2}` :math:`c\,(x_\alpha^2-x_\beta^2)/(2\sqrt{2\pi}\|x\|)`
    ============== ====================================== ==============================================================

    with :math:`c_\gamma = c\sqrt{d\mu_2}\sqrt{d(d+2)/(2(d-1))}`. The first group of each kind is the
    theory's approximate eigenvector (:math:`\|w\|Y_k(\hat w)`, mapped to :math:`\sqrt{\lambda_k}` times
    the unit eigenfunction :math:`\|x\|Y_k(\hat x)/\sqrt d`);
    ``ones``, ``hadamard`` and ``hadamard_diff`` are theory §11's vectors (exact limits for
    Gaussian ``W`` by Stein's lemma). For each computed cluster (``spectrum(W, k="clusters")``)
    the span of :math:`f_u` is compared with the span of :math:`\|x\|`, of the :math:`x_l`, or of the
    :math:`x_\alpha x_\beta/\|x\|` and :math:`(x_\gamma^2-\|x\|^2/d)/\|x\|`, by principal cosines on ``x``.

    Parameters
    ----------
    W : array (d, p)
    x : array (n, d), optional
        Inputs; default ``n`` standard Gaussian inputs from ``seed``.
    n, seed : int
    clusters : bool
        Also compute the eigenvectors (costs one ``spectrum`` call).

    Returns
    -------
    FunctionForms

    Examples
    --------
    >>> import relufim as rf
    >>> ff = rf.function_forms(rf.sample_weights(3, 3000, seed=0), n=500, clusters=False)
    >>> [g.name for g in ff.groups]
    ['v0', 'ones', 'rows', 'v_ab', 'hadamard', 'v_gamma', 'hadamard_diff']
    >>> bool(ff.group("rows").cosines.min() > 0.99)
    True
    """
    W = check_weights(W)
    d, p = W.shape
    x = _gaussian_inputs(check_positive_int(n, "n"), d, seed) if x is None else check_inputs(x, d)
    X = np.maximum(x @ W, 0.0)
    r = np.linalg.norm(x, axis=1)
    rs = np.where(r > 0, r, 1.0)
    c = float(np.linalg.norm(W) / math.sqrt(d))
    mu = relu_funk_hecke_coefficients(d, 2)
    s2pi = math.sqrt(2 * math.pi)

    th = theory_vectors(W)
    offdiag = [(a, b) for a in range(d) for b in range(a + 1, d)]
    specs: list[tuple[str, str, str, list[str], np.ndarray, np.ndarray]] = []
    specs.append(("v0", "v0_i = ||w_i||/sqrt(d)", "c sqrt(mu_0) ||x||", ["v0"], th.v0[None, :],
                  (c * math.sqrt(mu[0]) * r)[:, None]))
    specs.append(("ones", "(1,...,1)/sqrt(p)", "c ||x|| / sqrt(2 pi)", ["1/sqrt(p)"], np.ones((1, p)),
                  (c * r / s2pi)[:, None]))
    specs.append(("rows", "rows W_l", "c x_l / 2", [f"W_{l + 1}" for l in range(d)], W, c * x / 2))
    if d >= 2:
        k_ab = c * math.sqrt(d * (d + 2) * mu[2])
        pairs_idx = [th.pairs.index(ab) for ab in offdiag]
        prod = np.stack([x[:, a] * x[:, b] / rs for a, b in offdiag], axis=1)
        lab = [f"({a + 1},{b + 1})" for a, b in offdiag]
        specs.append(("v_ab", "v^(a,b) = sqrt(d) W_a W_b / ||w||, a<b", "c sqrt(d(d+2) mu_2) x_a x_b / ||x||",
                      ["v" + s for s in lab], th.v_ab[pairs_idx], k_ab * prod))
        specs.append(("hadamard", "W_a o W_b, a<b", "c x_a x_b / (sqrt(2 pi) ||x||)", ["W" + s for s in lab],
                      np.stack([W[a] * W[b] for a, b in offdiag]), c * prod / s2pi))
        k_g = c * math.sqrt(d * mu[2]) * math.sqrt(d * (d + 2) / (2 * (d - 1)))
        gam = (x * x - (r * r)[:, None] / d) / rs[:, None]
        specs.append(("v_gamma", "v^(g) = (v^(g,g) - v0)/sqrt(2)",
                      "c sqrt(d mu_2) sqrt(d(d+2)/(2(d-1))) (x_g^2 - ||x||^2/d) / ||x||",
                      [f"v^({g + 1})" for g in range(d)], th.v_gamma, k_g * gam))
        diff = np.stack([(x[:, a] ** 2 - x[:, b] ** 2) / rs for a, b in offdiag], axis=1)
        specs.append(("hadamard_diff", "W_a o W_a - W_b o W_b, a<b", "c (x_a^2 - x_b^2) / (2 sqrt(2 pi) ||x||)",
                      ["D" + s for s in lab], np.stack([W[a] ** 2 - W[b] ** 2 for a, b in offdiag]),
                      c * diff / (2 * s2pi)))

    groups = []
    for name, desc, form, labels, vecs, pred in specs:
        nv = np.linalg.norm(vecs, axis=1)
        unit = vecs / np.where(nv > 0, nv, 1.0)[:, None]
        vals = X @ unit.T
        cos, err = _cosines_and_errors(vals, pred)
        groups.append(GroupForm(name=name, description=desc, form=form, labels=tuple(labels), vectors=unit,
                                values=vals, predicted=pred, cosines=cos, rel_errors=err))

    cl_forms: list[ClusterForm] = []
    if clusters:
        # exactly d(d+3)/2 pairs: the clusters are then split at the predicted sizes, and the
        # eigenvalues against their predictions show whether that split is right
        sizes = [s for s in predicted_cluster_sizes(d) if s > 0]
        res = spectrum(W, k=min(sum(sizes), p))
        bases = predicted_eigenfunctions(x)
        forms = ["||x||", "x_l", "x_a x_b/||x||, (x_g^2 - ||x||^2/d)/||x||"]
        for i, (size, members) in enumerate(zip(sizes, res.predicted_members())):
            F = X @ res.eigenvectors[:, members]
            B = bases[i]
            pc = principal_cosines(F, B) if B.shape[1] and F.shape[1] else np.zeros(0)
            cl_forms.append(ClusterForm(index=i + 1, size=int(members.size), predicted_size=size,
                                        eigenvalues=res.eigenvalues[members],
                                        predicted_eigenvalue=float(c * c * d * mu[i]),
                                        form=forms[i], values=F, principal_cosines=pc))
    return FunctionForms(x=x, groups=tuple(groups), clusters=tuple(cl_forms), scale=c, d=d, p=p)

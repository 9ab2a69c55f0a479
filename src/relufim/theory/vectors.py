r"""What the theory predicts (theory §4–5): approximate eigenvectors, Theorem 2, Lemma 2, Theorem 3.

The approximate eigenvectors are built from the hidden weights alone:

* :math:`v^{(0)}_i = \|w_i\|/\sqrt d` (the Perron–Frobenius direction),
* the rows :math:`W_l` of ``W`` (second cluster, ``d`` vectors),
* :math:`v^{(\alpha,\beta)}_i = \sqrt d\,W_{\alpha i}W_{\beta i}/\|w_i\|` and
  :math:`v^{(\gamma)} = (v^{(\gamma,\gamma)} - v^{(0)})/\sqrt2` (third cluster,
  :math:`d(d+1)/2-1` independent vectors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_memory, check_weights
from ..model.weights import column_norms
from ..spectrum.eigensolver import orthonormalize
from ..spectrum.result import predicted_cluster_sizes

__all__ = [
    "TheoryVectors",
    "theory_vectors",
    "theorem2_coefficients",
    "theorem3_bounds",
    "TRACE_SHARE_BOUND",
]

TRACE_SHARE_BOUND = 0.5 + 3.0 / (2.0 * math.pi)
"""Share of the trace that Theorem 3's bounds give the three clusters as d grows: 1/2 + 3/(2 pi) (theory §5)."""


def theorem2_coefficients(d: int) -> dict[str, float]:
    r"""Coefficients of Theorem 2 (theory §4).

    :math:`(2d+1)/(4\pi)` on :math:`v^{(0)}`, 1/4 on the rows, :math:`1/(2\pi d)` on the third group.
    """
    return {"v0": (2 * d + 1) / (4 * math.pi), "rows": 0.25, "third": 1.0 / (2 * math.pi * d)}


def theorem3_bounds(d: int) -> dict[str, float]:
    r"""Theorem 3's Rayleigh-quotient lower bounds at :math:`\delta = \xi = 0` and trace bound ``d/2`` (theory §5)."""
    c = theorem2_coefficients(d)
    lower_sum = c["v0"] + d * c["rows"] + (d * (d - 1) / 2 + d - 1) * c["third"]
    return {"v0": c["v0"], "rows": c["rows"], "v_ab": c["third"], "v_gamma": c["third"], "trace": d / 2,
            "share_of_trace": lower_sum / (d / 2)}


@dataclass(frozen=True)
class TheoryVectors:
    r"""The approximate eigenvectors of theory §4 for one ``W`` (each row of an array is a vector in ``R^p``).

    Attributes
    ----------
    v0 : (p,)
    rows : (d, p)
        The rows :math:`W_l`.
    v_ab : (d(d+1)/2, p)
        :math:`v^{(\alpha,\beta)}` for :math:`\alpha\le\beta`, in the order of ``pairs``.
    pairs : list of (alpha, beta)
        Zero-based index pairs, :math:`\alpha \le \beta`.
    v_gamma : (d, p)
        :math:`v^{(\gamma)}`; they sum to zero.
    """

    v0: np.ndarray
    rows: np.ndarray
    v_ab: np.ndarray
    pairs: list[tuple[int, int]] = field(repr=False)
    v_gamma: np.ndarray = field(repr=False)

    @property
    def d(self) -> int:
        return self.rows.shape[0]

    @property
    def p(self) -> int:
        return self.rows.shape[1]

    @property
    def v_ab_offdiag(self) -> np.ndarray:
        r""":math:`v^{(\alpha,\beta)}` for :math:`\alpha<\beta` only, ``(d(d-1)/2, p)``."""
        return self.v_ab[[i for i, (a, b) in enumerate(self.pairs) if a < b]]

    def third_cluster_vectors(self) -> np.ndarray:
        r""":math:`v^{(\alpha,\beta)}` (:math:`\alpha<\beta`) and :math:`v^{(\gamma)}`, spanning the third cluster.

        Their rank is :math:`d(d+1)/2-1` (the :math:`v^{(\gamma)}` sum to zero).
        """
        return np.vstack([self.v_ab_offdiag, self.v_gamma])

    def seed_block(self) -> np.ndarray:
        """All vectors as the columns of a ``(p, 1 + d + d(d+1)/2)`` block: spans exactly the predicted top space."""
        return np.vstack([self.v0[None, :], self.rows, self.v_ab]).T

    def predicted_bases(self) -> list[np.ndarray]:
        r"""Orthonormal bases ``(p, size)`` of the three predicted cluster spaces, in cluster order.

        The third basis is the range of :math:`\{v^{(\alpha,\beta)}\}_{\alpha<\beta}\cup\{v^{(\gamma)}\}`,
        of dimension :math:`d(d+1)/2-1` (the :math:`v^{(\gamma)}` sum to zero).
        """
        sizes = predicted_cluster_sizes(self.d)
        bases = [self.v0[:, None] / np.linalg.norm(self.v0), orthonormalize(self.rows.T)]
        third = self.third_cluster_vectors().T
        U, s, _ = np.linalg.svd(third, full_matrices=False)
        bases.append(U[:, : sizes[2]])
        return bases

    def hadamard_basis(self) -> np.ndarray:
        r"""Orthonormal basis of the span of all :math:`v^{(\alpha,\beta)}`, :math:`\alpha\le\beta`.

        Approximately the span of the first and third clusters (theory §4).
        """
        return orthonormalize(self.v_ab.T)


def theory_vectors(W: np.ndarray) -> TheoryVectors:
    r"""The approximate eigenvectors of the FIM predicted by Theorem 2 (theory §4).

    Parameters
    ----------
    W : array (d, p)

    Returns
    -------
    TheoryVectors

    Examples
    --------
    >>> import relufim as rf
    >>> th = rf.theory_vectors(rf.sample_weights(4, 2000, seed=0))
    >>> th.v_ab.shape, th.v_gamma.shape
    ((10, 2000), (4, 2000))
    >>> bool(np.allclose(th.v_gamma.sum(axis=0), 0))
    True
    """
    W = check_weights(W)
    d, p = W.shape
    # v_ab, v_gamma, rows and v0, then the (p, d(d+3)/2 + 1) seed block callers usually take
    check_memory(8.0 * p * (d * (d + 1) + 3 * d + 2), f"the theory's vectors for p = {p}, d = {d}",
                 "use a smaller p, or pass your own starting vectors X0 to relufim.spectrum")
    a = column_norms(W)
    safe = np.where(a > 0, a, 1.0)
    v0 = a / math.sqrt(d)
    pairs = [(al, be) for al in range(d) for be in range(al, d)]
    scaled = W * (math.sqrt(d) / safe)  # sqrt(d) W_ai / ||w_i||
    v_ab = np.empty((len(pairs), p))
    for r, (al, be) in enumerate(pairs):
        np.multiply(scaled[al], W[be], out=v_ab[r])
    diag_rows = [pairs.index((g, g)) for g in range(d)]
    v_gamma = (v_ab[diag_rows] - v0) / math.sqrt(2.0)
    return TheoryVectors(v0=v0, rows=W.copy(), v_ab=v_ab, pairs=pairs, v_gamma=v_gamma)

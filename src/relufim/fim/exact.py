r"""The exact Fisher information of the output weights ``v`` (theory §1–2).

``I = J / sigma^2`` with :math:`J = E_x[X(x)^\top X(x)]`, :math:`X(x) = \phi(xW)`. For ReLU,
Lemma 1 of the 2023 paper gives every entry in closed form,

.. math::  J_{ij} = \|w_i\|\,\|w_j\|\,\kappa(t_{ij}),\qquad t_{ij} = \cos\angle(w_i, w_j),

with :math:`J_{ii} = \|w_i\|^2/2` and :math:`\operatorname{tr} J = \|W\|_F^2/2`; other activations
use their dual kernels (theory §8). The matrix is built by the tile engine of
:mod:`relufim.fim.tiles`, the same one every product with ``J`` goes through.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validation import check_dense_fits, check_positive_int, check_sigma, check_weights
from ..model.activations import Activation, get_activation
from ..model.weights import column_norms, unit_columns
from .tiles import ReluFamilyTile, default_threads, fill_symmetric, make_tile_kernel

__all__ = ["fisher_matrix"]

Progress = Callable[[int, int], None]


def fisher_matrix(W: np.ndarray, *, sigma: float = 1.0, activation: str | Activation = "relu",
                  block: int | None = None, out: np.ndarray | None = None,
                  progress: Progress | None = None) -> np.ndarray:
    r"""Exact Fisher information matrix of ``v``, :math:`I = J/\sigma^2` (theory §2, Lemma 1).

    Parameters
    ----------
    W : array of shape (d, p), d < p
        Hidden weights; column ``i`` is hidden unit ``i``.
    sigma : float, default 1.0
        Output-noise standard deviation; ``sigma=1`` returns ``J`` itself.
    activation : str or Activation, default "relu"
        The leaky-ReLU family (relu, leaky-relu, abs) uses its closed form
        :math:`J_{ij} = \|w_i\|\|w_j\|k_a(t_{ij})`; other registered activations their dual
        kernel (closed form or Mehler series, theory §8).
    block : int, optional
        Tile edge (default 256): memory ``O(block^2)`` per thread beyond the output.
    out : array (p, p), optional
        C-contiguous float64 buffer to fill and return. Reusing one across calls (several seeds
        of a sweep) avoids first-touch page faults on a fresh ``8 p^2``-byte array, which on this
        kind of machine cost more than the whole computation (0.8 s for 800 MB at p = 10^4).
    progress : callable(done, total), optional
        Called after each tile.

    Returns
    -------
    numpy.ndarray
        ``(p, p)`` symmetric float64 matrix (entrywise nonnegative for ReLU).

    Notes
    -----
    The cosines come from GEMMs of the unit columns; the kernel is evaluated in place tile by
    tile over the upper triangle on all cores (each tile mirrored while in cache, so ``J`` is
    exactly symmetric), with the diagonal set exactly and the rare near-antiparallel pairs
    (``t < -0.99``) recomputed from :math:`\|u+v\|` for relative accuracy (theory §2).

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(d=3, p=50, seed=0)
    >>> J = rf.fisher_matrix(W)
    >>> bool(np.isclose(np.trace(J), (W**2).sum() / 2))
    True
    >>> bool((J >= 0).all() and np.array_equal(J, J.T))
    True
    """
    W = check_weights(W)
    sigma = check_sigma(sigma)
    act = get_activation(activation)
    p = W.shape[1]
    block = 256 if block is None else check_positive_int(block, "block")
    if out is None:
        check_dense_fits(p, what=f"the dense {p} x {p} FIM")
        out = np.empty((p, p))
    elif not (isinstance(out, np.ndarray) and out.shape == (p, p) and out.dtype == np.float64
              and out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous float64 array of shape ({p}, {p}); "
                         f"got {getattr(out, 'shape', type(out).__name__)}, dtype {getattr(out, 'dtype', None)}.")
    norms = column_norms(W)
    U = unit_columns(W, norms)
    kernel = make_tile_kernel(U, norms, act)
    # the elementwise passes of Mehler terms and host duals carry Python overhead: larger tiles amortize it
    tile = block if isinstance(kernel, ReluFamilyTile) else max(block, 512)
    fill_symmetric(out, kernel, U, tile, threads=default_threads(), progress=progress)
    if sigma != 1.0:
        out /= sigma * sigma
    return out

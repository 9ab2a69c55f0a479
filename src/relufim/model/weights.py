"""Drawing the hidden weights ``W`` (theory §1), the scalings users ask for, and their column norms."""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import check_memory, check_positive_float, check_positive_int, check_weights

__all__ = ["sample_weights", "check_weight_sizes", "expected_squared_norm", "column_norms", "unit_columns",
           "entry_variance", "Scale"]

Scale = str | float
"""``"1/p"`` (default, the papers' convention), ``"1/d"``, ``"unit"`` or a float variance."""


def entry_variance(scale: Scale, d: int, p: int) -> float | None:
    """Variance of the i.i.d. Gaussian entries, or ``None`` for unit-norm columns."""
    if isinstance(scale, str):
        key = scale.strip().lower().replace(" ", "")
        if key == "1/p":
            return 1.0 / p
        if key == "1/d":
            return 1.0 / d
        if key == "unit":
            return None
        raise ValueError(f"scale must be '1/p', '1/d', 'unit' or a positive float (the entry variance), got {scale!r}.")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale must be '1/p', '1/d', 'unit' or a positive float, got {scale!r}.")
    return check_positive_float(scale, "scale (the entry variance)")


def check_weight_sizes(d: int, p: int, scale: Scale = "1/p") -> tuple[int, int]:
    """Sizes and scale of a network's hidden weights, checked before any work: ``(d, p)`` with ``d < p`` (theory §1).

    The commands call it before their progress output, so that a bad argument is one line.

    Examples
    --------
    >>> check_weight_sizes(3, 40, "1/d")
    (3, 40)
    >>> check_weight_sizes(10, 5)
    Traceback (most recent call last):
    ...
    ValueError: d must be smaller than p (hidden weights need d < p, theory §1), got d = 10, p = 5.
    """
    d = check_positive_int(d, "d")
    p = check_positive_int(p, "p")
    if d >= p:
        raise ValueError(f"d must be smaller than p (hidden weights need d < p, theory §1), got d = {d}, p = {p}.")
    entry_variance(scale, d, p)
    return d, p


def sample_weights(d: int, p: int, seed: int | np.random.Generator | None = None, scale: Scale = "1/p") -> np.ndarray:
    r"""Draw hidden weights ``W`` of shape ``(d, p)``.

    Parameters
    ----------
    d, p : int
        Input dimension and number of hidden units (both >= 1).
    seed : int, numpy Generator or None
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same ``W``.
    scale : {"1/p", "1/d", "unit"} or float
        ``"1/p"``: :math:`W_{ij} \sim N(0, 1/p)` (the papers' convention, theory §1);
        ``"1/d"``: :math:`N(0, 1/d)`; ``"unit"``: Gaussian columns normalised to
        :math:`\|w_i\| = 1`; a float ``s``: :math:`N(0, s)` (``s`` is the variance).

    Returns
    -------
    numpy.ndarray
        ``(d, p)`` float64 array; column ``W[:, i]`` is hidden unit ``i``.

    Examples
    --------
    >>> W = sample_weights(d=3, p=1000, seed=0)
    >>> W.shape
    (3, 1000)
    >>> bool(abs((W**2).sum() - 3) < 0.3)   # E ||W||_F^2 = d for the default draw
    True
    """
    d = check_positive_int(d, "d")
    p = check_positive_int(p, "p")
    var = entry_variance(scale, d, p)
    check_memory(8.0 * d * p, f"W of shape ({d}, {p})", "use a smaller p (or d)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    W = rng.standard_normal((d, p))
    if var is None:
        norms = np.linalg.norm(W, axis=0)
        norms[norms == 0] = 1.0
        W /= norms
    else:
        W *= np.sqrt(var)
    return W


def expected_squared_norm(d: int, p: int, scale: Scale = "1/p") -> float:
    r""":math:`E\|w_i\|^2` of one column under ``scale`` (``d/p`` for the default draw).

    Examples
    --------
    >>> expected_squared_norm(10, 1000)
    0.01
    >>> expected_squared_norm(10, 1000, "unit")
    1.0
    """
    d = check_positive_int(d, "d")
    p = check_positive_int(p, "p")
    var = entry_variance(scale, d, p)
    return 1.0 if var is None else d * var


def column_norms(W: np.ndarray) -> np.ndarray:
    r""":math:`\|w_i\|` for each column of hidden weights ``W`` (d, p), shape ``(p,)`` (theory §1).

    Examples
    --------
    >>> column_norms(np.array([[3.0, 0.0, 1.0], [4.0, 2.0, 0.0]]))
    array([5., 2., 1.])
    """
    W = check_weights(W)
    return np.sqrt(np.einsum("ij,ij->j", W, W))


def unit_columns(W: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
    """``W`` with each column divided by its norm (zero columns stay zero), C-contiguous."""
    norms = np.sqrt(np.einsum("ij,ij->j", W, W)) if norms is None else norms
    return np.ascontiguousarray(W / np.where(norms > 0, norms, 1.0))

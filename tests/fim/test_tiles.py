"""Helpers of the tiled engine (relufim.fim.tiles) against element-by-element oracles."""

from __future__ import annotations

import numpy as np
import pytest

from relufim.fim.tiles import symmetrize_upper


def _oracle(X: np.ndarray) -> np.ndarray:
    """X[i, j] for i <= j, X[j, i] below the diagonal, one entry at a time."""
    n = X.shape[0]
    return np.array([[X[min(i, j), max(i, j)] for j in range(n)] for i in range(n)])


@pytest.mark.parametrize("layout", ["C", "F", "view"])
@pytest.mark.parametrize("n", [1, 2, 7])
def test_symmetrize_upper_replaces_any_lower_triangle_in_place(layout, n):
    rng = np.random.default_rng(n)
    base = rng.standard_normal((n + 3, n + 3))
    X = {"C": base[:n, :n].copy(), "F": np.asfortranarray(base[:n, :n]), "view": base[1:n + 1, 2:n + 2]}[layout]
    X[np.tril_indices(n, -1)] = np.nan  # garbage below the diagonal
    X[np.tril_indices(n, -2)] = np.inf
    want = _oracle(X)
    got = symmetrize_upper(X)
    assert got is X
    assert np.array_equal(X, want)
    assert np.array_equal(X, X.T)


def test_symmetrize_upper_validates_its_argument():
    with pytest.raises(ValueError, match="X must be a square matrix"):
        symmetrize_upper(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="X must be a square matrix"):
        symmetrize_upper(np.zeros(4))
    with pytest.raises(TypeError, match="X must be a NumPy array"):
        symmetrize_upper([[1.0, 2.0], [3.0, 4.0]])

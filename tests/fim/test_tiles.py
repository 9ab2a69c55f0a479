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


def test_reporting_sends_the_products_of_a_with_block_only_then_restores_the_callback():
    from relufim import fisher_operator

    W = np.random.default_rng(0).standard_normal((3, 50))
    own, inside = [], []
    op = fisher_operator(W, block=16, progress=lambda done, total: own.append((done, total)))
    V = np.ones((50, 2))
    with op.reporting(lambda done, total: inside.append((done, total))) as same:
        assert same is op
        same @ V
    assert inside == [(i, 10) for i in range(1, 11)] and own == []  # 4 row blocks: 10 tiles of the upper triangle
    op @ V
    assert own == inside
    with pytest.raises(RuntimeError), op.reporting(None):
        raise RuntimeError("a failed product")
    assert op.progress is not None  # restored on the way out of an error too

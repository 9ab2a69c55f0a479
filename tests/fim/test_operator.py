"""The matrix-free FIM operator and the t-series route against the dense FIM and closed forms."""

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import relufim as rf
from relufim.fim.series import n_series_features, series_features, series_preconditioner
from relufim.model.kernels import arccos_kernel_series_coefficients

# Both sides sum p products of entries that agree to a few ulps (same kernel formula,
# same clipping and exact diagonal), in different orders: the difference is at most
# ~p * eps * max|J V| ~ 3000 * 2.2e-16 = 7e-13 relative, inside the 1e-12.
RTOL = 1e-12


def _rel_err(A, B):
    return float(np.abs(A - B).max() / np.abs(B).max())


@pytest.fixture(scope="module")
def small():
    W = rf.sample_weights(4, 700, seed=11)
    return W, rf.fisher_matrix(W), np.random.default_rng(0).standard_normal((700, 5))


@pytest.mark.parametrize("block", [64, 100, 333, 700, 5000])
@pytest.mark.parametrize("threads", [1, 2])
def test_numpy_products_equal_dense(small, block, threads):
    W, J, V = small
    op = rf.fisher_operator(W, block=block, threads=threads)
    assert _rel_err(op @ V, J @ V) < RTOL
    assert _rel_err(op.matvec(V[:, 0]), J @ V[:, 0]) < RTOL


@pytest.mark.parametrize("block", [128, 1000])
def test_torch_cpu_products_equal_dense(small, block):
    pytest.importorskip("torch")
    W, J, V = small
    op = rf.fisher_operator(W, block=block, backend="torch")
    assert _rel_err(op @ V, J @ V) < RTOL


def test_torch_float32_accuracy(small):
    """float32 tiles: each entry is off by ~1e-7 relative; sums of 700 terms stay below 1e-5."""
    pytest.importorskip("torch")
    W, J, V = small
    op = rf.fisher_operator(W, block=256, backend="torch", dtype="float32")
    assert _rel_err(op @ V, J @ V) < 1e-5


@pytest.mark.slow
def test_products_at_p_3000_block_not_dividing_p():
    W = rf.sample_weights(10, 3000, seed=2)
    V = np.random.default_rng(1).standard_normal((3000, 3))
    ref = rf.fisher_matrix(W) @ V
    assert _rel_err(rf.fisher_operator(W, block=1024) @ V, ref) < RTOL


@pytest.mark.parametrize("b", [3, 70])
def test_default_tile_per_product_against_the_dense_matrix(b):
    # block=None: 384-tiles below 64 vectors, 768 from 64 on (numpy_tile_edge); p = 1000 is no multiple of either
    W = rf.sample_weights(5, 1000, seed=4)
    op = rf.fisher_operator(W)
    assert op.block is None and op.tile(b) == (384 if b < 64 else 768)
    V = np.random.default_rng(b).standard_normal((1000, b))
    assert _rel_err(op @ V, rf.fisher_matrix(W) @ V) < RTOL
    assert _rel_err(op.rows_times(np.arange(0, 1000, 7), V), (rf.fisher_matrix(W) @ V)[::7]) < RTOL


def test_near_antiparallel_pairs_relative_accuracy():
    """Columns at angle pi - delta: J_12 = |w1||w2| (sin delta - delta cos delta) / (2 pi) (closed form)."""
    rng = np.random.default_rng(3)
    u = rng.standard_normal(5)
    u /= np.linalg.norm(u)
    e = rng.standard_normal(5)
    e -= (e @ u) * u
    e /= np.linalg.norm(e)
    for delta in (1e-2, 1e-4, 3e-6):
        w2 = -math.cos(delta) * u + math.sin(delta) * e  # angle pi - delta from u
        W = np.column_stack([2.0 * u, 0.5 * w2, rng.standard_normal((5, 4))])  # d = 5 < p = 6
        exact = 2.0 * 0.5 * (math.sin(delta) - delta * math.cos(delta)) / (2 * math.pi)
        if delta < 1e-3:  # series: sin d - d cos d = d^3/3 - d^5/30 + ...
            exact = 2.0 * 0.5 * (delta**3 / 3 - delta**5 / 30) / (2 * math.pi)
        got = (rf.fisher_operator(W) @ np.eye(6)[1])[0]
        # the cosine itself is only known to ~1e-16 absolute, so delta to ~1e-16/delta relative;
        # kappa ~ delta^3 then has relative error ~3e-16/delta^2 from the GEMM without the fix;
        # with the ||u+v|| recomputation the error is a few ulps of ||u+v||: 1e-9 is generous.
        assert abs(got / exact - 1) < 1e-9


def test_diagonal_trace_and_zero_columns():
    W = rf.sample_weights(3, 200, seed=4)
    W[:, 7] = 0.0
    op = rf.fisher_operator(W, sigma=2.0)
    J = rf.fisher_matrix(W, sigma=2.0)
    assert np.allclose(op.diagonal(), np.diag(J), rtol=0, atol=0)
    assert math.isclose(op.trace(), float(np.trace(J)), rel_tol=1e-13)
    out = op @ np.eye(200)[:, :10]
    assert np.all(out[7] == 0.0)
    assert _rel_err(out, J[:, :10]) < RTOL


@settings(max_examples=15, deadline=None)
@given(c=st.floats(0.1, 10.0), seed=st.integers(0, 10_000))
def test_homogeneity_symmetry_permutation(c, seed):
    """J(cW) = c^2 J(W); x.(Jy) = y.(Jx); permuting units permutes J."""
    W = rf.sample_weights(3, 90, seed=seed)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((2, 90))
    op = rf.fisher_operator(W, block=32)
    Jy = op @ y
    assert math.isclose(x @ Jy, y @ (op @ x), rel_tol=1e-12, abs_tol=1e-14)
    assert np.allclose(rf.fisher_operator(c * W, block=32) @ y, c * c * Jy, rtol=1e-12, atol=1e-14)
    perm = rng.permutation(90)
    assert np.allclose(rf.fisher_operator(W[:, perm], block=32) @ y[perm], Jy[perm], rtol=1e-12, atol=1e-14)


def test_validation_messages():
    W = rf.sample_weights(2, 10, seed=0)
    with pytest.raises(ValueError, match="backend='numpy'"):
        rf.fisher_operator(W, activation="erf", backend="torch")  # a closed-form dual evaluated on the host
    with pytest.raises(ValueError, match="leaky-ReLU family"):
        rf.fisher_operator(W, activation="softplus", min_degree=4)
    with pytest.raises(ValueError, match="not both"):
        rf.fisher_operator(W, min_degree=4, taylor_from=4)
    with pytest.raises(ValueError, match="backend"):
        rf.fisher_operator(W, backend="jax")
    with pytest.raises(ValueError, match="float64' or 'float32"):
        rf.fisher_operator(W, dtype="float16")
    with pytest.raises(ValueError, match="block"):
        rf.fisher_operator(W, block=0)
    with pytest.raises(ValueError, match="non-finite"):
        rf.fisher_operator(np.full((2, 3), np.nan))


def _dense_series(W, K):
    """J_K built entrywise from the Taylor coefficients (no features): sum_k a_k |w_i||w_j| t^k."""
    a = arccos_kernel_series_coefficients(K + 1)
    n = np.linalg.norm(W, axis=0)
    T = np.clip((W / n).T @ (W / n), -1, 1)
    return np.outer(n, n) * sum(a[k] * T**k for k in range(K + 1))


@pytest.mark.parametrize("K", [2, 4])
def test_series_eigenpairs_and_weyl_bound(K):
    W = rf.sample_weights(4, 600, seed=5)
    k = 14
    s = rf.series_fisher(W, k, degree=K, chunk=256)  # several chunks
    JK = _dense_series(W, K)
    lamK = np.linalg.eigvalsh(JK)[::-1]
    # eigenpairs of J_K: eigenvalues to round-off, vectors with tiny residuals
    assert np.allclose(s.eigenvalues, lamK[:k], rtol=1e-10, atol=1e-13 * lamK[0])
    resid = np.linalg.norm(JK @ s.eigenvectors - s.eigenvectors * s.eigenvalues, axis=0)
    assert resid.max() < 1e-10 * lamK[0]
    assert np.linalg.matrix_rank(JK, tol=1e-10 * lamK[0]) <= n_series_features(4, K)
    # Weyl with R = J - J_K >= 0 and ||R|| <= tail_bound: lambda_i(J_K) <= lambda_i(J) <= lambda_i(J_K) + eps
    lam = np.linalg.eigvalsh(rf.fisher_matrix(W))[::-1][:k]
    assert np.all(s.eigenvalues <= lam + 1e-12 * lam[0])
    assert np.all(lam <= s.eigenvalues + s.tail_bound + 1e-12 * lam[0])
    # the bound is not vacuous: far below the largest eigenvalue
    assert s.tail_bound < 0.05 * lam[0]


@pytest.mark.parametrize("K", [2, 4, 6])
def test_series_features_gram_is_the_truncated_series(K):
    """F^T F = sum_{k <= K} a_k D T^k D entrywise: the monomials built degree by degree, none missing or repeated."""
    W = rf.sample_weights(5, 300, seed=3)
    F = series_features(W, K)
    assert F.shape == (300, n_series_features(5, K))
    JK = _dense_series(W, K)
    assert np.abs(F @ F.T - JK).max() < 1e-13 * np.abs(JK).max()


def test_series_fisher_streamed_paths_equal_the_kept_one(monkeypatch):
    """Eigenvalues only (Gram by chunks) and vectors from a second streamed pass equal the one-pass result."""
    W = rf.sample_weights(4, 700, seed=6)
    kept = rf.series_fisher(W, 10, degree=4, chunk=128)
    no_vectors = rf.series_fisher(W, 10, degree=4, chunk=128, vectors=False)
    np.testing.assert_allclose(no_vectors.eigenvalues, kept.eigenvalues, rtol=1e-12)
    monkeypatch.setattr(sys.modules["relufim.fim.series"], "available_memory_bytes", lambda: 1.0)
    streamed = rf.series_fisher(W, 10, degree=4, chunk=128)
    np.testing.assert_allclose(streamed.eigenvalues, kept.eigenvalues, rtol=1e-12)
    JK = _dense_series(W, 4)
    resid = np.linalg.norm(JK @ streamed.eigenvectors - streamed.eigenvectors * streamed.eigenvalues, axis=0)
    assert resid.max() < 1e-10 * streamed.eigenvalues[0]


@pytest.mark.parametrize("p", [300, 900])  # below and above N = 781 features (d = 10, K = 4)
def test_series_preconditioner_is_the_shifted_inverse_of_the_truncation(p):
    W = rf.sample_weights(10, p, seed=7)
    M = series_preconditioner(W, 4)
    JK = _dense_series(W, 4)
    U = M.eigenvectors
    assert U.shape == (p, M.eigenvalues.size) and M.eigenvalues.size <= min(p, 781)
    np.testing.assert_allclose(U.T @ U, np.eye(U.shape[1]), atol=1e-8)
    lam = np.linalg.eigvalsh(JK)[::-1]
    np.testing.assert_allclose(M.eigenvalues[:20], lam[:20], rtol=1e-10)
    np.testing.assert_allclose(M.seeds(5), U[:, :5])
    R = np.random.default_rng(0).standard_normal((p, 3))
    theta = np.array([0.7, 0.05, 0.003]) * lam[0]
    T = M(R, theta)
    np.testing.assert_allclose(JK @ T - T * theta, R, atol=1e-6 * np.abs(R).max())


@pytest.mark.parametrize("block", [100, 333])
def test_numpy_float32_products_equal_dense(small, block):
    """float32 tiles keep V as columns (float64 as rows): both layouts, tiles not dividing p."""
    W, J, V = small
    assert _rel_err(rf.fisher_operator(W, block=block, dtype="float32") @ V, J @ V) < 1e-5


def test_series_validation():
    W = rf.sample_weights(3, 50, seed=0)
    with pytest.raises(ValueError, match="rank"):
        rf.series_fisher(W, 11, degree=2)  # rank of J_2 is N = 1 + 3 + 6 = 10
    with pytest.raises(ValueError, match="degree"):
        rf.series_fisher(W, 3, degree=1)


def test_rows_times_equals_dense_rows(small):
    W, J, V = small
    rows = np.array([0, 3, 699, 350, 350])
    got = rf.fisher_operator(W).rows_times(rows, V, chunk=128)  # chunks not dividing p
    assert _rel_err(got, (J @ V)[rows]) < RTOL
    many = np.random.default_rng(3).permutation(700)[:300]  # several row tiles, unsorted, on two threads
    got = rf.fisher_operator(W, threads=2).rows_times(many, V, chunk=64)
    assert _rel_err(got, (J @ V)[many]) < RTOL
    assert _rel_err(rf.fisher_operator(W, dtype="float32").rows_times(many, V, chunk=100), (J @ V)[many]) < 1e-5


def test_product_progress_counts_every_tile_once_in_order_on_several_threads():
    # 4 threads over 210 tiles (p = 1000, block 50): each finished tile is counted once, under one lock
    seen = []
    op = rf.fisher_operator(rf.sample_weights(3, 1000, seed=0), block=50, threads=4,
                            progress=lambda done, total: seen.append((done, total)))
    op.matmat(np.ones((1000, 2)))
    n = 20 * 21 // 2
    assert seen == [(i, n) for i in range(1, n + 1)]

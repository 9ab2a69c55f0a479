"""The exact FIM against quadrature, Monte Carlo with error bars and identities."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

import relufim as rf
from relufim.fim import gaussian_input_chunks

mpmath.mp.dps = 40


def entry_by_quadrature(wi, wj):
    """E[relu(wi.x) relu(wj.x)] by 2-D quadrature in the plane of wi, wj (no kernel formula used)."""
    e1 = wi / np.linalg.norm(wi)
    rest = wj - (wj @ e1) * e1
    e2 = rest / np.linalg.norm(rest) if np.linalg.norm(rest) > 0 else np.zeros_like(e1)
    a = np.array([wi @ e1, wi @ e2])
    b = np.array([wj @ e1, wj @ e2])

    def integrand(r, phi):
        y = r * np.array([math.cos(phi), math.sin(phi)])
        return max(a @ y, 0.0) * max(b @ y, 0.0) * math.exp(-r * r / 2) / (2 * math.pi) * r

    # the integrand has kinks where a.y = 0 or b.y = 0: split the angle there
    kinks = sorted({(math.atan2(v[1], v[0]) + s) % (2 * math.pi) for v in (a, b) for s in (math.pi / 2, -math.pi / 2)})
    edges = [0.0, *kinks, 2 * math.pi]
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi - lo > 1e-12:
            val, _ = integrate.dblquad(integrand, lo, hi, 0, 12, epsabs=1e-13, epsrel=1e-11)
            total += val
    return total


def test_fisher_matches_quadrature():
    W = rf.sample_weights(3, 5, seed=3, scale="1/d")
    J = rf.fisher_matrix(W)
    for i in range(5):
        # diagonal: 1-D quadrature of E[relu(||w|| z)^2]
        r = np.linalg.norm(W[:, i])
        q, _ = integrate.quad(lambda z, r=r: (r * z) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi), 0, np.inf)
        assert J[i, i] == pytest.approx(q, rel=1e-12)
        for j in range(i + 1, 5):
            q = entry_by_quadrature(W[:, i], W[:, j])
            # quadrature tolerance 1e-11 relative; the r-cutoff at 12 loses exp(-72)
            assert J[i, j] == pytest.approx(q, rel=1e-9, abs=1e-12), (i, j)


def test_fisher_matches_monte_carlo_within_error_bars():
    W = rf.sample_weights(4, 8, seed=0)
    J = rf.fisher_matrix(W)
    Jn, se = rf.monte_carlo_fisher(W, n=200_000, seed=1, return_stderr=True)
    z = np.abs(Jn - J) / se
    # 36 distinct entries; P(|Z| > 5) ~ 6e-7 each under the CLT: a failure is a real discrepancy
    # (a union bound over the entries; their correlation only makes it more conservative)
    assert z.max() < 5.0
    # the error bars are not vacuous: they shrink like 1/sqrt(n) and are small against J
    assert (se / J).max() < 0.02


def test_monte_carlo_is_reproducible_and_equals_empirical_on_the_same_inputs():
    W = rf.sample_weights(3, 7, seed=2)
    a = rf.monte_carlo_fisher(W, n=5000, seed=9)
    b = rf.monte_carlo_fisher(W, n=5000, seed=9)
    np.testing.assert_array_equal(a, b)
    x = np.vstack(list(gaussian_input_chunks(5000, 3, 9)))
    np.testing.assert_allclose(rf.empirical_fisher(W, x), a, rtol=1e-12, atol=1e-15)


def test_empirical_fisher_is_features_gram():
    W = rf.sample_weights(3, 6, seed=1)
    x = np.random.default_rng(5).standard_normal((40, 3))
    X = np.maximum(x @ W, 0)
    np.testing.assert_allclose(rf.empirical_fisher(W, x, sigma=2.0), X.T @ X / 40 / 4, rtol=1e-13)


@settings(max_examples=25, deadline=None)
@given(d=st.integers(1, 6), extra=st.integers(1, 40), seed=st.integers(0, 10**6),
       c=st.floats(0.01, 100.0), block=st.integers(1, 17))
def test_identities(d, extra, seed, c, block):
    p = d + extra  # hidden weights have more units than inputs (theory §1)
    W = rf.sample_weights(d, p, seed=seed, scale="1/d")
    J = rf.fisher_matrix(W, block=block)
    np.testing.assert_array_equal(J, J.T)  # exactly symmetric
    assert (J >= 0).all()
    assert np.trace(J) == pytest.approx(0.5 * (W**2).sum(), rel=1e-13)
    # entries are accurate to ~1e-16 of the largest one (tiny near-antiparallel entries only absolutely)
    atol = 1e-14 * J.max()
    np.testing.assert_allclose(rf.fisher_matrix(c * W), c * c * J, rtol=1e-12, atol=c * c * atol)
    perm = np.random.default_rng(seed).permutation(p)
    np.testing.assert_allclose(rf.fisher_matrix(W[:, perm]), J[np.ix_(perm, perm)], rtol=1e-12, atol=atol)
    # positive semidefinite (a Gram matrix of L2 functions): eigenvalues above -round-off
    assert np.linalg.eigvalsh(J).min() > -1e-12 * max(np.trace(J), 1e-300)


def test_block_size_does_not_change_the_matrix():
    W = rf.sample_weights(5, 1000, seed=4)
    ref = rf.fisher_matrix(W, block=1000)
    # another tiling sums each cosine's GEMM in another order: ulps of t, and |d kappa/dt| <= 1/2, so
    # entries agree to round-off of the largest one (small entries near t = -1 only absolutely)
    atol = 1e-15 * ref.max()
    for block in (7, 256, 333, 5000):
        np.testing.assert_allclose(rf.fisher_matrix(W, block=block), ref, rtol=1e-14, atol=atol)
    # tiles of one entry (half a million tiles at p = 1000: a minute of Python overhead) on fewer units
    np.testing.assert_allclose(rf.fisher_matrix(W[:, :150], block=1), ref[:150, :150], rtol=1e-14, atol=atol)


def test_sigma_scales_everything():
    W = rf.sample_weights(3, 20, seed=0)
    np.testing.assert_allclose(rf.fisher_matrix(W, sigma=0.5), 4 * rf.fisher_matrix(W), rtol=1e-15)
    np.testing.assert_allclose(rf.monte_carlo_fisher(W, 100, seed=1, sigma=2.0),
                               rf.monte_carlo_fisher(W, 100, seed=1) / 4, rtol=1e-15)


@pytest.mark.parametrize("eps", [1e-3, 1e-5, 1e-7])
def test_nearly_parallel_and_antiparallel_columns(eps):
    # unit u; v at angle eps from u (parallel) and from -u (antiparallel)
    u = np.array([1.0, 0.0, 0.0])
    v_par = np.array([math.cos(eps), math.sin(eps), 0.0])
    v_anti = -v_par
    W = np.column_stack([u, v_par, v_anti, [0.3, -0.2, 0.9]])  # a fourth unit: d < p
    J = rf.fisher_matrix(W)
    e = mpmath.mpf(eps)
    exact_par = float((mpmath.sin(e) + (mpmath.pi - e) * mpmath.cos(e)) / (2 * mpmath.pi))
    # antiparallel: theta = pi - eps, delta = eps: (sin eps - eps cos eps) / (2 pi)
    exact_anti = float((mpmath.sin(e) - e * mpmath.cos(e)) / (2 * mpmath.pi))
    assert J[0, 1] == pytest.approx(exact_par, rel=1e-14)
    # relative accuracy even though the value is ~eps^3/(6 pi) (1e-22 at eps = 1e-7);
    # W's entries themselves carry ~1e-16 relative error in the angle, i.e. eps*(1 +- 1e-16/eps)
    assert J[0, 2] == pytest.approx(exact_anti, rel=1e-6 if eps < 1e-6 else 1e-9)
    assert np.isfinite(J).all() and (J >= 0).all()


def test_zero_column_gives_zero_row():
    W = np.array([[1.0, 0.0, -2.0], [0.5, 0.0, 1.0]])
    J = rf.fisher_matrix(W)
    assert (J[1] == 0).all() and (J[:, 1] == 0).all()


@pytest.mark.parametrize("bad, exc, words", [
    (np.zeros((0, 5)), ValueError, "d >= 1"),
    (np.zeros((3, 0)), ValueError, "p >= 1"),
    (np.array([[1.0, np.nan]]), ValueError, "non-finite"),
    (np.ones(5), ValueError, "2-D"),
    (np.ones((2, 2, 2)), ValueError, "2-D"),
    ("W", TypeError, "2-D array"),
    (np.array([["a", "b"]]), TypeError, "real numbers"),
])
def test_bad_weights(bad, exc, words):
    with pytest.raises(exc, match=words):
        rf.fisher_matrix(bad)


def test_bad_arguments():
    W = rf.sample_weights(2, 4, seed=0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        rf.monte_carlo_fisher(W, 0)
    with pytest.raises(TypeError, match="n must be an integer"):
        rf.monte_carlo_fisher(W, 2.5)
    with pytest.raises(ValueError, match="sigma"):
        rf.fisher_matrix(W, sigma=0)
    with pytest.raises(ValueError, match="shape"):
        rf.empirical_fisher(W, np.ones((3, 5)))
    with pytest.raises(ValueError, match="unknown activation"):
        rf.fisher_matrix(W, activation="sigmoidd")


def test_refuses_a_matrix_that_does_not_fit():
    W = np.ones((1, 2_000_000))  # J would need 32 TB
    with pytest.raises(ValueError, match=r"needs .*TB.*available.*fisher_operator"):
        rf.fisher_matrix(W)


def test_out_buffer_is_filled_and_returned():
    W = rf.sample_weights(3, 300, seed=7)
    ref = rf.fisher_matrix(W, sigma=0.7)
    buf = np.full((300, 300), np.nan)
    got = rf.fisher_matrix(W, sigma=0.7, out=buf)
    assert got is buf
    np.testing.assert_array_equal(got, ref)
    with pytest.raises(ValueError, match="out must be"):
        rf.fisher_matrix(W, out=np.empty((300, 300), dtype=np.float32))
    with pytest.raises(ValueError, match="out must be"):
        rf.fisher_matrix(W, out=np.empty((300, 299)))


def test_streamed_gram_equals_the_dense_mean_and_its_standard_error():
    """The one accumulator of the sampled FIMs against the sample statistics computed directly (numpy)."""
    from relufim.fim.sampled import StreamedGram

    H = np.random.default_rng(3).standard_normal((301, 7)) ** 2  # skewed, like ReLU features
    acc = StreamedGram(7, stderr=True)
    for start in range(0, 301, 64):  # uneven chunks
        acc.add(H[start:start + 64])
    mean, se = acc.result()
    products = H[:, :, None] * H[:, None, :]  # (n, p, p): each sample's h h^T
    np.testing.assert_allclose(mean, products.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(se, products.std(axis=0, ddof=1) / np.sqrt(301), rtol=1e-10)
    assert np.array_equal(mean, mean.T)

"""The exact FIM of all parameters against autodiff, quadrature, high precision and its identities (theory §15).

Oracles: ``torch.func`` per-sample gradients averaged over Monte Carlo inputs (error bars from the
sample variance), 2-D quadrature in the plane of w_i, w_j with no closed form used, mpmath at 50
digits near theta = 0 and pi, dense LAPACK, and the identities the symmetry gives.
"""

from __future__ import annotations

import itertools
import math
import time
import tracemalloc

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

import relufim as rf
from relufim import _validation
from relufim.fim.full import (
    NEAR_THRESHOLD,
    _full_product,
    _product_memory,
    _Units,
    distributed_full_block,
    full_empirical_fisher,
    full_fisher_matrix,
    full_fisher_operator,
    full_gradients,
    full_hermite_features,
    full_monte_carlo_fisher,
    full_parameter_count,
    full_series_preconditioner,
    hermite_square_norms,
    n_full_hermite_features,
    rescaling_directions,
)
from relufim.fim.sampled import gaussian_input_chunks

EPS = np.finfo(float).eps


def network(d: int, p: int, seed: int = 0, scale: str = "1/d") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rf.sample_weights(d, p, seed=seed, scale=scale), rng.standard_normal(p)


def block(F: np.ndarray, p: int, d: int, a: tuple[str, int], b: tuple[str, int]) -> np.ndarray:
    """The block of F for parameters a, b: ('v', i) is the scalar v_i, ('w', j) the d entries of w_j."""
    def idx(x):
        return [x[1]] if x[0] == "v" else list(range(p + x[1] * d, p + (x[1] + 1) * d))
    return F[np.ix_(idx(a), idx(b))]


# ----------------------------------------------------------------------------- autodiff and Monte Carlo

def _torch_gradients(W: np.ndarray, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per-sample gradients of f(x) = v . relu(W^T x) by torch.func (vmap of grad), order (v, w_1, ..., w_p)."""
    torch = pytest.importorskip("torch")
    from torch.func import grad, vmap

    def f(v_t, W_t, x_t):
        return v_t @ torch.relu(W_t.T @ x_t)

    gv, gW = vmap(grad(f, argnums=(0, 1)), in_dims=(None, None, 0))(
        torch.from_numpy(v), torch.from_numpy(W), torch.from_numpy(x))
    # gW[t] is (d, p); column j is the gradient of w_j
    return np.hstack([gv.numpy(), gW.numpy().transpose(0, 2, 1).reshape(x.shape[0], -1)])


def test_gradients_equal_torch_func():
    W, v = network(3, 5, seed=1)
    x = np.random.default_rng(2).standard_normal((50, 3))
    assert np.allclose(full_gradients(W, v, x), _torch_gradients(W, v, x), rtol=1e-14, atol=1e-15)


def test_blocks_against_torch_gradients_monte_carlo_with_error_bars():
    d, p, n = 3, 5, 400_000
    W, v = network(d, p, seed=3)
    F = full_fisher_matrix(W, v)
    x = np.vstack(list(gaussian_input_chunks(n, d, 11)))
    G = _torch_gradients(W, v, x)
    mean = G.T @ G / n
    G2 = G * G
    var = (G2.T @ G2 / n - mean * mean) * n / (n - 1)
    se = np.sqrt(var / n)
    z = np.abs(mean - F) / se
    # 210 distinct entries; under the CLT P(|Z| > 5) ~ 6e-7 each, so a failure is a real discrepancy
    assert z.max() < 5.0, float(z.max())
    # and the errors are noise-sized: the mean squared z-score of (correlated) entries is near 1
    assert 0.3 < float(np.mean(z**2)) < 3.0


def test_monte_carlo_fisher_within_its_error_bars_and_seeded_like_the_readout():
    W, v = network(2, 4, seed=5)
    F = full_fisher_matrix(W, v, sigma=0.5)
    Fn, se = full_monte_carlo_fisher(W, v, 100_000, seed=3, sigma=0.5, return_stderr=True)
    assert np.abs(Fn - F).max() / 1.0 <= 5 * se.max()
    assert np.all(np.abs(Fn - F) <= 5 * se + 1e-12)  # 78 entries at 5 standard errors
    # the v-block is the readout's Monte Carlo FIM on the same inputs (the same stream of samples)
    assert np.allclose(Fn[:4, :4], rf.monte_carlo_fisher(W, 100_000, seed=3, sigma=0.5), rtol=1e-12, atol=1e-15)


def test_empirical_fisher_is_the_average_of_gradient_outer_products():
    W, v = network(3, 6, seed=2)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((9000, 3)), rng.standard_normal(9000)
    G = _torch_gradients(W, v, x)
    f = np.maximum(x @ W, 0.0) @ v
    assert np.allclose(full_empirical_fisher(W, v, x, sigma=2.0), G.T @ G / 9000 / 4, rtol=1e-12, atol=1e-15)
    Gy = G * (y - f)[:, None]
    assert np.allclose(full_empirical_fisher(W, v, x, y=y, sigma=2.0), Gy.T @ Gy / 9000 / 16, rtol=1e-12, atol=1e-15)


def test_hermite_features_against_monte_carlo_with_error_bars():
    d, p, n = 3, 4, 400_000
    W, v = network(d, p, seed=4)
    H = full_hermite_features(W, v)
    x = np.vstack(list(gaussian_input_chunks(n, d, 5)))
    G = full_gradients(W, v, x)
    herm = [np.ones(n)] + [x[:, a] for a in range(d)] + \
        [x[:, a] * x[:, b] - (a == b) for a in range(d) for b in range(a, d)]
    for q, h in enumerate(herm):
        S = G * h[:, None]
        mean, se = S.mean(0), S.std(0, ddof=1) / math.sqrt(n)
        # 16 entries x 10 polynomials at 5.5 standard errors (CLT; zero-variance entries must match exactly)
        assert np.all(np.abs(mean - H[:, q]) <= 5.5 * se + 1e-12), q


def test_degree_four_hermite_features_against_monte_carlo_with_error_bars():
    d, p, n = 3, 4, 400_000
    W, v = network(d, p, seed=6)
    H = full_hermite_features(W, v, degree=4)
    assert H.shape == (p * (d + 1), n_full_hermite_features(d, 4)) == (16, 1 + 3 + 6 + 15)
    x = np.vstack(list(gaussian_input_chunks(n, d, 7)))
    G = full_gradients(W, v, x)
    he = [np.ones(n), x, x * x - 1, x**3 - 3 * x, x**4 - 6 * x * x + 3]  # He_0..He_4 of each coordinate
    quartic = list(itertools.combinations_with_replacement(range(d), 4))
    for q, alpha in enumerate(quartic, start=H.shape[1] - len(quartic)):
        counts = np.bincount(alpha, minlength=d)
        h = np.prod([he[c][:, a] if c else he[0] for a, c in enumerate(counts)], axis=0)
        S = G * h[:, None]
        mean, se = S.mean(0), S.std(0, ddof=1) / math.sqrt(n)
        # 16 entries x 15 polynomials at 5.5 standard errors (CLT; zero-variance entries must match exactly)
        assert np.all(np.abs(mean - H[:, q]) <= 5.5 * se + 1e-12), alpha
    assert np.array_equal(hermite_square_norms(d, 4)[-len(quartic):],
                          [math.prod(math.factorial(c) for c in np.bincount(a, minlength=d)) for a in quartic])


def test_hermite_truncations_are_nested_below_the_exact_fim():
    # F = sum over all alpha of E[grad f h_alpha] E[grad f h_alpha]^T / alpha!: each truncation leaves out PSD terms
    d, p = 3, 30
    W, v = network(d, p, seed=8, scale="1/p")
    F = full_fisher_matrix(W, v)
    M = full_series_preconditioner(W, v, 4)
    F4 = (M.eigenvectors * M.eigenvalues) @ M.eigenvectors.T
    H2 = full_hermite_features(W, v)
    F2 = (H2 / hermite_square_norms(d, 2)) @ H2.T
    scale = np.linalg.eigvalsh(F)[-1]
    for gap in (F - F4, F4 - F2, F - F2):
        assert np.linalg.eigvalsh(gap)[0] > -1e-13 * scale  # PSD to round-off
    assert np.trace(F2) < np.trace(F4) < np.trace(F)
    # the preconditioner's shifted inverse on the whole space, (F4 - theta) T = R
    R = np.random.default_rng(0).standard_normal((F.shape[0], 3))
    theta = np.array([0.3, 0.01, 1e-4]) * scale
    T = M(R, theta)
    assert np.allclose(F4 @ T - T * theta, R, rtol=0, atol=1e-8 * np.abs(R).max())


def test_hermite_degree_is_checked():
    W, v = network(3, 10)
    for bad in (3, 1, 2.0, True, "4"):
        with pytest.raises(ValueError, match="degree must be 2 or 4"):
            full_hermite_features(W, v, degree=bad)
    with pytest.raises(ValueError, match="degree must be 2 or 4"):
        full_series_preconditioner(W, v, 6)


# ----------------------------------------------------------------------------- 2-D quadrature

def _plane_quadrature(wi: np.ndarray, wj: np.ndarray) -> dict[str, np.ndarray]:
    """E over x ~ N(0, I_d) of the block integrands, by quadrature in the plane of wi, wj (polar, kinks split).

    The component of x orthogonal to the plane is independent of every indicator: it contributes
    only through E[x_perp x_perp^T] = I_perp to the w-w block (times P(both positive), also by
    quadrature) and nothing to the others.
    """
    e1 = wi / np.linalg.norm(wi)
    rest = wj - (wj @ e1) * e1
    e2 = rest / np.linalg.norm(rest)
    basis = np.column_stack([e1, e2])  # (d, 2)
    a, b = basis.T @ wi, basis.T @ wj
    kinks = sorted({(math.atan2(u[1], u[0]) + s) % (2 * math.pi) for u in (a, b) for s in (math.pi / 2, -math.pi / 2)})
    edges = [0.0, *kinks, 2 * math.pi]

    def integral(fun):
        total = 0.0
        for lo, hi in zip(edges[:-1], edges[1:]):
            if hi - lo > 1e-12:
                total += integrate.dblquad(
                    lambda r, phi: fun(r * np.array([math.cos(phi), math.sin(phi)]))
                    * r * math.exp(-r * r / 2) / (2 * math.pi), lo, hi, 0, 12, epsabs=1e-13, epsrel=1e-11)[0]
        return total

    def relu(u, y):
        return max(u @ y, 0.0)

    def step(u, y):
        return float(u @ y > 0)

    vv = integral(lambda y: relu(a, y) * relu(b, y))
    vw = np.array([integral(lambda y, k=k: relu(a, y) * step(b, y) * y[k]) for k in range(2)])
    ww = np.array([[integral(lambda y, k=k, m=m: step(a, y) * step(b, y) * y[k] * y[m]) for m in range(2)]
                   for k in range(2)])
    both = integral(lambda y: step(a, y) * step(b, y))
    d = wi.size
    M = basis @ ww @ basis.T + both * (np.eye(d) - basis @ basis.T)
    return {"vv": vv, "vw": basis @ vw, "M": M}


@pytest.mark.parametrize("seed", [0, 1])
def test_blocks_against_quadrature_in_the_plane(seed):
    d, p = 3, 4
    W, v = network(d, p, seed=seed)
    F = full_fisher_matrix(W, v)
    for i, j in [(0, 1), (2, 3), (1, 3)]:
        q = _plane_quadrature(W[:, i], W[:, j])
        # quadrature tolerance 1e-11 relative (the r-cutoff at 12 loses exp(-72)); entries are O(1)
        assert block(F, p, d, ("v", i), ("v", j))[0, 0] == pytest.approx(q["vv"], rel=1e-9, abs=1e-11)
        assert np.allclose(block(F, p, d, ("v", i), ("w", j))[0], v[j] * q["vw"], rtol=1e-9, atol=1e-11)
        assert np.allclose(block(F, p, d, ("w", i), ("w", j)), v[i] * v[j] * q["M"], rtol=1e-9, atol=1e-11)


def test_diagonal_blocks_exact():
    d, p = 4, 6
    W, v = network(d, p, seed=6)
    F = full_fisher_matrix(W, v)
    for i in range(p):
        assert block(F, p, d, ("v", i), ("v", i))[0, 0] == pytest.approx(W[:, i] @ W[:, i] / 2, rel=1e-15)
        assert np.allclose(block(F, p, d, ("v", i), ("w", i))[0], v[i] * W[:, i] / 2, rtol=1e-15, atol=0)
        assert np.array_equal(block(F, p, d, ("w", i), ("w", i)), v[i] ** 2 / 2 * np.eye(d))


# ----------------------------------------------------------------------------- stability near theta = 0 and pi

mpmath.mp.dps = 50


def _mp_blocks(wi: np.ndarray, wj: np.ndarray, vi: float, vj: float):
    """Closed-form blocks (the form with 1/sin theta) at 50 digits, from the float vectors themselves."""
    a = [mpmath.mpf(float(x)) for x in wi]
    b = [mpmath.mpf(float(x)) for x in wj]
    ra = mpmath.sqrt(sum(x * x for x in a))
    rb = mpmath.sqrt(sum(x * x for x in b))
    ea, eb = [x / ra for x in a], [x / rb for x in b]
    t = sum(x * y for x, y in zip(ea, eb))
    # the angle from the vectors, accurate at both ends
    th = 2 * mpmath.asin(mpmath.sqrt(sum((x - y) ** 2 for x, y in zip(ea, eb))) / 2)
    s = mpmath.sin(th)
    k0 = (mpmath.pi - th) / (2 * mpmath.pi)
    kap = (s + (mpmath.pi - th) * mpmath.cos(th)) / (2 * mpmath.pi)
    d = len(a)
    M = [[k0 * (k == m) + (ea[k] * eb[m] + eb[k] * ea[m] - t * (ea[k] * ea[m] + eb[k] * eb[m])) / (2 * mpmath.pi * s)
          for m in range(d)] for k in range(d)]
    vw = [vj * ra * (k0 * ea[k] + s / (2 * mpmath.pi) * eb[k]) for k in range(d)]
    return float(ra * rb * kap), np.array([float(x) for x in vw]), np.array([[float(vi * vj * x) for x in row]
                                                                              for row in M])


@pytest.mark.parametrize("theta", [1e-12, 1e-9, 1e-6, 1e-3, 0.05, 0.14, 0.2, 1.0])
@pytest.mark.parametrize("antiparallel", [False, True])
def test_stable_near_parallel_and_antiparallel(theta, antiparallel):
    ang = math.pi - theta if antiparallel else theta
    W = np.array([[1.0, 2.0 * math.cos(ang), 0.3], [0.0, 2.0 * math.sin(ang), -0.7]])
    v = np.array([0.7, -1.3, 0.4])
    F = full_fisher_matrix(W, v)
    vv, vw, ww = _mp_blocks(W[:, 0], W[:, 1], v[0], v[1])
    # entries are O(1): a stable evaluation is good to a few ulps; a 1/sin(theta) or arccos blow-up
    # would be off by ~1e-16/theta (1e-4 at theta = 1e-12)
    assert block(F, 3, 2, ("v", 0), ("v", 1))[0, 0] == pytest.approx(vv, rel=1e-12, abs=4e-16)
    assert np.allclose(block(F, 3, 2, ("v", 0), ("w", 1))[0], vw, rtol=0, atol=2e-15)
    assert np.allclose(block(F, 3, 2, ("w", 0), ("w", 1)), ww, rtol=0, atol=2e-15)
    U = np.random.default_rng(0).standard_normal((9, 2))
    assert np.allclose(full_fisher_operator(W, v, block=2) @ U, F @ U, rtol=0, atol=1e-14)


def test_limits_at_zero_and_pi():
    # theta = 0 exactly (a repeated unit): M = I/2; theta = pi exactly: every block but the readout's vanishes
    for w2, expect in [(np.array([2.0, 0.0]), 0.5 * np.eye(2)), (np.array([-2.0, 0.0]), np.zeros((2, 2)))]:
        W = np.column_stack([[1.0, 0.0], w2, [0.3, 0.4]])
        F = full_fisher_matrix(W, np.ones(3))
        assert np.array_equal(block(F, 3, 2, ("w", 0), ("w", 1)), expect)
        assert np.all(np.isfinite(F))


# ----------------------------------------------------------------------------- identities

def _check_identities(W, v, F):
    d, p = W.shape
    scale = np.abs(F).max()
    assert np.array_equal(F, F.T)
    lam = np.linalg.eigvalsh(F)
    # LAPACK's eigenvalues are backward stable: errors below ~P eps ||F||
    assert lam.min() >= -10 * F.shape[0] * EPS * max(lam.max(), scale)
    alive = np.linalg.norm(W, axis=0) > 0
    assert np.trace(F) == pytest.approx((W**2).sum() / 2 + d * (v[alive] ** 2).sum() / 2, rel=1e-13)
    Z = rescaling_directions(W, v)
    assert np.abs(F @ Z).max() <= 10 * F.shape[0] * EPS * scale * max(np.abs(Z).max(), 1.0)


def test_identities_and_v_block_is_J():
    W, v = network(5, 40, seed=7, scale="1/p")
    F = full_fisher_matrix(W, v)
    _check_identities(W, v, F)
    J = rf.fisher_matrix(W)
    assert np.allclose(F[:40, :40], J, rtol=1e-14, atol=1e-16)


def test_null_space_is_exactly_the_rescaling_directions():
    d, p = 3, 12
    W, v = network(d, p, seed=8)
    F = full_fisher_matrix(W, v)
    lam, U = np.linalg.eigh(F)
    null = lam < 1e-12 * lam[-1]
    # rank F = p d for generic weights (theory §15.3): p eigenvalues at round-off, the next far above
    assert null.sum() == p and lam[~null].min() > 1e-6 * lam[-1]
    cos = rf.principal_cosines(U[:, null], rescaling_directions(W, v))
    assert cos.min() > 1 - 1e-12


def test_rescaling_symmetry_is_a_block_diagonal_congruence():
    d, p = 3, 7
    W, v = network(d, p, seed=9)
    c = np.random.default_rng(1).uniform(0.2, 5.0, p)  # one factor per unit
    # f(cW, v/c) = f(W, v) for every input: grad_theta' f = D grad_theta f with D = diag(c (v), 1/c (w))
    D = np.concatenate([c, np.repeat(1.0 / c, d)])
    F1 = full_fisher_matrix(W * c, v / c)
    assert np.allclose(F1, D[:, None] * full_fisher_matrix(W, v) * D[None, :], rtol=1e-13, atol=1e-15)


def test_permutation_equivariance():
    d, p = 3, 9
    W, v = network(d, p, seed=10)
    perm = np.random.default_rng(0).permutation(p)
    idx = np.concatenate([perm, p + (perm[:, None] * d + np.arange(d)).ravel()])
    F = full_fisher_matrix(W, v, block=4)
    assert np.allclose(full_fisher_matrix(W[:, perm], v[perm], block=4), F[np.ix_(idx, idx)], rtol=1e-14,
                       atol=1e-16)


def test_sigma_and_dead_units():
    W, v = network(3, 6, seed=11)
    W[:, 2] = 0.0  # a dead unit: its parameters have zero gradient
    F = full_fisher_matrix(W, v, sigma=2.0)
    dead = [2, 6 + 2 * 3, 6 + 2 * 3 + 1, 6 + 2 * 3 + 2]
    assert not F[dead].any() and not F[:, dead].any()
    F1 = full_fisher_matrix(W, v)
    assert np.allclose(F1 / 4, F, rtol=1e-15, atol=0)
    _check_identities(W, v, F1)


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 4), extra=st.integers(1, 6), seed=st.integers(0, 2**31 - 1),
       log_scale=st.floats(-3, 3), repeat=st.booleans(), flip=st.booleans())
def test_identities_hold_for_random_networks(d, extra, seed, log_scale, repeat, flip):
    p = d + extra
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, p)) * 10.0**log_scale
    if repeat:  # parallel and antiparallel units: the stable branch
        W[:, 1] = 3.0 * W[:, 0]
    if flip:
        W[:, -1] = -0.5 * W[:, 0]
    v = rng.standard_normal(p)
    F = full_fisher_matrix(W, v, block=3)
    _check_identities(W, v, F)
    c = rng.uniform(0.5, 2.0, p)
    D = np.concatenate([c, np.repeat(1.0 / c, d)])
    assert np.allclose(full_fisher_matrix(W * c, v / c, block=3), D[:, None] * F * D[None, :],
                       rtol=1e-12, atol=1e-14 * np.abs(F).max())


# ----------------------------------------------------------------------------- the operator

@pytest.mark.parametrize("blk", [1, 2, 5, 7, 16, 36, 37, 64])
def test_operator_equals_dense_for_every_block_size(blk):
    d, p = 3, 37
    W, v = network(d, p, seed=12, scale="1/p")
    F = full_fisher_matrix(W, v, sigma=0.7)
    op = full_fisher_operator(W, v, sigma=0.7, block=blk, threads=2)
    U = np.random.default_rng(blk).standard_normal((F.shape[0], 3))
    # both sides sum P products of O(|F| |U|) terms: round-off well below 1e-12 of that scale
    tol = 1e-12 * np.abs(F).max() * np.abs(U).sum(axis=0).max()
    assert np.abs(op @ U - F @ U).max() <= tol
    assert np.abs(op @ U[:, 0] - F @ U[:, 0]).max() <= tol
    assert op.products == 4


@pytest.mark.parametrize("blk", [5, 16, 37])
def test_compiled_alpha_terms_match_the_numpy_passes_and_dense(blk, monkeypatch):
    from relufim.fim import full

    if full._calpha is None:
        pytest.skip("the optional compiled alpha terms are not built in this installation")
    d, p = 4, 37
    W, v = network(d, p, seed=21, scale="1/p")
    F = full_fisher_matrix(W, v)
    U = np.random.default_rng(blk).standard_normal((F.shape[0], 11))
    op = full_fisher_operator(W, v, block=blk, threads=2)
    compiled = op @ U
    monkeypatch.setattr(full, "_calpha", None)
    passes = op @ U
    # both sum P products of O(|F| |U|) terms: round-off well below 1e-12 of that scale
    tol = 1e-12 * np.abs(F).max() * np.abs(U).sum(axis=0).max()
    assert np.abs(compiled - F @ U).max() <= tol and np.abs(passes - F @ U).max() <= tol


def test_compiled_alpha_terms_refuse_wrong_arrays():
    from relufim.fim import full

    if full._calpha is None:
        pytest.skip("the optional compiled alpha terms are not built in this installation")
    EI, CJ, EJ, A, Y = np.ones((3, 2)), np.ones((4, 2, 5)), np.ones((2, 5)), np.ones((3, 5)), np.zeros((4, 3, 2))
    full._calpha.add_alpha_terms(EI, CJ, EJ, A, Y)
    assert np.allclose(Y, 2.0 * 5.0)  # sum over 5 columns of 1 * (1 . 1 over 2 coordinates) * 1
    with pytest.raises(ValueError, match="unit stride"):
        full._calpha.add_alpha_terms(EI, CJ, EJ, np.ones((3, 4)), Y)  # A with the wrong number of columns
    with pytest.raises(TypeError, match="float64"):
        full._calpha.add_alpha_terms(EI.astype(np.float32), CJ, EJ, A, Y)
    with pytest.raises(ValueError, match="unit stride"):
        full._calpha.add_alpha_terms(EI, CJ, np.asfortranarray(np.ones((2, 5))), A, Y)


def test_compiled_angle_coefficients_against_their_formulas():
    from relufim.fim import full

    if full._calpha is None:
        pytest.skip("the optional compiled module is not built in this installation")
    T = np.array([[1.2, 1.0, 0.5, 0.0], [-0.3, -1.0, -1.5, 0.99]])
    K0, A, B = np.empty_like(T), np.empty_like(T), np.empty_like(T)
    full._calpha.angle_coefficients(T, K0, A, B)
    t = np.clip([[1.2, 1.0, 0.5, 0.0], [-0.3, -1.0, -1.5, 0.99]], -1.0, 1.0)
    s = np.sqrt(1.0 - t * t)
    assert np.array_equal(T, t)  # clipped in place
    np.testing.assert_allclose(K0, (np.pi - np.arccos(t)) / (2 * np.pi), rtol=0, atol=1e-15)
    a = np.divide(1.0, 2 * np.pi * s, out=np.zeros_like(s), where=s > 0)  # 0 where sin = 0: set apart anyway
    np.testing.assert_allclose(A, a, rtol=1e-14, atol=0)
    np.testing.assert_allclose(B, t * a, rtol=1e-14, atol=0)


def test_compiled_product_adds_into_its_output():
    from relufim.fim import full

    if full._calpha is None:
        pytest.skip("the optional compiled module is not built in this installation")
    rng = np.random.default_rng(3)
    tile = rng.standard_normal((9, 9))
    b, out = rng.standard_normal((5, 4)), rng.standard_normal((6, 4))
    for a in (tile[:6, :5], tile[:5, :6].T, np.ascontiguousarray(tile[:6, :5])):  # a tile, its mirror, a copy
        before = out.copy()
        full._add_matmul(out, a, b, np.empty_like(out), -1.0)
        np.testing.assert_allclose(out, before - a @ b, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="add_product"):
        full._calpha.add_product(full._DGEMM, tile[:6, :5], b[:4], out, 1.0)


def test_operator_counts_the_time_of_its_products():
    W, v = network(3, 40, seed=13)
    op = full_fisher_operator(W, v)
    assert op.product_seconds == 0.0
    U = np.ones((op.shape[0], 2))
    start = time.perf_counter()
    op @ U
    first = op.product_seconds
    assert 0.0 < first <= time.perf_counter() - start  # inside the call's own wall-clock time
    op @ U
    assert op.product_seconds > first and full_fisher_operator(W, v).product_seconds == 0.0  # per operator


def test_operator_in_float32():
    W, v = network(3, 30, seed=15)
    F = full_fisher_matrix(W, v)
    U = np.random.default_rng(0).standard_normal((F.shape[0], 2))
    out = full_fisher_operator(W, v, block=8, dtype="float32") @ U
    assert out.dtype == np.float64
    # single precision: each product term carries ~6e-8 relative error, summed over P terms of size |F||U|
    assert np.abs(out - F @ U).max() <= 1e-5 * np.abs(F).max() * np.abs(U).sum(axis=0).max()
    assert np.abs(out - F @ U).max() > 1e-12 * np.abs(F @ U).max()  # it is not float64
    with pytest.raises(ValueError, match="float64' or 'float32"):
        full_fisher_operator(W, v, dtype="float16")


def test_operator_exact_facts():
    d, p = 4, 30
    W, v = network(d, p, seed=13)
    F = full_fisher_matrix(W, v, sigma=1.5)
    op = full_fisher_operator(W, v, sigma=1.5, block=8)
    assert np.allclose(op.diagonal(), np.diag(F), rtol=1e-15, atol=0)
    assert op.trace() == pytest.approx(np.trace(F), rel=1e-14)
    assert op.frobenius_norm_squared() == pytest.approx((F**2).sum(), rel=1e-12)
    assert op.flops(2) == (10 * d + 2) * p * p * 2
    assert op.shape == (full_parameter_count(d, p),) * 2


def test_operator_spectrum_with_residuals_equals_dense():
    d, p = 4, 60
    W, v = network(d, p, seed=14, scale="1/p")
    F = full_fisher_matrix(W, v)
    op = full_fisher_operator(W, v, block=16)
    res = rf.matrix_spectrum(op, k=14, X0=full_hermite_features(W, v), tol=1e-10)
    lam = np.linalg.eigvalsh(F)[::-1]
    assert res.ok and res.max_residual <= 1e-10 * lam[0]
    # residual r bounds the eigenvalue error by r (a symmetric matrix)
    assert np.allclose(res.eigenvalues, lam[:14], rtol=0, atol=2e-10 * lam[0])


# ----------------------------------------------------------------------------- bad input

def test_bad_readout_is_refused():
    W, v = network(3, 5)
    for bad, msg in [(v[:4], r"shape \(5,\)"), (v[:, None], r"shape \(5,\)"), (np.r_[v[:4], np.nan], "non-finite"),
                     (np.r_[v[:4], np.inf], "non-finite")]:
        for fn in (full_fisher_matrix, full_fisher_operator, rescaling_directions, full_hermite_features):
            with pytest.raises(ValueError, match=msg):
                fn(W, bad)
    with pytest.raises(TypeError, match="v must"):
        full_fisher_matrix(W, "v")
    with pytest.raises(ValueError, match="d < p"):
        full_fisher_matrix(W.T[:, :3], v[:3])
    with pytest.raises(ValueError, match="sigma"):
        full_fisher_operator(W, v, sigma=0.0)
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        full_gradients(W, v, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="y must have shape"):
        full_empirical_fisher(W, v, np.zeros((4, 3)), y=np.zeros(3))


def test_dense_request_that_cannot_fit_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(_validation, "available_memory_bytes", lambda: 10**9)
    W, v = network(10, 2000, scale="1/p")
    message = r"22000 x 22000 FIM of all parameters needs \d\.\d GB.*available.*full_fisher_operator"
    with pytest.raises(ValueError, match=message):
        full_fisher_matrix(W, v)
    assert full_fisher_operator(W, v).shape == (22000, 22000)  # the alternative needs a few MB


def _traced_peak(fn) -> int:
    """Bytes allocated at the peak of ``fn()`` above those allocated before (NumPy reports arrays to tracemalloc)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_row_block_memory_estimate_is_smaller_and_bounds_what_a_task_allocates():
    """A row block of q units accumulates (2, q, d b) per thread, not (2, p, d b): its estimate charges q rows.

    Oracle: the peak of the allocations tracemalloc sees while the task (or the whole product) runs, plus
    the input the estimates also charge. The case has no near pairs (checked here with dense cosines;
    the test below has many) and accumulators that dominate (8 threads): the whole product
    really needs more than the row block's estimate, so charging q rows is not a loosening.
    """
    d, p, b, tile, threads, q = 8, 1200, 16, 64, 8, 100
    W, v = network(d, p, seed=16)
    E = W / np.linalg.norm(W, axis=0)
    cos = E.T @ E
    np.fill_diagonal(cos, 0.0)
    assert np.abs(cos).max() < NEAR_THRESHOLD
    U = np.random.default_rng(17).standard_normal((p * (d + 1), b))
    static = np.vstack([W, v[None, :]])
    distributed_full_block(static, 0, 1, U[:, :1], tile, 1)  # the first call imports what worker_address needs
    row_estimate = _product_memory(p, d, b, tile, threads, row_block=q)
    whole_estimate = _product_memory(p, d, b, tile, threads)
    assert row_estimate < whole_estimate
    row_peak = _traced_peak(lambda: distributed_full_block(static, 500, 500 + q, U, tile, threads)) + U.nbytes
    whole_peak = _traced_peak(lambda: _full_product(_Units.of(W, v), U, tile, threads, None)) + U.nbytes
    assert row_peak <= row_estimate
    assert whole_peak <= whole_estimate
    assert whole_peak > row_estimate


def _duplicated_network(d: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Units along three directions: scaled, negated and exactly repeated copies, some moved by 1e-8."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, 3))[:, rng.integers(0, 3, p)] * rng.uniform(0.5, 2.0, p) * rng.choice([-1.0, 1.0], p)
    W[:, -p // 10:] = W[:, :p // 10]
    W[:, 1::5] += 1e-8 * rng.standard_normal((d, len(range(1, p, 5))))
    return W, rng.standard_normal(p)


@pytest.mark.parametrize("d", [1, 2])
def test_many_near_pairs_stay_within_the_memory_estimate(d):
    r"""Near pairs (theory §15.2) are processed a chunk at a time: however many, a product fits its estimate.

    Every pair at d = 1 and a third of them at d = 2 are near-parallel or near-antiparallel
    (duplicated and negated units, as in pruned or duplicated networks). Oracle for the memory: the
    tracemalloc peak of one product plus its input, as in the test above; arrays sized by the number of
    near pairs in a tile would exceed the estimate twice over here. Oracle for the values: the dense
    matrix, and at d = 1 the closed form :math:`F = (g_+g_+^\top + g_-g_-^\top)/2` (``x`` is a scalar:
    :math:`\nabla_\theta f = x\sum_s 1[sx > 0]g_s` with :math:`g_s = (w_j, v_j)` on the units of sign
    ``s`` and :math:`E[x^2 1[sx > 0]] = 1/2`).
    """
    p, b, tile, threads = 600, 16, 256, 2
    W, v = _duplicated_network(d, p, seed=20 + d)
    E = W / np.linalg.norm(W, axis=0)
    near = np.abs(E.T @ E) > NEAR_THRESHOLD
    assert near.mean() > 0.3
    U = np.random.default_rng(3).standard_normal((p * (d + 1), b))
    out = []
    peak = _traced_peak(lambda: out.append(_full_product(_Units.of(W, v), U, tile, threads, None))) + U.nbytes
    assert peak <= _product_memory(p, d, b, tile, threads)
    # each side's entries are sums of P <= 1800 rounded terms: errors below P eps = 4e-13 of the result
    FU = full_fisher_matrix(W, v) @ U
    assert np.linalg.norm(out[0] - FU) <= 1e-12 * np.linalg.norm(FU)
    if d == 1:
        g = np.concatenate([W[0], v])
        sign = np.tile(np.sign(W[0]), 2)
        exact = sum(np.outer(gs, gs @ U) for gs in (g * (sign > 0), g * (sign < 0))) / 2
        assert np.linalg.norm(out[0] - exact) <= 1e-12 * np.linalg.norm(exact)

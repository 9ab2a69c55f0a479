"""Theory vectors (DESIGN §3) against direct formulas; Theorem 2 against the kernel series; Lemma 2 by Monte Carlo."""

import math

import numpy as np
import pytest

import relufim as rf
from relufim.model.kernels import arccos_kernel_series_coefficients
from relufim.theory.checks import lemma2_statistics, theorem2_low_rank_factor, theorem2_remainder
from relufim.theory.vectors import TRACE_SHARE_BOUND, theorem3_bounds


def test_vectors_match_their_definitions():
    d, p = 4, 50
    W = rf.sample_weights(d, p, seed=0)
    th = rf.theory_vectors(W)
    a = np.array([math.sqrt(sum(W[l, i] ** 2 for l in range(d))) for i in range(p)])
    np.testing.assert_allclose(th.v0, a / math.sqrt(d), rtol=1e-14)
    for r, (al, be) in enumerate(th.pairs):
        expected = [math.sqrt(d) * W[al, i] * W[be, i] / a[i] for i in range(p)]
        np.testing.assert_allclose(th.v_ab[r], expected, rtol=1e-13)
    vgg = th.v_ab[[th.pairs.index((g, g)) for g in range(d)]]
    np.testing.assert_allclose(th.v_gamma, (vgg - th.v0) / math.sqrt(2), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(th.v_gamma.sum(axis=0), 0, atol=1e-13)  # sum_gamma v^(gamma) = 0
    np.testing.assert_allclose(vgg.mean(axis=0), th.v0 / d * math.sqrt(d) * math.sqrt(d) / d * d, rtol=1e-12)
    bases = th.predicted_bases()
    assert [b.shape[1] for b in bases] == list(rf.predicted_cluster_sizes(d))
    for b in bases:
        np.testing.assert_allclose(b.T @ b, np.eye(b.shape[1]), atol=1e-12)


def test_theorem2_remainder_is_the_series_tail_and_psd():
    d, p = 3, 300
    W = rf.sample_weights(d, p, seed=4)
    R = theorem2_remainder(W)
    # independent construction of the tail sum_{k>=4} a_k D T^k D from the Taylor coefficients
    a = arccos_kernel_series_coefficients(4000)
    norms = np.linalg.norm(W, axis=0)
    T = np.clip((W / norms).T @ (W / norms), -1, 1)
    tail = np.zeros_like(T)
    Tk = T**4
    for k in range(4, 4000, 2):
        tail += a[k] * Tk
        Tk *= T * T
    tail *= np.outer(norms, norms)
    # truncation after 4000 terms: |error_ij| <= ||w_i|| ||w_j|| sum_{k>=4000} a_k |t|^k, and
    # sum_{k>=4000} a_k = kappa(1) - sum_{k<4000} a_k = 1/2 - sum(a) exactly (all a_k >= 0)
    rest = 0.5 - a.sum()
    bound = np.outer(norms, norms) * rest + 1e-14 * norms.max() ** 2
    assert (np.abs(R - tail) <= bound).all()
    moderate = np.abs(T) < 0.99  # here the tail is below 0.99^4000 ~ 3e-18
    assert np.abs(R - tail)[moderate].max() < 1e-14 * norms.max() ** 2
    assert np.linalg.eigvalsh(R).min() > -1e-13 * np.trace(rf.fisher_matrix(W))


def test_theorem2_explicit_part_coefficients():
    # G^T G reproduces the degree <= 2 part a_i a_j (1/(2 pi) + t/4 + t^2/(4 pi)) exactly
    W = rf.sample_weights(5, 80, seed=1)
    G = theorem2_low_rank_factor(rf.theory_vectors(W))
    norms = np.linalg.norm(W, axis=0)
    T = (W / norms).T @ (W / norms)
    low = np.outer(norms, norms) * (1 / (2 * math.pi) + T / 4 + T**2 / (4 * math.pi))
    np.testing.assert_allclose(G.T @ G, low, rtol=1e-12, atol=1e-15)


def test_lemma2_finite_d_expectations_by_monte_carlo():
    # average over independent draws of W; the per-draw means have spread ~ 1/sqrt(p)
    d, p, reps = 6, 4000, 8
    ab, gam, inner = [], [], []
    for s in range(reps):
        st = lemma2_statistics(rf.theory_vectors(rf.sample_weights(d, p, seed=100 + s)))
        ab.append(st["v_ab"]["mean_sq_norm"])
        gam.append(st["v_gamma"]["mean_sq_norm"])
        inner.append(st["v_gamma_inner_product"]["mean"])
    for vals, expected in ((ab, d / (d + 2)), (gam, (d - 1) / (d + 2)), (inner, -1 / (d + 2))):
        vals = np.asarray(vals)
        se = vals.std(ddof=1) / math.sqrt(reps)
        assert abs(vals.mean() - expected) < 5 * se + 1e-12, (vals.mean(), expected, se)


def test_theorem3_bounds_sum_to_the_trace_share():
    assert TRACE_SHARE_BOUND == pytest.approx(0.5 + 3 / (2 * math.pi))
    # lower bounds / (d/2) -> 1/2 + 3/(2 pi) as d grows, from above
    shares = [theorem3_bounds(d)["share_of_trace"] for d in (2, 10, 100, 10**6)]
    assert shares[-1] == pytest.approx(TRACE_SHARE_BOUND, abs=1e-5)
    assert all(s1 >= s2 for s1, s2 in zip(shares, shares[1:]))

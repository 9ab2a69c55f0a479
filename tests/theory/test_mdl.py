"""Two-stage codes, the MDL estimator and the risk bound (theory §16) against independent oracles.

Oracles: enumeration of every lattice point (Kraft sums, the exact estimator, the exact index of
resolvability), dense ``J`` from ``fisher_matrix`` (LAPACK), scipy quadrature over ``y`` and over
``x`` (in one and two input dimensions), plain Monte Carlo over ``(x, y)`` with error bars, and
the closed forms of theory §16.5-16.6 recomputed here from the eigenvalues.
"""

from __future__ import annotations

import itertools
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize

import relufim as rf
from relufim.fim.sampled import gaussian_input_chunks
from relufim.spectrum.result import n_top
from relufim.theory.dynamics import default_target
from relufim.theory.mdl import (
    CODING_THRESHOLD,
    RadiusWarning,
    TwoStageCode,
    index_of_resolvability,
    kl_divergence,
    leading_term,
    mdl_estimate,
    renyi_divergence,
    simulate_mdl_risk,
    two_stage_code,
)
from relufim.theory.risk import mixture_redundancy

Z = 4.0  # z-score bound for Monte Carlo comparisons (|N(0,1)| > 4 with probability 6e-5)
EPS = np.finfo(float).eps
THEORY = Path(__file__).resolve().parents[2] / "docs" / "theory.md"


def _data(W, v, n, sigma, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, W.shape[0]))
    return x, rf.hidden_features(W, x) @ v + sigma * rng.standard_normal(n)


def _all_points(code):
    """Every integer coordinate vector of the box, (N, k)."""
    return np.array(list(itertools.product(*[range(-int(M), int(M) + 1) for M in code.box])), dtype=np.int64)


@pytest.fixture(scope="module")
def small():
    W = rf.sample_weights(2, 12, seed=3)
    return W, rf.fisher_matrix(W)


# ----------------------------------------------------------------------------- the code

@pytest.mark.parametrize("n,radius,beta,sigma", [(40, 1.0, 2.0, 1.0), (200, 0.5, 1.5, 0.7), (30, 2.0, 3.0, 1.3)])
def test_kraft_sum_is_exactly_one_and_matches_enumeration(small, n, radius, beta, sigma):
    W, _ = small
    code = two_stage_code(W, n, radius=radius, beta=beta, sigma=sigma)
    assert 1 <= code.coded <= 6 and code.points <= 20000
    assert code.kraft_sum() == Fraction(1)  # exact rational arithmetic
    pts = _all_points(code)
    assert len(pts) == code.points
    # enumeration: sum e^{-L(v)} over every point, each term from code_length (rounding: each term has relative
    # error <= k eps from the sum of k logs and exp, fsum adds them exactly, so the total is within 4 k eps of 1)
    total = math.fsum(math.exp(-code.code_length(m)) for m in pts)
    assert abs(total - 1.0) <= 4 * code.coded * EPS * 10
    # the points are distinct: the smallest distance between two of them is the smallest step
    V = np.array([code.point(m) for m in pts])
    if len(V) > 1:
        D = np.linalg.norm(V[:, None, :] - V[None, :, :], axis=2) + np.eye(len(V)) * 1e9
        assert D.min() == pytest.approx(code.steps.min(), rel=1e-9)
    # lengths by direction: the uniform code over 2M+1 values
    assert np.allclose(code.direction_lengths, np.log(2 * code.box + 1))


def test_points_coordinates_and_code_lengths(small):
    W, _ = small
    code = two_stage_code(W, 100, radius=1.0)
    m = np.array([(-1) ** i * min(i, int(M)) for i, M in enumerate(code.box)])
    v = code.point(m)
    assert np.array_equal(code.coordinates(v), m)
    assert code.code_length(m) == pytest.approx(np.sum(np.log(2 * code.box + 1)), rel=1e-14)
    with pytest.raises(ValueError, match="outside the box"):
        code.point(code.box + 1)
    with pytest.raises(ValueError, match="not a lattice point"):
        code.coordinates(v + 0.3 * code.steps[0] * code.basis[:, 0])
    off = rf.fisher_matrix(W)[:, 0]
    with pytest.raises(ValueError, match="not a lattice point"):
        code.coordinates(v + off - code.basis @ (code.basis.T @ off))
    with pytest.raises(TypeError, match="integers"):
        code.code_length(np.full(code.coded, 0.5))
    with pytest.raises(ValueError, match="one integer per coded direction"):
        code.code_length(np.zeros(code.coded + 1, int))


def test_steps_minimize_the_per_direction_cost():
    # theory §16.6: lambda delta^2/(8 sigma^2) + (beta/n) log(2R/delta) is minimized at
    # delta^2 = 4 beta sigma^2/(n lambda)
    for lam, n, beta, sigma, R in [(0.3, 1000, 2.0, 1.0, 2.0), (1e-3, 50, 1.3, 0.4, 0.7), (2.0, 10**5, 5.0, 3.0, 10.0)]:
        def f(dl, lam=lam, n=n, beta=beta, sigma=sigma, R=R):
            return lam * dl**2 / (8 * sigma**2) + beta / n * math.log(2 * R / dl)

        res = optimize.minimize_scalar(f, bounds=(1e-9, 100), method="bounded", options={"xatol": 1e-12})
        assert res.x == pytest.approx(math.sqrt(4 * beta * sigma**2 / (n * lam)), rel=1e-4)


def test_the_gain_exceeds_cost_rule_is_the_threshold_1_plus_2log3():
    # theory §16.6: with M = ceil(sqrt(x)/2 - 1/2), x > 1 + 2 log(2M+1) exactly when x > 1 + 2 log 3
    xs = np.concatenate([np.linspace(1e-3, 40, 400001), np.logspace(1, 8, 20001), [CODING_THRESHOLD * (1 + 1e-12)]])
    M = np.ceil(np.sqrt(xs) / 2 - 0.5)
    assert np.array_equal(xs > 1 + 2 * np.log(2 * M + 1), xs > 1 + 2 * math.log(3))
    assert CODING_THRESHOLD == pytest.approx(3.1972245773362196, rel=1e-15)


def _bound_curve(lam, n, sigma, beta, R):
    """Theory §16.5's bound with exact lengths for k = 0..len(lam)-1 coded directions, from scratch."""
    out = []
    for k in range(lam.size):
        delta = np.sqrt(4 * beta * sigma**2 / (n * lam[:k]))
        M = np.ceil(R / delta - 0.5)
        out.append(np.sum(lam[:k] * delta**2 / (8 * sigma**2)) + beta / n * np.sum(np.log(2 * M + 1))
                   + lam[k] * R**2 / (2 * sigma**2))
    return np.array(out)


@pytest.mark.parametrize("d,p,seed", [(2, 30, 0), (3, 60, 0), (4, 80, 1)])
def test_bound_coding_minimizes_the_bound_over_every_k_and_never_exceeds_the_threshold_rule(d, p, seed):
    W = rf.sample_weights(d, p, seed=seed)
    lam = np.maximum(np.linalg.eigvalsh(rf.fisher_matrix(W))[::-1], 0)
    settings_ = [(30, 1.0, 2.0, 1.0), (1000, 2.0, 2.0, 1.0), (5000, 2.0, 1.5, 0.5), (10**5, 0.5, 4.0, 1.0)]
    for n, R, beta, sigma in settings_:
        B = _bound_curve(lam[lam > 0], n, sigma, beta, R)  # every k with lambda_k > 0
        thr = two_stage_code(W, n, radius=R, beta=beta, sigma=sigma, coding="threshold")
        best = two_stage_code(W, n, radius=R, beta=beta, sigma=sigma)
        assert thr.coded == int(np.sum(n * lam * R**2 / (beta * sigma**2) > CODING_THRESHOLD))
        assert best.coded == int(np.argmin(B)) <= thr.coded  # theory §16.6: the minimizer lies at or below the rule
        assert best.bound_with_lengths() == pytest.approx(B.min(), rel=1e-9)
        assert thr.bound_with_lengths() == pytest.approx(B[thr.coded], rel=1e-9)


def test_code_from_given_eigenpairs_and_explicit_directions(small):
    W, _ = small
    res = rf.spectrum(W, k="all")
    a = two_stage_code(W, 500, radius=1.0)
    b = two_stage_code(W, 500, radius=1.0, eigenpairs=res)
    assert a.coded == b.coded and np.allclose(a.steps, b.steps) and np.array_equal(a.box, b.box)
    assert np.allclose(np.abs(a.basis.T @ b.basis), np.eye(a.coded), atol=1e-8)
    c = two_stage_code(W, 500, radius=1.0, directions=7)
    assert c.coded == 7 and math.isnan(c.threshold) and c.coding == "directions"
    # sigma-scaled eigenpairs: the code uses J's eigenvalues whatever sigma the result was computed with
    d = two_stage_code(W, 500, radius=1.0, eigenpairs=rf.spectrum(W, k="all", sigma=3.0))
    assert np.allclose(d.steps, a.steps, rtol=1e-10)


def test_design_on_the_matrix_free_route_converges_every_pair_it_uses(monkeypatch):
    """Where relufim.spectrum goes matrix-free (which by default converges only the clusters), the code's
    eigensolve still requires every pair, the ones beyond the clusters included: against dense eigh."""
    import sys

    monkeypatch.setattr(sys.modules["relufim.spectrum.solve"], "MATRIX_FREE_LIMIT", 500)
    d, p, n, R = 3, 600, 10**5, 2.0  # 49 directions coded: the count of pairs doubles once (25, then 50)
    W = rf.sample_weights(d, p, seed=2)
    lam = np.linalg.eigvalsh(rf.fisher_matrix(W))[::-1]
    code = two_stage_code(W, n, radius=R, coding="threshold")
    res = code.eigenpairs
    assert res.method == "matrix-free" and res.converged.all() and res.eigenvalues.size > n_top(d)
    # the design's residual tolerance, 1e-8 of lambda_max, bounds each eigenvalue's error
    np.testing.assert_allclose(res.eigenvalues, lam[:res.eigenvalues.size], rtol=0, atol=1e-8 * lam[0])
    assert code.coded == int(np.sum(n * lam * R**2 / (2.0 * 1.0) > CODING_THRESHOLD)) > n_top(d)


def test_length_by_cluster_and_the_leading_term():
    d = 3
    W = rf.sample_weights(d, 200, seed=1)
    n, beta, sigma, R = 4000, 2.0, 1.0, 2.0
    code = two_stage_code(W, n, radius=R, directions=n_top(d) + 4, beta=beta, sigma=sigma)
    split = code.length_by_cluster()
    assert [split[g]["directions"] for g in ("norm", "linear", "degree2", "remaining")] == [1, 3, 5, 4]
    assert sum(g["nats"] for g in split.values()) == pytest.approx(code.length, rel=1e-14)
    assert split["norm"]["nats"] == pytest.approx(math.log(2 * code.box[0] + 1), rel=1e-14)
    # theory §16.7: with the d(d+3)/2 cluster directions coded, the leading part of the closed form is
    # beta d(d+3)/4 log n/n + (beta/2n) sum (1 + log(lambda_i R^2/(beta sigma^2))): an identity
    top = two_stage_code(W, n, radius=R, directions=n_top(d), beta=beta, sigma=sigma)
    lam = top.eigenvalues[:n_top(d)]
    rest = beta / (2 * n) * np.sum(1 + np.log(lam * R**2 / (beta * sigma**2)))
    assert top.bound_estimate()["leading"] == pytest.approx(leading_term(d, n, beta) + rest, rel=1e-12)
    assert leading_term(d, n, beta) == pytest.approx(beta * d * (d + 3) / 4 * math.log(n) / n, rel=1e-15)


def test_limit_eigenvalue_quoted_in_theory_section_16_7():
    lim = rf.limit_spectrum(d=10, kmax=4)
    lam4 = [g.eigenvalue for g in lim.degrees if g.k == 4][0]
    assert f"{lam4:.1e}" == "8.2e-05"


# ----------------------------------------------------------------------------- the estimator

def _brute_force(code, x, y, metric=None):
    """Minimize ||y - X B m||^2 (or the J-distance to a target) over every point of the box."""
    pts = _all_points(code)
    B = code.basis * code.steps
    if metric is None:
        r = y[:, None] - rf.hidden_features(code.W, x) @ (B @ pts.T)
        vals = np.einsum("ij,ij->j", r, r)
    else:
        J, vs = metric
        E = B @ pts.T - vs[:, None]
        vals = np.einsum("ij,ij->j", E, J @ E)
    i = int(np.argmin(vals))
    return pts[i], vals[i], np.sort(vals)[1] if len(vals) > 1 else np.inf


@pytest.mark.parametrize("n,seed,sigma", [(12, 0, 1.0), (25, 1, 2.0), (40, 2, 0.5), (200, 3, 1.0), (15, 4, 3.0)])
def test_exact_estimator_equals_brute_force_enumeration(small, n, seed, sigma):
    W, _ = small
    rng = np.random.default_rng(seed)
    vs = rng.standard_normal(W.shape[1]) * 0.3
    code = two_stage_code(W, n, radius=1.0, sigma=sigma, directions=min(5, n - 1))
    x, y = _data(W, vs, n, sigma, seed)
    m_bf, rss_bf, second = _brute_force(code, x, y)
    assert second - rss_bf > 1e-9 * rss_bf  # a unique minimizer, so the comparison is exact
    ex = mdl_estimate(code, x, y, method="exact", node_budget=10**6)
    assert ex.method == "exact" and np.array_equal(ex.m, m_bf)
    assert ex.residual_sum_squares == pytest.approx(rss_bf, rel=1e-10)
    assert np.allclose(ex.v, code.point(m_bf), atol=1e-14)
    nll = 0.5 * n * math.log(2 * math.pi * sigma**2) + rss_bf / (2 * sigma**2)
    assert ex.description_length == pytest.approx(nll + code.beta * code.length, rel=1e-10)
    fast = mdl_estimate(code, x, y, method="fast")
    assert fast.method == "fast" and fast.gap is None
    assert fast.residual_sum_squares >= rss_bf * (1 - 1e-12)
    assert ex.gap == pytest.approx((fast.residual_sum_squares - rss_bf) / (2 * sigma**2), abs=1e-9 * rss_bf)


def test_exact_beats_fast_where_local_search_stops_short():
    # few samples for many coded directions (n = 20, k = 10): correlated columns, where Babai + local search is
    # not always optimal; the exact search is, against brute force over all 23625 points of the box
    W = rf.sample_weights(3, 30, seed=7)
    code = two_stage_code(W, 20, radius=3.0, directions=10)
    assert code.points == 23625
    gaps = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((20, 3))
        y = rf.hidden_features(W, x) @ (0.4 * rng.standard_normal(30)) + rng.standard_normal(20)
        m_bf, rss, _ = _brute_force(code, x, y)
        ex = mdl_estimate(code, x, y, node_budget=10**6)
        fast = mdl_estimate(code, x, y, method="fast")
        assert np.array_equal(ex.m, m_bf)
        assert ex.gap == pytest.approx((fast.residual_sum_squares - rss) / 2, abs=1e-9 * rss)
        gaps.append(ex.gap)
    assert min(gaps) >= 0
    assert [round(g, 2) for g in gaps if g > 0] == [0.17, 0.17, 0.94]  # quoted in theory §16.9


def test_exact_solve_refuses_up_front_and_offers_the_fast_one():
    W = rf.sample_weights(4, 300, seed=0)
    code = two_stage_code(W, 300, radius=2.0, directions=n_top(4))
    x, y = _data(W, default_target(W), 300, 1.0, 0)
    with pytest.raises(ValueError, match="method='fast'"):
        mdl_estimate(code, x, y, method="exact", node_budget=1)
    auto = mdl_estimate(code, x, y, method="auto", node_budget=1)
    assert auto.method == "fast" and auto.gap is None and auto.estimated_nodes is not None
    # fewer samples than coded directions: the exact solve says why, the fast one works
    code_u = two_stage_code(W, 8, radius=2.0, directions=n_top(4))
    xu, yu = _data(W, default_target(W), 8, 1.0, 1)
    with pytest.raises(ValueError, match="rank below k"):
        mdl_estimate(code_u, xu, yu, method="exact")
    assert mdl_estimate(code_u, xu, yu, method="fast").m.shape == (n_top(4),)


# ----------------------------------------------------------------------------- divergences

@pytest.mark.parametrize("beta", [1.25, 2.0, 5.0])
def test_gaussian_renyi_formula_against_integration_over_y(beta):
    W = rf.sample_weights(2, 9, seed=2)
    rng = np.random.default_rng(0)
    v, vs, sigma = rng.standard_normal(9), rng.standard_normal(9), 0.8
    lam = 1 - 1 / beta
    def logdens(y, f):
        return -(y - f) ** 2 / (2 * sigma**2) - 0.5 * math.log(2 * math.pi * sigma**2)

    for x in rng.standard_normal((3, 2)):
        fs, fv = float((rf.hidden_features(W, x[None]) @ vs)[0]), float((rf.hidden_features(W, x[None]) @ v)[0])
        lo, hi = min(fs, fv) - 40 * sigma, max(fs, fv) + 40 * sigma
        val = integrate.quad(lambda y, fs=fs, fv=fv: math.exp(lam * logdens(y, fs) + (1 - lam) * logdens(y, fv)),
                             lo, hi, points=[fs, fv], epsabs=0, epsrel=1e-13)[0]
        got = renyi_divergence(W, v, vs, beta=beta, sigma=sigma, x=x[None])
        # quad is accurate to ~1e-13 relative; the divergence is -beta log(val)
        assert got.value == pytest.approx(-beta * math.log(val), rel=1e-9, abs=1e-12)
        # the KL at one input, against the integral of p* log(p*/p_v)
        kl = integrate.quad(lambda y, fs=fs, fv=fv: math.exp(logdens(y, fs)) * (logdens(y, fs) - logdens(y, fv)),
                            lo, hi, points=[fs, fv], epsabs=0, epsrel=1e-13)[0]
        assert kl == pytest.approx((fs - fv) ** 2 / (2 * sigma**2), rel=1e-9)


def _quad_over_x(W, e, f, d):
    """E_x f(Delta(x)) for x ~ N(0, I_d), d = 1 or 2, by adaptive quadrature (kinks at the ReLU boundaries)."""
    if d == 1:
        phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
        g = lambda x: f(float(np.maximum(x * W[0], 0) @ e)) * phi(x)
        return integrate.quad(g, -np.inf, 0, epsabs=1e-14, epsrel=1e-12)[0] + \
            integrate.quad(g, 0, np.inf, epsabs=1e-14, epsrel=1e-12)[0]
    # polar coordinates; kinks at the angles where a hidden unit switches on; the radial integral numerically
    kinks = sorted({(math.atan2(-W[0, i], W[1, i]) + s * math.pi) % (2 * math.pi) for i in range(W.shape[1])
                    for s in (0, 1)})
    edges = [0.0, *kinks, 2 * math.pi]

    def radial(th):
        u = np.array([math.cos(th), math.sin(th)])
        g = float(np.maximum(u @ W, 0) @ e)
        return integrate.quad(lambda r: f(r * g) * r * math.exp(-r * r / 2), 0, np.inf, epsabs=1e-14,
                              epsrel=1e-12)[0] / (2 * math.pi)

    return sum(integrate.quad(radial, a, b, epsabs=1e-13, epsrel=1e-11)[0] for a, b in zip(edges[:-1], edges[1:])
               if b > a)


@pytest.mark.parametrize("d", [1, 2])
def test_random_design_renyi_and_kl_against_quadrature_over_x(d):
    p = 6
    W = rf.sample_weights(d, p, seed=4)
    rng = np.random.default_rng(1)
    v, vs, sigma, beta = rng.standard_normal(p), rng.standard_normal(p), 1.1, 2.0
    lam = 1 - 1 / beta
    e = vs - v
    quad_renyi = -beta * math.log(_quad_over_x(W, e, lambda D: math.exp(-lam * (1 - lam) * D * D / (2 * sigma**2)), d))
    mc = renyi_divergence(W, v, vs, beta=beta, sigma=sigma, samples=40000, seed=3)
    # Monte Carlo over directions: within Z standard errors (plus the O(se^2) bias of -log of a mean)
    assert abs(mc.value - quad_renyi) <= Z * mc.stderr + mc.stderr**2
    assert mc.stderr < 0.02 * quad_renyi
    quad_kl = _quad_over_x(W, e, lambda D: D * D, d) / (2 * sigma**2)
    assert kl_divergence(W, v, vs, sigma) == pytest.approx(quad_kl, rel=1e-8)
    # Jensen: d_lambda <= lambda D (exact here, both from quadrature)
    assert quad_renyi <= lam * quad_kl


def test_renyi_against_plain_monte_carlo_over_x_and_y():
    # E_{x,y ~ p*}[(p_v/p*)^(1-lambda)] = exp(-(1-lambda) d_lambda): no Gaussian closed form used here
    d, p, sigma, beta = 3, 20, 0.9, 1.5
    lam = 1 - 1 / beta
    W = rf.sample_weights(d, p, seed=5)
    rng = np.random.default_rng(2)
    v, vs = rng.standard_normal(p) * 0.5, rng.standard_normal(p) * 0.5
    n = 400000
    x = rng.standard_normal((n, d))
    F = rf.hidden_features(W, x)
    fs, fv = F @ vs, F @ v
    y = fs + sigma * rng.standard_normal(n)
    ratio = np.exp((1 - lam) * (-(y - fv) ** 2 + (y - fs) ** 2) / (2 * sigma**2))
    mean, se = ratio.mean(), ratio.std(ddof=1) / math.sqrt(n)
    brute = -math.log(mean) / (1 - lam)
    brute_se = se / mean / (1 - lam)
    got = renyi_divergence(W, v, vs, beta=beta, sigma=sigma, samples=200000, seed=9)
    assert abs(got.value - brute) <= Z * math.hypot(got.stderr, brute_se)


def test_kl_against_the_dense_fisher_matrix(small):
    W, J = small
    rng = np.random.default_rng(3)
    v, vs = rng.standard_normal(12), rng.standard_normal(12)
    assert kl_divergence(W, v, vs, sigma=0.6) == pytest.approx((v - vs) @ J @ (v - vs) / (2 * 0.36), rel=1e-12)


# ----------------------------------------------------------------------------- the index of resolvability

@pytest.mark.parametrize("n,radius,scale", [(50, 1.0, 0.9), (500, 0.8, 0.5), (30, 1.5, 0.99)])
def test_exact_resolvability_against_brute_force_and_rounding(small, n, radius, scale):
    W, J = small
    code = two_stage_code(W, n, radius=radius)
    vs = np.random.default_rng(n).standard_normal(12)
    vs *= scale * radius / np.linalg.norm(vs)
    r = index_of_resolvability(code, vs)
    m_bf, dist2, _ = _brute_force(code, None, None, metric=(J, vs))
    assert np.array_equal(r.m, m_bf)
    assert r.value == pytest.approx(code.beta * code.length / n + dist2 / (2 * code.sigma**2), rel=1e-10)
    # the separable route of theory §16.8: round each coded coordinate, keep the uncoded ones
    w, U = np.linalg.eigh(J)
    w, U = w[::-1], U[:, ::-1]
    c = U[:, :code.coded].T @ vs * np.sign(np.sum(U[:, :code.coded] * code.basis, axis=0))
    m_round = np.clip(np.rint(c / code.steps), -code.box, code.box)
    sep = np.sum(w[:code.coded] * (m_round * code.steps - c) ** 2) + np.sum(w[code.coded:] * (U[:, code.coded:].T @ vs)
                                                                           ** 2)
    assert r.approximation_term == pytest.approx(sep / 2, rel=1e-8)
    assert r.uncoded_term == pytest.approx(np.sum(w[code.coded:] * (U[:, code.coded:].T @ vs) ** 2) / 2, rel=1e-6,
                                           abs=1e-14)
    assert r.within_radius and r.clipped_term == 0.0


@given(st.integers(1, 10**6), st.floats(0.2, 5.0), st.floats(1.05, 6.0), st.integers(0, 10**6),
       st.sampled_from(["random", "boundary", "uncoded"]))
@settings(max_examples=40, deadline=None)
def test_closed_forms_bound_the_exact_resolvability(n, radius, beta, seed, kind):
    W = rf.sample_weights(2, 12, seed=3)
    code = two_stage_code(W, n, radius=radius, beta=beta)
    rng = np.random.default_rng(seed)
    if kind == "random":
        vs = rng.standard_normal(12)
        vs *= radius * rng.uniform(0, 1) / np.linalg.norm(vs)
    elif kind == "boundary" and code.coded:  # coordinates half-way between lattice values: worst rounding
        c = (np.minimum(code.box, 1) - 0.5) * code.steps
        c *= min(1.0, radius / np.linalg.norm(c))
        vs = code.basis @ c
    else:  # all of the norm in the largest uncoded direction
        lam, U = np.linalg.eigh(rf.fisher_matrix(W))
        vs = U[:, ::-1][:, code.coded] * radius
    r = index_of_resolvability(code, vs)
    assert r.value <= r.bound_with_lengths * (1 + 1e-9) + 1e-15
    assert r.bound_with_lengths <= r.estimate * (1 + 1e-12)
    terms = code.bound_estimate()
    assert terms["total"] == pytest.approx(terms["leading"] + terms["rounding"] + terms["uncoded"], rel=1e-14)


def test_coding_choices_quoted_in_theory_section_16_6_and_16_7():
    W = rf.sample_weights(5, 1000, seed=0)
    pairs = rf.spectrum(W, k="all")
    ks = {n: two_stage_code(W, n, radius=2.0, eigenpairs=pairs).coded for n in (100, 300, 1000, 3000, 10**4, 10**5)}
    assert ks == {100: 6, 300: 6, 1000: 6, 3000: 20, 10**4: 20, 10**5: 20}
    thr = two_stage_code(W, 10**4, radius=2.0, coding="threshold", eigenpairs=pairs)
    best = two_stage_code(W, 10**4, radius=2.0, eigenpairs=pairs)
    assert thr.coded == 75 and round(thr.bound_with_lengths(), 4) == 0.0352
    assert round(best.bound_with_lengths(), 4) == 0.0172
    assert f"{pairs.eigenvalues[20]:.1e}" == "6.1e-04"


def test_rounding_term_cannot_be_dropped_from_the_closed_form():
    # the example of theory §16.6
    W = rf.sample_weights(3, 60, seed=0)
    code = two_stage_code(W, 5000, radius=2.0, coding="threshold")
    t = code.bound_estimate()
    assert code.coded == 18
    assert round(code.bound_with_lengths(), 5) == 0.02079 and round(t["total"], 5) == 0.02196
    assert round(t["leading"] + t["uncoded"], 5) == 0.01967 < code.bound_with_lengths()
    best = two_stage_code(W, 5000, radius=2.0)
    assert best.coded == 9 and round(best.bound_with_lengths(), 5) == 0.01636


def test_target_outside_the_radius_warns_how_it_enters_the_bound(small):
    W, J = small
    code = two_stage_code(W, 400, radius=0.5)
    vs = code.basis[:, 0] * 3.0  # far beyond the box in the first coded direction
    with pytest.warns(RadiusWarning, match=r"box term.*clipped.*uncoded term") as rec:
        r = index_of_resolvability(code, vs)
    msg = str(rec[0].message)
    assert "3 > R = 0.5" in msg and f"{r.value:.4g}" in msg
    assert not r.within_radius and r.clipped_term > 0
    # the clipped coordinate's cost, from the definition
    M, dl, lam0 = code.box[0], code.steps[0], code.eigenvalues[0]
    assert r.clipped_term == pytest.approx(lam0 * (3.0 - M * dl) ** 2 / 2, rel=1e-6)
    assert r.value > r.bound_with_lengths  # the radius-R estimates no longer bound it
    m_bf, dist2, _ = _brute_force(code, None, None, metric=(J, vs))
    assert r.value == pytest.approx(code.beta * code.length / code.n + dist2 / 2, rel=1e-10)  # still exact


# ----------------------------------------------------------------------------- the risk bound

def test_simulated_mean_risk_never_exceeds_the_bound():
    # theory §16.4: E d_lambda(p*, p_vhat) <= R_n for the exact MDL estimator, every n, including tiny ones;
    # the simulated mean may exceed R_n only by noise: at most 3 standard errors
    W = rf.sample_weights(2, 20, seed=0)
    vs = default_target(W)
    for n in (5, 10, 30, 100, 1000):
        for beta in (1.5, 2.0):
            code = two_stage_code(W, n, radius=2.0, beta=beta)
            sim = simulate_mdl_risk(code, vs, reps=40, seed=n, mc_samples=2000)
            assert sim.methods == {"exact": 40, "fast": 0}
            assert sim.risk_mean <= sim.bound + 3 * sim.risk_se, (n, beta, sim.to_dict())
            # Jensen: d_lambda <= lambda D for each data set (up to the Monte Carlo error of d_lambda)
            assert np.all(sim.risk <= code.order * sim.kl + Z * sim.risk_mc_stderr + 1e-12)


def test_simulation_kl_is_the_exact_excess_risk():
    W = rf.sample_weights(2, 15, seed=1)
    J = rf.fisher_matrix(W)
    vs = default_target(W)
    code = two_stage_code(W, 60, radius=2.0)
    sim = simulate_mdl_risk(code, vs, reps=3, seed=4, mc_samples=100)
    # recompute the estimates from the same data streams through the public estimator
    seeds = np.random.SeedSequence(4).spawn(3)
    for r in range(3):
        s_data, s_noise, _ = seeds[r].spawn(3)
        x = np.vstack(list(gaussian_input_chunks(60, 2, s_data)))
        y = rf.hidden_features(W, x) @ vs + np.random.default_rng(s_noise).standard_normal(60)
        v = mdl_estimate(code, x, y).v
        assert sim.kl[r] == pytest.approx((v - vs) @ J @ (v - vs) / 2, rel=1e-9, abs=1e-14)


def test_mixture_redundancy_is_kept_and_differs_from_the_two_stage_length():
    W = rf.sample_weights(3, 60, seed=0)
    lam = rf.spectrum(W, k="all").eigenvalues
    code = two_stage_code(W, 5000, radius=2.0)
    mix = mixture_redundancy(lam, 5000)
    assert mix == pytest.approx(0.5 * np.sum(np.log1p(5000 * lam)), rel=1e-12)
    assert abs(mix - code.length) > 1.0  # a different quantity, not a rewording


def test_theory_section_16_states_the_theorem_with_its_proof():
    text = THEORY.read_text(encoding="utf-8")
    sec = text[text.index("## 16. "):text.index("## 17. ")]
    thm = sec[sec.index("### 16.4"):sec.index("### 16.5")]
    assert "**Theorem**" in thm and "*Proof.*" in thm and "$\\square$" in thm
    assert len(re.findall(r"^\d\. \*", thm, flags=re.M)) == 5  # the five steps
    for name in ("two_stage_code", "mdl_estimate", "index_of_resolvability", "renyi_divergence"):
        assert f"`{name}`" in sec


# ----------------------------------------------------------------------------- bad input

def test_bad_input_gets_clear_errors(small):
    W, _ = small
    for beta, exc in [(1.0, ValueError), (0.5, ValueError), (float("inf"), ValueError), (float("nan"), ValueError),
                      ("2", TypeError)]:
        with pytest.raises(exc, match="beta"):
            two_stage_code(W, 100, radius=1.0, beta=beta)
    for radius in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="radius"):
            two_stage_code(W, 100, radius=radius)
    with pytest.raises(TypeError):
        two_stage_code(W, 100)  # the radius has no default: it is the user's prior choice
    for n, exc in [(0, ValueError), (-3, ValueError), (2.5, TypeError)]:
        with pytest.raises(exc, match="n must"):
            two_stage_code(W, n, radius=1.0)
    for sigma in (0.0, -1.0):
        with pytest.raises(ValueError, match="sigma"):
            two_stage_code(W, 100, radius=1.0, sigma=sigma)
    with pytest.raises(ValueError, match="coding"):
        two_stage_code(W, 100, radius=1.0, coding="all")
    with pytest.raises(ValueError, match="exceeds the number of eigendirections"):
        two_stage_code(W, 100, radius=1.0, directions=13)
    with pytest.raises(ValueError, match="d < p"):
        two_stage_code(W.T, 100, radius=1.0)
    with pytest.raises(TypeError, match="SpectrumResult"):
        two_stage_code(W, 100, radius=1.0, eigenpairs=np.ones(12))
    with pytest.raises(ValueError, match="exact FIM of this W"):
        two_stage_code(W, 100, radius=1.0, eigenpairs=rf.spectrum(W, k="all", vectors=False))
    with pytest.raises(ValueError, match="pass more eigenpairs"):
        two_stage_code(W, 10**7, radius=1.0, coding="threshold", eigenpairs=rf.spectrum(W, k=3))
    with pytest.warns(UserWarning, match="more than max_directions = 2"):
        assert two_stage_code(W, 10**7, radius=1.0, coding="threshold", max_directions=2).coded == 2
    code = two_stage_code(W, 50, radius=1.0)
    x, y = _data(W, np.zeros(12), 50, 1.0, 0)
    with pytest.raises(ValueError, match=r"\(n, d\) = \(n, 2\)"):
        mdl_estimate(code, x[:, :1], y)
    with pytest.raises(ValueError, match="y must have shape"):
        mdl_estimate(code, x, y[:-1])
    with pytest.raises(ValueError, match="designed for n = 50"):
        mdl_estimate(code, x[:40], y[:40])
    with pytest.raises(TypeError, match="TwoStageCode"):
        mdl_estimate(W, x, y)
    with pytest.raises(ValueError, match="method"):
        mdl_estimate(code, x, y, method="sphere")
    with pytest.raises(ValueError, match=r"v_star must have shape \(12,\)"):
        index_of_resolvability(code, np.zeros(11))
    with pytest.raises(ValueError, match="beta"):
        renyi_divergence(W, np.zeros(12), np.zeros(12), beta=1.0)
    with pytest.raises(ValueError, match="sigma"):
        kl_divergence(W, np.zeros(12), np.zeros(12), sigma=0.0)
    with pytest.raises(ValueError, match="reps"):
        simulate_mdl_risk(code, np.zeros(12), reps=0)
    assert isinstance(code, TwoStageCode)

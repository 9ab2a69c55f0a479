"""Risk, estimators and the spectral functionals (theory §13) against independent oracles.

Oracles: dense ``eigh``, Monte Carlo over inputs and noise with error bars, a conditional
closed form of the ridge risk, and direct sums for the spectral functionals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import relufim as rf
from relufim.theory.dynamics import default_target
from relufim.theory.functions import network_function
from relufim.theory.risk import counting_function, estimator_risk, mixture_redundancy, risk, tail_sums

Z = 5.0  # z-score bound for Monte Carlo comparisons (N(0,1) exceeds 5 with probability 6e-7)


@pytest.fixture
def small(small_fim):
    return small_fim


def test_risk_against_monte_carlo_and_eigh(small):
    W, J = small
    rng = np.random.default_rng(5)
    v, vs, sigma = rng.standard_normal(150), rng.standard_normal(150), 0.7
    r = risk(W, v, vs, sigma)
    assert r.excess == pytest.approx((v - vs) @ J @ (v - vs), rel=1e-10)
    n = 200000
    x = rng.standard_normal((n, 3))
    y = network_function(W, vs, x) + sigma * rng.standard_normal(n)
    sq = (y - network_function(W, v, x)) ** 2
    assert abs(sq.mean() - r.total) < Z * sq.std(ddof=1) / math.sqrt(n)
    w, U = np.linalg.eigh(J)
    w, U = w[::-1], U[:, ::-1]
    per = w * (U.T @ (v - vs)) ** 2
    assert np.allclose(r.by_cluster, [per[:1].sum(), per[1:4].sum(), per[4:9].sum()], rtol=1e-8, atol=1e-13)
    assert r.rest == pytest.approx(per[9:].sum(), rel=1e-6, abs=1e-12)


@given(st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=30), st.floats(0, 11),
       st.integers(1, 10**6), st.floats(0.1, 10))
@settings(max_examples=60, deadline=None)
def test_risk_primitives_against_direct_sums(lams, eps, n, sigma):
    lam = np.array(lams)
    assert counting_function(lam, eps) == int(np.sum(lam >= eps))
    srt = np.sort(lam)[::-1]
    for k in range(lam.size + 1):
        assert tail_sums(lam, k) == pytest.approx(srt[k:].sum(), abs=1e-12)
    assert mixture_redundancy(lam, n, sigma) == pytest.approx(0.5 * np.linalg.slogdet(np.eye(lam.size)
                                                        + n * np.diag(lam) / sigma**2)[1], rel=1e-10, abs=1e-12)


def test_spectral_functionals_of_a_computed_spectrum(small):
    W, J = small
    lam = np.linalg.eigvalsh(J)
    full = rf.spectrum(W, k="all", vectors=False)
    assert counting_function(full, 1e-3) == int(np.sum(lam >= 1e-3))
    # the three clusters hold d(d+3)/2 = 9 eigenvalues above the degree-4 level (theory §4, §7)
    assert counting_function(full, 0.5 * rf.limit_spectrum(3, 2).eigenvalues[2]) == 9
    assert tail_sums(full, 0) == pytest.approx((W**2).sum() / 2, rel=1e-10)
    with pytest.raises(ValueError):
        tail_sums(full, 151)
    # a result with the top eigenvalues only: enough for a count above its smallest one, refused below
    top = rf.spectrum(W, k="clusters")
    assert counting_function(top, 0.5 * rf.limit_spectrum(3, 2).eigenvalues[2]) == 9
    with pytest.raises(ValueError, match="needs more of them"):
        counting_function(top, 1e-9)
    with pytest.raises(ValueError, match="every eigenvalue"):
        tail_sums(top)


def test_spectral_functionals_refuse_a_matrix():
    """The silent wrong answer of 0.1: the 6 x 6 FIM of a 3 x 6 W was taken for weights (3 counted, 6 true)."""
    W = rf.sample_weights(3, 6, seed=0)
    J = rf.fisher_matrix(W)
    assert int(np.sum(np.linalg.eigvalsh(J) >= 1e-3)) == 6
    for call in (lambda A: counting_function(A, 1e-3), lambda A: tail_sums(A), lambda A: mixture_redundancy(A, 10)):
        for A in (J, W):
            with pytest.raises(TypeError, match="1-D array of eigenvalues"):
                call(A)
    assert counting_function(rf.matrix_spectrum(J), 1e-3) == 6


# ----------------------------------------------------------------------------- estimators

def _conditional_ridge_risk(W, J, vs, n, sigma, lam, rng, sims):
    """Independent oracle: average over X of E_eps[excess | X] in closed form."""
    p = W.shape[1]
    vals = []
    for _ in range(sims):
        X = np.maximum(rng.standard_normal((n, W.shape[0])) @ W, 0.0)
        A = np.linalg.inv(X.T @ X + n * lam * np.eye(p))
        bias = n * lam * A @ vs
        var = sigma**2 * np.trace(A @ X.T @ X @ A @ J)
        vals.append(bias @ J @ bias + var)
    vals = np.array(vals)
    return vals.mean(), vals.std(ddof=1) / math.sqrt(sims)


def test_ridge_risk_simulation_prediction_and_oracle():
    W = rf.sample_weights(2, 40, seed=6)
    J = rf.fisher_matrix(W)
    vs = default_target(W)
    n, sigma, lam = 800, 0.5, 1e-3
    er = estimator_risk(W, n=n, sigma=sigma, estimator="ridge", lam=lam, sims=30, seed=1)
    m, se = _conditional_ridge_risk(W, J, vs, n, sigma, lam, np.random.default_rng(2), 30)
    assert abs(er.simulated - m) < Z * math.hypot(er.simulated_stderr, se)
    # population approximation X^T X / n -> J: its relative error is O(df / n) (here < 10 %),
    # plus the simulation error bar
    assert abs(er.simulated - er.predicted) < Z * er.simulated_stderr + 0.1 * er.predicted
    assert er.risk == pytest.approx(er.simulated + sigma**2)
    assert sum(er.predicted_by_cluster) + er.predicted_rest == pytest.approx(er.predicted, rel=1e-10)
    assert er.to_dict()["estimator"] == "ridge"


def test_least_squares_risk_closed_form_when_n_exceeds_p():
    W = rf.sample_weights(1, 3, seed=0) * 3  # d = 1: p = 3 hidden units, J well conditioned
    er = estimator_risk(W, n=200, sigma=0.3, estimator="least-squares", sims=200, seed=3,
                        v_star=np.array([1.0, -1.0, 0.5]))
    # sigma^2 p / (n - p - 1) is exact for Gaussian features; ReLU features differ at O(p / n)
    assert abs(er.simulated - er.predicted) < Z * er.simulated_stderr + 0.1 * er.predicted
    assert estimator_risk(W, n=3, sigma=0.3, estimator="least-squares", sims=2).predicted is None


def test_estimator_risk_bad_input():
    W = rf.sample_weights(2, 10, seed=0)
    with pytest.raises(ValueError):
        estimator_risk(W, n=10, estimator="ridge")  # lam missing
    with pytest.raises(ValueError):
        estimator_risk(W, n=10, estimator="lasso", lam=1.0)
    with pytest.raises(ValueError):
        estimator_risk(W, n=10, estimator="least-squares", lam=1.0)
    with pytest.raises(ValueError):
        estimator_risk(W, n=10, lam=1.0, v_star=np.ones(9))




def test_estimator_risk_reuses_a_given_eigendecomposition():
    """``eigh=`` skips the O(p^3) step and changes nothing; a decomposition of the wrong size is refused."""
    W = rf.sample_weights(3, 120, seed=5)
    eig = np.linalg.eigh(rf.fisher_matrix(W))
    for kwargs in (dict(estimator="ridge", lam=1e-3), dict(estimator="least-squares")):
        assert rf.estimator_risk(W, 400, sims=3, **kwargs) == rf.estimator_risk(W, 400, sims=3, eigh=eig, **kwargs)
    with pytest.raises(ValueError, match="eigh must be numpy.linalg.eigh"):
        rf.estimator_risk(W, 400, lam=1e-3, eigh=(eig[0][:5], eig[1][:5, :5]))


def test_estimator_risk_reuses_a_given_fim():
    """``fim=`` skips building J and changes nothing; a matrix that cannot be this W's FIM is refused, naming fim."""
    W = rf.sample_weights(3, 120, seed=5)
    J = rf.fisher_matrix(W)
    # an independent J: the matrix-free tiled product with the identity, equal to fisher_matrix to round-off
    J_op = rf.fisher_operator(W) @ np.eye(120)
    for kwargs in (dict(estimator="ridge", lam=1e-3), dict(estimator="least-squares")):
        ref = rf.estimator_risk(W, 400, sims=3, **kwargs)
        assert rf.estimator_risk(W, 400, sims=3, fim=J, **kwargs) == ref
        got = rf.estimator_risk(W, 400, sims=3, fim=J_op, **kwargs).to_dict()
        # J_op - J is ~1e-16 of J's largest entry; it moves e^T J e by at most ||J_op - J|| ||e||^2, which for
        # least squares (e large along J's small eigenvalues) is ~1e-12 of the risk: 1e-9 is that with margin
        for key, value in ref.to_dict().items():
            exact = value is None or isinstance(value, str)
            assert got[key] == (value if exact else pytest.approx(value, rel=1e-9, abs=1e-15)), key
    for bad, words in ((J[:5, :5], r"fim must have shape \(p, p\) = \(120, 120\) to match relufim.fisher_matrix\(W\)"),
                       (J + np.triu(J, 1), "fim must be symmetric"),
                       (np.full((120, 120), np.nan), "fim contains non-finite"),
                       (J[:, :5], r"fim must have shape \(p, p\) = \(120, 120\)")):
        with pytest.raises(ValueError, match=words):
            rf.estimator_risk(W, 400, lam=1e-3, fim=bad)

"""Learning dynamics (theory §13) against independent oracles.

Oracles: powers of the dense matrix (numpy ``matrix_power``) for the recursion, the matrix
exponential (``scipy.linalg.expm``) for the gradient flow, dense ``eigh``. The risk tests
are in ``test_risk.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.linalg import expm

import relufim as rf
from relufim.theory.dynamics import default_target, gradient_descent
from relufim.theory.functions import network_function

Z = 5.0  # z-score bound for Monte Carlo comparisons (N(0,1) exceeds 5 with probability 6e-7)


@pytest.fixture
def small(small_fim):
    return small_fim


def test_population_gd_equals_matrix_power(small):
    W, J = small
    lam_max = np.linalg.eigvalsh(J)[-1]
    lr, steps = 1.3 / lam_max, 40
    rng = np.random.default_rng(1)
    vs, v0 = rng.standard_normal(150), rng.standard_normal(150)
    gd = gradient_descent(W, v_star=vs, lr=lr, steps=steps, v0=v0)
    M = np.eye(150) - lr * J
    for k in (0, 1, 7, 40):
        e = np.linalg.matrix_power(M, k) @ (v0 - vs)
        assert gd.total[k] == pytest.approx(e @ J @ e, rel=1e-9, abs=1e-13)
    assert np.allclose(gd.v_final - vs, np.linalg.matrix_power(M, steps) @ (v0 - vs), atol=1e-10)
    # per-cluster errors follow (1 - lr lambda)^(2k) along the eigenvectors (dense eigh oracle)
    w, U = np.linalg.eigh(J)
    w, U = w[::-1][:9], U[:, ::-1][:, :9]
    c0 = U.T @ (v0 - vs)
    k = np.arange(steps + 1)[:, None]
    want = [((1 - lr * w[lo:hi]) ** (2 * k) * w[lo:hi] * c0[lo:hi] ** 2).sum(1) for lo, hi in ((0, 1), (1, 4), (4, 9))]
    assert np.allclose(gd.errors[:, :3], np.stack(want, 1), rtol=1e-7, atol=1e-12)
    assert np.allclose(gd.predicted, np.stack(want, 1), rtol=1e-7, atol=1e-12)
    # the rest is what the three clusters do not carry, never negative beyond round-off
    assert gd.errors[:, 3].min() > -1e-12


def test_small_steps_follow_the_gradient_flow(small):
    W, J = small
    lam_max = np.linalg.eigvalsh(J)[-1]
    h = 0.01 / lam_max
    steps = 3000
    vs = default_target(W)
    gd = gradient_descent(W, v_star=vs, lr=h, steps=steps)
    T = h * steps
    flow = vs + expm(-J * T) @ (-vs)
    # |(1 - h l)^k - exp(-h l k)| <= (h l)(l t) exp(-l t) / 2 <= h lambda_max / (2e) per eigen-coordinate
    tol = h * lam_max / (2 * math.e) * np.linalg.norm(vs) + 1e-12
    assert np.linalg.norm(gd.v_final - flow) < tol
    # per cluster, risk ratio (1 - h l)^(2k) / exp(-2 l t) = exp(-O(h l * l t)): the absolute deviation,
    # relative to the initial error, is at most max_x x e^(-x) * h lambda_max = h lambda_max / e
    dev = np.abs(gd.predicted_flow - gd.errors[:, :3]).max(0) / gd.errors[0, :3]
    assert np.all(dev < h * lam_max / math.e)


def test_learning_order_and_times(small):
    W, J = small
    lr = 0.1 / np.linalg.eigvalsh(J)[-1]
    gd = gradient_descent(W, lr=lr, steps=1500)
    assert gd.learning_order() == [1, 2, 3]
    times = gd.learning_times(0.01)
    # a cluster's error is a positive mixture of (1 - h l)^(2k) over its eigenvalues l, so it
    # reaches 1 % between the times of its largest and smallest eigenvalue; with h l <= 0.1,
    # exp(-x - x^2) <= 1 - x <= exp(-x) puts each between t_flow / 1.1 and t_flow = ln(100) / (2 l)
    for t, lo, hi in zip(times, (0, 1, 4), (1, 4, 9)):
        lam = gd.eigenvalues[lo:hi]
        assert math.log(100) / (2 * lam.max()) / 1.1 - lr <= t <= math.log(100) / (2 * lam.min()) + lr
    d = gd.to_dict()
    assert d["learning_order"] == [1, 2, 3] and d["max_rel_deviation_from_prediction"] < 1e-8


def test_sample_gd_uses_the_monte_carlo_fim():
    W = rf.sample_weights(3, 80, seed=2)
    n, seed = 500, 7
    Jn = rf.monte_carlo_fisher(W, n, seed=seed)  # the same input stream, built independently
    vs = default_target(W)
    lr = 1.0 / np.linalg.eigvalsh(Jn)[-1]
    gd = gradient_descent(W, v_star=vs, lr=lr, steps=30, n=n, seed=seed)
    e = np.linalg.matrix_power(np.eye(80) - lr * Jn, 30) @ (-vs)
    assert np.allclose(gd.v_final - vs, e, atol=1e-10)
    assert np.allclose(gd.errors[:, :3], gd.predicted, rtol=1e-7, atol=1e-12)


def test_target_function_matches_target_weights():
    W = rf.sample_weights(3, 100, seed=3)
    vs = default_target(W)
    J = rf.fisher_matrix(W)
    gd_f = gradient_descent(W, target=lambda x: network_function(W, vs, x), steps=200, n_target=40000, seed=4)
    gd_v = gradient_descent(W, v_star=vs, steps=200, lr=gd_f.lr)
    # b = E[X y] by Monte Carlo: E[(f_v - y)^2] at v = 0 is E[y^2] = v*^T J v*, up to MC error
    # (relative sd of a mean of f^2 over 40000 draws is about sqrt(Var f^2 / E[f^2]^2 / n) < 1.5 %)
    assert gd_f.total[0] == pytest.approx(vs @ J @ vs, rel=0.06)
    assert np.allclose(gd_f.errors[-1, :3], gd_v.errors[-1, :3], atol=0.02 * gd_v.errors[0, :3].max())
    assert gd_f.learning_order() == [1, 2, 3]


def test_gradient_descent_bad_input(small):
    W, J = small
    lam_max = np.linalg.eigvalsh(J)[-1]
    with pytest.raises(ValueError, match="stability limit 2/lambda_max"):
        gradient_descent(W, lr=2.0 / lam_max * 1.001, steps=5)
    with pytest.raises(ValueError, match=f"{2 / lam_max:.6g}".replace(".", r"\.")):
        gradient_descent(W, lr=3.0 / lam_max, steps=5)
    gradient_descent(W, lr=1.99 / lam_max, steps=5)  # just below the limit is fine
    for kw in (dict(steps=0), dict(lr=-1.0), dict(lr=0.0), dict(v_star=np.ones(149)), dict(v0=np.ones(151)),
               dict(v_star=np.ones(150), target=lambda x: x[:, 0]), dict(target=lambda x: x)):
        with pytest.raises((ValueError, TypeError)):
            gradient_descent(W, **{"steps": 3, **kw})


# ----------------------------------------------------------------------------- risk


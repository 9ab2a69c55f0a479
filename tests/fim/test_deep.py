"""The readout FIM of deep random networks (relufim.fim.deep) against independent oracles.

Oracles: today's exact J (Lemma 1) and monte_carlo_fisher for one layer; a torch forward pass for the features;
the whole sample materialized at once (no chunks, no syrk) for the streamed averages; the exact J for the
calibration of the standard errors; Stein's lemma E[relu(w.x) x] = w/2 for the cross moments; Monte Carlo
with inputs drawn independently from N(0, Σ) (Cholesky factor, another generator) for the whitening identity.
"""

from __future__ import annotations

import numpy as np
import pytest

import relufim as rf
from relufim.fim.deep import deep_features, deep_fisher, feature_moments, moments_memory_bytes
from relufim.fim.sampled import gaussian_input_chunks
from relufim.model.network import covariance_root, network

SIGMA3 = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])


# ----------------------------------------------------------------------------- one layer = today's model

@pytest.mark.parametrize("d,p,seed", [(10, 300, 0), (3, 40, 5)])
def test_one_layer_exact_is_todays_exact_fim(d, p, seed):
    Ws = network(d, p).sample(seed)
    J = deep_fisher(Ws, method="exact")
    assert np.array_equal(J, rf.fisher_matrix(rf.sample_weights(d, p, seed=seed)))  # bit for bit: one home


def test_one_layer_streamed_engine_equals_monte_carlo_fisher_on_the_same_stream():
    """feature_moments (chunks + syrk) against monte_carlo_fisher (chunks + GEMM) on the same inputs.

    Tolerance: both sum the same 10 000 products in the same chunk order with different BLAS kernels;
    round-off of a sum of n positive terms is below n * eps relative (1e-12 is 500x that margin at most).
    """
    W = rf.sample_weights(4, 120, seed=1)
    Jmc, se = rf.monte_carlo_fisher(W, 10_000, seed=3, return_stderr=True)
    mom = feature_moments([W], n=10_000, seed=3, stderr=True)
    assert np.allclose(mom.gram, Jmc, rtol=1e-12, atol=0)
    assert np.allclose(mom.gram_stderr, se, rtol=1e-9, atol=1e-15)
    assert np.array_equal(mom.gram, mom.gram.T)
    J2, se2 = deep_fisher([W], n=10_000, seed=3, return_stderr=True)  # L = 1 delegates
    assert np.array_equal(J2, Jmc) and np.array_equal(se2, se)


# ----------------------------------------------------------------------------- features and streamed averages

def test_features_against_torch_forward_pass():
    torch = pytest.importorskip("torch")
    net = network(5, [64, 48, 32])
    Ws = net.sample(0)
    x = np.random.default_rng(1).standard_normal((9000, 5))  # more than two chunks of 4096
    layers = []
    for W in Ws:
        lin = torch.nn.Linear(W.shape[0], W.shape[1], bias=False, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T))
        layers += [lin, torch.nn.ReLU()]
    with torch.no_grad():
        ref = torch.nn.Sequential(*layers)(torch.from_numpy(x)).numpy()
    H = deep_features(Ws, x)
    assert H.shape == (9000, 32)
    assert np.allclose(H, ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())


@pytest.mark.parametrize("activation", ["relu", "leaky-relu:0.2", "tanh"])
def test_streamed_moments_equal_the_whole_sample_at_once(activation):
    net = network(3, [50, 40], activation=activation)
    Ws = net.sample(2)
    n = 9000
    x = np.vstack(list(gaussian_input_chunks(n, 3, 7)))  # the same inputs the stream draws
    act = rf.get_activation(activation)
    H = act.phi(act.phi(x @ Ws[0]) @ Ws[1])
    J = H.T @ H / n
    Psi = np.column_stack([np.linalg.norm(x, axis=1), x[:, 0] * x[:, 1]])
    mom = feature_moments(Ws, n=n, seed=7, activation=activation, stderr=True,
                          functions=lambda c: np.column_stack([np.linalg.norm(c, axis=1), c[:, 0] * c[:, 1]]))
    assert np.allclose(mom.gram, J, rtol=1e-12, atol=1e-15)
    se = np.sqrt(np.maximum((H**2).T @ (H**2) / n - J**2, 0) / (n - 1))
    assert np.allclose(mom.gram_stderr, se, rtol=1e-7, atol=1e-14)  # cancellation in the variance: 1e-7
    assert np.allclose(mom.cross, H.T @ Psi / n, rtol=1e-12, atol=1e-15)
    emp = feature_moments(Ws, x=x, activation=activation)
    assert np.allclose(emp.gram, J, rtol=1e-12, atol=1e-15) and emp.source == "empirical" and emp.n == n
    assert np.allclose(deep_fisher(Ws, method="empirical", x=x, activation=activation), J, rtol=1e-12, atol=1e-15)


def test_standard_errors_are_calibrated_against_the_exact_fim():
    """z = (J_n - J) / stderr over the entries should look standard normal.

    Oracle: the exact J (one layer, Lemma 1) and the streamed engine (called directly, not the L = 1 delegate).
    With n = 20 000 the central limit theorem holds per entry; over 210 distinct entries (correlated) the
    sample sd of z lies within [0.75, 1.25] and no |z| exceeds 5 (a Gaussian tail of 6e-7 per entry).
    """
    W = rf.sample_weights(3, 20, seed=4)
    mom = feature_moments([W], n=20_000, seed=11, stderr=True)
    iu = np.triu_indices(20)
    z = ((mom.gram - rf.fisher_matrix(W)) / mom.gram_stderr)[iu]
    assert 0.75 < z.std() < 1.25 and np.abs(z).max() < 5


def test_cross_moments_against_steins_lemma():
    """E[relu(x W) x^T] = W^T / 2 exactly (Stein: E[relu(w.x) x] = w P(w.x > 0)); within 5 standard errors."""
    W = rf.sample_weights(4, 30, seed=0)
    mom = feature_moments([W], n=40_000, seed=2, stderr=True, functions=lambda c: c)
    z = (mom.cross - W.T / 2) / mom.cross_stderr
    assert np.abs(z).max() < 5


# ----------------------------------------------------------------------------- inputs with a covariance

def test_whitening_identity_exact_route_against_monte_carlo_with_that_sigma():
    """J(W; Σ) by Lemma 1 on Σ^(1/2) W, against the empirical FIM of inputs drawn from N(0, Σ) independently.

    The inputs come from a Cholesky factor and another generator (not the symmetric root the library uses);
    every entry within 5 of its standard errors (computed here from the sample).
    """
    W = rf.sample_weights(3, 25, seed=3)
    J = deep_fisher([W], method="exact", input_cov=SIGMA3)
    assert np.array_equal(J, rf.fisher_matrix(covariance_root(SIGMA3, 3) @ W))
    n = 60_000
    x = np.random.default_rng(99).standard_normal((n, 3)) @ np.linalg.cholesky(SIGMA3).T
    X = np.maximum(x @ W, 0.0)
    Jn = X.T @ X / n
    se = np.sqrt(np.maximum((X**2).T @ (X**2) / n - Jn**2, 0) / (n - 1))
    assert np.abs((Jn - J) / se).max() < 5
    assert not np.allclose(J, rf.fisher_matrix(W), rtol=0.05)  # the covariance matters


def test_monte_carlo_with_sigma_at_depth_two_against_independent_draws():
    """deep_fisher(..., input_cov=Σ) and the empirical FIM on independent N(0, Σ) inputs estimate one matrix.

    Both are noisy: every entry of the difference within 5 standard errors of the difference.
    """
    Ws = network(3, [40, 20]).sample(1)
    J1, se1 = deep_fisher(Ws, n=30_000, seed=5, input_cov=SIGMA3, return_stderr=True)
    x = np.random.default_rng(123).standard_normal((30_000, 3)) @ np.linalg.cholesky(SIGMA3).T
    J2, se2 = deep_fisher(Ws, method="empirical", x=x, return_stderr=True)
    se = np.sqrt(se1**2 + se2**2)
    dead = se == 0  # a unit of the second layer that no input switches on: 0 in both
    assert np.array_equal(J1[dead], J2[dead]) and dead.mean() < 0.5
    assert np.abs((J1 - J2)[~dead] / se[~dead]).max() < 5
    J0 = deep_fisher(Ws, n=30_000, seed=5)
    assert np.abs((J0 - J2)[~dead] / se[~dead]).max() > 5  # identity inputs are distinguishable


# ----------------------------------------------------------------------------- bad input

def test_bad_requests():
    Ws = network(3, [20, 10]).sample(0)
    with pytest.raises(ValueError, match="exactly one of n"):
        feature_moments(Ws)
    with pytest.raises(ValueError, match="exactly one of n"):
        feature_moments(Ws, n=10, x=np.ones((2, 3)))
    with pytest.raises(ValueError, match="leave input_cov out"):
        feature_moments(Ws, x=np.ones((2, 3)), input_cov=np.eye(3))
    with pytest.raises(ValueError, match=r"shape \(m, q\)"):
        feature_moments(Ws, n=10, functions=lambda c: c[:, 0])
    with pytest.raises(ValueError, match="only for one hidden layer"):
        deep_fisher(Ws, method="exact")
    with pytest.raises(ValueError, match="needs the number of Gaussian inputs n"):
        deep_fisher(Ws)
    with pytest.raises(ValueError, match="method must be one of"):
        deep_fisher(Ws, method="dense")
    with pytest.raises(ValueError, match="positive definite"):
        deep_fisher(Ws, n=100, input_cov=np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match=r"shape \(d, d\) = \(3, 3\)"):
        deep_fisher(Ws, n=100, input_cov=np.eye(2))
    with pytest.raises(TypeError, match="list of layer weights"):
        deep_fisher(Ws[0], n=100)
    with pytest.raises(ValueError, match="needs at least 2"):
        feature_moments(Ws, n=1, stderr=True)


def test_a_request_that_cannot_fit_is_refused_up_front():
    W1 = np.zeros((2, 300_000))  # 4.8 MB of weights; the 300 000 x 300 000 accumulator would need 1.4 TB
    with pytest.raises(ValueError, match=r"needs .* TB but only .* is available; use a smaller last width"):
        feature_moments([W1], n=10)
    assert moments_memory_bytes([300_000], 2) > 1e12

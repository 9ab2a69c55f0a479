"""Stochastic Lanczos quadrature against the dense eigenvalues of the FIM."""

import math

import numpy as np
import pytest

import relufim as rf
from relufim.density import wasserstein1


@pytest.fixture(scope="module")
def case():
    W = rf.sample_weights(5, 1500, seed=0)
    lam = np.clip(np.linalg.eigvalsh(rf.fisher_matrix(W)), 0.0, None)
    sd = rf.spectral_density(W, n_vectors=8, lanczos_steps=30, bins=40, seed=1)
    return W, lam, sd


def test_wasserstein_linear_scale_within_stated_bound(case):
    """W1 (linear scale) <= Lanczos bound 12 lam_bulk/(2m-1) (Chen-Trogdon-Ubaru) + 3 x sampling sd.

    Sampling: each vector's CDF estimate at x has variance <= 2/p (Rademacher, projector), so
    the mean over n_vec vectors is within sqrt(2/(p n_vec)) per x, and its integral over
    [0, lam_bulk] within lam_bulk sqrt(2/(p n_vec)).
    """
    W, lam, sd = case
    p = lam.size
    w1 = wasserstein1(sd.nodes, sd.weights, lam, np.full(p, 1.0 / p))
    lam_bulk = np.sort(lam)[::-1][sd.k_exact]
    bound = sd.w1_bound + 3 * lam_bulk * math.sqrt(2.0 / (p * sd.n_vectors))
    assert w1 <= bound
    # and it is a small fraction of the spectrum's scale (the measured value is ~1e-6 vs lam_max ~ 0.8)
    assert w1 < 1e-3 * lam.max()


def test_log_scale_distance(case):
    """W1 between the distributions of log10 eigenvalues (floor 1e-12 lam_max): below 0.3 decade.

    An m-node Gauss rule cannot resolve structure finer than its node spacing; with 30 steps
    and 8 vectors the bulk (three decades here) gets 240 nodes, and the measured distance is
    0.1-0.2 decade: a log histogram with bins of >= 0.3 decade is drawn at that resolution.
    """
    W, lam, sd = case
    floor = 1e-12 * lam.max()
    w1 = wasserstein1(np.log10(np.maximum(sd.nodes, floor)), sd.weights, np.log10(np.maximum(lam, floor)),
                      np.full(lam.size, 1.0 / lam.size))
    assert w1 < 0.3


def test_exact_top_trace_and_histogram_mass(case):
    W, lam, sd = case
    d, p = W.shape
    top = np.sort(lam)[::-1][: sd.k_exact]
    assert sd.k_exact == d * (d + 3) // 2
    assert np.allclose(sd.top_eigenvalues, top, rtol=1e-8)
    assert math.isclose(sd.weights.sum(), 1.0, rel_tol=1e-12)
    assert math.isclose(sd.trace_exact, float(np.sum(W * W)) / 2, rel_tol=1e-13)
    # Hutchinson on the deflated bulk: its share of the trace is ~2%, so even a 20% error there is 0.5% overall
    assert abs(sd.trace_estimate / sd.trace_exact - 1) < 0.005
    assert abs(sd.density.sum() - p) < 1e-6 * p  # histogram counts eigenvalues
    # the top bins, held by exact eigenvalues, equal the dense counts exactly
    hi = sd.edges[-1]
    top_bins = sd.edges[:-1] > 0.5 * top[-1]
    assert np.array_equal(sd.density[top_bins], np.histogram(lam, bins=sd.edges)[0][top_bins].astype(float))
    assert hi >= lam.max()


def test_validation():
    W = rf.sample_weights(3, 50, seed=0)
    with pytest.raises(ValueError, match="deflate"):
        rf.spectral_density(W, deflate="all")
    with pytest.raises(ValueError, match="deflate"):
        rf.spectral_density(W, deflate=50)
    with pytest.raises(ValueError, match="n_vectors"):
        rf.spectral_density(W, n_vectors=0)

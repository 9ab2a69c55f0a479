"""Stochastic Lanczos quadrature against the dense eigenvalues of the FIM."""

import math
from dataclasses import replace

import numpy as np
import pytest

import relufim as rf
from relufim.spectrum.density import matrix_spectral_density, smoothed_counts, wasserstein1
from relufim.spectrum.result import SpectrumResult


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


def test_smoothed_counts_against_jittered_samples():
    """Oracle: histogram of values jittered by N(0, width^2) in log10, with a 5-sigma binomial tolerance."""
    rng = np.random.default_rng(3)
    values = 10.0 ** rng.uniform(-6, 0, size=40)
    weights = rng.uniform(0.5, 2.0, size=40)
    edges = np.geomspace(1e-7, 10.0, 41)
    width = 0.15
    got = smoothed_counts(values, edges, width, weights)
    reps = 20_000
    jitter = np.log10(values)[None, :] + width * rng.standard_normal((reps, values.size))
    mc = np.histogram(jitter.ravel(), bins=np.log10(edges), weights=np.tile(weights, reps))[0] / reps
    # each bin: a weighted sum over 40 values of Bernoulli frequencies; var <= sum w^2 q(1-q)/reps <= sum w^2 / (4 reps)
    sd = math.sqrt((weights**2).sum() / (4 * reps))
    np.testing.assert_allclose(got, mc, atol=5 * sd)
    assert got.sum() == pytest.approx(weights.sum(), rel=1e-9)  # all mass well inside the edges


def _kolmogorov_raw(sd, lam):
    """sup_x |F_slq(x) - F_dense(x)| over every jump point (and just left of it)."""
    lam = np.sort(lam)
    xs = np.concatenate([sd.nodes, lam])
    xs = np.concatenate([xs, np.nextafter(xs, -np.inf)])
    f_dense = np.searchsorted(lam, xs, side="right") / lam.size
    return float(np.abs(sd.cdf(xs) - f_dense).max())


def _smoothed_cdf(values, weights, x, width):
    """Mass of the log10-Gaussian-smoothed measure below each x (zero values count as -inf)."""
    from scipy.stats import norm

    values, weights = np.asarray(values, float), np.asarray(weights, float)
    pos = values > 0
    z = (np.log10(x)[:, None] - np.log10(values[pos])[None, :]) / width
    return norm.cdf(z) @ weights[pos] + weights[~pos].sum()


def test_slq_kolmogorov_distance_within_cms_bound(case):
    """Chebyshev-Markov-Stieltjes: a Gauss rule's CDF is within its largest weight of the vector's spectral CDF.

    So sup_x |F_slq - F_dense| <= (p - k)/p * mean over vectors of the largest node weight
    + the Hutchinson error of the vectors' spectral CDFs (pointwise sd <= sqrt(2/(p n_vec)) for
    Rademacher vectors; 5 sd covers a union bound over the p jump points).
    """
    W, lam, sd = case
    p, k, nv = lam.size, sd.k_exact, sd.n_vectors
    per_vector = sd.weights[k:].reshape(nv, -1) * nv * p / (p - k)  # each rule's weights, summing to 1
    bound = (p - k) / p * per_vector.max(axis=1).mean() + 5 * math.sqrt(2.0 / (p * nv))
    assert _kolmogorov_raw(sd, lam) <= bound


def test_smoothed_histogram_mass_and_dense_comparison(case):
    """The smoothed SLQ histogram carries the p eigenvalues and is the smoothing of the SLQ measure.

    Smoothing both measures with the same kernel cannot increase their Kolmogorov distance, so the
    smoothed SLQ and smoothed dense CDFs (computed here with scipy.stats.norm) stay within the raw
    distance, which the previous test bounds.
    """
    W, lam, sd = case
    p, width = lam.size, 0.1
    edges = np.geomspace(1e-12 * lam.max(), 2 * lam.max(), 61)
    counts, se = sd.smoothed_histogram(edges, width=width)
    f_slq = _smoothed_cdf(sd.nodes, sd.weights, edges, width)
    f_dense = _smoothed_cdf(lam, np.full(p, 1.0 / p), edges, width)
    np.testing.assert_allclose(counts / p, np.diff(f_slq), atol=1e-12)
    assert counts.sum() == pytest.approx(p * (f_slq[-1] - f_slq[0]), rel=1e-9)
    assert counts.sum() == pytest.approx(p, rel=1e-3)
    assert np.abs(f_slq - f_dense).max() <= _kolmogorov_raw(sd, lam) + 1e-12
    assert np.all(se >= 0)


def test_default_smoothing_edges_keep_all_mass(case):
    """With the default edges (widened by 4 smoothing widths), no node's tail falls outside: mass = p."""
    W, lam, sd = case
    counts, _ = sd.smoothed_histogram(width=0.1)
    assert counts.sum() == pytest.approx(lam.size, rel=1e-4)
    edges = sd.smoothing_edges(0.1)
    assert edges[0] < sd.edges[0] and edges[-1] > sd.edges[-1]
    np.testing.assert_allclose(np.diff(np.log10(edges)), np.log10(sd.edges[1] / sd.edges[0]), rtol=1e-9)


# ----------------------------------------------------------------------------- deflating pairs already computed

def _known_spectrum(p: int = 300, k: int = 6, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A dense PSD ``Q diag(lam) Q^T`` with a separated top group of ``k`` and a bulk over four decades."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    lam = np.concatenate([np.geomspace(10.0, 4.0, k), np.geomspace(1.0, 1e-4, p - k)])
    A = (Q * lam) @ Q.T
    return (A + A.T) / 2, lam


def _lapack_pairs(A: np.ndarray, n: int) -> SpectrumResult:
    """The top ``n`` pairs by LAPACK, with their residuals: the oracle's eigenpairs as a SpectrumResult."""
    w, U = np.linalg.eigh(A)
    w, U = w[::-1][:n].copy(), U[:, ::-1][:, :n].copy()
    return SpectrumResult.from_pairs(w, U, np.linalg.norm(A @ U - U * w, axis=0), tol=1e-10, d=None, p=A.shape[0],
                                     method="dense", fisher="matrix")


def test_deflating_given_eigenpairs_matches_solving_for_them():
    """The same measure as the deflation's own solve, to the accuracy that solve certifies.

    Top eigenvalues: both equal the known ``lam`` to 1e-10 relative (LAPACK's error is ~p eps
    lam_max; the block solver's Ritz values are off by at most r^2/gap with r <= 1e-8 lam_max).
    Nodes and weights: the two deflated subspaces are within sin(theta) <= eps = (||R_solve||_F +
    ||R_lapack||_F) / gap of each other (Davis–Kahan, theory §10.2, gap = lam_k - lam_(k+1) known
    exactly here), so the operators SLQ runs on differ by at most ~2 eps lam_bulk + eps^2 lam_max and
    the starting vectors by eps; Gauss nodes (relative to lam_bulk) and weights move by that to first
    order. The factor 10 covers the Lanczos recurrence's amplification over 30 steps, which no bound
    gives (measured: the differences are ~1e-2 eps). eps itself is checked to be below 1e-7.
    """
    A, lam = _known_spectrum()
    p, k, nv = lam.size, 6, 8
    pairs = _lapack_pairs(A, k + 2)
    solved = matrix_spectral_density(A, n_vectors=nv, lanczos_steps=30, deflate=k, seed=3)
    given = matrix_spectral_density(A, n_vectors=nv, lanczos_steps=30, deflate=k, seed=3, eigenpairs=pairs)
    assert given.k_exact == solved.k_exact == k
    np.testing.assert_allclose(given.top_eigenvalues, lam[:k], rtol=1e-10)
    np.testing.assert_allclose(solved.top_eigenvalues, lam[:k], rtol=1e-10)
    assert np.array_equal(given.top_residuals, pairs.residuals[:k])
    eps = (np.linalg.norm(solved.top_residuals) + np.linalg.norm(given.top_residuals)) / (lam[k - 1] - lam[k])
    assert eps < 1e-7
    lam_bulk = lam[k]
    np.testing.assert_allclose(given.nodes[k:], solved.nodes[k:], rtol=0, atol=10 * eps * lam_bulk)
    rule = nv * p / (p - k)  # each vector's weights sum to 1
    np.testing.assert_allclose(given.weights[k:] * rule, solved.weights[k:] * rule, rtol=0, atol=10 * eps)
    # Hutchinson on the deflated bulk (Rademacher: sd of one estimate <= sqrt(2) ||A_c||_F); the Gauss rule is exact
    # on degree 1, so the whole error is sampling
    rest = math.sqrt(float(np.sum(lam[k:] ** 2)))
    assert given.trace_exact == pytest.approx(lam.sum(), rel=1e-12)
    assert abs(given.trace_estimate - lam.sum()) <= 5 * math.sqrt(2 / nv) * rest


def test_given_eigenpairs_validation():
    A, lam = _known_spectrum(p=60, k=3)
    pairs = _lapack_pairs(A, 5)
    kw = {"n_vectors": 2, "lanczos_steps": 5}
    with pytest.raises(TypeError, match="eigenpairs must be a SpectrumResult.*full_spectrum"):
        matrix_spectral_density(A, deflate=3, eigenpairs=(pairs.eigenvalues, pairs.eigenvectors), **kw)
    with pytest.raises(ValueError, match="X0.*eigenpairs.*not both"):
        matrix_spectral_density(A, deflate=3, eigenpairs=pairs, X0=np.eye(60)[:, :3], **kw)
    no_vectors = replace(pairs, eigenvectors=None)
    with pytest.raises(ValueError, match="no eigenvectors.*vectors=True"):
        matrix_spectral_density(A, deflate=3, eigenpairs=no_vectors, **kw)
    with pytest.raises(ValueError, match="p = 50.*same operator"):
        matrix_spectral_density(A[:50, :50], deflate=3, eigenpairs=pairs, **kw)
    with pytest.raises(ValueError, match="fewer than deflate = 6.*compute more pairs"):
        matrix_spectral_density(A, deflate=6, eigenpairs=pairs, **kw)
    unconverged = replace(pairs, converged=np.array([True, True, False, True, True]))
    with pytest.raises(ValueError, match="not converged.*pair 2.*drop eigenpairs="):
        matrix_spectral_density(A, deflate=3, eigenpairs=unconverged, **kw)
    matrix_spectral_density(A, deflate=2, eigenpairs=unconverged, **kw)  # only the deflated pairs must converge
    U = pairs.eigenvectors.copy()
    U[:, 1] = (U[:, 0] + U[:, 1]) / math.sqrt(2)
    with pytest.raises(ValueError, match="not orthonormal"):
        matrix_spectral_density(A, deflate=3, eigenpairs=replace(pairs, eigenvectors=U), **kw)


def test_matrix_density_refuses_pairs_of_another_operator():
    # pairs of A offered for 2A (another sigma scale): the recomputed residual |2A q - lambda q| = lambda is refused;
    # the same pairs for A itself pass (recomputed residuals equal the reported ones to round-off)
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((120, 120)))
    A = (Q * np.linspace(0.01, 1.0, 120)) @ Q.T
    top = rf.matrix_spectrum(A, 4)
    sd = rf.matrix_spectral_density(A, n_vectors=4, lanczos_steps=20, deflate=4, eigenpairs=top)
    assert sd.k_exact == 4
    with pytest.raises(ValueError, match="eigenpairs are not pairs of A: pair 0"):
        rf.matrix_spectral_density(2.0 * A, n_vectors=4, lanczos_steps=20, deflate=4, eigenpairs=top)

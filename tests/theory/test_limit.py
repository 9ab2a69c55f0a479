"""Infinite-width spectrum (relufim.theory.limit) against independent oracles.

Oracles: high-precision (mpmath) Funk–Hecke quadrature of the arc-cosine kernel; known
multiplicities of spherical harmonics; the trace identity sum_k N(d,k) mu_k = kappa(1);
finite-p FIMs (dense LAPACK / the block solver) over several seeds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.linalg as sla
from scipy import stats

import relufim as rf
from relufim.fim import fisher_matrix
from relufim.model.harmonics import funk_hecke_coefficients, harmonic_multiplicity, relu_funk_hecke_coefficients
from relufim.theory import TRACE_SHARE_BOUND
from tests.oracles import kappa_mp, mu_mpmath


def test_large_d_no_overflow_and_fast():
    import time

    t0 = time.perf_counter()
    res = rf.limit_spectrum(d=1000, kmax=50)
    assert time.perf_counter() - t0 < 1.0
    ev = res.eigenvalues
    assert np.all(np.isfinite(ev)) and np.all(ev >= 0)
    assert ev[50] > 0 and ev[49] == 0.0


@pytest.mark.parametrize("d", [2, 3, 10])
def test_trace_identity_sum_n_mu_tends_to_kappa1(d):
    kmax = 600
    mu = relu_funk_hecke_coefficients(d, kmax)
    terms = np.array([harmonic_multiplicity(d, k) * mu[k] for k in range(kmax + 1)])
    partial = np.cumsum(terms)
    assert np.all(np.diff(partial) >= 0)
    # the terms decay like k^-(5/2 + 1/2) ... at least k^-3, so the tail beyond 600 is < 1e-5
    assert 0.5 - 1e-5 < partial[-1] <= 0.5 + 1e-15
    res = rf.limit_spectrum(d=d, kmax=4)
    assert res.total == 0.5 and math.isclose(res.trace, d / 2)


@pytest.mark.parametrize("name,a", [("leaky-relu:0.2", 0.2), ("abs", -1.0), ("leaky-relu:-0.5", -0.5)])
def test_leaky_and_abs_limits_against_quadrature_of_their_duals(name, a):
    act = rf.get_activation(name)
    d = 5
    res = rf.limit_spectrum(d=d, kmax=6, activation=act)
    q = funk_hecke_coefficients(act.unit_dual, d, 6)  # independent: quadrature of the closed-form dual
    assert np.allclose(res.mu, q, rtol=1e-10, atol=1e-15)
    assert math.isclose(res.total, 0.5 * (1 + a * a), rel_tol=1e-14)  # E phi(z)^2


def test_numerical_homogeneous_path_for_a_user_activation():
    relu = rf.get_activation("relu")
    custom = rf.Activation("my-relu", relu.phi, relu.dual, homogeneous=True)  # no unit_dual, not closed form
    res = rf.limit_spectrum(d=4, kmax=4, activation=custom)
    assert np.allclose(res.mu, relu_funk_hecke_coefficients(4, 4), rtol=1e-10, atol=1e-15)
    assert "quadrature" in res.method


def test_trace_share_curve_decreases_to_the_bound():
    ds = [2, 3, 4, 6, 10, 30, 100, 300, 1000]
    F = rf.trace_share_curve(ds)
    assert np.all(np.diff(F) < 0)
    assert np.all(F > TRACE_SHARE_BOUND)
    assert F[-1] - TRACE_SHARE_BOUND < 1e-3
    # independent: F(d) from the definition with mpmath coefficients at d = 4
    mus = [float(mu_mpmath(4, k, kappa_mp, 30)) for k in range(3)]
    F4 = (mus[0] + 4 * mus[1] + 9 * mus[2]) / 0.5
    assert abs(rf.trace_share_curve([4])[0] - F4) < 1e-13


def test_scalings_and_to_dict():
    lim = rf.limit_spectrum(d=4, kmax=3, scale="1/d", p=700)
    mu = relu_funk_hecke_coefficients(4, 3)
    assert np.allclose(lim.eigenvalues, 700 * 1.0 * mu, rtol=1e-14)  # p E||w||^2 mu_k with E||w||^2 = 1
    unit = rf.limit_spectrum(d=4, kmax=3, scale="unit", p=700)
    assert np.allclose(unit.eigenvalues, 700 * mu, rtol=1e-14)
    var = rf.limit_spectrum(d=4, kmax=3, scale=0.5, p=10)
    assert np.allclose(var.eigenvalues, 10 * 4 * 0.5 * mu, rtol=1e-14)
    default = rf.limit_spectrum(d=4, kmax=3)
    assert np.allclose(default.eigenvalues, 4 * mu, rtol=1e-14)
    out = json.loads(json.dumps(default.to_dict()))
    assert {"d", "activation", "degrees", "top_fraction", "total"} <= set(out)
    assert set(out["degrees"][0]) >= {"k", "eigenvalue", "multiplicity", "cumulative_fraction", "mu"}
    assert out["degrees"][-1]["cumulative_fraction"] <= 1.0
    v = rf.limit_cluster_values(4)
    assert v["cluster1"] == default.degrees[0].eigenvalue and v["top_fraction"] == default.top_fraction


def test_bad_input():
    with pytest.raises(ValueError, match="d must be >= 2"):
        rf.limit_spectrum(d=1)
    with pytest.raises(ValueError, match="kmax must be >= 0"):
        rf.limit_spectrum(d=3, kmax=-1)
    with pytest.raises(TypeError, match="kmax"):
        rf.limit_spectrum(d=3, kmax=2.5)
    with pytest.raises(ValueError, match="known activations: .*relu.*softplus"):
        rf.limit_spectrum(d=3, activation="swish-ish")
    with pytest.raises(ValueError, match="pass the width p"):
        rf.limit_spectrum(d=3, scale="1/d")
    with pytest.raises(ValueError, match="pass p="):
        rf.limit_spectrum(d=3, activation="softplus")
    with pytest.raises(ValueError, match="scale"):
        rf.limit_spectrum(d=3, scale="1/q")


def _finite_clusters_dense(W, activation):
    """Cluster means and top fraction from the full dense spectrum (numpy eigh) of the exact FIM."""
    d = W.shape[0]
    J = fisher_matrix(W, activation=activation)
    n1, n2 = 1, d
    n3 = d * (d + 1) // 2 - 1
    top = n1 + n2 + n3
    p = J.shape[0]
    e = sla.eigh(J, eigvals_only=True, subset_by_index=[p - top - 1, p - 1])[::-1]
    return np.array([e[0], e[1:1 + n2].mean(), e[1 + n2:top].mean(), e[:top].sum() / np.trace(J), e[top]])


def _ci_halfwidth(samples: np.ndarray, level: float = 0.995) -> np.ndarray:
    """Half-width of the two-sided t confidence interval of the mean over seeds (axis 0)."""
    s = samples.shape[0]
    return stats.t.ppf(level, s - 1) * samples.std(axis=0, ddof=1) / np.sqrt(s)


def test_softplus_limit_against_finite_p_matrices():
    # non-homogeneous: the radial-operator prediction (what limit_spectrum computes) against dense
    # spectra at p = 1500 over 3 seeds; tolerance = 99% t-interval of the seed mean plus 1%, the
    # O(1/sqrt(p)) finite-width bias measured at p = 3000 (cluster 3: 0.9%)
    d, p = 3, 1500
    lim = rf.limit_spectrum(d=d, kmax=2, activation="softplus", scale="1/d", p=p)
    vals = np.array([_finite_clusters_dense(rf.sample_weights(d, p, seed=s, scale="1/d"), "softplus")
                     for s in range(3)])
    mean, half = vals.mean(axis=0), _ci_halfwidth(vals)
    predicted = [lim.degrees[0].eigenvalue, lim.degrees[1].eigenvalue, lim.degrees[2].eigenvalue,
                 lim.top_fraction, lim.degrees[0].radial_eigenvalues[0]]
    for j, pred in enumerate(predicted):
        assert abs(mean[j] - pred) <= half[j] + 0.01 * abs(pred) + (0.03 * abs(pred) if j == 4 else 0), (j, mean, pred)


@pytest.mark.slow
def test_relu_limit_against_finite_p_5000():
    # 3 seeds at p = 5000 (block solver); the limit must lie in the 99.5% t-interval of the
    # seed mean widened by the O(1/p) bias of the cluster means (mean - limit ~ p^-1, fitted
    # by relufim convergence: |bias| < 2/p relative)
    from relufim.experiments.convergence import finite_cluster_values

    d, p = 3, 5000
    lim = rf.limit_cluster_values(d)
    vals = np.array([finite_cluster_values(rf.sample_weights(d, p, seed=s))[0] for s in range(3)])
    mean, half = vals.mean(axis=0), _ci_halfwidth(vals)
    for j, key in enumerate(("cluster1", "cluster2", "cluster3", "top_fraction")):
        assert abs(mean[j] - lim[key]) <= half[j] + 2.0 / p * lim[key], (key, mean[j], lim[key], half[j])


def test_softplus_default_scale_limit_against_finite_p():
    # with the default draw the norms are ~sqrt(d/p): the radius law depends on p and limit_spectrum
    # predicts p x (radial operator at that law). Degrees 0 and 1 against dense spectra at p = 800
    # (99.5% t-interval of the seed mean + 1% for the finite-width bias).
    d, p = 3, 800
    lim = rf.limit_spectrum(d=d, kmax=2, activation="softplus", p=p)
    vals = np.array([_finite_clusters_dense(rf.sample_weights(d, p, seed=s), "softplus") for s in range(3)])
    mean, half = vals.mean(axis=0), _ci_halfwidth(vals)
    for j in (0, 1):
        pred = lim.degrees[j].eigenvalue
        assert abs(mean[j] - pred) <= half[j] + 0.01 * pred, (j, mean[j], pred)
    # at small norms the quadratic part (w.x)^2 adds the radial direction ||w||^2 to degree 2:
    # the second degree-0 eigenvalue sits with the third cluster (within 1%)
    assert abs(lim.degrees[0].radial_eigenvalues[0] / lim.degrees[2].eigenvalue - 1) < 0.01


@pytest.mark.parametrize("activation,scale,p", [("relu", "1/p", None), ("leaky-relu:0.3", "unit", 40),
                                                 ("erf", "1/p", 300)])
def test_degree_share_is_its_part_of_the_trace(activation, scale, p):
    """``share`` = N(d,k) lambda_k / tr J (the definition), and the shares add up to ``cumulative_fraction``."""
    lim = rf.limit_spectrum(d=5, kmax=6, activation=activation, scale=scale, p=p)
    shares = np.array([row.share for row in lim.degrees])
    direct = np.array([row.multiplicity * row.eigenvalue / lim.trace for row in lim.degrees])
    # both are sums of the same 7 nonnegative terms in float64: a few ulps of the largest share apart
    assert np.allclose(shares, direct, rtol=0, atol=1e-14)
    assert np.allclose(np.cumsum(shares), [row.cumulative_fraction for row in lim.degrees], rtol=0, atol=1e-14)
    assert lim.degrees[0].share == lim.degrees[0].cumulative_fraction


def test_one_degree_row_for_both_limits_and_its_json_keys():
    """One row class for the one- and many-layer limits: every row's JSON carries ``share`` and the
    cumulative share under both names, against ``N(4,k) mu_k / kappa(1)`` with ``N(4,k) = (k+1)^2``, mu_k by
    mpmath quadrature of the arc-cosine kernel and ``kappa(1) = 1/2`` (ReLU, d = 4)."""
    from relufim.theory import DepthDegree, LimitDegree

    assert DepthDegree is LimitDegree
    shares = np.array([(k + 1) ** 2 * float(mu_mpmath(4, k, kappa_mp, 30)) / 0.5 for k in range(3)])
    for res in (rf.limit_spectrum(d=4, kmax=2), rf.depth_limit_spectrum(d=4, depth=1, kmax=2)):
        rows = json.loads(json.dumps(res.to_dict()))["degrees"]
        assert all(isinstance(row, LimitDegree) for row in res.degrees)
        # float64 closed forms against 30-digit quadrature, summed over at most 3 terms of size <= 1
        assert np.allclose([row["share"] for row in rows], shares, rtol=0, atol=1e-14)
        assert np.allclose([row["cumulative_share"] for row in rows], np.cumsum(shares), rtol=0, atol=1e-14)
        assert all(row["cumulative_fraction"] == row["cumulative_share"] for row in rows)
        assert all(row.cumulative_fraction == row.cumulative_share for row in res.degrees)

"""The infinite-width limit at any depth and the predicted subspaces (relufim.theory.depth) against oracles.

Oracles: relufim.limit_spectrum for one layer (exact equality through the deep path; and the independent
grid engine against its Mehler/monomial route); a nested quadrature of the layer recursion (the ReLU dual of
each layer by an adaptive 1-D integral of a Gaussian times the closed-form mean of a shifted ReLU, never the
arc-cosine formula); mpmath quadrature of the composed kernel at 30 digits for the Funk-Hecke coefficients; a
nested tensor Gauss-Hermite rule for smooth activations; Monte Carlo over finite wide networks with error bars
from the spread over seeds; closed forms (Stein's lemma, the radial moment E|z_1| ||z||); scipy's principal
angles.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import scipy.linalg as sla
from scipy import integrate, special

import relufim as rf
from relufim.fim.deep import deep_fisher
from relufim.fim.sampled import gaussian_input_chunks
from relufim.model.harmonics import harmonic_multiplicity, relu_a0
from relufim.model.network import covariance_root, network
from relufim.theory.depth import (
    _layer_recursion,
    _nonhomogeneous_degrees,
    composed_kernel,
    depth_limit_spectrum,
    network_limit_spectrum,
    predicted_functions,
    predicted_subspaces,
    subspace_alignment,
    top_fraction_by_depth,
)
from tests.oracles import mu_mpmath

# ----------------------------------------------------------------------------- one layer = limit_spectrum


@pytest.mark.parametrize("activation", ["relu", "leaky-relu:0.2", "abs"])
def test_one_layer_is_limit_spectrum_exactly(activation):
    lim = rf.limit_spectrum(d=10, kmax=8, activation=activation)
    deep = depth_limit_spectrum(10, 1, 8, activation)
    assert deep.eigenvalues.tolist() == lim.eigenvalues.tolist()
    assert [r.cumulative_share for r in deep.degrees] == [r.cumulative_fraction for r in lim.degrees]
    assert deep.top_fraction == lim.top_fraction and deep.trace == lim.trace
    assert [r.multiplicity for r in deep.degrees] == lim.multiplicities
    # mu is the share per unit multiplicity: the Funk-Hecke coefficient of the normalized dual k / k(1)
    assert np.allclose([r.mu for r in deep.degrees], lim.mu / lim.total, rtol=1e-14, atol=0)


@pytest.mark.parametrize("activation", ["softplus", "tanh", "erf"])
def test_one_layer_nonhomogeneous_is_limit_spectrum_exactly(activation):
    lim = rf.limit_spectrum(d=5, kmax=5, activation=activation, scale="1/p", p=200)
    deep = depth_limit_spectrum(5, 1, 5, activation, widths=200)
    assert deep.eigenvalues.tolist() == lim.eigenvalues.tolist()
    assert [r.radial_eigenvalues for r in deep.degrees] == [r.radial_eigenvalues for r in lim.degrees]


@pytest.mark.parametrize("activation", ["softplus", "tanh", "gelu", "erf"])
def test_grid_engine_at_one_layer_against_limit_spectrum(activation):
    """The depth engine (quadrature in the angle, grid of radii) against limit.py (Mehler coefficients times the
    closed-form Funk-Hecke coefficients of monomials): two routes to one operator. Both are accurate to ~1e-14
    relative (their documented quadrature accuracy); 1e-11 of the largest eigenvalue leaves 1000x margin."""
    act = rf.get_activation(activation)
    d, p = 5, 100
    lim = rf.limit_spectrum(d, 6, act, scale="1/d", p=p)
    top, _radial, trace, bound = _nonhomogeneous_degrees(act, d, 6, (1.0 / d,), p)
    assert np.abs(top - lim.eigenvalues).max() < 1e-11 * lim.eigenvalues.max()
    assert trace == pytest.approx(lim.trace, rel=1e-12) and bound < 1e-10


# ----------------------------------------------------------------------------- the composed kernel


def _relu_dual_by_quadrature(c: float) -> float:
    """E[relu(u) relu(c u + s v)] for independent standard u, v (s = sqrt(1 - c^2)), by adaptive quadrature.

    The inner mean is closed form: E_v[relu(a + s v)] = a Phi(a/s) + s phi(a/s); the outer integral over u > 0
    is done by scipy.integrate.quad. Nothing here uses the arc-cosine formula.
    """
    s = math.sqrt(max(1.0 - c * c, 0.0))

    def inner(u):
        a = c * u
        if s == 0.0:
            return max(a, 0.0)
        return a * special.ndtr(a / s) + s * math.exp(-0.5 * (a / s) ** 2) / math.sqrt(2 * math.pi)

    val, err = integrate.quad(lambda u: u * inner(u) * math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi), 0, np.inf,
                              epsabs=1e-14, epsrel=1e-13)
    return val


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_composed_relu_kernel_against_nested_quadrature(depth):
    """The layer recursion evaluated layer by layer with an independent quadrature of the ReLU dual.

    Unit inputs: each layer's pre-activations have equal variances, so the normalized kernel of layer l is the
    dual of the correlation of layer l-1 divided by the dual at 1 (= 1/2). quad's tolerance is 1e-13 per layer;
    the composition is 1-Lipschitz in the correlation (the normalized dual's slope is at most 1), so the
    nested error stays below depth x 1e-13; 1e-11 allows for round-off in the integrand.
    """
    for t in (-0.95, -0.3, 0.0, 0.4, 0.9, 0.999):
        c = t
        for _ in range(depth):
            c = _relu_dual_by_quadrature(c) / 0.5
        assert float(composed_kernel(t, depth)) == pytest.approx(c, abs=1e-11)


def _composed_mp(depth):
    def kernel(th):
        k = (mp.sin(th) + (mp.pi - th) * mp.cos(th)) / mp.pi  # normalized ReLU dual at cos(th)
        for _ in range(depth - 1):
            k = (mp.sqrt(1 - k * k) + (mp.pi - mp.acos(k)) * k) / mp.pi
        return k
    return kernel


@pytest.mark.parametrize("d,depth", [(3, 2), (10, 3), (5, 10), (10, 10)])
def test_funk_hecke_coefficients_of_the_composed_kernel_against_mpmath(d, depth):
    """mu_k(K_L) by the library's Gauss-Legendre rule in the angle against mpmath's adaptive quadrature at 30
    digits. The rule is accurate to ~1e-16 max|K| = 1e-16 (harmonics docstring); each composition adds a few
    ulps of round-off to K (the normalized dual is 1-Lipschitz, so earlier errors do not grow): 5e-15 per layer
    (measured: 2.1e-14 at d = 5, L = 10)."""
    lim = depth_limit_spectrum(d, depth, 6)
    for k in range(7):
        ref = float(mu_mpmath(d, k, _composed_mp(depth), 30))
        assert lim.degrees[k].mu == pytest.approx(ref, abs=5e-15 * depth)


def test_shares_sum_to_one_and_the_facts_of_depth():
    # K_L(1) = 1: the shares sum to 1 over all degrees; at d = 3 the multiplicities stay small (2k + 1), so the
    # partial sums are accurate and approach 1 from below, every coefficient >= 0 (theory §14.3)
    for depth in (2, 3):
        lim = depth_limit_spectrum(3, depth, 400)
        mu = np.array([r.mu for r in lim.degrees])
        cum = np.array([r.cumulative_share for r in lim.degrees])
        assert mu.min() > -1e-15 and np.all(np.diff(cum) >= -1e-15)
        assert 1 - 1e-5 < cum[-1] <= 1 + 1e-12
    # d = 10 (computed, theory §14.3; the coefficients are checked against mpmath above): degree 0 gains share with
    # every layer, odd degree 3 appears for L >= 2, and F_L = shares of degrees <= 2 is not monotone: it falls to
    # L = 5 and rises again as degree 0 takes over
    F = top_fraction_by_depth(10, range(1, 11))
    shares = np.array([depth_limit_spectrum(10, L, 4).shares for L in range(1, 11)])
    assert np.allclose(F, shares[:, :3].sum(axis=1), rtol=1e-14)
    assert np.all(np.diff(F[:5]) < 0) and np.all(np.diff(F[4:]) > 0)
    assert np.all(np.diff(shares[:, 0]) > 0)
    assert shares[0, 3] == 0 and np.all(shares[1:, 3] > 1e-3)
    assert np.all(depth_limit_spectrum(10, 3, 4).eigenvalues[:3] > depth_limit_spectrum(10, 3, 4).eigenvalues[3])


def test_conventions_scale_the_eigenvalues_as_documented():
    """Only the factor p_L c_L changes between conventions (theory §14.4): closed forms of the module table."""
    d, widths = 6, (300, 200, 100)
    base = depth_limit_spectrum(d, 3, 5)  # default: d/2 mu_k(K_L), no widths needed
    mu = np.array([r.mu for r in base.degrees])
    assert np.allclose(base.eigenvalues, d / 2 * mu, rtol=1e-14)
    assert base.trace == pytest.approx(d / 2, rel=1e-14)
    assert np.allclose(depth_limit_spectrum(d, 3, 5, widths=widths).eigenvalues, base.eigenvalues, rtol=1e-12)
    assert np.allclose(depth_limit_spectrum(d, 3, 5, scale="he", widths=widths).eigenvalues, 100 * mu, rtol=1e-12)
    assert np.allclose(depth_limit_spectrum(d, 3, 5, scale="1/d", widths=widths).eigenvalues, 100 / 8 * mu,
                       rtol=1e-12)
    assert np.allclose(depth_limit_spectrum(d, 3, 5, scale="1/width").eigenvalues, d / 8 * mu, rtol=1e-12)
    assert network_limit_spectrum(network(d, widths), 5).eigenvalues.tolist() == \
        depth_limit_spectrum(d, 3, 5, widths=widths).eigenvalues.tolist()


# ----------------------------------------------------------------------------- non-homogeneous activations


def _gh_layers(phi, gains, r, t, nodes=120):
    """q_L(r_i, r_j, t) by nested tensor Gauss-Hermite rules (2-D per layer), written here from scratch."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()

    def dual(s1, s2, c):
        x2 = c * z[:, None] + math.sqrt(max(1 - c * c, 0.0)) * z[None, :]
        return float(w @ (phi(s1 * z)[:, None] * phi(s2 * x2)) @ w)

    def second(s):
        return float(w @ phi(s * z) ** 2)

    out = np.empty((r.size, r.size))
    for i in range(r.size):
        for j in range(r.size):
            si, sj, c = math.sqrt(gains[0]) * r[i], math.sqrt(gains[0]) * r[j], t
            q, vi, vj = dual(si, sj, c), second(si), second(sj)
            for g in gains[1:]:
                si, sj, c = math.sqrt(g * vi), math.sqrt(g * vj), q / math.sqrt(vi * vj)
                q, vi, vj = dual(si, sj, c), second(si), second(sj)
            out[i, j] = q
    return out


@pytest.mark.parametrize("activation", ["tanh", "softplus", "gelu"])
def test_layer_recursion_of_smooth_activations_against_nested_gauss_hermite(activation):
    """The grid recursion (Mehler's series per layer) against nested 120 x 120 Gauss-Hermite rules.

    For these analytic activations at pre-activation scales <= 2 the Gauss-Hermite rule converges
    geometrically (1e-13 at 120 nodes: the library's measured table for the 64-node rule is <= 1e-8 at r = 3);
    the Mehler route is accurate to 1e-13 relative (activations docstring); 1e-9 absolute on values of order 1.
    """
    act = rf.get_activation(activation)
    r = np.array([0.6, 1.4, 2.2])
    gains = (0.4, 2.0, 1.5)
    for t in (-0.6, 0.3, 0.95):
        Q, V, bound = _layer_recursion(act, gains, r, np.ones(r.size) / r.size, np.array([t]))
        ref = _gh_layers(act.phi, gains, r, t)
        assert np.abs(Q[:, :, 0] - ref).max() < 1e-9 and bound < 1e-10


def test_nonhomogeneous_limits_need_the_widths_and_report_the_radial_levels():
    with pytest.raises(ValueError, match=r"not homogeneous.*pass widths=\(p_1, \.\.\., p_L\)"):
        depth_limit_spectrum(5, 3, 4, "tanh")
    # d = 5, first-layer gain 2/d: the outer radii reach pre-activation scales where tanh needs more than 200
    # Hermite terms; the weighted bound (1.5e-9 of the trace) is reported and warned about
    with pytest.warns(rf.model.activations.AccuracyWarning, match="off by up to"):
        lim = depth_limit_spectrum(5, 3, 4, "tanh", widths=200)
    top = lim.degrees[1].eigenvalue
    assert abs(lim.degrees[0].eigenvalue) < 1e-14 * top and abs(lim.degrees[2].eigenvalue) < 1e-14 * top  # odd phi
    assert top > lim.degrees[3].eigenvalue > 0 and len(lim.degrees[1].radial_eigenvalues) == 3
    assert 1e-10 < lim.truncation_bound < 1e-8 and "radial operator" in lim.method
    assert depth_limit_spectrum(3, 3, 4, "erf", widths=200).truncation_bound < 1e-15  # closed-form dual


# ----------------------------------------------------------------------------- finite wide networks


@pytest.mark.slow
def test_monte_carlo_cluster_means_approach_the_limit_as_widths_grow():
    """Cluster means of finite networks (L = 2, d = 3, default convention) against the limit, at two widths.

    Error bars: the standard error over 8 networks (each J from 10 000 Monte Carlo inputs, so the spread holds
    both the draw of the weights and the input sampling). They shrink as the widths grow (fluctuations ~ 1/sqrt(p));
    at the larger widths every cluster mean is within 3.5 of them (a two-sided normal tail of 5e-4 per cluster;
    the finite-width bias, measured at 2-7 % for the third cluster at p_L = 60..480, is inside these bars at
    p_L = 320), and the deviations are smaller than at the small widths: the trend.
    """
    d, depth = 3, 2
    lim = depth_limit_spectrum(d, depth, 3).eigenvalues[:3]
    cuts = np.cumsum([0, 1, d, d * (d + 1) // 2 - 1])
    out = {}
    for widths in ((100, 40), (800, 320)):
        means = []
        for seed in range(8):
            ev = np.linalg.eigvalsh(deep_fisher(network(d, widths).sample(seed), n=10_000, seed=500 + seed))[::-1]
            means.append([ev[cuts[i]:cuts[i + 1]].mean() for i in range(3)])
        means = np.array(means)
        out[widths] = (means.mean(axis=0), means.std(axis=0, ddof=1) / np.sqrt(len(means)))
    (m_small, se_small), (m_large, se_large) = out[(100, 40)], out[(800, 320)]
    assert np.all(se_large < se_small)
    assert np.all(np.abs(m_large - lim) < 3.5 * se_large)
    assert np.sum(((m_large - lim) / lim) ** 2) < np.sum(((m_small - lim) / lim) ** 2)


# ----------------------------------------------------------------------------- predicted subspaces


def test_predicted_vectors_at_one_layer_against_closed_forms():
    """E[relu(x W) psi(x)]: for psi = x_l it is W_l / 2 (Stein); for psi = ||x|| it is ||w_i|| d a_0 with
    a_0 = Gamma(d/2) / (2 sqrt(pi) Gamma((d+1)/2)) (||x|| and the direction are independent:
    E[z_1^+ ||z||] = E||z||^2 E|u_1| / 2). Every entry within 5 standard errors."""
    d, p = 4, 40
    W = rf.sample_weights(d, p, seed=2)
    ps = predicted_subspaces([W], n=40_000, seed=9)
    z1 = (ps.vectors[1] - W.T / 2) / ps.stderr[1]
    z0 = (ps.vectors[0][:, 0] - np.linalg.norm(W, axis=0) * d * relu_a0(d)) / ps.stderr[0][:, 0]
    assert np.abs(z1).max() < 5 and np.abs(z0).max() < 5
    assert [v.shape for v in ps.vectors] == [(p, 1), (p, d), (p, d * (d + 1) // 2 - 1)]
    assert np.allclose(ps.gram, deep_fisher([W], n=40_000, seed=9), rtol=1e-12)  # the same pass: the same J


def test_alignment_against_scipy_principal_angles_and_the_clusters_of_a_deep_network():
    d = 3
    Ws = network(d, [600, 200]).sample(1)
    ps = predicted_subspaces(Ws, n=20_000, seed=4)
    res = rf.matrix_spectrum(ps.gram, "clusters", d=d)
    al = subspace_alignment(res, ps.vectors)
    assert al["sizes_match"] and al["detected_sizes"] == [1, 3, 5]
    for c, idx, V in zip(al["clusters"], res.predicted_members(), ps.vectors):
        ref = np.sort(np.cos(sla.subspace_angles(res.eigenvectors[:, idx], V)))[::-1]
        assert np.allclose(c["cosines"], ref, atol=1e-10)
        # the sampling noise of the vectors is at most 6 % of their norm (relative_errors below), which alone
        # would tilt the spans by about that angle (cosine > 0.998); the rest is the finite width (measured min
        # cosines 0.999, 0.975, 0.961 here; 0.99 and above at widths 1500, 400)
        assert c["min_cosine"] > 0.9 and c["captured"] > 0.99
    assert max(ps.relative_errors()) < 0.1


def test_predicted_subspaces_under_input_cov_are_those_of_the_inputs_coloured_by_hand():
    """Monte Carlo under input_cov (the whitened weights, theory §14.6) against the same Gaussian draws coloured by
    hand, x = z Sigma^(1/2), given as inputs with whiten = Sigma^(-1/2): the same vectors, errors and J. The two
    routes differ by round-off only (z (R W) against (z R) W, z against z R R^-1); 1e-12 of the largest entry
    allows cond(R) = 2.6 times 1e-15 relative per product and a factor 100 for the sums over 5000 inputs
    (measured: 8e-16)."""
    d, n, seed = 3, 5000, 7
    S = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    R = covariance_root(S, d)
    Ws = network(d, [40, 20]).sample(3)
    z = np.vstack(list(gaussian_input_chunks(n, d, seed)))
    mc = predicted_subspaces(Ws, n=n, seed=seed, input_cov=S, gram_stderr=True)
    by_hand = predicted_subspaces(Ws, x=z @ R, whiten=np.linalg.inv(R), gram_stderr=True)
    assert mc.source == "monte-carlo" and by_hand.source == "empirical" and mc.n == by_hand.n == n
    for a, b in zip(mc.vectors + mc.stderr + (mc.gram, mc.gram_stderr),
                    by_hand.vectors + by_hand.stderr + (by_hand.gram, by_hand.gram_stderr)):
        assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max()


def test_predicted_functions_whitening_and_errors():
    x = np.random.default_rng(0).standard_normal((5, 3))
    S = np.diag([4.0, 1.0, 0.25])
    white = np.diag(1 / np.sqrt(np.diag(S)))
    assert np.allclose(predicted_functions(x @ np.sqrt(S), white), predicted_functions(x))
    Ws = network(3, [30, 20]).sample(0)
    with pytest.raises(ValueError, match="whitened by input_cov"):
        predicted_subspaces(Ws, n=100, whiten=np.eye(3))
    with pytest.raises(ValueError, match=r"whiten must be a \(3, 3\)"):
        predicted_subspaces(Ws, x=x, whiten=np.eye(2))
    res = rf.matrix_spectrum(np.eye(4), 2)
    with pytest.raises(ValueError, match="with eigenvectors and d"):
        subspace_alignment(res, [np.ones((4, 1))])


def test_bad_limit_requests():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        depth_limit_spectrum(10, 0)
    with pytest.raises(ValueError, match="d must be >= 2"):
        depth_limit_spectrum(1, 2)
    with pytest.raises(ValueError, match="widths has 2 layers but depth = 3"):
        depth_limit_spectrum(10, 3, widths=(100, 100))
    with pytest.raises(ValueError, match="grow with the last width"):
        depth_limit_spectrum(10, 3, scale="he")
    with pytest.raises(ValueError, match="positive width"):
        depth_limit_spectrum(10, 2, widths=(100, 0))
    with pytest.raises(TypeError, match="must be a Network"):
        network_limit_spectrum("net")
    with pytest.raises(ValueError, match="kmax must be >= 0"):
        depth_limit_spectrum(10, 2, -1)


def test_multiplicities_and_cluster_values():
    lim = depth_limit_spectrum(10, 4, 3)
    assert lim.multiplicities == [harmonic_multiplicity(10, k) for k in range(4)]
    cv = lim.cluster_values()
    assert cv["cluster1"] == lim.degrees[0].eigenvalue and cv["top_fraction"] == lim.top_fraction
    js = lim.to_dict()
    assert js["depth"] == 4
    assert {"k", "multiplicity", "eigenvalue", "share", "cumulative_share"} <= set(js["degrees"][0])

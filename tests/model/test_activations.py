"""Activations and the exact FIM for them, against independent oracles.

Oracles: Monte Carlo FIMs with error bars from the sample variance (every activation);
nested adaptive quadrature (scipy.integrate.quad) for single entries; closed forms
(erf's arcsine kernel, E[sin sin] = e^{-(r1^2+r2^2)/2} sinh(r1 r2 t), identity);
Parseval's identity for the Hermite coefficients.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

import relufim as rf
from relufim.model import activations
from relufim.model.activations import (
    AccuracyWarning,
    gauss_hermite_dual,
    gaussian_second_moment,
    hermite_coefficients,
    leaky_relu,
    mehler_dual,
)

ALL = ["relu", "leaky-relu:0.2", "abs", "softplus", "gelu", "tanh", "erf", np.sin]


def _nested_quad(phi, r1, r2, t):
    """E[phi(r1 z1) phi(r2 (t z1 + s z2))] by nested adaptive Gauss–Kronrod quadrature."""
    s = math.sqrt(max(1 - t * t, 0.0))
    g = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731

    def inner(z1):
        return integrate.quad(lambda z2: float(phi(np.array(r2 * (t * z1 + s * z2)))) * g(z2), -40, 40,
                              epsabs=1e-15, epsrel=1e-13, limit=400, points=[0.0])[0]

    return integrate.quad(lambda z1: float(phi(np.array(r1 * z1))) * g(z1) * inner(z1), -40, 40,
                          epsabs=1e-15, epsrel=1e-13, limit=400, points=[0.0])[0]


@pytest.mark.parametrize("activation", ALL, ids=lambda a: a if isinstance(a, str) else "callable-sin")
def test_exact_fim_matches_monte_carlo_for_every_activation(activation):
    W = rf.sample_weights(3, 6, seed=1, scale="1/d")
    J = rf.fisher_matrix(W, activation=activation)
    Jn, se = rf.monte_carlo_fisher(W, n=100_000, seed=2, activation=activation, return_stderr=True)
    # 21 distinct entries x 8 activations: a 5-sigma band fails by chance with probability ~1e-4
    assert np.all(np.abs(J - Jn) <= 5 * se + 1e-12)
    assert np.allclose(J, J.T) and np.all(np.linalg.eigvalsh(J) > -1e-12 * np.trace(J))


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # roundoff at the 1e-15 target
@pytest.mark.parametrize("name", ["softplus", "gelu", "tanh"])
def test_mehler_fim_entries_against_nested_quadrature(name):
    act = rf.get_activation(name)
    W = np.array([[1.0, 0.3, -0.5], [0.2, 0.9, 0.7]])  # norms ~1, cosines 0.5, -0.24, 0.57
    J = rf.fisher_matrix(W, activation=name)
    r = np.linalg.norm(W, axis=0)
    for i, j in [(0, 1), (1, 2), (0, 0)]:
        t = float(W[:, i] @ W[:, j] / (r[i] * r[j]))
        ref = _nested_quad(act.phi, r[i], r[j], t)
        # quad's requested relative accuracy is 1e-13 per level; the Mehler bound is 1e-13
        assert abs(J[i, j] - ref) <= 1e-11 * max(abs(ref), J[i, i]), (name, i, j, J[i, j], ref)


def test_erf_mehler_engine_against_arcsine_closed_form():
    act = rf.get_activation("erf")
    rng = np.random.default_rng(0)
    r1, r2 = rng.uniform(0.05, 1.5, 50), rng.uniform(0.05, 1.5, 50)
    t = rng.uniform(-0.999, 0.999, 50)
    assert np.allclose(mehler_dual(act, r1, r2, t), act.dual(r1, r2, t), rtol=0, atol=1e-13)
    # and a whole matrix through the Mehler path (a user callable that is erf)
    W = rf.sample_weights(4, 200, seed=3, scale="1/d")
    J_closed = rf.fisher_matrix(W, activation="erf")
    J_mehler = rf.fisher_matrix(W, activation=activations.activation_from_callable(act.phi, "erf-numerical"))
    assert np.max(np.abs(J_closed - J_mehler)) < 1e-12 * np.max(np.diag(J_closed))


def test_callable_sin_closed_form():
    # E[sin(a z1) sin(b z2)] = exp(-(a^2 + b^2)/2) sinh(a b t)
    rng = np.random.default_rng(1)
    a, b, t = rng.uniform(0.1, 1.5, 30), rng.uniform(0.1, 1.5, 30), rng.uniform(-1, 1, 30)
    act = rf.get_activation(np.sin)
    assert act.name == "sin" and not act.homogeneous
    exact = np.exp(-(a * a + b * b) / 2) * np.sinh(a * b * t)
    assert np.allclose(act.dual(a, b, t), exact, rtol=0, atol=1e-14)
    W = rf.sample_weights(3, 40, seed=0, scale="1/d")
    r = np.linalg.norm(W, axis=0)
    T = np.clip((W / r).T @ (W / r), -1, 1)
    J = rf.fisher_matrix(W, activation=np.sin)
    assert np.allclose(J, np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / 2) * np.sinh(np.outer(r, r) * T),
                       rtol=0, atol=1e-14)


def test_homogeneous_closed_forms_identities():
    rng = np.random.default_rng(2)
    r1, r2, t = rng.uniform(0.1, 2, 40), rng.uniform(0.1, 2, 40), rng.uniform(-1, 1, 40)
    relu = rf.get_activation("relu")
    assert np.allclose(leaky_relu(0.0).dual(r1, r2, t), relu.dual(r1, r2, t), rtol=1e-15, atol=0)
    assert np.allclose(leaky_relu(1.0).dual(r1, r2, t), r1 * r2 * t, atol=1e-15)  # identity
    assert np.allclose(leaky_relu(-1.0).dual(r1, r2, t), rf.get_activation("abs").dual(r1, r2, t), atol=1e-15)
    # abs against a 1-D quadrature in the polar angle of x in the plane of (u, v):
    # E|u.x||v.x| = E[rho^2] E_alpha|cos a||cos(a - theta)| with E rho^2 = 2 (kinks as breakpoints)
    for tt in (-0.7, 0.0, 0.4):
        th = math.acos(tt)
        kinks = sorted({(k * math.pi / 2 + off) % (2 * math.pi) for k in (1, 3) for off in (0.0, th)})
        f = lambda a, th=th: abs(math.cos(a)) * abs(math.cos(a - th))
        ref = 2 * integrate.quad(f, 0, 2 * math.pi, points=kinks, epsabs=1e-15, limit=200)[0] / (2 * math.pi)
        assert abs(float(rf.get_activation("abs").dual(1.0, 1.0, tt)) - ref) < 1e-13


@given(st.floats(0.5, 3.0), st.sampled_from(["leaky-relu:0.3", "abs"]))
@settings(max_examples=10, deadline=None)
def test_homogeneity_of_homogeneous_fims(c, name):
    W = rf.sample_weights(3, 12, seed=4)
    assert np.allclose(rf.fisher_matrix(c * W, activation=name), c * c * rf.fisher_matrix(W, activation=name),
                       rtol=1e-12, atol=1e-15)


@given(st.integers(0, 1000))
@settings(max_examples=8, deadline=None)
def test_fim_symmetric_psd_and_permutation_equivariant(seed):
    W = rf.sample_weights(3, 15, seed=seed, scale="1/d")
    perm = np.random.default_rng(seed).permutation(15)
    J = rf.fisher_matrix(W, activation="softplus")
    assert np.array_equal(J, J.T)
    assert np.linalg.eigvalsh(J).min() > -1e-12 * np.trace(J)
    assert np.allclose(rf.fisher_matrix(W[:, perm], activation="softplus"), J[np.ix_(perm, perm)], rtol=1e-13)


@pytest.mark.parametrize("name", ["softplus", "gelu", "tanh", "erf"])
def test_parseval_and_softplus_structure(name):
    r = np.array([0.05, 0.5, 1.0, 1.5])
    C = hermite_coefficients(name, r, 120)
    m2 = gaussian_second_moment(name, r)
    assert np.allclose((C * C).sum(axis=1), m2, rtol=1e-12)
    if name == "softplus":
        # softplus(z) - z/2 is even: c_1(r) = r/2 (degree-1 block W^T W / 4) and no odd orders >= 3
        assert np.allclose(C[:, 1], r / 2, rtol=1e-13)
        assert np.max(np.abs(C[:, 3::2])) < 1e-15


def test_direct_2d_rule_agrees_at_small_norms():
    # the measured comparison behind the choice of Mehler (see relufim.model.activations): both agree
    # at norms <= 1 for softplus; the direct rule alone degrades at larger norms
    for r in (0.1, 1.0):
        a = mehler_dual("softplus", r, 1.1 * r, 0.9)
        b = gauss_hermite_dual("softplus", r, 1.1 * r, 0.9)
        assert abs(a - b) < 1e-13


def test_large_norms_warn_with_a_bound():
    with pytest.warns(AccuracyWarning, match="off by up to"):
        rf.get_activation("tanh").dual(3.0, 3.0, 0.999)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="known activations: abs, erf, gelu, leaky-relu, relu, softplus, tanh"):
        rf.get_activation("swish")
    with pytest.raises(TypeError, match="callable"):
        rf.get_activation(3)
    with pytest.raises(TypeError):
        rf.fisher_matrix(np.ones((2, 3)), activation=None)
    with pytest.raises(ValueError, match="takes no parameters"):
        rf.get_activation("relu", a=0.1)
    with pytest.raises(ValueError, match="bad parameter"):
        rf.get_activation("leaky-relu:x")
    with pytest.raises(ValueError, match="elementwise"):
        rf.get_activation(lambda z: np.sum(z))
    # divergent Gaussian integrals: exp(z^2) has no Gaussian moments at norm r >= 1/2
    W = rf.sample_weights(2, 5, seed=0, scale="1/d")
    with pytest.raises(ValueError, match="diverge"):
        rf.fisher_matrix(W, activation=lambda z: np.exp(z * z))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J = rf.fisher_matrix(W / 10, activation=lambda z: np.exp(z * z / 8))  # converges: fine
    assert np.all(np.isfinite(J))


def test_leaky_parameter_forms_agree():
    a = rf.get_activation("leaky-relu", a=0.1)
    b = rf.get_activation("leaky_relu:0.1")
    c = leaky_relu(0.1)
    assert a.params == b.params == c.params == {"a": 0.1}
    assert rf.get_activation("leaky-relu").params == {"a": 0.01}
    assert "leaky-relu" in rf.known_activations() and "relu" in rf.known_activations()

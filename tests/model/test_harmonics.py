"""Harmonic analysis on the sphere (relufim.model.harmonics, theory §6–7) against independent oracles.

Oracles: high-precision (mpmath) Funk–Hecke quadrature of the arc-cosine kernel; adaptive
``scipy.integrate.quad``; known multiplicities of spherical harmonics; the sum rules
sum_k N(d,k) mu_k = h(1); the two-point sphere S^0 evaluated by hand (the d = 1 convention).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from relufim.model.harmonics import (
    degree_le2_fraction,
    funk_hecke_coefficients,
    funk_hecke_quadrature,
    harmonic_multiplicity,
    low_degree_polynomial,
    monomial_funk_hecke,
    relu_a0,
    relu_family_funk_hecke_coefficients,
    relu_funk_hecke_coefficients,
    zonal_polynomial,
    zonal_power_coefficients,
)
from relufim.model.kernels import arccos_kernel, relu_family_kernel
from tests.oracles import kappa_mp, mu_mpmath


@pytest.mark.parametrize("d,k", [(2, 0), (2, 8), (2, 50), (3, 1), (3, 2), (5, 4), (10, 50), (200, 20),
                                 (1000, 2), (1000, 50)])
def test_relu_closed_forms_match_high_precision_quadrature(d, k):
    mu = relu_funk_hecke_coefficients(d, k)[k]
    # the integrand's magnitude is ~mu_0 while mu_k can be 1e-150 of it: carry enough digits
    # to resolve the cancellation, plus 25 more; the closed forms claim 1e-12 relative accuracy
    mu0 = relu_funk_hecke_coefficients(d, 0)[0]
    dps = 25 + int(max(0.0, -math.log10(mu / mu0)))
    ref = mu_mpmath(d, k, kappa_mp, dps)
    assert abs(mu - float(ref)) <= 1e-12 * float(ref)


@pytest.mark.parametrize("d,k", [(3, 3), (10, 5), (50, 7)])
def test_odd_degrees_above_one_vanish(d, k):
    assert relu_funk_hecke_coefficients(d, k)[k] == 0.0
    ref = mu_mpmath(d, k, kappa_mp, 30)
    mu0 = relu_funk_hecke_coefficients(d, 0)[0]
    assert abs(float(ref)) < 1e-25 * mu0  # zero up to the 30-digit quadrature's resolution




def test_multiplicities_against_known_formulas():
    for k in range(12):
        assert harmonic_multiplicity(2, k) == (1 if k == 0 else 2)
        assert harmonic_multiplicity(3, k) == 2 * k + 1
        assert harmonic_multiplicity(4, k) == (k + 1) ** 2
    # degree k harmonics + r^2 x degree k-2 polynomials = all degree-k polynomials
    for d in (5, 10, 37):
        for k in range(2, 9):
            assert harmonic_multiplicity(d, k) + math.comb(k - 2 + d - 1, d - 1) == math.comb(k + d - 1, d - 1)


@given(st.integers(2, 60), st.integers(0, 14))
@settings(max_examples=40, deadline=None)
def test_monomial_coefficients_against_quadrature_and_sum_rule(d, n):
    # sum_k N(d,k) b_{n,k} = 1 (t^n at t = 1) and b against Gauss–Legendre quadrature in the angle
    b = np.array([monomial_funk_hecke(d, n, k) for k in range(n + 1)])
    total = sum(harmonic_multiplicity(d, k) * b[k] for k in range(n + 1))
    assert abs(total - 1.0) < 1e-12
    q = funk_hecke_coefficients(lambda t: t**n, d, n)
    assert np.allclose(q, b, rtol=1e-9, atol=1e-14)



def _mu_quad(h, d, k):
    c = math.gamma(d / 2) / (math.sqrt(math.pi) * math.gamma((d - 1) / 2))
    f = lambda t: h(t) * zonal_polynomial(k, d, np.array(t)) * (1 - t * t) ** ((d - 3) / 2)
    val, _ = integrate.quad(f, -1, 1, limit=200)
    return c * val


@pytest.mark.parametrize("d", [2, 3, 5, 8])
def test_relu_mu_closed_forms_against_quadrature(d):
    mu = relu_funk_hecke_coefficients(d, 6)
    for k in range(7):
        assert mu[k] == pytest.approx(_mu_quad(lambda t: float(arccos_kernel(t)), d, k), abs=1e-9)
    # sum_k N(d,k) mu_k = kappa(1) = 1/2 (the tail beyond degree 6 is tiny but positive)
    tot = sum(harmonic_multiplicity(d, k) * m for k, m in enumerate(relu_funk_hecke_coefficients(d, 400)))
    assert tot == pytest.approx(0.5, abs=2e-3)


def test_degree_le2_fraction_limits():
    F = [degree_le2_fraction(d) for d in range(1, 60)]
    assert F[0] == pytest.approx(1.0, abs=1e-14)  # d = 1: ReLU = |x|/2 + x/2 exactly
    assert all(a > b for a, b in zip(F, F[1:]))
    assert F[-1] > 0.5 + 3 / (2 * math.pi)
    assert degree_le2_fraction(10**5) == pytest.approx(0.5 + 3 / (2 * math.pi), abs=1e-4)


@pytest.mark.parametrize("d", [3, 6])
def test_kernel_minus_low_degree_polynomial_has_no_low_degrees(d):
    """kappa(t) - low_degree_polynomial(d, 3)(t) is the kernel of J_{>=4}: degrees 0-2 vanish, degree 4 stays."""
    c = low_degree_polynomial(d, 3)
    k4 = lambda t: float(arccos_kernel(t)) - float(np.polyval(c[::-1], t))
    mu = relu_funk_hecke_coefficients(d, 4)
    for k in range(3):
        assert abs(_mu_quad(k4, d, k)) < 1e-9
    assert _mu_quad(k4, d, 4) == pytest.approx(mu[4], abs=1e-9)


def test_funk_hecke_quadrature_against_scipy_quad():
    d = 4
    h = lambda t: t * (np.pi - np.arccos(np.clip(t, -1, 1))) / (2 * np.pi)
    m = funk_hecke_coefficients(h, d, 5)
    for k in range(6):
        assert m[k] == pytest.approx(_mu_quad(h, d, k), abs=1e-10)
    assert np.allclose(funk_hecke_coefficients(arccos_kernel, d, 6), relu_funk_hecke_coefficients(d, 6), atol=1e-13)


@pytest.mark.parametrize("d,kmax", [(2, 3), (3, 8), (10, 12), (60, 6)])
def test_public_quadrature_rule_against_monomial_closed_forms(d, kmax):
    """funk_hecke_quadrature is the rule funk_hecke_coefficients applies (bit for bit); its rows are the zonal
    polynomials and it integrates t^n P_k as the closed forms b_{n,k} say (theory §6.5). Tolerance: |t^n P_k| <= 1
    and the weights carry c_d from lgamma/exp, whose relative error (measured: sum of the weights 1 +- 7e-14)
    bounds the error; 1e-12 leaves a factor 15."""
    t, w, P = funk_hecke_quadrature(d, kmax)
    assert P.shape == (kmax + 1, t.size) and w.shape == t.shape
    assert not (t.flags.writeable or w.flags.writeable or P.flags.writeable)  # cached: shared by every caller
    h = lambda s: np.exp(2.0 * s)
    assert np.array_equal(P @ (w * h(t)), funk_hecke_coefficients(h, d, kmax))
    for k in range(kmax + 1):
        assert np.allclose(P[k], zonal_polynomial(k, d, t), rtol=0, atol=1e-14)
    for n in range(kmax + 1):
        b = [monomial_funk_hecke(d, n, k) for k in range(kmax + 1)]
        assert np.allclose(P @ (w * t**n), b, rtol=0, atol=1e-12)


def test_public_quadrature_rule_refuses_d1_and_bad_degrees():
    with pytest.raises(ValueError, match=r"d must be >= 2, got d = 1"):
        funk_hecke_quadrature(1, 3)
    with pytest.raises(ValueError, match="kmax must be <= 1000"):
        funk_hecke_quadrature(3, 1001)
    with pytest.raises(TypeError, match="d must be an integer"):
        funk_hecke_quadrature(2.5, 3)


# ----------------------------------------------------------------------------- the d = 1 convention

def test_d1_convention_in_every_function():
    """S^0 = {-1, +1}: only degrees 0 (even) and 1 (odd); checked by hand on the two points."""
    assert [harmonic_multiplicity(1, k) for k in range(5)] == [1, 1, 0, 0, 0]
    t = np.array([1.0, -1.0])
    assert np.array_equal(zonal_polynomial(0, 1, t), [1.0, 1.0])
    assert np.array_equal(zonal_polynomial(1, 1, t), t)
    assert np.array_equal(zonal_polynomial(2, 1, t), [0.0, 0.0])
    h = lambda s: np.exp(np.asarray(s))  # any function on the two points
    mu = funk_hecke_coefficients(h, 1, 3)
    assert np.allclose(mu, [(math.e + 1 / math.e) / 2, (math.e - 1 / math.e) / 2, 0, 0], rtol=1e-15)
    # ReLU on S^0: kappa(1) = 1/2, kappa(-1) = 0, so mu_0 = mu_1 = 1/4 and F(1) = 1 (relu(x) = |x|/2 + x/2)
    assert np.allclose(relu_funk_hecke_coefficients(1, 4), [0.25, 0.25, 0, 0, 0], rtol=1e-15)
    assert np.allclose(funk_hecke_coefficients(arccos_kernel, 1, 4), relu_funk_hecke_coefficients(1, 4), atol=1e-16)
    assert np.allclose([monomial_funk_hecke(1, n, k) for n in (2, 3) for k in range(3)], [1, 0, 0, 0, 1, 0],
                       rtol=1e-14, atol=0)
    assert relu_a0(1) ** 2 * 1 == pytest.approx(0.25, rel=1e-15)


@pytest.mark.parametrize("d", [1, 2, 3, 7, 40])
def test_relu_a0_gives_mu0(d):
    assert d * relu_a0(d) ** 2 == pytest.approx(relu_funk_hecke_coefficients(d, 0)[0], rel=1e-14)


@pytest.mark.parametrize("d", [2, 3, 5, 12])
def test_zonal_power_coefficients_against_the_recurrence(d):
    t = np.linspace(-1, 1, 41)
    for k in range(8):
        c = zonal_power_coefficients(k, d)
        assert np.allclose(np.polyval(c[::-1], t), zonal_polynomial(k, d, t), atol=1e-12)


@pytest.mark.parametrize("a", [0.0, 0.3, -1.0, 1.0, -0.5])
@pytest.mark.parametrize("d", [2, 5])
def test_relu_family_closed_form_against_quadrature(a, d):
    """mu_k(k_a) = (1 - a)^2 mu_k + a [k = 1] / d, against quadrature of (1 + a^2) kappa(t) - 2 a kappa(-t)."""
    h = lambda t: (1 + a * a) * arccos_kernel(t) - 2 * a * arccos_kernel(-np.asarray(t))
    t = np.linspace(-1, 1, 101)
    assert np.allclose(relu_family_kernel(t, a), h(t), atol=1e-15)
    # quadrature of h is accurate to ~1e-16 max|h| per node; (1 + a^2) kappa - 2 a kappa(-t) cancels to O(1) values
    assert np.allclose(relu_family_funk_hecke_coefficients(d, 6, a), funk_hecke_coefficients(h, d, 6), atol=1e-13)

"""The arc-cosine kernel against high-precision arithmetic (mpmath) and its own Taylor series."""

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relufim.model.kernels import (
    arccos_kernel,
    arccos_kernel_from_angle_complement,
    arccos_kernel_series_coefficients,
)

mpmath.mp.dps = 50


def kappa_mp(t):
    """kappa(t) with 50 significant digits (independent oracle)."""
    t = mpmath.mpf(t)
    return (mpmath.sqrt(1 - t * t) + (mpmath.pi - mpmath.acos(t)) * t) / (2 * mpmath.pi)


def kappa_delta_mp(delta):
    delta = mpmath.mpf(delta)
    return (mpmath.sin(delta) - delta * mpmath.cos(delta)) / (2 * mpmath.pi)


@pytest.mark.parametrize("t", [-1.0, -0.999999, -0.7, -0.2, 0.0, 0.3, 0.9, 0.999999, 1.0])
def test_kappa_matches_high_precision(t):
    # absolute error: a few ulps of kappa(1) = 1/2 (the formula is well conditioned in absolute terms)
    assert abs(float(arccos_kernel(t)) - float(kappa_mp(t))) < 4e-16


@pytest.mark.parametrize("delta", [1e-8, 1e-5, 1e-3, 0.1, 0.49, 0.5, 0.51, 1.5, 3.0, math.pi])
def test_complement_form_relative_accuracy(delta):
    # near t = -1 the value is ~delta^3/(6 pi); the series keeps full relative accuracy
    exact = float(kappa_delta_mp(delta))
    assert abs(float(arccos_kernel_from_angle_complement(delta)) / exact - 1) < 1e-14


def test_series_coefficients_match_taylor_expansion():
    # mpmath.taylor differentiates kappa numerically at high precision: independent of the closed form
    coeffs = arccos_kernel_series_coefficients(12)
    taylor = mpmath.taylor(kappa_mp, 0, 11)
    for k in range(12):
        assert abs(coeffs[k] - float(taylor[k])) < 1e-14, k
    assert np.all(coeffs[3::2] == 0)  # no odd powers above 1


def test_series_sums_to_kappa_inside_the_interval():
    a = arccos_kernel_series_coefficients(400)
    for t in (-0.6, 0.2, 0.8):
        # tail after 400 terms at |t| <= 0.8 is below 0.8^400 ~ 1e-39
        assert abs(np.polyval(a[::-1], t) - float(kappa_mp(t))) < 1e-15


@settings(max_examples=200, deadline=None)
@given(st.floats(-1, 1), st.floats(-1, 1))
def test_kappa_is_nonnegative_and_increasing(t1, t2):
    k1, k2 = float(arccos_kernel(t1)), float(arccos_kernel(t2))
    assert k1 >= 0 and k2 >= 0
    if t1 < t2:
        assert k1 <= k2 + 1e-16  # kappa'(t) = (pi - arccos t)/(2 pi) >= 0


def test_clipping_outside_the_interval():
    assert float(arccos_kernel(1 + 1e-12)) == 0.5
    assert float(arccos_kernel(-1 - 1e-12)) == 0.0


@pytest.mark.parametrize("dtype, tol", [(np.float64, 4e-15), (np.float32, 2e-6)])
def test_compiled_kernel_equals_the_numpy_formula(monkeypatch, dtype, tol):
    """The fused compiled pass and the NumPy passes evaluate one formula: same values, same 1 - t."""
    from relufim.model import kernels

    if not kernels.compiled_kernel_available():
        pytest.skip("the compiled kernel was not built on this machine (no C compiler): nothing to compare")
    t = np.linspace(-1.3, 1.3, 30000).reshape(3, -1).astype(dtype)
    fused, fused_s2 = t.copy(), np.empty_like(t)
    kernels.two_pi_kappa_inplace(fused, np.empty_like(t), fused_s2)
    monkeypatch.setattr(kernels, "_ckernel", None)
    numpy_, numpy_s2 = t.copy(), np.empty_like(t)
    kernels.two_pi_kappa_inplace(numpy_, np.empty_like(t), numpy_s2)
    # both clip to [-1, 1]; the values are at most pi: a few ulps of pi apart (libmvec's acos is within 4 ulp)
    assert np.abs(fused - numpy_).max() <= tol
    assert np.array_equal(fused_s2, numpy_s2)
    # a strided tile (a slice of a larger buffer), as the engine passes it
    big = np.tile(t[:, :500], (1, 2))
    view = big[:, 100:600]
    expect = view.copy()
    kernels.two_pi_kappa_inplace(expect, np.empty_like(expect), np.empty_like(expect))
    monkeypatch.undo()
    kernels.two_pi_kappa_inplace(view, np.empty_like(view), np.empty_like(view), keep_one_minus_t=False)
    assert np.abs(view - expect).max() <= tol

"""Networks with several random hidden layers (relufim.model.network): conventions, draws, validation, Σ.

Oracles: today's draw (relufim.sample_weights) bit for bit; the closed-form variances of each convention;
the exact expectation over the weights of tr J under the default convention (d/2 at any width, by the
layer recursion of E||h_l||^2), against a Monte Carlo over seeds with its standard error; eigendecompositions
for the covariance root.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import relufim as rf
from relufim.fim.deep import deep_fisher
from relufim.model.network import (
    check_covariance,
    check_layer_weights,
    check_widths,
    covariance_root,
    layer_variances,
    network,
    whitened_weights,
)


@pytest.mark.parametrize("d,p,seed", [(10, 1000, 0), (3, 50, 7), (1, 5, 123), (20, 21, None)])
def test_one_layer_default_is_todays_draw_bit_for_bit(d, p, seed):
    net = network(d, p)
    assert net.depth == 1 and net.variances == (1.0 / p,) and net.scale == "1/p"
    if seed is None:
        return  # no seed: fresh entropy, nothing to compare
    [W] = net.sample(seed)
    assert np.array_equal(W, rf.sample_weights(d, p, seed=seed))


def test_conventions_closed_forms():
    d, widths = 10, (2000, 1500, 1000)
    assert layer_variances(d, widths) == (2 / 10, 2 / 2000, 10 / (1500 * 1000))
    assert layer_variances(d, widths, "he") == (2 / 10, 2 / 2000, 2 / 1500)
    assert layer_variances(d, widths, "1/d") == (1 / 10, 1 / 2000, 1 / 1500)
    assert layer_variances(d, widths, "1/width") == (1 / 2000, 1 / 1500, 1 / 1000)
    assert layer_variances(d, widths, 0.5) == (0.5,) * 3
    assert layer_variances(d, widths, [1.0, 2.0, 3.0]) == (1.0, 2.0, 3.0)
    net = network(d, widths)
    # gains: s_1 and s_l p_(l-1); under the default their product times p_L is 2^(L-1), so that with ReLU's
    # factor 1/2 per layer tr J -> (1/2)^L 2^(L-1) d = d/2
    assert net.gains == pytest.approx((0.2, 2.0, 10 / 1000))
    assert np.prod(net.gains) * widths[-1] == pytest.approx(2 ** (len(widths) - 1))


def test_default_convention_keeps_the_papers_trace_at_every_depth():
    """E_W tr J = E_W E_x ||h_L||^2 = d/2 exactly at any width (ReLU halves, He doubles, the last layer rescales).

    Oracle: that exact expectation over the weights; Monte Carlo over 12 networks, each J from 4000 inputs;
    tolerance 4 standard errors of the mean over seeds (the spread includes the input sampling).
    """
    d = 4
    traces = []
    for seed in range(12):
        Ws = network(d, [300, 200, 100]).sample(seed)
        J = deep_fisher(Ws, n=4000, seed=1000 + seed)
        traces.append(np.trace(J))
    traces = np.array(traces)
    se = traces.std(ddof=1) / np.sqrt(traces.size)
    assert abs(traces.mean() - d / 2) < 4 * se


def test_layer_shapes_and_seeds():
    net = network(5, [40, 30, 20])
    Ws = net.sample(3)
    assert [W.shape for W in Ws] == [(5, 40), (40, 30), (30, 20)] == net.shapes
    assert all(np.array_equal(a, b) for a, b in zip(Ws, net.sample(3)))
    assert not np.array_equal(Ws[0], net.sample(4)[0])
    # entry variances as declared: chi-square bound on the sample variance of 1200+ entries (5 sd of its estimate)
    for W, s in zip(Ws, net.variances):
        v = W.var()
        assert abs(v / s - 1) < 5 * np.sqrt(2 / W.size)
    assert net.to_dict()["widths"] == [40, 30, 20] and net.to_dict()["activation"] == "relu"


@pytest.mark.parametrize("widths,exc,match", [
    ([], ValueError, "at least one hidden layer"),
    ((), ValueError, "depth >= 1"),
    ([100, 0], ValueError, "positive width"),
    ([100, -5], ValueError, "positive width"),
    ([100, 2.5], TypeError, "positive integer"),
    ([True], TypeError, "positive integer"),
    ("100,200", TypeError, "sequence of positive integers"),
    (None, TypeError, "sequence of positive integers"),
])
def test_bad_widths(widths, exc, match):
    with pytest.raises(exc, match=match):
        network(10, widths)


def test_widths_accept_int_and_arrays():
    assert check_widths(np.array([3, 4])) == (3, 4) and check_widths(7) == (7,) and check_widths([5.0]) == (5,)


@pytest.mark.parametrize("scale,exc,match", [
    ("unit", ValueError, "not an entry variance"),
    ("1/q", ValueError, "scale must be one of"),
    (-1.0, ValueError, "> 0"),
    ([1.0, 2.0], ValueError, "one entry variance per layer"),
    ([1.0, -2.0, 1.0], ValueError, "layer 2"),
    (object(), TypeError, "scale must be"),
])
def test_bad_scales(scale, exc, match):
    with pytest.raises(exc, match=match):
        network(4, [10, 20, 30], scale=scale)


def test_bad_d_and_activation():
    with pytest.raises(ValueError, match="d must be >= 1"):
        network(0, [10])
    with pytest.raises(ValueError, match="unknown activation"):
        network(3, [10], activation="sigmoidal")


def test_check_layer_weights():
    a, b = np.ones((3, 5)), np.ones((5, 2))
    assert [W.shape for W in check_layer_weights((a, b), d=3)] == [(3, 5), (5, 2)]
    assert check_layer_weights([np.ones((6, 2), dtype=int)])[0].dtype == np.float64  # inner layers may narrow
    with pytest.raises(TypeError, match=r"for one hidden layer pass \[W\]"):
        check_layer_weights(a)
    with pytest.raises(TypeError, match="list of layer weights"):
        check_layer_weights({"W": a})
    with pytest.raises(ValueError, match="empty"):
        check_layer_weights([])
    with pytest.raises(ValueError, match="width p_1 = 5 of the layer below"):
        check_layer_weights([a, np.ones((4, 2))])
    with pytest.raises(ValueError, match="input dimension d = 4"):
        check_layer_weights([a], d=4)
    with pytest.raises(ValueError, match="2-D"):
        check_layer_weights([np.ones(3)])
    with pytest.raises(ValueError, match="non-finite"):
        check_layer_weights([np.array([[1.0, np.nan]])])
    with pytest.raises(TypeError, match="real 2-D array"):
        check_layer_weights([a, "b"])


def test_check_covariance_errors():
    with pytest.raises(ValueError, match=r"shape \(d, d\) = \(3, 3\)"):
        check_covariance(np.eye(2), 3)
    with pytest.raises(ValueError, match="np.diag"):
        check_covariance(np.ones(3), 3)
    with pytest.raises(ValueError, match="symmetric"):
        check_covariance(np.array([[1.0, 0.5], [0.0, 1.0]]), 2)
    with pytest.raises(ValueError, match="positive definite"):
        check_covariance(np.array([[1.0, 2.0], [2.0, 1.0]]), 2)  # eigenvalues 3, -1
    with pytest.raises(ValueError, match="positive definite"):
        check_covariance(np.array([[1.0, 1.0], [1.0, 1.0]]), 2)  # singular
    with pytest.raises(ValueError, match="non-finite"):
        check_covariance(np.array([[1.0, np.inf], [np.inf, 1.0]]), 2)
    with pytest.raises(TypeError, match="covariance matrix"):
        check_covariance("eye", 2)
    with pytest.raises(ValueError, match="zero"):
        check_covariance(np.zeros((2, 2)), 2)


def test_check_covariance_checks_the_shape_before_finiteness():
    """A wrong shape is named (with the fix) even when the entries are not finite; the generic hints of
    ``check_square_matrix`` (hidden weights, eigenvalues) do not apply to a covariance."""
    with pytest.raises(ValueError, match=r"shape \(d, d\) = \(2, 2\) to match the input dimension, got shape "
                                         r"\(3, 3\)\.$"):
        check_covariance(np.full((3, 3), np.nan), 2)
    with pytest.raises(ValueError, match=r"got shape \(2,\) \(a vector: .*np\.diag\(v\)\)\.$"):
        check_covariance([1.0, np.inf], 2)
    with pytest.raises(TypeError, match="real numbers"):
        check_covariance(np.ones((3, 2), dtype=complex), 2)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(0, 10_000))
def test_covariance_root_squares_back(d, seed):
    A = np.random.default_rng(seed).standard_normal((d, d + 2))
    S = A @ A.T / (d + 2) + 0.1 * np.eye(d)
    R = covariance_root(S, d)
    assert np.array_equal(R, R.T)
    assert np.allclose(R @ R, S, rtol=0, atol=1e-12 * np.abs(S).max())
    assert np.all(np.linalg.eigvalsh(R) > 0)


def test_whitened_weights_is_sigma_root_times_first_layer():
    Ws = network(3, [20, 10]).sample(0)
    S = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]])
    out = whitened_weights(Ws, S)
    assert np.allclose(out[0], covariance_root(S, 3) @ Ws[0]) and out[1] is not None
    assert np.array_equal(out[1], Ws[1])

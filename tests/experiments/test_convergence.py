"""Finite-p convergence experiment, its rate rule (a rate carries its standard error, or none is claimed), and
the softplus/ReLU summary. The ``relufim convergence`` command is tested in tests/cli/test_commands.py and its
table in tests/report/test_tables.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import relufim as rf
from relufim.experiments.activations import softplus_vs_relu_summary
from relufim.experiments.convergence import ClusterConvergence, convergence, fit_rate, rate_verdict


def test_fit_rate_recovers_power_laws():
    p = np.array([100.0, 300, 1000, 3000])
    b, se = fit_rate(p, 3.0 * p**-0.5)
    assert abs(b + 0.5) < 1e-12 and se < 1e-10
    rng = np.random.default_rng(0)
    noisy = 2.0 * p**-1.0 * np.exp(0.1 * rng.standard_normal(p.size))
    b, se = fit_rate(p, -noisy)  # the sign of the error does not matter
    assert se > 0 and abs(b + 1.0) < 5 * se + 0.2
    assert fit_rate([100], [0.1]) == (None, None)
    b, se = fit_rate([100, 1000], [0.1, 0.01])
    assert abs(b + 1) < 1e-12 and se is None


def test_convergence_values_match_an_independent_dense_computation():
    d, ps = 2, [40, 80, 160]
    calls = []
    res = convergence(d=d, p=ps, seeds=2, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (6, 6)
    assert res.values.shape == (3, 2, 4) and res.sizes_match.shape == (3, 2)
    # oracle: full dense spectrum of the exact FIM for one (p, seed), split by the predicted sizes 1, 2, 2
    W = rf.sample_weights(d, 80, seed=1)
    J = rf.fisher_matrix(W)
    e = np.linalg.eigvalsh(J)[::-1]
    expected = [e[0], e[1:3].mean(), e[3:5].mean(), e[:5].sum() / np.trace(J)]
    assert np.allclose(res.values[1, 1], expected, rtol=1e-9)
    lim = rf.limit_cluster_values(d)
    for s in res.statistics:
        assert all(v == lim[s.name] for v in s.limit)
        assert np.allclose(s.mean, res.values[:, :, ["cluster1", "cluster2", "cluster3", "top_fraction"].index(s.name)]
                           .mean(axis=1))
        assert s.rate is None or np.isfinite(s.rate)
        assert (s.rate is None) == (s.rate_stderr is None) == (s.rate_status != "fitted")
        assert np.allclose(s.stderr, np.asarray(s.std) / math.sqrt(2))
    out = json.loads(json.dumps(res.to_dict()))
    assert set(out["statistics"]) == {"cluster1", "cluster2", "cluster3", "top_fraction"}
    for name, st in out["statistics"].items():
        assert st["rate_text"] == res.statistic(name).rate_text and st["n_seeds"] == 2


def test_convergence_bad_input():
    with pytest.raises(ValueError, match="at least d\\(d\\+3\\)/2"):
        convergence(d=3, p=[5], seeds=1)
    with pytest.raises(ValueError, match="seeds"):
        convergence(d=3, p=[50], seeds=0)
    with pytest.raises(ValueError, match="d must be >= 2"):
        convergence(d=1, p=[50], seeds=1)
    with pytest.raises(ValueError, match="known activations"):
        convergence(d=2, p=[50], seeds=1, activation="bogus")


def test_softplus_vs_relu_summary():
    s = softplus_vs_relu_summary(d=3, p=300, seed=0)
    for name in ("relu", "softplus"):
        assert s[name]["cluster_sizes"] == [1, 3, 5] and s[name]["sizes_match"]
        assert s[name]["limit"] is not None
    # the 2022 paper: softplus concentrates the trace more than ReLU (theory §8)
    assert s["softplus"]["top_fraction"] > s["relu"]["top_fraction"] > 0.977
    # same degree-1 block W^T W / 4 for both: the second clusters agree to a few percent
    assert abs(s["softplus"]["cluster_means"][1] / s["relu"]["cluster_means"][1] - 1) < 0.05


# ----------------------------------------------------------------------------- the rate rule

def _stat(p, mean, limit=1.0):
    """A statistic from values[i, s] (width i, seed s)."""
    return ClusterConvergence.from_values("cluster1", p, [limit] * len(p), np.asarray(mean, dtype=float))


def test_rate_is_fitted_with_its_standard_error_when_every_width_is_beyond_noise():
    rng = np.random.default_rng(1)
    p = np.array([250, 500, 1000, 2000])
    true = 0.5 * p ** -1.0  # mean - limit ~ p^-1, far above the seed noise
    values = 1.0 + true[:, None] + 1e-6 * rng.standard_normal((p.size, 4))
    s = _stat(p, values)
    assert s.rate_status == "fitted" and all(s.significant)
    assert s.rate_stderr is not None and s.rate_stderr >= 0
    assert abs(s.rate + 1.0) < 5 * s.rate_stderr + 1e-3
    # the same numbers as an independent least-squares fit on the means
    b, se = fit_rate(p, np.asarray(s.mean) - 1.0)
    assert (s.rate, s.rate_stderr) == (b, se)
    text = s.rate_text
    assert f"b = {s.rate:.2f} ± {s.rate_stderr:.2f}" in text and "(4 widths, 4 seeds)" in text


def test_no_rate_when_every_difference_is_within_noise():
    rng = np.random.default_rng(2)
    p = [250, 500, 1000]
    values = 1.0 + 0.01 * rng.standard_normal((3, 5))
    values -= values.mean(axis=1, keepdims=True) - 1.0 - 1e-5 * np.array([1, -1, 1])[:, None]  # |mean - 1| tiny
    s = _stat(p, values)
    assert s.rate_status == "within-noise" and not any(s.significant)
    assert s.rate is None and s.rate_stderr is None
    assert s.rate_text == "mean - limit within noise at every width (no rate)"
    assert "p^b" not in s.rate_text


@pytest.mark.parametrize("p, values, status, words", [
    # two widths: a slope, but no standard error
    ([250, 500], [[1.1, 1.1001], [1.05, 1.0501]], "too-few-widths", "at least 3 widths"),
    # one seed: no error bar to compare with
    ([250, 500, 1000], [[1.1], [1.05], [1.02]], "one-seed", "one seed"),
    # beyond noise at two widths, within at the third
    ([250, 500, 1000], [[1.1, 1.1001], [1.05, 1.0501], [1.0, 1.02]], "mixed", "within noise at p = 1000"),
    # beyond noise everywhere, but the difference changes sign
    ([250, 500, 1000], [[1.1, 1.1001], [0.95, 0.9501], [1.02, 1.0201]], "sign-change", "changes sign"),
])
def test_no_rate_without_what_a_rate_needs(p, values, status, words):
    s = _stat(p, values)
    assert s.rate_status == status and s.rate is None and s.rate_stderr is None
    assert s.rate_text.startswith("no rate:") and words in s.rate_text
    assert s.to_dict()["rate"] is None


def test_rate_verdict_and_an_older_record_without_the_rule():
    assert rate_verdict([1, 2, 3], [0.5, 0.25, 0.17], [math.nan] * 3) == ("one-seed", None, None)
    # a record written before the rule: its fitted rate -3.02 (three noisy points, no error bar) is not shown
    old = {"name": "cluster1", "p": [250, 500, 1000], "limit": [1.673] * 3, "mean": [1.6937, 1.6792, 1.6733],
           "std": [0.0182, 0.0165, 0.0022], "rate": -3.02, "rate_stderr": None}
    s = ClusterConvergence.from_dict(old, n_seeds=2)
    assert s.rate is None and s.rate_status == "mixed" and "-3.02" not in s.rate_text
    again = ClusterConvergence.from_dict(s.to_dict())
    assert again == s

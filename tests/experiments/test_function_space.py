"""The function-space section of ``relufim reproduce`` (the 2025 results), end to end at the quick size: data only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from relufim.experiments.function_space import circle_forms, dynamics_curves, great_circle, reproduce_section
from relufim.model.weights import sample_weights
from relufim.theory.dynamics import gradient_descent
from relufim.theory.functions import function_forms


@pytest.mark.slow
def test_reproduce_section_quick(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []
    sec = reproduce_section(quick=True, progress=lambda done, total: calls.append((done, total)))
    assert sec["name"] == "function_space" and set(sec) == {"name", "summary", "claims"}
    json.dumps(sec["summary"], allow_nan=False)  # JSON-ready, no NaN
    assert len(sec["claims"]) == 6 and all(c["holds"] for c in sec["claims"]), [c["measured"] for c in sec["claims"]]
    assert not list(tmp_path.iterdir())  # it computes; it writes nothing (the report draws the figures)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]  # the keyword every section of the reproduce run takes
    s = sec["summary"]
    # what the report's figures need is in the data
    circle = s["function_forms"]["circle"]
    assert len(circle["theta"]) == len(circle["groups"][0]["values"])
    assert {"times", "errors", "predicted", "predicted_flow"} <= set(s["gradient_descent"]["curves"])
    assert s["approximation"]["curve"]["limit_curve"]["d"][-1] == max(s["approximation"]["curve"]["d"])


def test_circle_forms_are_function_forms_on_the_circle():
    W = sample_weights(3, 300, seed=4)
    data = circle_forms(W, show=2, m=9)
    theta, x = great_circle(3, 9)
    ff = function_forms(W, x=x, clusters=False)
    assert np.allclose(data["theta"], theta, rtol=1e-5)
    for g, ref in zip(data["groups"], ff.groups):
        k = min(2, len(ref.labels))
        assert g["name"] == ref.name and g["labels"] == list(ref.labels[:k])
        np.testing.assert_allclose(g["values"], ref.values[:, :k], rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(g["predicted"], ref.predicted[:, :k], rtol=1e-5, atol=1e-12)


def test_dynamics_curves_sample_the_run_on_a_log_grid():
    gd = gradient_descent(sample_weights(3, 200, seed=0), steps=50, seed=0)
    full = dynamics_curves(gd, max_points=100)
    assert len(full["times"]) == 50 and np.allclose(full["errors"], gd.errors[1:], rtol=1e-5)
    thin = dynamics_curves(gd, max_points=10)
    assert 5 <= len(thin["times"]) <= 10 and thin["times"][-1] == pytest.approx(gd.times[-1])
    assert thin["initial_errors"] == gd.errors[0].tolist() and thin["cluster_sizes"] == [1, 3, 5]

"""Finite-p convergence experiment, the softplus/ReLU summary and ``relufim convergence``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import relufim as rf
from relufim.cli import main
from relufim.experiments.activations import softplus_vs_relu_summary
from relufim.experiments.convergence import convergence, fit_rate


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
    out = json.loads(json.dumps(res.to_dict()))
    assert set(out["statistics"]) == {"cluster1", "cluster2", "cluster3", "top_fraction"}
    assert "fitted rate" in res.format_table()


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
    # the 2022 paper: softplus concentrates the trace more than ReLU (DESIGN §7)
    assert s["softplus"]["top_fraction"] > s["relu"]["top_fraction"] > 0.977
    # same degree-1 block W^T W / 4 for both: the second clusters agree to a few percent
    assert abs(s["softplus"]["cluster_means"][1] / s["relu"]["cluster_means"][1] - 1) < 0.05


def test_cli_convergence_writes_figures_and_json(tmp_path):
    runner = CliRunner()
    out = tmp_path / "conv"
    r = runner.invoke(main, ["convergence", "--d", "2", "--p", "40,80", "--seeds", "2", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["d"] == 2 and set(data["statistics"]) >= {"cluster1", "top_fraction"}
    for name in ("convergence.png", "trace_share.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "convergence.json").read_text())["p"] == [40, 80]
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temporaries
    r = runner.invoke(main, ["convergence", "--d", "2", "--p", "40", "--seeds", "1", "--quiet"])
    assert r.exit_code == 0 and "cluster1" in r.stdout
    for args in (["convergence", "--d", "3", "--p", "5"], ["convergence", "--p", "x,y"],
                 ["convergence", "--d", "2", "--p", "40", "--activation", "nope"]):
        r = runner.invoke(main, args)
        assert r.exit_code == 2 and "relufim: error:" in r.stderr and "Traceback" not in r.output

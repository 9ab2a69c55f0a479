"""The MDL experiments (theory §16): the risk curve, R_n against the width, the reproduce section, the tutorial.

Oracles: the library's own pieces recomputed independently (a code designed afresh and its index of resolvability;
estimator_risk; mixture_redundancy over dense eigenvalues), the values quoted in theory §16.7, and the bound itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from relufim.experiments.mdl import mdl_risk_curve, mdl_risk_grid, resolvability_vs_width, ridge_penalty
from relufim.experiments.mdl_section import NAME, SPREAD_CRITERION, _claims, reproduce_section
from relufim.model.weights import sample_weights
from relufim.spectrum.solve import spectrum
from relufim.theory.dynamics import default_target
from relufim.theory.mdl import index_of_resolvability, kl_divergence, two_stage_code
from relufim.theory.risk import estimator_risk, mixture_redundancy

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial_mdl.md"


@pytest.fixture(scope="module")
def curve():
    calls = []
    res = mdl_risk_curve(2, 40, (10, 100, 1000), reps=12, compare_reps=3, progress=lambda i, t: calls.append((i, t)))
    return res, calls


def test_risk_curve_rows_against_independent_recomputation(curve):
    res, calls = curve
    c = res["config"]
    assert c["d"] == 2 and c["p"] == 40 and c["compare"] and c["n_values"] == [10, 100, 1000]
    assert calls[-1] == (36, 36) and [i for i, _ in calls] == list(range(1, 37))  # one call per data set
    W = sample_weights(2, 40, seed=0)
    vs = default_target(W)
    lam_all = spectrum(W, k="all", vectors=False).eigenvalues
    for j, row in enumerate(res["rows"]):
        n = row["n"]
        for key in ("n", "bound", "risk_mean", "risk_se", "kl_mean", "coded_directions", "code_length_nats",
                    "kraft_sum"):
            assert key in row
        code = two_stage_code(W, n, radius=2.0)  # designed afresh, its own eigensolve
        r = index_of_resolvability(code, vs)
        assert row["bound"] == pytest.approx(r.value, rel=1e-9)
        assert row["coded_directions"] == code.coded and row["kraft_sum"] == 1.0
        assert row["code_length_nats"] == pytest.approx(float(np.sum(np.log(2 * code.box + 1))), rel=1e-12)
        # the theorem, on every row: mean risk <= R_n up to 3 standard errors
        assert row["risk_mean"] <= row["bound"] + 3 * row["risk_se"]
        assert row["methods"] == {"exact": 12, "fast": 0}
        # the comparison is estimator_risk's simulation, in KL units (excess / 2 sigma^2)
        ridge = estimator_risk(W, n, sigma=1.0, estimator="ridge", lam=ridge_penalty(n, 1.0, 2.0), sims=3,
                               seed=101 + j, v_star=vs)
        assert row["ridge_kl_mean"] == pytest.approx(ridge.simulated / 2, rel=1e-9)
        assert row["mixture_per_sample"] == pytest.approx(mixture_redundancy(lam_all, n) / n, rel=1e-9)
    json.dumps(res, allow_nan=False)


def test_resolvability_vs_width_values_quoted_in_theory_16_7():
    res = resolvability_vs_width(5, (100, 1000), (100, 1000, 10000))
    got = {(r["p"], r["n"], r["coding"]): r for r in res["rows"]}
    # theory §16.7: cluster code R_n = 0.595, 0.102, 0.0146 (p = 100) and 0.604, 0.104, 0.0149 (p = 1000)
    for (p, n), val in {(100, 100): 0.595, (100, 1000): 0.102, (100, 10000): 0.0146, (1000, 100): 0.604,
                        (1000, 1000): 0.104, (1000, 10000): 0.0149}.items():
        assert float(f"{got[(p, n, 'clusters')]['bound']:.3g}") == val
    assert got[(100, 1000, "bound")]["coded_directions"] == 20 and got[(1000, 1000, "bound")]["coded_directions"] == 6
    assert round(got[(1000, 1000, "bound")]["bound"], 3) == 0.053
    assert [round(got[(p, 1000, "bound")]["guarantee"], 3) for p in (100, 1000)] == [0.118, 0.104]
    assert [round(got[(100, n, "clusters")]["leading"], 4) for n in (100, 1000, 10000)] == [0.921, 0.1382, 0.0184]
    for coding in ("clusters", "bound"):
        for q in ("bound", "guarantee"):
            for n in ("100", "1000", "10000"):
                vals = [got[(p, int(n), coding)][q] for p in (100, 1000)]
                assert res["spread"][coding][q][n] == pytest.approx((max(vals) - min(vals)) / np.mean(vals))


@pytest.mark.slow
def test_resolvability_at_width_ten_thousand_quoted_in_theory_16_7():
    res = resolvability_vs_width(5, (10000,), (100, 1000, 10000))
    got = {(r["n"], r["coding"]): r for r in res["rows"]}
    assert [float(f"{got[(n, 'clusters')]['bound']:.3g}") for n in (100, 1000, 10000)] == [0.607, 0.103, 0.0147]
    assert round(got[(1000, "bound")]["guarantee"], 3) == 0.099


def test_grid_and_claims_on_a_tiny_summary():
    grid = mdl_risk_grid(2, (20, 30), (10, 100), reps=6, compare_reps=2, mc_samples=500)
    width = resolvability_vs_width(2, (20, 30), (10, 100))
    summary = {"settings": {"d": 2, "widths": [20, 30], "n_values": [10, 100], "beta": 2.0, "radius": 2.0,
                            "sigma": 1.0}, "grid": grid, "width": width}
    claims = _claims(summary)
    assert {"claim", "source", "predicted", "measured", "holds"} <= set(claims[0])
    worst = max(r["excess_over_bound_se"] for c in grid["curves"] for r in c["rows"])
    assert worst == grid["max_excess_over_bound_se"] and claims[0]["holds"] == (worst <= 3)
    assert f"{worst:.1f}" in claims[0]["measured"]
    spread = claims[3]
    assert "cluster directions" in spread["claim"]
    assert spread["holds"] == (max(width["spread"]["clusters"]["bound"].values()) <= SPREAD_CRITERION)
    assert claims[-1]["holds"] is None and "ridge" in claims[-1]["claim"]


@pytest.mark.slow
def test_reproduce_section_quick(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []
    sec = reproduce_section(quick=True, progress=lambda i, t: calls.append((i, t)))
    assert sec["name"] == NAME == "mdl" and set(sec) == {"name", "summary", "claims"}
    json.dumps(sec["summary"], allow_nan=False)
    assert not list(tmp_path.iterdir())  # computes, writes nothing
    assert calls[-1][0] == calls[-1][1]
    judged = [c for c in sec["claims"] if c["holds"] is not None]
    assert len(judged) == 4 and all(c["holds"] for c in judged), [c["measured"] for c in judged]


def test_experiments_import_no_matplotlib():
    code = ("import sys, relufim.experiments.mdl, relufim.experiments.mdl_section\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' or "
            "m.startswith(('relufim.report', 'relufim.cli'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_bad_input():
    with pytest.raises(ValueError, match="reps"):
        mdl_risk_curve(2, 20, (10,), reps=1)
    with pytest.raises(ValueError, match="n_values"):
        mdl_risk_curve(2, 20, (), reps=2)
    with pytest.raises(ValueError, match="n_values must be >= 1"):
        mdl_risk_curve(2, 20, (0, 10), reps=2)
    with pytest.raises(ValueError, match="beta"):
        mdl_risk_curve(2, 20, (10,), reps=2, beta=1.0)
    with pytest.raises(ValueError, match="radius"):
        resolvability_vs_width(2, (20,), (10,), radius=-1.0)


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def test_tutorial_code_runs(tmp_path, monkeypatch):
    blocks = _python_blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "the MDL tutorial lost its code blocks"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    for i, block in enumerate(blocks, start=1):
        try:
            exec(compile(block, f"tutorial_mdl.md block {i}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message says which block broke
            pytest.fail(f"tutorial_mdl block {i} failed: {type(exc).__name__}: {exc}\n{block}")
    ns = namespace
    # the numbers the tutorial quotes
    code, res, sim, far = ns["code"], ns["res"], ns["sim"], ns["far"]
    assert (code.coded, round(code.length, 2), code.points) == (6, 19.52, 300829075)
    split = code.length_by_cluster()
    assert (round(split["norm"]["nats"], 2), round(split["linear"]["nats"], 2)) == (3.76, 15.76)
    assert (round(code.bound_with_lengths(), 4), round(code.bound_estimate()["total"], 4)) == (0.1037, 0.1041)
    assert (ns["exact"].nodes, ns["exact"].gap) == (6, 0.0)
    assert round(kl_divergence(code.W, ns["exact"].v, ns["v_star"]), 5) == 0.01791
    assert (round(ns["r"].value, 5), round(ns["r"].stderr, 5)) == (0.00881, 0.0001)
    assert [round(x, 4) for x in (res.value, res.code_term, res.approximation_term, res.uncoded_term)] == \
        [0.0528, 0.0390, 0.0137, 0.0124]
    assert [round(x, 4) for x in (sim.risk_mean, sim.risk_se, sim.kl_mean)] == [0.0087, 0.0004, 0.0175]
    assert sim.methods == {"exact": 20, "fast": 0}
    assert [round(x, 3) for x in (far.value, far.clipped_term, far.uncoded_term)] == [0.573, 0.420, 0.112]
    rows = ns["curve"]["rows"]
    assert [r["coded_directions"] for r in rows] == [4, 9, 9]
    for key, quoted in [("bound", [0.529, 0.141, 0.0206]), ("risk_mean", [0.0697, 0.0139, 0.00148]),
                        ("kl_mean", [0.147, 0.0281, 0.00295]), ("ridge_kl_mean", [0.141, 0.0196, 0.00353]),
                        ("least_squares_kl_mean", [3.74, 2.60, 0.0374])]:
        assert [float(f"{r[key]:.3g}") for r in rows] == [float(f"{q:.3g}") for q in quoted], key
    assert (tmp_path / "mdl_risk.png").stat().st_size > 0

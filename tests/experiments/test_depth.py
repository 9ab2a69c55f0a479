"""Experiments on deep networks and real inputs (relufim.experiments.depth, depth_section) against oracles.

Oracles: the exact FIM (Lemma 1) and dense LAPACK eigenvalues for one layer; the features recomputed here with
NumPy for the digits; the two sides X^T X / n and X X^T / n of one sample; the limit computed directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import relufim as rf
from relufim._io import to_jsonable
from relufim.experiments import depth_section
from relufim.experiments.depth import (
    cluster_shares,
    deep_spectrum_summary,
    depth_shares,
    digits_comparison,
    limit_by_depth,
)
from relufim.fim.deep import deep_fisher
from relufim.model.data import load_inputs
from relufim.model.network import covariance_root, network
from relufim.theory.depth import depth_limit_spectrum


def test_one_layer_summary_is_todays_model():
    s = deep_spectrum_summary(4, 300, extra=3, alignment_n=5000)
    J = rf.fisher_matrix(rf.sample_weights(4, 300, seed=0))
    ref = np.linalg.eigvalsh(J)[::-1][:17]
    assert s["depth"] == 1 and s["cluster_sizes"] == [1, 4, 9] and s["trace"] == pytest.approx(np.trace(J))
    assert np.allclose(s["eigenvalues"], ref, rtol=1e-10, atol=1e-14)
    assert s["limit"] == pytest.approx(rf.limit_cluster_values(4), rel=1e-14)
    assert s["cluster_shares"] == pytest.approx(cluster_shares(ref, np.trace(J), 4), rel=1e-10)
    assert s["alignment"]["sizes_match"] and min(s["alignment"]["captured"]) > 0.9


def test_monte_carlo_summary_both_sides_agree():
    """n < p_L goes through the n x n side, n >= p_L through J: on one sample both give its eigenvalues."""
    Ws = network(3, [200, 150]).sample(0)
    small = deep_spectrum_summary(3, (200, 150), method="monte-carlo", n=120, extra=2)
    J = deep_fisher(Ws, n=120, seed=0)
    assert np.allclose(small["eigenvalues"], np.linalg.eigvalsh(J)[::-1][:11], rtol=1e-9, atol=1e-13)
    assert small["solver"].endswith("-gram")
    big = deep_spectrum_summary(3, (200, 150), method="monte-carlo", n=3000, extra=2)
    J = deep_fisher(Ws, n=3000, seed=0)
    assert np.allclose(big["eigenvalues"], np.linalg.eigvalsh(J)[::-1][:11], rtol=1e-9, atol=1e-13)
    lim = depth_limit_spectrum(3, 2, 2)
    assert big["limit"]["cluster2"] == pytest.approx(lim.degrees[1].eigenvalue, rel=1e-12)


def test_summary_with_a_covariance_and_errors():
    S = np.diag([3.0, 1.0, 0.5])
    s = deep_spectrum_summary(3, 100, input_cov=S, extra=1, alignment_n=3000)
    ref = np.linalg.eigvalsh(rf.fisher_matrix(covariance_root(S, 3) @ rf.sample_weights(3, 100, seed=0)))[::-1]
    assert np.allclose(s["eigenvalues"], ref[:10], rtol=1e-10) and s["limit"] is None
    with pytest.raises(ValueError, match="only for one hidden layer"):
        deep_spectrum_summary(3, (100, 100))
    with pytest.raises(ValueError, match="needs the number of Gaussian inputs"):
        deep_spectrum_summary(3, (100, 100), method="monte-carlo")
    with pytest.raises(ValueError, match="positive definite"):
        deep_spectrum_summary(3, 100, input_cov=np.diag([1.0, 0.0, 1.0]))


def test_digits_comparison_against_recomputed_features():
    pytest.importorskip("sklearn")
    s = digits_comparison(300, dim=4, n_gaussian=4000, spectrum_size=50)
    data = load_inputs("digits", 4)
    W = rf.sample_weights(4, 300, seed=0)
    X = np.maximum(data.x @ W, 0.0)
    ev_data = np.linalg.eigvalsh(X.T @ X / data.n)[::-1]
    assert np.allclose(s["empirical"]["eigenvalues"], ev_data[:50], rtol=1e-9, atol=1e-13)
    R = covariance_root(data.covariance, 4)
    ev_gauss = np.linalg.eigvalsh(rf.fisher_matrix(R @ W))[::-1]
    assert np.allclose(s["gaussian"]["eigenvalues"], ev_gauss[:50], rtol=1e-9, atol=1e-13)
    assert s["empirical"]["trace"] == pytest.approx(np.trace(X.T @ X) / data.n, rel=1e-12)
    for key in ("captured_gaussian_clusters", "captured_function_spans"):
        assert len(s[key]) == 3 and all(0 <= c <= 1 + 1e-12 for c in s[key])
    ratios = np.array(s["empirical"]["cluster_means"]) / np.array(s["gaussian"]["cluster_means"])
    assert np.allclose(s["cluster_mean_ratios"], ratios)
    assert json.dumps(to_jsonable(s), allow_nan=False)


def test_limit_by_depth_and_depth_shares():
    lim = limit_by_depth(10, [1, 2, 5], kmax=3)
    for L, row, F in zip([1, 2, 5], lim["shares"], lim["top_fraction"]):
        ref = depth_limit_spectrum(10, L, 3)  # limit_by_depth asks for k <= 20: a finer rule, same values to 1e-14
        assert row == pytest.approx(ref.shares.tolist(), rel=1e-12, abs=1e-15)
        assert F == pytest.approx(ref.top_fraction, rel=1e-13)
    sh = depth_shares(3, [1, 2], width=120, n=2000, seeds=2)
    # L = 1 uses the exact J of each seed's network: recompute the first seed's shares
    J = rf.fisher_matrix(network(3, [60]).sample(0)[0])
    first = cluster_shares(np.linalg.eigvalsh(J)[::-1], np.trace(J), 3)
    J1 = rf.fisher_matrix(network(3, [60]).sample(1)[0])
    second = cluster_shares(np.linalg.eigvalsh(J1)[::-1], np.trace(J1), 3)
    assert sh["mean"][0][:3] == pytest.approx(np.mean([first, second], axis=0), rel=1e-10)
    assert sh["limit"][1][:3] == pytest.approx(depth_limit_spectrum(3, 2, 2).shares.tolist(), rel=1e-12)
    assert sh["widths"] == [[60], [120, 60]]


def test_reproduce_section_quick():
    pytest.importorskip("sklearn")
    sec = depth_section.reproduce_section(quick=True)
    assert sec["name"] == depth_section.NAME == "depth"
    s = sec["summary"]
    assert {"identity", "limit", "shares", "deep", "digits", "limit_seconds"} <= set(s)
    assert s["identity"]["bitwise_equal"] and s["identity"]["max_abs_difference"] == 0
    assert len(sec["claims"]) >= 10
    for c in sec["claims"]:
        assert set(c) == {"claim", "source", "predicted", "measured", "holds"}
        assert c["holds"] in (True, False, None) and c["measured"] and c["predicted"]
    assert json.dumps(to_jsonable(sec), allow_nan=False)


def test_tutorial_code_runs(tmp_path, monkeypatch):
    """docs/tutorial_depth.md: every Python block runs, in order, in a fresh directory (as tests/test_docs.py does
    for the main tutorial)."""
    pytest.importorskip("sklearn")
    text = (Path(__file__).resolve().parents[2] / "docs" / "tutorial_depth.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) >= 5, "the tutorial lost its code blocks"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for i, block in enumerate(blocks, start=1):
        try:
            exec(compile(block, f"tutorial_depth.md block {i}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message says which block broke
            pytest.fail(f"tutorial_depth block {i} failed: {type(exc).__name__}: {exc}\n{block}")
    assert namespace["s"]["empirical"]["cluster_sizes"] == [1, 10, 54]


def test_reproduce_section_without_the_data_extra_says_what_is_missing(monkeypatch):
    """`pip install .` has no scikit-learn: the section runs without the digits and says why (quick start 1)."""
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    tiny = {"identity_p": 40, "share_widths": (30, 60), "share_n": 500, "share_seeds": 2, "deep_widths": (40, 40, 30),
            "deep_n": 2000, "digits_widths": [(50,)], "digits_n": 500}
    monkeypatch.setitem(depth_section.SETTINGS, True, tiny)
    sec = depth_section.reproduce_section(quick=True, d=3)
    s = sec["summary"]
    assert s["digits"] == [] and "relufim[data]" in s["digits_skipped"]
    assert not any("digits" in c["claim"] for c in sec["claims"])
    from relufim.report.depth import section_blocks

    assert any("Digits part not run" in getattr(b, "text", "") for b in section_blocks(s))

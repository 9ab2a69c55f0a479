"""Records of the FIM of all parameters for the CLI and the reproduce section (theory §15).

Oracles: LAPACK on the dense F, the Hutchinson variance bound for the SLQ trace, dense matrices for
the approximations' errors, and the reproduce section's claims checked against its own data.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

import relufim as rf
from relufim.experiments.full_fisher import (
    APPROXIMATION_NAMES,
    approximations_summary,
    draw_network,
    full_spectrum_summary,
)
from relufim.experiments.full_fisher_section import NAME, reproduce_section
from relufim.fim.full import full_fisher_matrix, full_fisher_operator, full_hermite_features
from relufim.spectrum.density import matrix_spectral_density
from relufim.theory.curvature import kfac_fisher


def test_draw_network_reuses_the_weights_of_the_spectrum_command():
    W, v = draw_network(4, 30, seed=3)
    assert np.array_equal(W, rf.sample_weights(4, 30, seed=3))
    W2, v2 = draw_network(4, 30, seed=3)
    assert np.array_equal(v, v2) and not np.array_equal(v, draw_network(4, 30, seed=4)[1])
    # entries N(0, 1/p): the sample variance of 30 draws within 5 standard errors (sd of s^2 = sqrt(2/n) / p)
    assert abs(v.var() * 30 - 1) < 5 * math.sqrt(2 / 30)


def test_full_spectrum_summary_reports_the_eigenvalues_of_F():
    d, p = 3, 50
    s = full_spectrum_summary(d, p, seed=1, all_eigenvalues=True, density=True, density_vectors=8, density_steps=30)
    W, v = draw_network(d, p, seed=1)
    F = full_fisher_matrix(W, v)
    lam = np.linalg.eigvalsh(F)[::-1]
    for key in ("params", "P", "eigenvalues", "null_space_dimension", "mean_eigenvalue", "second_moment",
                "lambda_max_share"):
        assert key in s
    assert s["params"] == "all" and s["P"] == 200 and s["null_space_dimension"] == p
    assert np.allclose(s["eigenvalues"], lam[:len(s["eigenvalues"])], rtol=0, atol=1e-12 * lam[0])
    assert np.allclose(s["all_eigenvalues"], lam, rtol=0, atol=1e-12 * lam[0])
    assert s["lambda_max_share"] == pytest.approx(lam[0] / np.trace(F), rel=1e-12)
    assert s["second_moment"] == pytest.approx((F**2).sum() / 200, rel=1e-12)
    assert np.allclose(s["readout_all_eigenvalues"], np.linalg.eigvalsh(rf.fisher_matrix(W))[::-1], rtol=1e-12)
    dens = s["density"]
    k = dens["deflated"]
    # Hutchinson with Rademacher vectors: sd of one estimate <= sqrt(2) ||F_c||_F on the deflated complement
    rest = math.sqrt(max((F**2).sum() - (lam[:k] ** 2).sum(), 0.0))
    assert abs(dens["trace_estimate"] - dens["trace_exact"]) <= 5 * math.sqrt(2 / dens["n_vectors"]) * rest
    json.dumps(s, allow_nan=False)


def test_matrix_free_summary_of_the_cli_size_class():
    s = full_spectrum_summary(4, 40, seed=0, method="matrix-free")
    assert s["method"] == "matrix-free" and s["null_space_dimension"] == 40  # theory §15.3, hypotheses checked
    assert s["null_space"]["rescaling_residual"] < 1e-14 and s["converged"]
    # the groups are what their definition says: cut exactly where lambda_i / lambda_(i+1) > 1.4
    lam, start = np.asarray(s["eigenvalues"]), 0
    for c in s["clusters"]:
        inside = lam[start:start + c["size"]]
        assert np.all(inside[:-1] / inside[1:] <= 1.4)
        if c["closed"]:
            assert c["gap_below"] == pytest.approx(lam[start + c["size"] - 1] / lam[start + c["size"]])
            assert c["gap_below"] > 1.4
        start += c["size"]
    assert start == lam.size


@pytest.mark.parametrize("sigma", [1.0, 0.5])
def test_density_runs_on_the_operator_of_the_spectrum(monkeypatch, sigma):
    # one operator per summary: the matrix-free route's products and the density's go through the same one
    import relufim.experiments.full_fisher as ff
    import relufim.theory.curvature as curvature

    built = []

    def counted(*args, **kwargs):
        built.append(full_fisher_operator(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(curvature, "full_fisher_operator", counted)
    monkeypatch.setattr(ff, "full_fisher_operator", counted)
    s = full_spectrum_summary(3, 40, seed=0, sigma=sigma, method="matrix-free", density=True, density_vectors=4,
                              density_steps=10)
    assert s["method"] == "matrix-free" and len(built) == 1
    # the same numbers as a density on an operator of F / sigma^2 built for it alone (the summary's former way)
    W, v = draw_network(3, 40, seed=0)
    op, k = full_fisher_operator(W, v, sigma), s["density"]["deflated"]
    sd = matrix_spectral_density(op, n_vectors=4, lanczos_steps=10, deflate=k,
                                 X0=full_hermite_features(W, v) if k else None, trace=op.trace())
    counts, stderr = sd.smoothed_histogram()
    assert s["density"]["counts"] == counts.tolist() and s["density"]["stderr"] == stderr.tolist()
    assert s["density"]["trace_estimate"] == sd.trace_estimate and s["density"]["trace_exact"] == sd.trace_exact
    built.clear()
    full_spectrum_summary(3, 40, seed=0, sigma=sigma, density=True, density_vectors=4, density_steps=10)
    assert len(built) == 1  # the dense route forms F and builds none: the density builds its own


@pytest.mark.parametrize("sigma", [1.0, 0.5])
def test_density_deflates_the_spectrum_pairs_without_solving_again(monkeypatch, sigma):
    """The summary's density deflates FullSpectrum.result's pairs: no block solve of its own, the same measure.

    (d, p) = (4, 40): the closed clusters are the d(d+3)/2 = 14 required pairs, all converged, so they
    are reused. Oracles: dense LAPACK on F / sigma^2 for the top eigenvalues (1e-10 relative: the
    Ritz values' error is below r^2/gap, LAPACK's ~P eps lam_max), and the former path (its own block
    solve from the Hermite features) for nodes and weights, within 10 eps, eps = (||R_old||_F +
    ||R_new||_F) / gap the Davis–Kahan bound on the angle between the two deflated subspaces (theory
    §10.2; the reasoning of tests/spectrum/test_density.py::test_deflating_given_eigenpairs_matches_solving_for_them).
    """
    import relufim.experiments.full_fisher as ff
    import relufim.theory.curvature as curvature

    density = sys.modules["relufim.spectrum.density"]  # the attribute relufim.spectrum is the function
    solves = {"density": 0, "spectrum": 0}

    def counted(where, solver):
        def run(*args, **kwargs):
            solves[where] += 1
            return solver(*args, **kwargs)
        return run

    monkeypatch.setattr(density, "block_eigsh", counted("density", density.block_eigsh))
    monkeypatch.setattr(curvature, "block_eigsh", counted("spectrum", curvature.block_eigsh))
    kept = []

    def keep(*args, **kwargs):
        kept.append(matrix_spectral_density(*args, **kwargs))
        return kept[-1]

    monkeypatch.setattr(ff, "matrix_spectral_density", keep)
    d, p, nv, m = 4, 40, 4, 10
    s = full_spectrum_summary(d, p, seed=0, sigma=sigma, method="matrix-free", density=True, density_vectors=nv,
                              density_steps=m)
    assert s["method"] == "matrix-free" and solves == {"density": 0, "spectrum": 1}
    (new,) = kept
    k = s["density"]["deflated"]
    assert k == d * (d + 3) // 2 == new.k_exact
    counts, stderr = new.smoothed_histogram()
    assert s["density"]["counts"] == counts.tolist() and s["density"]["stderr"] == stderr.tolist()
    # the former path: a block solve of its own for the same pairs (the counter sees it)
    W, v = draw_network(d, p, seed=0)
    op = full_fisher_operator(W, v, sigma)
    old = matrix_spectral_density(op, n_vectors=nv, lanczos_steps=m, deflate=k, X0=full_hermite_features(W, v),
                                  trace=op.trace())
    assert solves["density"] == 1
    lam = np.linalg.eigvalsh(full_fisher_matrix(W, v, sigma))[::-1]  # F / sigma^2
    np.testing.assert_allclose(new.top_eigenvalues, lam[:k], rtol=1e-10)
    np.testing.assert_allclose(old.top_eigenvalues, lam[:k], rtol=1e-10)
    eps = (np.linalg.norm(old.top_residuals) + np.linalg.norm(new.top_residuals)) / (lam[k - 1] - lam[k])
    assert eps < 1e-7
    P = lam.size
    np.testing.assert_allclose(new.nodes[k:], old.nodes[k:], rtol=0, atol=10 * eps * lam[k])
    rule = nv * P / (P - k)  # each vector's weights sum to 1
    np.testing.assert_allclose(new.weights[k:] * rule, old.weights[k:] * rule, rtol=0, atol=10 * eps)
    assert new.trace_exact == old.trace_exact == pytest.approx(lam.sum(), rel=1e-12)
    # the trace estimates differ by the nodes' and weights' differences only (same random vectors)
    assert new.trace_estimate == pytest.approx(old.trace_estimate, rel=20 * eps)


def test_the_density_does_not_report_to_the_spectrum_progress():
    ticks: dict[bool, list[int]] = {False: [], True: []}
    for density in (False, True):
        full_spectrum_summary(3, 40, seed=0, method="matrix-free", density=density, density_vectors=4,
                              density_steps=10, product_progress=lambda done, total, t=ticks[density]: t.append(done))
    assert ticks[False] and ticks[True] == ticks[False]  # only the solver's products tick


def test_approximations_summary_errors_against_dense_matrices():
    d, p = 3, 20
    s = approximations_summary(d, p, seed=2, n_values=(50, 200), seeds=2, damping=(1e-3, 1e-1))
    assert [r["name"] for r in s["approximations"]] == list(APPROXIMATION_NAMES)
    W, v = draw_network(d, p, seed=2)
    sigma = s["sigma"]
    F = full_fisher_matrix(W, v, sigma)
    K = kfac_fisher(W, v, sigma)
    rec = {r["name"]: r for r in s["approximations"]}
    assert rec["k-fac"]["relative_frobenius_error"] == pytest.approx(np.linalg.norm(K - F) / np.linalg.norm(F),
                                                                     rel=1e-12)
    assert rec["diagonal"]["relative_frobenius_error"] == pytest.approx(
        np.linalg.norm(F - np.diag(np.diag(F))) / np.linalg.norm(F), rel=1e-12)
    assert rec["monte-carlo"]["n"] == 200 and len(rec["k-fac"]["natural_gradient_angles"]) == 2
    sm = s["sampled"]
    assert sm["n"] == [50, 200] and len(sm["monte-carlo"]["values"]["relative_frobenius_error"][0]) == 2
    assert all(x > 0 for x in sm["predicted_monte_carlo"])
    assert np.allclose(s["exact"]["eigenvalues"], np.linalg.eigvalsh(F)[::-1][:s["k"]], rtol=1e-7)
    json.dumps(s, allow_nan=False)


def test_approximations_bad_input():
    with pytest.raises(ValueError, match="d < p"):
        approximations_summary(3, 3)
    with pytest.raises(ValueError, match="noise"):
        approximations_summary(2, 10, noise=0.0)
    with pytest.raises(ValueError, match="teacher_width must exceed d"):
        approximations_summary(3, 10, teacher_width=3)
    with pytest.raises(ValueError, match="n_values"):
        approximations_summary(2, 10, n_values=())


@pytest.mark.slow
def test_reproduce_section_quick_claims_hold_on_their_data():
    sec = reproduce_section(quick=True)
    assert sec["name"] == NAME == "all-parameters"
    for c in sec["claims"]:
        assert {"claim", "source", "predicted", "measured", "holds"} <= set(c)
    sp = sec["summary"]["spectrum"]
    # the claims' verdicts are those of the data they report
    assert sec["claims"][0]["holds"] == (sp["null_space_dimension"] == sp["p"])
    assert sec["claims"][2]["holds"] == ([c["size"] for c in sp["clusters"]][:3] == [1, sp["d"],
                                                                                      sp["d"] * (sp["d"] + 1) // 2 - 1])
    json.dumps(sec, allow_nan=False)


def test_tutorial_kfac_runs(run_doc_page):
    ns = run_doc_page("tutorial_kfac.md")
    assert "summary" in ns or "s" in ns

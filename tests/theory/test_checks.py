"""check_theory and spectrum_summary: the statements of the 2023 paper on concrete W."""

import numpy as np
import pytest

import relufim as rf
from relufim.spectrum import principal_cosines


@pytest.fixture(scope="module")
def checked():
    W = rf.sample_weights(4, 1500, seed=3)
    return W, rf.check_theory(W)


def test_check_theory_statements(checked):
    W, chk = checked
    J = rf.fisher_matrix(W)
    assert chk.trace == pytest.approx(np.trace(J), rel=1e-12)
    assert chk.cluster_sizes == [1, 4, 9]
    assert chk.perron_frobenius
    top = np.linalg.eigh(J)[1][:, -1]
    assert (top > 0).all() or (top < 0).all()  # oracle: dense eigenvector
    assert chk.remainder_min_eigenvalue is not None and chk.remainder_min_eigenvalue > -1e-13
    # alignment recomputed from dense eigenvectors
    w, V = np.linalg.eigh(J)
    V = V[:, ::-1]
    bases = rf.theory_vectors(W).predicted_bases()
    for i, sl in enumerate([slice(0, 1), slice(1, 5), slice(5, 14)], start=1):
        expected = principal_cosines(V[:, sl], bases[i - 1]).min()
        assert chk.alignment[f"cluster{i}"] == pytest.approx(expected, abs=1e-8)
    # at p = 1500 the predicted spans are close (Lemma 2: deviations O(sqrt(D/p)))
    assert min(chk.alignment.values()) > 0.9
    # Rayleigh quotients by direct evaluation
    th = rf.theory_vectors(W)
    rq_rows = np.einsum("ij,ij->i", th.rows, th.rows @ J) / np.einsum("ij,ij->i", th.rows, th.rows)
    assert chk.theorem3["rows"]["min"] == pytest.approx(rq_rows.min(), rel=1e-12)


def test_top_fraction_exceeds_the_bound(checked):
    _, chk = checked
    assert chk.top_fraction > chk.top_fraction_bound > 0.977


def test_spectrum_summary_fields():
    s = rf.spectrum_summary(4, 600, seed=1)
    for key in ("d", "p", "seed", "method", "eigenvalues", "trace", "top_fraction", "clusters", "perron_frobenius",
                "alignment", "theorem3", "max_residual"):
        assert key in s
    assert len(s["eigenvalues"]) >= 4 * 7 // 2 + 10
    assert all(set(c) >= {"size", "predicted_size", "mean", "min", "max"} for c in s["clusters"])
    assert s["eigenvalues"] == sorted(s["eigenvalues"], reverse=True)
    mc = rf.spectrum_summary(4, 600, seed=1, fisher="monte-carlo", n=3000)
    assert mc["method"] == "monte-carlo" and mc["n"] == 3000
    # Monte Carlo cluster means near the exact ones (sampling error ~ sqrt(1/n) relative)
    for c_mc, c_ex in zip(mc["clusters"], s["clusters"]):
        assert c_mc["mean"] == pytest.approx(c_ex["mean"], rel=0.15)


def test_principal_cosines_take_orthonormal_bases_as_they_are():
    # oracle: the principal angles of two planes in R^3 at a known angle, and the QR route on skewed bases
    phi = 0.3
    A = np.eye(3)[:, :2]
    B = np.column_stack([[1.0, 0.0, 0.0], [0.0, np.cos(phi), np.sin(phi)]])
    np.testing.assert_allclose(principal_cosines(A, B, orthonormal=True), [1.0, np.cos(phi)], atol=1e-15)
    skew = np.array([[2.0, 1.0], [0.0, 3.0]])  # same spans, not orthonormal columns
    np.testing.assert_allclose(principal_cosines(A @ skew, B @ skew), [1.0, np.cos(phi)], atol=1e-14)

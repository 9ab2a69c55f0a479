"""The block eigensolver and the matrix-free spectrum route against dense eigh."""

import importlib

import numpy as np
import pytest
import scipy.linalg as sla

import relufim as rf
from relufim.spectrum import n_top
from relufim.spectrum.eigensolver import block_eigsh, orthonormalize


def _sin_max_angle(A, B):
    """Sine of the largest principal angle between range(A) and range(B) (same dimension)."""
    Qa, _ = np.linalg.qr(A)
    Qb, _ = np.linalg.qr(B)
    return float(np.linalg.norm(Qb - Qa @ (Qa.T @ Qb), 2))


def _random_symmetric(eigs, seed):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((eigs.size, eigs.size)))
    return (Q * eigs) @ Q.T, Q


def test_exactly_repeated_eigenvalue_multiplicity_20_all_members():
    """A cluster of 20 equal eigenvalues: every member is returned, spanning the whole eigenspace.

    ARPACK-type single-vector methods can return fewer members of an exactly repeated
    eigenvalue (a Krylov space of one vector sees one direction of the eigenspace).
    """
    p = 400
    eigs = np.concatenate([np.full(20, 5.0), np.linspace(0.0, 4.0, p - 20)])
    A, Q = _random_symmetric(eigs, 0)
    r = block_eigsh(lambda V: A @ V, p, 20, tol=1e-10, maxiter=200)
    assert r.converged.all()
    assert np.allclose(r.eigenvalues, 5.0, rtol=1e-10)
    # residual <= 1e-10 * 5 and gap 1 => sin(angle) <= 5e-10 (Davis-Kahan)
    assert _sin_max_angle(r.eigenvectors, Q[:, :20]) < 1e-8


def test_block_inside_a_cluster_is_grown():
    """k = 8 asked inside a cluster of 20: the solver notices that the block sits inside the
    cluster (guard Ritz values equal to the k-th), grows it, and returns members that are
    orthonormal vectors of the eigenspace."""
    p = 300
    eigs = np.concatenate([np.full(20, 3.0), np.linspace(0.0, 2.0, p - 20)])
    A, Q = _random_symmetric(eigs, 1)
    r = block_eigsh(lambda V: A @ V, p, 8, tol=1e-10, maxiter=200, block=10)
    assert r.converged.all() and np.allclose(r.eigenvalues, 3.0, rtol=1e-10)
    X = r.eigenvectors
    assert np.allclose(X.T @ X, np.eye(8), atol=1e-10)
    assert np.linalg.norm(X - Q[:, :20] @ (Q[:, :20].T @ X)) < 1e-8


def test_matches_dense_eigh_on_clustered_spectrum():
    p = 500
    rng = np.random.default_rng(2)
    eigs = np.concatenate([[10.0], 2.0 + 1e-3 * rng.random(6), 0.5 + 1e-3 * rng.random(15), 0.01 * rng.random(p - 22)])
    A, Q = _random_symmetric(eigs, 3)
    ref = np.sort(eigs)[::-1]
    r = block_eigsh(lambda V: A @ V, p, 22, tol=1e-12, maxiter=200, seed=4)
    assert r.converged.all()
    assert np.allclose(r.eigenvalues, ref[:22], rtol=1e-10, atol=0)
    # residual <= 1e-11, gap below each cluster >= 0.49 => sin(angle) <= 2e-11 (Davis-Kahan)
    order = np.argsort(eigs)[::-1]
    for lo, hi in [(0, 1), (1, 7), (7, 22)]:
        assert _sin_max_angle(r.eigenvectors[:, lo:hi], Q[:, order[lo:hi]]) < 1e-8


def test_unconverged_pairs_are_flagged_and_required():
    p = 300
    eigs = np.linspace(1.0, 2.0, p)  # no gaps: hard
    A, _ = _random_symmetric(eigs, 5)
    r = block_eigsh(lambda V: A @ V, p, 5, tol=1e-12, maxiter=2)
    resid = np.linalg.norm(A @ r.eigenvectors - r.eigenvectors * r.eigenvalues, axis=0)
    assert np.allclose(resid, r.residuals, rtol=1e-6, atol=1e-14)  # reported residuals are the true ones
    assert np.array_equal(r.converged, resid <= 1e-12 * r.eigenvalues[0])
    assert not r.converged.all()
    # required: only the first pairs must converge, the others are returned with their own flags
    B = np.diag(np.concatenate([[100.0, 50.0], np.linspace(0.0, 1.0, p - 2)]))
    calls = []
    rr = block_eigsh(lambda V: B @ V, p, 6, tol=1e-10, maxiter=50, required=2,
                     progress=lambda a, b: calls.append((a, b)))
    assert rr.converged[:2].all() and np.allclose(rr.eigenvalues[:2], [100.0, 50.0])
    assert calls and calls[-1] == (2, 2)


@pytest.mark.parametrize("spread", [1.0, 1e-5])  # a well-conditioned block; one whose rotation amplifies 1e5-fold
def test_orthonormalize_keeps_the_block_off_the_basis(spread):
    rng = np.random.default_rng(7)
    Q = np.linalg.qr(rng.standard_normal((2000, 40)))[0]  # the basis to stay orthogonal to
    X = rng.standard_normal((2000, 12)) + 3.0 * Q[:, :12]  # a large component along the basis
    X[:, 1] = X[:, 0] + spread * X[:, 1]  # nearly dependent columns when spread is small
    V = orthonormalize(X, against=Q)
    assert V.shape[1] == 12
    assert np.abs(V.T @ V - np.eye(12)).max() < 1e-12
    assert np.abs(Q.T @ V).max() < 1e-12  # orthogonal to the basis to round-off, however ill-conditioned
    # the span of the projected block is kept: its projection off Q lies in range(V)
    Xp = X - Q @ (Q.T @ X)
    assert np.abs(Xp - V @ (V.T @ Xp)).max() < 1e-9 * np.abs(Xp).max()


@pytest.mark.parametrize("inside", [0.0, 1 - 1e-8])  # a block off the basis; one almost inside it
def test_orthonormalize_projects_twice_only_after_cancellation(inside, monkeypatch):
    es = importlib.import_module("relufim.spectrum.eigensolver")  # relufim.spectrum is also a function

    calls = []
    project = es._subtract_projection
    monkeypatch.setattr(es, "_subtract_projection", lambda X, Q: (calls.append(1), project(X, Q)))
    rng = np.random.default_rng(3)
    Q = np.linalg.qr(rng.standard_normal((3000, 30)))[0]
    X = (1 - inside) * rng.standard_normal((3000, 8)) + inside * Q @ rng.standard_normal((30, 8))
    V = orthonormalize(X, against=Q)
    assert V.shape[1] == 8 and np.abs(V.T @ V - np.eye(8)).max() < 1e-12
    # one pass leaves ~1e-16 of the column before it: relative to the 1e-8 that survives, 1e-8; a second pass is due
    assert np.abs(Q.T @ V).max() < 1e-12
    assert len(calls) == (1 if inside == 0.0 else 2)


def _spy_ritz(monkeypatch):
    es = importlib.import_module("relufim.spectrum.eigensolver")
    firsts = []
    form = es._RitzBlock.form
    monkeypatch.setattr(es._RitzBlock, "form", lambda self, space, S, theta, first: (
        firsts.append(first), form(self, space, S, theta, first))[1])
    return firsts


def test_deferred_ritz_vectors_return_the_last_steps_pairs(monkeypatch):
    # five separated pairs converge first; 15 in a tight cluster take longer: the first five are deferred
    lam = np.concatenate([[50.0, 40.0, 30.0, 20.0, 10.0], 5.0 + 1e-3 * np.arange(15)[::-1], np.linspace(0, 1, 980)])
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((1000, 1000)))[0]
    A = (Q * lam) @ Q.T
    firsts = _spy_ritz(monkeypatch)
    r = block_eigsh(lambda V: A @ V, 1000, 20, tol=1e-10, maxiter=200)
    assert max(firsts) > 0  # some steps did defer a converged run
    assert r.converged.all()
    np.testing.assert_allclose(r.eigenvalues, lam[:20], rtol=0, atol=1e-9 * 50)
    # the residuals reported are those of the returned vectors (not of an earlier step's)
    true = np.linalg.norm(A @ r.eigenvectors - r.eigenvectors * r.eigenvalues, axis=0)
    np.testing.assert_allclose(r.residuals, true, rtol=1e-6, atol=1e-13 * 50)
    assert np.abs(r.eigenvectors.T @ r.eigenvectors - np.eye(20)).max() < 1e-12


def test_a_new_ritz_value_above_a_deferred_run_forms_it_again(monkeypatch):
    # X0 holds the exact eigenvectors of 10 .. 9.6, so they converge at once and are deferred; the pair of
    # 100 enters later above them, and the deferred run is formed again, in its new order
    lam = np.concatenate([[100.0, 10.0, 9.9, 9.8, 9.7, 9.6], np.full(1994, 1.0)])
    I = np.eye(2000)
    firsts, calls = _spy_ritz(monkeypatch), []
    r = block_eigsh(lambda V: lam[:, None] * V, 2000, 6, X0=I[:, 1:6], block=6, tol=1e-10, maxiter=100,
                    progress=lambda n, m: calls.append(n))
    assert calls[0] == 5 and firsts[1] == 0  # five leading pairs converged at step 1, yet step 2 formed them again
    assert calls[-1] == 6
    np.testing.assert_allclose(r.eigenvalues, lam[:6], rtol=0, atol=1e-8)
    true = np.linalg.norm(lam[:, None] * r.eigenvectors - r.eigenvectors * r.eigenvalues, axis=0)
    np.testing.assert_allclose(r.residuals, true, rtol=1e-6, atol=1e-12)


def test_orthonormalize_drops_dependent_columns():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    Q = orthonormalize(np.column_stack([X, X @ [1.0, 2.0, 3.0]]))
    assert Q.shape == (50, 3) and np.allclose(Q.T @ Q, np.eye(3), atol=1e-13)
    Q2 = orthonormalize(rng.standard_normal((50, 4)), against=Q)
    assert np.abs(Q.T @ Q2).max() < 1e-13


@pytest.fixture(scope="module")
def fim_case():
    W = rf.sample_weights(6, 1500, seed=7)
    J = rf.fisher_matrix(W)
    lam, U = np.linalg.eigh(J)
    return W, J, lam[::-1], U[:, ::-1]


def _check_against_dense(w, V, lam, U, d):
    k = n_top(d)
    # eigenvalues: residual <= tol*lam_max with gaps >= lam_k/10 gives |error| <= res^2/gap ~ 1e-22: 1e-10 is safe
    assert np.allclose(w[:k], lam[:k], rtol=1e-10, atol=0)
    for lo, hi in [(0, 1), (1, 1 + d), (1 + d, k)]:  # cluster subspaces: sin <= res/gap ~ 1e-12/1e-2
        assert _sin_max_angle(V[:, lo:hi], U[:, lo:hi]) < 1e-8


def test_block_solver_on_operator_matches_dense(fim_case):
    W, J, lam, U = fim_case
    d = W.shape[0]
    op = rf.fisher_operator(W, block=512)
    r = block_eigsh(op.matmat, W.shape[1], n_top(d), X0=rf.theory_vectors(W).seed_block(), tol=1e-12, maxiter=50)
    assert r.converged.all()
    assert r.iterations <= 8  # the theory's seeds span the top space almost exactly (measured: 4-5)
    _check_against_dense(r.eigenvalues, r.eigenvectors, lam, U, d)


def test_spectrum_matrix_free_route_matches_dense(fim_case):
    W, J, lam, U = fim_case
    d = W.shape[0]
    res = rf.spectrum(W, method="matrix-free", tol=1e-12)
    assert res.method == "matrix-free"
    assert res.converged[: n_top(d)].all()
    assert [c.size for c in res.clusters] == [1, d, d * (d + 1) // 2 - 1]
    assert np.isclose(res.trace, np.trace(J), rtol=1e-13)
    _check_against_dense(res.eigenvalues, res.eigenvectors, lam, U, d)
    # the extra pairs (inside the wide degree-4 cluster) are Ritz values: lower bounds of the true ones
    extra = res.eigenvalues[n_top(d):]
    assert np.all(extra <= lam[n_top(d): n_top(d) + extra.size] * (1 + 1e-12))
    # flags are the truth: recompute the residuals densely
    true_res = np.linalg.norm(J @ res.eigenvectors - res.eigenvectors * res.eigenvalues, axis=0)
    assert np.allclose(true_res, res.residuals, rtol=1e-3, atol=1e-13 * lam[0])


def test_spectrum_route_validation():
    W = rf.sample_weights(3, 100, seed=0)
    with pytest.raises(ValueError, match="matrix-free"):
        rf.spectrum(W, method="lanczos")
    with pytest.raises(ValueError, match="spectral_density"):
        rf.spectrum(W, k="all", method="matrix-free")
    with pytest.raises(ValueError, match="exact"):
        rf.spectrum(W, method="matrix-free", fisher="monte-carlo", n=100)


def test_auto_picks_matrix_free_above_limit(monkeypatch):
    import sys

    sp = sys.modules["relufim.spectrum.solve"]
    monkeypatch.setattr(sp, "MATRIX_FREE_LIMIT", 500)
    W = rf.sample_weights(3, 600, seed=1)
    res = rf.spectrum(W, k=9)
    assert res.method == "matrix-free" and res.ok
    ref = sla.eigh(rf.fisher_matrix(W), eigvals_only=True, subset_by_index=[591, 599])[::-1]
    assert np.allclose(res.eigenvalues, ref, rtol=1e-10)
    assert rf.spectrum(rf.sample_weights(3, 400, seed=1), k=9).method != "matrix-free"


@pytest.mark.parametrize("kwargs", [dict(precision="mixed"), dict(seed_degree=4),
                                    dict(seed_degree=4, precision="mixed")])
def test_matrix_free_variants_match_dense_with_float64_residuals(kwargs):
    """Mixed precision and the degree-4 seeds (issue 13): every reported residual is a float64 one and meets tol."""
    d, p = 5, 1600
    W = rf.sample_weights(d, p, seed=11)
    J = rf.fisher_matrix(W)
    w = np.linalg.eigvalsh(J)[::-1]
    tol = 1e-9
    res = rf.spectrum(W, k="clusters", method="matrix-free", tol=tol, **kwargs)
    m = n_top(d)
    assert res.clusters_converged
    np.testing.assert_allclose(res.eigenvalues[:m], w[:m], rtol=0, atol=1e-10 * w[0])
    # the oracle residuals from the dense J: what the result reports, and below tol
    V = res.eigenvectors[:, :m]
    true = np.linalg.norm(J @ V - V * res.eigenvalues[:m], axis=0)
    np.testing.assert_allclose(res.residuals[:m], true, rtol=1e-3, atol=1e-14 * w[0])
    assert true.max() <= tol * w[0]
    assert (res.low_matvecs > 0) == (kwargs.get("precision") == "mixed")
    assert res.products == res.iterations >= 1
    assert res.matvecs_per_pair == pytest.approx((res.matvecs + 0.5 * res.low_matvecs) / res.converged.sum())


@pytest.mark.slow
def test_default_start_gives_the_65_cluster_pairs_in_two_products_at_p_1e4():
    """Issue 13: with the default seed_degree='auto' (degree 4 here) two exact products give the 65 cluster
    pairs at d = 10, p = 10^4 with residuals <= 1e-8 lambda_max, measured with the dense J."""
    d, p = 10, 10_000
    W = rf.sample_weights(d, p, seed=0)
    res = rf.spectrum(W, k=n_top(d), tol=1e-8)
    assert res.method == "matrix-free" and res.products == 2 and res.ok
    J = rf.fisher_matrix(W)
    V = res.eigenvectors
    true = np.linalg.norm(J @ V - V * res.eigenvalues, axis=0)
    assert true.max() <= 1e-8 * res.eigenvalues[0]
    np.testing.assert_allclose(res.residuals, true, rtol=1e-3, atol=1e-13 * res.eigenvalues[0])
    # the theory's start (degree 2) needs a third product for the same pairs
    assert rf.spectrum(W, k=n_top(d), tol=1e-8, seed_degree=2).products == 3


def test_torch_backend_route_matches_dense():
    """The torch path of the product engine through spectrum (on CPU here; the same code runs on CUDA)."""
    pytest.importorskip("torch")
    d, p = 4, 1300
    W = rf.sample_weights(d, p, seed=12)
    w = np.linalg.eigvalsh(rf.fisher_matrix(W))[::-1]
    res = rf.spectrum(W, backend="torch", tol=1e-10)
    m = n_top(d)
    assert res.method.startswith("matrix-free (torch") and res.clusters_converged
    np.testing.assert_allclose(res.eigenvalues[:m], w[:m], rtol=0, atol=1e-10 * w[0])
    with pytest.raises(ValueError, match="matrix-free route"):
        rf.spectrum(W, backend="torch", fisher="monte-carlo", n=100)


@pytest.mark.parametrize("order", ["F", "C"])
def test_subtract_projection_updates_X_in_either_layout(order):
    # in place: one dgemm for a Fortran-ordered X, the NumPy expression otherwise (f2py would work on a copy)
    from relufim.spectrum.eigensolver import _subtract_projection

    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((40, 3)))
    Q = np.asfortranarray(Q)
    X = np.array(rng.standard_normal((40, 5)), order=order)
    want = X - Q @ (Q.T @ X)
    _subtract_projection(X, Q)
    assert np.allclose(X, want, rtol=0, atol=1e-14)

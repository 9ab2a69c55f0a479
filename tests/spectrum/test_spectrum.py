"""spectrum() against dense numpy.linalg.eigh: eigenvalues, every cluster member, subspaces, residual flags."""

import numpy as np
import pytest
from scipy.sparse.linalg import aslinearoperator

import relufim as rf
from relufim.fim.series import series_features
from relufim.spectrum import n_top
from relufim.spectrum.solve import auto_seed_degree


@pytest.fixture(scope="module")
def problem():
    d, p = 6, 1800
    W = rf.sample_weights(d, p, seed=11)
    J = rf.fisher_matrix(W)
    w, V = np.linalg.eigh(J)
    return d, W, J, w[::-1], V[:, ::-1]


def principal_sines(A, B):
    """Sines of the principal angles, computed directly (1 - cos^2 would lose half the digits)."""
    Qa, _ = np.linalg.qr(A)
    Qb, _ = np.linalg.qr(B)
    return np.linalg.svd(Qb - Qa @ (Qa.T @ Qb), compute_uv=False)


def cluster_slices(d):
    sizes = rf.predicted_cluster_sizes(d)
    ends = np.cumsum(sizes)
    return [slice(e - s, e) for s, e in zip(sizes, ends)]


@pytest.mark.parametrize("method", ["dense", "block"])
def test_matches_dense_eigh(problem, method):
    d, W, J, w, V = problem
    res = rf.spectrum(W, method=method)
    k = n_top(d) + 10
    assert res.eigenvalues.shape == (k,) and res.ok
    # eigenvalues to 1e-10 relative to lambda_max (the residual tolerance; eigenvalue error <= residual)
    np.testing.assert_allclose(res.eigenvalues, w[:k], rtol=0, atol=1e-10 * w[0])
    # every member of each (tight) cluster is present, and its subspace matches to 1e-8
    assert [c.size for c in res.clusters] == list(rf.predicted_cluster_sizes(d))
    for sl in cluster_slices(d):
        # sin(angle) <= residual / gap (Davis-Kahan): 1e-10 lambda_max / (gap ~ 1e-2 lambda_max)
        assert principal_sines(res.eigenvectors[:, sl], V[:, sl]).max() < 1e-8
    # reported residuals are the true ones
    true_res = np.linalg.norm(J @ res.eigenvectors - res.eigenvectors * res.eigenvalues, axis=0)
    np.testing.assert_allclose(res.residuals, true_res, rtol=1e-3, atol=1e-14 * w[0])
    assert res.top_fraction == pytest.approx(w[: n_top(d)].sum() / np.trace(J), rel=1e-12)


def test_matrix_and_operator_inputs_agree(problem):
    d, W, J, w, _ = problem
    seeds = rf.theory_vectors(W).seed_block()
    r_dense = rf.matrix_spectrum(J, k=12)
    r_op = rf.matrix_spectrum(aslinearoperator(J), k=12, X0=seeds)
    for r in (r_dense, r_op):
        np.testing.assert_allclose(r.eigenvalues, w[:12], rtol=0, atol=1e-10 * w[0])
        assert r.ok
    r_all = rf.matrix_spectrum(J, k="all", vectors=False)
    np.testing.assert_allclose(r_all.eigenvalues, w, rtol=0, atol=1e-13 * w[0])
    assert r_all.top_fraction is None  # d unknown for a bare matrix
    assert [c.size for c in rf.matrix_spectrum(J, "clusters", d=d).clusters] == list(rf.predicted_cluster_sizes(d))


def test_tight_cluster_is_never_split():
    # an exactly repeated eigenvalue of multiplicity 20 just at the cut k = 25
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((400, 400)))
    lam = np.concatenate([np.linspace(10, 6, 10), np.full(20, 3.0), np.linspace(1, 0.01, 370)])
    A = (Q * lam) @ Q.T
    A = (A + A.T) / 2
    res = rf.matrix_spectrum(A, k=30, method="block")
    np.testing.assert_allclose(res.eigenvalues, lam[:30], atol=1e-9 * 10)
    assert res.ok


def test_unconverged_pairs_are_flagged_not_hidden(problem):
    _, W, J, _, _ = problem
    res = rf.matrix_spectrum(J, k=40, method="block", maxiter=1, tol=1e-14)
    assert not res.ok
    assert (~res.converged).any()
    assert res.residuals[~res.converged].min() > 1e-14 * res.eigenvalues[0]


def test_monte_carlo_spectrum_matches_dense_monte_carlo_fisher():
    d, p = 4, 300
    W = rf.sample_weights(d, p, seed=1)
    for n in (200, 900):  # Gram side (n <= p) and p side
        Jn = rf.monte_carlo_fisher(W, n, seed=5)
        w = np.linalg.eigvalsh(Jn)[::-1]
        res = rf.spectrum(W, fisher="monte-carlo", n=n, seed=5)
        k = res.eigenvalues.size
        np.testing.assert_allclose(res.eigenvalues, w[:k], rtol=0, atol=1e-10 * w[0])
        assert res.ok and res.n == n
        assert res.trace == pytest.approx(np.trace(Jn), rel=1e-12)
        # eigenvectors are eigenvectors of J^(n)
        V = res.eigenvectors[:, : n_top(d)]
        assert np.linalg.norm(Jn @ V - V * res.eigenvalues[: n_top(d)], axis=0).max() < 1e-9 * w[0]


def test_empirical_spectrum_and_sigma():
    W = rf.sample_weights(3, 200, seed=2)
    x = np.random.default_rng(3).standard_normal((150, 3))
    Je = rf.empirical_fisher(W, x, sigma=0.5)
    res = rf.spectrum(W, k=9, fisher="empirical", x=x, sigma=0.5)
    np.testing.assert_allclose(res.eigenvalues, np.linalg.eigvalsh(Je)[::-1][:9], rtol=1e-10)


@pytest.mark.parametrize("kwargs, words", [
    (dict(k=0), "k must be >= 1"),
    (dict(k=10_000), "exceeds the matrix size"),
    (dict(k="some"), "k must be an int, 'clusters' or 'all'"),
    (dict(method="arpack"), "method must be"),
    (dict(fisher="monte-carlo"), "needs the number of samples n"),
    (dict(fisher="empirical"), "needs the inputs x"),
    (dict(tol=2.0), "tol must be"),
    (dict(required=0), "required must be >= 1"),
    (dict(required=1.5), "required must be an integer"),
    (dict(k=5, required=6), r"required = 6 exceeds .* k = 5"),
    (dict(k="all", required=51), r"required = 51 exceeds .* k = 50"),
])
def test_bad_arguments(kwargs, words):
    W = rf.sample_weights(3, 50, seed=0)
    with pytest.raises((ValueError, TypeError), match=words):
        rf.spectrum(W, **kwargs)


def test_bad_matrices():
    with pytest.raises(ValueError, match="symmetric"):
        rf.matrix_spectrum(np.triu(np.ones((5, 5))), k=2)
    with pytest.raises(ValueError, match="pass d="):
        rf.matrix_spectrum(np.eye(5), k="clusters")
    with pytest.raises(ValueError, match="non-finite"):
        rf.matrix_spectrum(np.full((3, 3), np.nan), k=1)


def test_each_entry_point_refuses_the_other_kind():
    """spectrum takes hidden weights, matrix_spectrum matrices: neither guesses from a shape (issue 10)."""
    W = rf.sample_weights(3, 6, seed=0)
    J = rf.fisher_matrix(W)
    with pytest.raises(ValueError, match=r"square array is a matrix.*matrix_spectrum"):
        rf.spectrum(J)
    with pytest.raises(ValueError, match=r"transposed, pass W.T"):
        rf.spectrum(W.T)
    with pytest.raises(ValueError, match=r"square matrix \(p, p\).*relufim.spectrum\(W\)"):
        rf.matrix_spectrum(W)
    with pytest.raises(ValueError, match=r"features of shape \(n, p\)"):
        rf.feature_spectrum(np.ones(5))
    with pytest.raises(TypeError, match="LinearOperator"):
        rf.matrix_spectrum(rf.fisher_operator(rf.sample_weights(3, 40, seed=0)).matmat)


@pytest.mark.parametrize("d, p", [(1, 40), (2, 600), (3, 2500)])
def test_small_d_clusters_match_dense(d, p):
    # d = 1 has only two clusters (the third has d(d+1)/2 - 1 = 0 members); at d = 3 the later
    # degree-4 -> 6 gap is larger than the 1 -> 2 gap, so the search must stay in the top d(d+3)/2 + 1
    W = rf.sample_weights(d, p, seed=0)
    res = rf.spectrum(W)
    w = np.linalg.eigvalsh(rf.fisher_matrix(W))[::-1]
    np.testing.assert_allclose(res.eigenvalues, w[: res.eigenvalues.size], rtol=0, atol=1e-9 * w[0])
    expected = [s for s in rf.predicted_cluster_sizes(d) if s > 0]
    assert [c.size for c in res.clusters] == expected


def test_cluster_convergence_is_judged_separately_from_the_extras(problem):
    d, W, J, w, _ = problem
    res = rf.matrix_spectrum(J, "clusters", d=d, method="block", maxiter=2, tol=1e-10,
                             X0=rf.theory_vectors(W).seed_block())
    m = n_top(d)
    assert res.clusters_converged == bool(res.converged[:m].all())
    assert res.max_cluster_residual == pytest.approx(res.residuals[:m].max())
    # oracle: true residuals of the cluster pairs against the dense J
    V = res.eigenvectors[:, :m]
    true = np.linalg.norm(J @ V - V * res.eigenvalues[:m], axis=0).max()
    assert res.max_cluster_residual == pytest.approx(true, rel=1e-3, abs=1e-14 * w[0])


def test_required_converges_every_asked_pair_on_the_matrix_free_route(problem):
    """required=k makes the matrix-free route (which by default requires only the clusters) converge the
    pairs beyond them too: eigenvalues against dense eigh, residuals against the dense J."""
    d, W, J, w, _ = problem
    k, tol = n_top(d) + 10, 1e-10
    res = rf.spectrum(W, k=k, method="matrix-free", tol=tol, required=k)
    assert res.method == "matrix-free" and res.converged.all()
    # a residual r puts the Ritz value within r of an eigenvalue: 1e-10 lambda_max, the tolerance
    np.testing.assert_allclose(res.eigenvalues, w[:k], rtol=0, atol=1e-10 * w[0])
    V = res.eigenvectors
    true = np.linalg.norm(J @ V - V * res.eigenvalues, axis=0)
    assert true.max() <= tol * w[0]
    np.testing.assert_allclose(res.residuals, true, rtol=1e-3, atol=1e-14 * w[0])


def test_requests_that_cannot_fit_are_refused_before_allocating(monkeypatch):
    """With 50 MB 'available', each route refuses up front, naming the size, instead of allocating."""
    import sys

    validation = sys.modules["relufim._validation"]
    monkeypatch.setattr(validation, "available_memory_bytes", lambda: 50_000_000)
    W = rf.sample_weights(10, 20_000, seed=0)  # 1.6 MB
    with pytest.raises(ValueError, match=r"matrix-free solver for p = 20000.*needs .* but only 50.0 MB.*series_fisher"):
        rf.spectrum(W)
    with pytest.raises(ValueError, match=r"array of hidden features needs .*fewer samples n"):
        rf.spectrum(W, fisher="monte-carlo", n=1000)
    with pytest.raises(ValueError, match=r"theory's vectors for p = 50000.*X0"):
        rf.theory_vectors(rf.sample_weights(10, 50_000, seed=0))  # 57 MB of vectors
    with pytest.raises(ValueError, match=r"W of shape \(10, 10000000\) needs 800.0 MB"):
        rf.sample_weights(10, 10_000_000, seed=0)


def test_result_says_which_start_the_block_solver_took():
    W = rf.sample_weights(3, 600, seed=0)
    k = n_top(3) + 10
    auto = rf.spectrum(W, method="matrix-free")
    expected = auto_seed_degree(3, 600, k + 2)  # the route's rule, for its block of k + 2 vectors
    explicit = rf.spectrum(W, method="matrix-free", seed_degree=expected)
    # the label names the start that was run: auto and the explicit degree take the same products
    label = "t-series degree 4, preconditioned" if expected == 4 else "t-series degree 2"
    assert auto.start == explicit.start == label
    assert auto.products == explicit.products and auto.to_dict()["start"] == auto.start
    assert rf.spectrum(W, method="matrix-free", seed_degree=2).start == "t-series degree 2"
    # the caller's X0, and the degree-4 preconditioner where the route runs one: the label says both
    given = rf.spectrum(W, method="matrix-free", X0=series_features(W, 2))
    assert given.start == ("X0, t-series degree 4 preconditioner" if expected == 4 else "X0")
    assert rf.spectrum(W, method="matrix-free", X0=series_features(W, 2), seed_degree=2).start == "X0"
    with_four = rf.spectrum(W, method="matrix-free", X0=series_features(W, 2), seed_degree=4)
    assert with_four.start == "X0, t-series degree 4 preconditioner"
    assert rf.spectrum(W, method="dense").start is None  # LAPACK: no products, no start


def test_sampled_and_matrix_routes_say_which_start_the_block_solver_took():
    """The sampled routes start from the t-series features (Gram side: their image X S); the label names that start.

    Oracle: the same matrix, diagonalized by matrix_spectrum from the explicit start, takes the same products.
    """
    d, p, seed = 3, 200, 5
    W = rf.sample_weights(d, p, seed=seed)
    S = series_features(W, 2)
    k = n_top(d) + 10
    for n in (400, 150):  # n > p: the p x p J^(n); n <= p: its n x n Gram
        res = rf.spectrum(W, fisher="monte-carlo", n=n, seed=seed, method="block")
        assert res.method == ("block" if n > p else "block-gram") and res.products > 0
        assert res.start == res.to_dict()["start"] == "t-series degree 2"
        assert rf.spectrum(W, fisher="monte-carlo", n=n, seed=seed, method="block", X0=S).start == "X0"
        assert rf.spectrum(W, fisher="monte-carlo", n=n, seed=seed, method="dense").start is None  # LAPACK
    Jn = rf.monte_carlo_fisher(W, 400, seed=seed)
    explicit = rf.matrix_spectrum(Jn, k, method="block", X0=S)
    sampled = rf.spectrum(W, fisher="monte-carlo", n=400, seed=seed, method="block")
    assert explicit.start == "X0" and explicit.products == sampled.products
    np.testing.assert_allclose(sampled.eigenvalues, explicit.eigenvalues, rtol=1e-9)
    assert rf.matrix_spectrum(Jn, k, method="block").start is None  # random start: no seed to name


def test_spectrum_route_is_the_route_spectrum_takes(monkeypatch):
    import sys

    monkeypatch.setattr(sys.modules["relufim.spectrum.solve"], "MATRIX_FREE_LIMIT", 500)
    for p, kwargs in [(600, {}), (400, {}), (600, {"activation": "tanh"}), (600, {"method": "block"}),
                      (300, {"method": "matrix-free"})]:
        W = rf.sample_weights(3, p, seed=1)
        route = rf.spectrum_route(p, 9, **kwargs)
        method = rf.spectrum(W, k=9, vectors=False, **kwargs).method
        assert (route == "matrix-free") == (method == "matrix-free"), (p, kwargs, route, method)
    assert rf.spectrum_route(600, 151) == "dense"  # k > p/4: dense, whatever p
    with pytest.raises(ValueError, match=r"pass d="):
        rf.spectrum_route(600)
    with pytest.raises(ValueError, match=r"client=.*method 'auto' or 'matrix-free'"):
        rf.spectrum_route(600, d=3, method="dense", distributed=True)

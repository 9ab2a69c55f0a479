"""The spectrum of the FIM of all parameters and the curvature approximations judged against it (theory §15).

Oracles: Monte Carlo with error bars (K-FAC's Kronecker factors, the teacher's loss gradient by
torch.func), dense LAPACK, the readout FIM of today's engine, and identities of the approximations.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import relufim as rf
from relufim.fim.full import (
    full_fisher_matrix,
    full_gradients,
    full_monte_carlo_fisher,
    rescaling_directions,
)
from relufim.fim.sampled import gaussian_input_chunks
from relufim.model.kernels import step_kernel
from relufim.theory.curvature import (
    block_diagonal_fisher,
    compare_curvature,
    curvature_reference,
    diagonal_fisher,
    full_spectrum,
    kfac_factors,
    kfac_fisher,
    largest_unit_cosine,
    measured_clusters,
    natural_gradient,
    teacher_gradient,
)


def network(d: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    W = rf.sample_weights(d, p, seed=seed)
    return W, np.random.default_rng(seed + 100).standard_normal(p) / math.sqrt(p)


# ----------------------------------------------------------------------------- K-FAC and the approximations

def test_kfac_factors_against_monte_carlo_kronecker_factors():
    d, p, n = 3, 6, 200_000
    W, v = network(d, p, seed=1)
    f = kfac_factors(W, v, sigma=0.5)
    x = np.vstack(list(gaussian_input_chunks(n, d, 2)))
    delta = (x @ W > 0) * v  # back-propagated signal of the hidden layer, (n, p)
    a = np.maximum(x @ W, 0.0)  # input of the readout layer
    for closed, samples_left, samples_right, scale in [
            (f.hidden_input, x, x, 1.0), (f.hidden_output, delta, delta, 0.25), (f.readout_input, a, a, 1.0)]:
        prod = samples_left[:, :, None] * samples_right[:, None, :]
        mean, se = prod.mean(0), prod.std(0, ddof=1) / math.sqrt(n)
        # entrywise within 5 standard errors (CLT; at most 36 entries per factor); sigma scales G only
        assert np.all(np.abs(closed * scale - mean) <= 5 * se + 1e-12)
    assert f.readout_output == 4.0


def test_kfac_is_exact_on_the_readout_and_drops_the_rank_two_part():
    d, p = 4, 7
    W, v = network(d, p, seed=2)
    F, K = full_fisher_matrix(W, v), kfac_fisher(W, v)
    assert np.array_equal(K[:p, :p], F[:p, :p]) or np.allclose(K[:p, :p], F[:p, :p], rtol=1e-14, atol=0)
    assert not K[:p, p:].any() and not K[p:, :p].any()
    E = W / np.linalg.norm(W, axis=0)
    for i in range(p):
        for j in range(p):
            Fb = F[p + i * d:p + (i + 1) * d, p + j * d:p + (j + 1) * d]
            Kb = K[p + i * d:p + (i + 1) * d, p + j * d:p + (j + 1) * d]
            # K-FAC keeps v_i v_j kappa0 I, kappa0 from the library's independent arccos formula (kappa0 = 1/2 on
            # the diagonal: arccos of a rounded 1 would lose 1e-8 there)
            k0 = 0.5 if i == j else step_kernel(E[:, i] @ E[:, j])
            assert np.allclose(Kb, v[i] * v[j] * k0 * np.eye(d), rtol=1e-12, atol=1e-15)
            G = Fb - Kb  # the dropped part: traceless, in the plane of e_i, e_j (rank <= 2)
            assert abs(np.trace(G)) < 1e-14
            if i != j:
                Q, _ = np.linalg.qr(E[:, [i, j]])
                assert np.allclose(G - Q @ (Q.T @ G @ Q) @ Q.T, 0.0, atol=1e-14)
    assert np.trace(K) == pytest.approx(np.trace(F), rel=1e-13)  # kappa0(0) = 1/2 keeps the diagonal


def test_block_diagonal_and_diagonal():
    d, p = 3, 8
    W, v = network(d, p, seed=3)
    F = full_fisher_matrix(W, v, sigma=2.0)
    B = block_diagonal_fisher(W, v, sigma=2.0)
    assert np.array_equal(B[:p, :p], F[:p, :p]) and np.array_equal(B[p:, p:], F[p:, p:])
    assert not B[:p, p:].any()
    assert np.allclose(diagonal_fisher(W, v, sigma=2.0), np.diag(np.diag(F)), rtol=1e-15, atol=0)


# ----------------------------------------------------------------------------- the teacher's gradient

def test_teacher_gradient_against_torch_autodiff_monte_carlo():
    torch = pytest.importorskip("torch")
    d, p, q, n = 3, 5, 4, 400_000
    W, v = network(d, p, seed=4)
    Wt, vt = network(d, q, seed=5)
    g = teacher_gradient(W, v, Wt, vt)
    x = torch.from_numpy(np.vstack(list(gaussian_input_chunks(n, d, 6))))
    vv, WW = torch.from_numpy(v).requires_grad_(), torch.from_numpy(W).requires_grad_()

    def per_sample():  # gradients of (f - f*)^2 / 2 sample by sample
        from torch.func import grad, vmap

        def loss(v_, W_, x_):
            f = v_ @ torch.relu(W_.T @ x_)
            fs = torch.from_numpy(vt) @ torch.relu(torch.from_numpy(Wt).T @ x_)
            return 0.5 * (f - fs) ** 2

        gv, gW = vmap(grad(loss, argnums=(0, 1)), in_dims=(None, None, 0))(vv.detach(), WW.detach(), x)
        return np.hstack([gv.numpy(), gW.numpy().transpose(0, 2, 1).reshape(n, -1)])

    G = per_sample()
    mean, se = G.mean(0), G.std(0, ddof=1) / math.sqrt(n)
    # 20 entries within 5 standard errors (CLT)
    assert np.all(np.abs(g - mean) <= 5 * se + 1e-13)
    assert np.abs(g @ rescaling_directions(W, v)).max() < 1e-14 * np.abs(g).max() * 10


def test_natural_gradient_solves_the_damped_system():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 12))
    A = X.T @ X / 30
    g = rng.standard_normal(12)
    assert np.allclose(natural_gradient(A, g, 0.1), np.linalg.solve(A + 0.1 * np.eye(12), g), rtol=1e-12)
    with pytest.raises(ValueError, match="damping"):
        natural_gradient(A, g, 0.0)


# ----------------------------------------------------------------------------- comparisons

@pytest.fixture(scope="module")
def reference():
    d, p = 3, 30
    W, v = network(d, p, seed=7)
    Wt, vt = network(d, 10, seed=8)
    return W, v, curvature_reference(W, v, teacher_gradient(W, v, Wt, vt), damping=1e-4)


def test_comparison_of_exact_and_scaled(reference):
    W, v, ref = reference
    same = compare_curvature(ref, ref.F.copy(), "exact")
    assert same.relative_frobenius_error == 0.0 and same.max_eigenvalue_error < 1e-8
    assert same.min_principal_cosine > 1 - 1e-9 and same.natural_gradient_cosine > 1 - 1e-12
    twice = compare_curvature(ref, 2.0 * ref.F, "twice")
    # 2F: Frobenius error 1, every eigenvalue off by 100 %, the same eigenvectors
    assert twice.relative_frobenius_error == pytest.approx(1.0, rel=1e-13)
    assert np.allclose(twice.eigenvalue_errors, 1.0, rtol=1e-7)
    assert twice.min_principal_cosine > 1 - 1e-9
    assert ref.k == 9 and ref.gap > 3  # d(d+3)/2 pairs, at a gap


def test_known_eigenpairs_of_the_diagonal_agree_with_the_solver(reference):
    W, v, ref = reference
    D = diagonal_fisher(W, v)
    top = np.argsort(np.diag(D))[::-1][:ref.k]
    vecs = np.zeros((D.shape[0], ref.k))
    vecs[top, np.arange(ref.k)] = 1.0
    a = compare_curvature(ref, D, "diagonal", eigenpairs=(np.diag(D)[top], vecs))
    b = compare_curvature(ref, D, "diagonal")
    # the solver's eigenvalues carry residual-sized errors (tol 1e-8 of lambda_max)
    assert np.allclose(a.eigenvalues, b.eigenvalues, rtol=0, atol=1e-7 * a.eigenvalues[0])
    assert a.eigen_converged and a.natural_gradient_cosine == b.natural_gradient_cosine
    with pytest.raises(ValueError, match="eigenpairs must be"):
        compare_curvature(ref, D, "diagonal", eigenpairs=(np.diag(D)[top][:-1], vecs))


def test_monte_carlo_error_falls_like_one_over_root_n(reference):
    W, v, ref = reference
    d, p = W.shape
    # E||F_n - F||_F^2 = (E||g||^4 - ||F||_F^2) / n exactly (i.i.d. samples); E||g||^4 by Monte Carlo
    x = np.vstack(list(gaussian_input_chunks(400_000, d, 9)))
    g2 = (full_gradients(W, v, x) ** 2).sum(1)
    m4, m4_se = float((g2**2).mean()), float((g2**2).std(ddof=1) / math.sqrt(x.shape[0]))
    errs = []
    for n in (500, 2000, 8000):
        e2 = [compare_curvature(ref, full_monte_carlo_fisher(W, v, n, seed=s), "mc", n=n).relative_frobenius_error**2
              for s in range(6)]
        pred = (m4 - ref.frobenius_norm**2) / n / ref.frobenius_norm**2
        pred_se = m4_se / n / ref.frobenius_norm**2
        mean, se = float(np.mean(e2)), float(np.std(e2, ddof=1) / math.sqrt(6))
        # the mean over 6 seeds within 5 combined standard errors of the exact prediction
        assert abs(mean - pred) <= 5 * math.hypot(se, pred_se), (n, mean, pred)
        errs.append(mean)
    assert errs[0] > errs[1] > errs[2]


def test_kfac_comparison_is_measured_not_assumed(reference):
    W, v, ref = reference
    c = compare_curvature(ref, kfac_fisher(W, v), "k-fac")
    # K-FAC is exact on J and on kappa0: its Frobenius error is the dropped part, computed independently
    F = ref.F
    dropped = F - kfac_fisher(W, v)
    assert c.relative_frobenius_error == pytest.approx(np.linalg.norm(dropped) / np.linalg.norm(F), rel=1e-12)
    assert 0 < c.relative_frobenius_error < 1 and -1 <= c.natural_gradient_cosine <= 1
    assert c.to_dict()["natural_gradient_angle"] == pytest.approx(c.natural_gradient_angle)


# ----------------------------------------------------------------------------- the spectrum

def test_full_spectrum_dense_null_space_and_statistics():
    d, p = 3, 60
    W, v = network(d, p, seed=10)
    s = full_spectrum(W, v, k="all")
    F = full_fisher_matrix(W, v)
    lam = np.linalg.eigvalsh(F)[::-1]
    assert s.null_space.dimension == p and s.null_space.min_cosine > 1 - 1e-10
    assert s.null_space.gap > 1e4 and s.null_space.rescaling_residual < 1e-14
    assert np.allclose(s.all_eigenvalues, lam, rtol=0, atol=1e-13 * lam[0])
    assert s.mean_eigenvalue == pytest.approx(np.trace(F) / F.shape[0], rel=1e-13)
    assert s.second_moment == pytest.approx((F**2).sum() / F.shape[0], rel=1e-13)
    assert s.lambda_max == pytest.approx(lam[0], rel=1e-12)
    assert s.lambda_max_share == pytest.approx(lam[0] / np.trace(F), rel=1e-12)
    readout = np.linalg.eigvalsh(rf.fisher_matrix(W))[::-1]
    assert np.allclose(s.readout.eigenvalues, readout[:s.readout.eigenvalues.size], rtol=1e-9)


def test_full_spectrum_degree_four_start_agrees_with_dense_in_fewer_products():
    d, p, k = 5, 300, 40  # pairs 21-40 lie in the degree-4 group
    W, v = network(d, p, seed=12)
    lam = np.linalg.eigvalsh(full_fisher_matrix(W, v))[::-1]
    two = full_spectrum(W, v, k, method="matrix-free", tol=1e-9, seed_degree=2)
    four = full_spectrum(W, v, k, method="matrix-free", tol=1e-9, seed_degree=4)
    auto = full_spectrum(W, v, k, method="matrix-free", tol=1e-9)
    assert four.result.start == auto.result.start == "Hermite features degree 4, preconditioned"
    assert two.result.start == "Hermite features degree 2"
    # the top group alone (d(d+3)/2 required) is held by the degree-2 features: auto keeps them
    assert full_spectrum(W, v, method="matrix-free", tol=1e-9).result.start == "Hermite features degree 2"
    for s in (two, four):
        assert s.result.converged.all()
        # a residual r bounds the distance to an eigenvalue by r (symmetric matrix)
        assert np.allclose(s.eigenvalues, lam[:k], rtol=0, atol=2e-9 * lam[0])
    # the truncation F_4 holds the degree-4 group: its start and corrections need fewer vectors
    assert four.result.matvecs < two.result.matvecs
    with pytest.raises(ValueError, match="seed_degree must be"):
        full_spectrum(W, v, k, seed_degree=3)
    with pytest.raises(ValueError, match="k='all'"):
        full_spectrum(W, v, "all", seed_degree=4)


def test_full_spectrum_matrix_free_agrees_with_dense_and_measures_clusters():
    d, p = 5, 120
    W, v = network(d, p, seed=11)
    calls = []
    mf = full_spectrum(W, v, method="matrix-free", tol=1e-10, product_progress=lambda *a: calls.append(a),
                       seed_degree=2)
    de = full_spectrum(W, v, method="dense", tol=1e-10)
    assert calls and calls[-1][0] == calls[-1][1]  # every product reported, each to its last tile
    assert mf.operator.progress is None  # the operator handed back reports nothing more to that callback
    assert mf.result.start == de.result.start == "Hermite features degree 2"  # both block solves start there
    lam = np.linalg.eigvalsh(full_fisher_matrix(W, v))[::-1]
    k = 20  # d(d+3)/2 required pairs
    assert mf.result.converged[:k].all() and de.result.converged[:k].all()
    # residual r bounds the eigenvalue error by r (symmetric matrix)
    assert np.allclose(mf.eigenvalues[:k], lam[:k], rtol=0, atol=1e-10 * lam[0] * 2)
    assert mf.second_moment == pytest.approx(de.second_moment, rel=1e-12)
    # the null space: the theorem of theory §15.3 (hypotheses checked) against the dense numerical one
    assert mf.null_space.rescaling_residual < 1e-14 and mf.null_space.method.startswith("theorem")
    dense_null = full_spectrum(W, v, "all").null_space
    assert mf.null_space.dimension == dense_null.dimension == p and dense_null.min_cosine > 1 - 1e-10
    sizes = [c.size for c in mf.clusters]
    assert sizes[:3] == [1, 5, 14]  # measured at d = 5 (ratios > 1.4 cut them), theory §15.5
    # the claim of theory §15.5: the k-th cluster's eigenspace lies within a few percent (5 %) in the span of the
    # Hermite features of degree <= k and is orthogonal (to 5 %) to those of lower degree
    for deg, c in enumerate(mf.clusters[:3]):
        assert c.captured[deg] > 0.95, (deg, c.captured)
        assert all(c.captured[low] < 0.05 for low in range(deg)), (deg, c.captured)
    d_ = mf.to_dict()
    assert d_["params"] == "all" and d_["P"] == p * (d + 1) and d_["null_space_dimension"] == p


def test_null_space_theorem_is_applied_only_where_its_hypotheses_hold():
    """Without every eigenvalue the dimension comes from theory §15.3; a zero v_j (which adds d - 1 null directions,
    as the dense eigenvalues show) or two antiparallel units leave it unknown instead of guessed."""
    d, p = 4, 60
    W, v = network(d, p, seed=3)
    ok = full_spectrum(W, v, 10, method="matrix-free", tol=1e-8).null_space
    assert ok.dimension == p and ok.max_unit_cosine == largest_unit_cosine(W)
    G = (W / np.linalg.norm(W, axis=0)).T @ (W / np.linalg.norm(W, axis=0))
    assert ok.max_unit_cosine == pytest.approx(np.abs(G - np.diag(np.diag(G))).max(), abs=1e-15)
    v0 = v.copy()
    v0[5] = 0.0
    assert full_spectrum(W, v0, "all").null_space.dimension == p + d - 1  # the oracle: dense eigenvalues
    none = full_spectrum(W, v0, 10, method="matrix-free", tol=1e-8).null_space
    assert none.dimension is None and "not applied" in none.method
    W2 = W.copy()
    W2[:, 7] = -2.0 * W2[:, 3]
    anti = full_spectrum(W2, v, 10, method="matrix-free", tol=1e-8).null_space
    assert anti.dimension is None and "antiparallel" in anti.method and anti.max_unit_cosine >= 1 - 1e-12
    # the dense top-k route (not every eigenvalue) uses the theorem too, with all p residuals
    top = full_spectrum(W, v, 10, method="dense", tol=1e-8).null_space
    assert top.dimension == p and "all 60" in top.method


def test_measured_clusters_assume_no_sizes():
    lam = np.array([10.0, 9.5, 2.0, 1.9, 1.8, 0.1])
    cl = measured_clusters(lam, None, 3, 1)
    assert [c.size for c in cl] == [2, 3, 1] and cl[-1].closed is False and cl[0].gap_below == pytest.approx(9.5 / 2)


def test_measured_clusters_capture_depends_on_the_span_only():
    # the share of each group's span inside the feature spans, against a direct projection; a basis of the same
    # groups that is not orthonormal (mixed within each group) gives the same shares
    rng = np.random.default_rng(5)
    P, d = 400, 2
    feats = rng.standard_normal((P, 1 + d + d * (d + 1) // 2))
    U = np.linalg.qr(np.column_stack([feats[:, :3] + 0.1 * rng.standard_normal((P, 3)),
                                      rng.standard_normal((P, 3))]))[0]
    lam = np.array([9.0, 4.0, 3.9, 3.8, 1.0, 0.9])
    ref = measured_clusters(lam, U, P // 3, d, features=feats)
    mixed = U.copy()
    mixed[:, 1:4] = U[:, 1:4] @ rng.standard_normal((3, 3))
    got = measured_clusters(lam, mixed, P // 3, d, features=feats)
    Q1 = np.linalg.qr(feats[:, :1 + d])[0]
    for a, b, c in zip(ref, got, [(0, 1), (1, 4), (4, 6)], strict=True):
        block = U[:, c[0]:c[1]]
        direct = np.sum((Q1.T @ block) ** 2) / block.shape[1]  # trace of the projector onto span, per vector
        assert a.captured[1] == pytest.approx(direct, abs=1e-12)
        for k in a.captured:
            assert b.captured[k] == pytest.approx(a.captured[k], abs=1e-12)


@pytest.mark.parametrize("k, method, message", [("all", "auto", "every eigenpair"),
                                               (30, "matrix-free", "Hermite features")])
def test_refusals_come_before_the_features_and_the_tile_passes(k, method, message, monkeypatch):
    # a request that cannot fit is refused with its numbers before any P x N or tile pass is spent on it
    import relufim._validation as validation
    import relufim.fim.full as full

    curv = sys.modules["relufim.theory.curvature"]
    W, v = network(3, 1000)  # P = 4000: the operator's tiles (11 MB) fit in 20 MB, the solver's space does not
    monkeypatch.setattr(validation, "available_memory_bytes", lambda: 20_000_000)
    spent = []
    monkeypatch.setattr(curv, "full_hermite_features", lambda *a, **kw: spent.append("features"))
    monkeypatch.setattr(full.FullFisherOperator, "frobenius_norm_squared", lambda self: spent.append("tiles"))
    with pytest.raises(ValueError, match=message):
        full_spectrum(W, v, k, method=method)
    assert spent == []


def test_bad_input():
    W, v = network(3, 10)
    with pytest.raises(ValueError, match="exceeds the number of parameters"):
        full_spectrum(W, v, k=41)
    with pytest.raises(ValueError, match="k must be one of"):
        full_spectrum(W, v, k="everything")
    with pytest.raises(ValueError, match="dense route"):
        full_spectrum(W, v, k="all", method="matrix-free")
    with pytest.raises(ValueError, match="method must be one of 'auto', 'dense', 'matrix-free', got 'lapack'"):
        full_spectrum(W, v, method="lapack")  # checked once, by full_spectrum_route
    with pytest.raises(TypeError, match="W must be a 2-D array"):
        largest_unit_cosine("W")
    with pytest.raises(ValueError, match="W must be 2-D"):
        largest_unit_cosine(np.ones(4))
    with pytest.raises(ValueError, match="chunk must be"):
        largest_unit_cosine(W, chunk=0)
    with pytest.raises(ValueError, match=r"W_teacher must have shape \(d, q\) = \(3, q\)"):
        teacher_gradient(W, v, np.ones((2, 4)), np.ones(4))
    with pytest.raises(ValueError, match="v_teacher"):
        teacher_gradient(W, v, np.ones((3, 4)), np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        kfac_fisher(W, v[:9])

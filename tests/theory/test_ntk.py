"""NTK and the FIM <-> NTK map (theory §12) against independent oracles.

Oracles: explicit loops; autodiff in PyTorch (``torch.func``: Jacobian contraction for the NTK
of both layers, per-sample scores of the Gaussian log-likelihood for the FIM); large-``p``
finite-width Grams averaged over independent weights, with error bars; quadrature
(``scipy.integrate.quad``); the Nyström eigenvalues of the limit kernel on Gaussian samples;
and the spectrum module's own Monte Carlo route.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import relufim as rf
from relufim.model.harmonics import harmonic_multiplicity
from relufim.theory.ntk import fisher_ntk_map, ntk_gram, ntk_limit

Z = 5.0  # z-score bound (N(0,1) exceeds 5 with probability 6e-7)


# ----------------------------------------------------------------------------- finite width

def test_ntk_gram_matches_loops():
    rng = np.random.default_rng(0)
    W, v = rng.standard_normal((3, 6)), rng.standard_normal(6)
    x, x2 = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    relu = lambda z: max(z, 0.0)
    Kv = np.array([[sum(relu(a @ W[:, j]) * relu(b @ W[:, j]) for j in range(6)) for b in x2] for a in x])
    Kh = np.array([[(a @ b) * sum(v[j] ** 2 * (a @ W[:, j] > 0) * (b @ W[:, j] > 0) for j in range(6)) for b in x2]
                   for a in x])
    assert np.allclose(ntk_gram(W, x, x2), Kv, atol=1e-13)
    assert np.allclose(ntk_gram(W, x, x2, v=v, which="full"), Kv + Kh, atol=1e-13)
    K = ntk_gram(W, x)
    assert np.allclose(K, K.T) and np.linalg.eigvalsh(K).min() > -1e-12


def test_ntk_gram_bad_input():
    W = np.ones((3, 5))
    for kw in (dict(x=np.ones((4, 2))), dict(x=np.ones((4, 3)), x2=np.ones((2, 4))),
               dict(x=np.ones((4, 3)), which="full"), dict(x=np.ones((4, 3)), which="full", v=np.ones(4)),
               dict(x=np.ones((4, 3)), which="both")):
        with pytest.raises(ValueError):
            ntk_gram(W, **kw)


def test_full_ntk_against_torch_jacobian_contraction():
    torch = pytest.importorskip("torch")
    from torch.func import functional_call, jacrev, vmap  # noqa: F401

    rng = np.random.default_rng(1)
    d, p, n = 4, 25, 7
    W, v, x = rng.standard_normal((d, p)) / math.sqrt(p), rng.standard_normal(p), rng.standard_normal((n, d))
    Wt, vt, xt = (torch.tensor(a, dtype=torch.float64) for a in (W, v, x))

    def f(Wp, vp, xi):  # f(x) = ReLU(x W) . v for one input
        return torch.relu(xi @ Wp) @ vp

    jW, jv = vmap(jacrev(f, argnums=(0, 1)), in_dims=(None, None, 0))(Wt, vt, xt)  # (n, d, p), (n, p)
    K_v = (jv @ jv.T).numpy()
    K_W = torch.einsum("adp,bdp->ab", jW, jW).numpy()
    assert np.allclose(ntk_gram(W, x), K_v, rtol=1e-12, atol=1e-13)
    assert np.allclose(ntk_gram(W, x, v=v, which="full"), K_v + K_W, rtol=1e-12, atol=1e-13)


def test_fisher_against_torch_per_sample_scores():
    """FIM = E[score score^T] of log N(y; f_v(x), sigma^2) in v, by autodiff.

    The expectation over y is exact with the two points y = f +- sigma (weights 1/2): the score is
    (y - f) grad_v f / sigma^2, quadratic in (y - f), and E[(y - f)^2] = sigma^2 at both points.
    """
    torch = pytest.importorskip("torch")
    from torch.func import grad, vmap

    rng = np.random.default_rng(2)
    d, p, sigma = 3, 5, 0.7
    W, v = rf.sample_weights(d, p, seed=3), rng.standard_normal(p)
    Wt, vt = torch.tensor(W), torch.tensor(v)

    def loglik(vp, xi, yi):
        f = torch.relu(xi @ Wt) @ vp
        return -0.5 * (yi - f) ** 2 / sigma**2 - math.log(sigma * math.sqrt(2 * math.pi))

    def scores(x):
        xt = torch.tensor(x)
        f = torch.relu(xt @ Wt) @ vt
        out = []
        for sgn in (1.0, -1.0):
            out.append(vmap(grad(loglik), in_dims=(None, 0, 0))(vt, xt, f + sgn * sigma).numpy())
        return out

    # empirical FIM on given inputs: exact identity with X^T X / (n sigma^2)
    x = rng.standard_normal((300, d))
    s1, s2 = scores(x)
    emp = 0.5 * (s1.T @ s1 + s2.T @ s2) / x.shape[0]
    assert np.allclose(rf.empirical_fisher(W, x, sigma=sigma), emp, rtol=1e-12, atol=1e-14)

    # exact FIM (Lemma 1) against the autodiff Monte Carlo average, entrywise error bars
    n = 200000
    x = rng.standard_normal((n, d))
    s1, s2 = scores(x)
    per = 0.5 * (s1[:, :, None] * s1[:, None, :] + s2[:, :, None] * s2[:, None, :])  # (n, p, p)
    mean, se = per.mean(0), per.std(0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(mean - rf.fisher_matrix(W, sigma=sigma)) < Z * se + 1e-15)


# ----------------------------------------------------------------------------- infinite width

def test_ntk_limit_against_large_width_average():
    d, p, seeds = 3, 20000, 6
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, d))
    lim_v = ntk_limit(x).values
    lim_f = ntk_limit(x, which="full", v_sq_norm=1.0).values
    Kv, Kf = [], []
    for s in range(seeds):
        W = rf.sample_weights(d, p, seed=100 + s)
        v = np.random.default_rng(200 + s).standard_normal(p) / math.sqrt(p)  # E ||v||^2 = 1
        Kv.append(ntk_gram(W, x))
        Kf.append(ntk_gram(W, x, v=v, which="full"))
    for K, lim in ((np.stack(Kv), lim_v), (np.stack(Kf), lim_f)):
        mean, se = K.mean(0), K.std(0, ddof=1) / math.sqrt(seeds)
        # t with 5 dof: |t| > 7 has probability 5e-4; the O(1/p) bias is far below se ~ 1/sqrt(p seeds)
        assert np.all(np.abs(mean - lim) < 7 * se + 1e-12)


def test_ntk_limit_scales_and_bad_input():
    x = np.random.default_rng(5).standard_normal((4, 5))
    base = ntk_limit(x).values
    # c = p E||w||^2 / d: p/d for "1/d" and unit columns, p * variance for a float
    assert np.allclose(ntk_limit(x, scale="1/d", p=50).values, base * 50 / 5)
    assert np.allclose(ntk_limit(x, scale="unit", p=50).values, base * 50 / 5)
    assert np.allclose(ntk_limit(x, scale=0.02, p=50).values, base * 50 * 0.02)
    with pytest.raises(ValueError, match="pass the width p"):
        ntk_limit(x, scale="1/d")
    with pytest.raises(ValueError):
        ntk_limit(x, d=4)
    with pytest.raises(ValueError):
        ntk_limit(x, which="w")


@pytest.mark.parametrize("d", [2, 3, 6])
def test_mercer_decomposition(d):
    x = np.random.default_rng(6).standard_normal((5, d))
    lim = ntk_limit(x, max_degree=40)
    assert np.allclose(lim.components.sum(0) + lim.remainder, lim.values, atol=1e-14)
    # the remainder is the tail of a PSD zonal series with coefficients O(k^-(d+2)); by degree 40
    # it is below 1e-3 of the diagonal
    assert np.abs(lim.remainder).max() < 1e-3 * np.abs(lim.values).max()
    # degree eigenvalues d mu_k agree with the limit module (independent log-space code)
    ls = rf.limit_spectrum(d, 6)
    assert np.allclose(lim.eigenvalues[:7], np.asarray(ls.eigenvalues)[:7], rtol=1e-10, atol=1e-15)
    assert [harmonic_multiplicity(d, k) for k in range(4)] == list(lim.multiplicities[:4])


def test_limit_kernel_nystrom_eigenvalues():
    """Eigenvalues of Theta_inf(x_i, x_j)/n on Gaussian samples approach the Mercer eigenvalues d mu_k."""
    d, n = 3, 2000
    x = np.random.default_rng(7).standard_normal((n, d))
    lim = ntk_limit(x, max_degree=2)
    ev = np.linalg.eigvalsh(lim.values / n)[::-1]
    want = np.repeat(lim.eigenvalues[:3], lim.multiplicities[:3])
    # Nystrom error ~ lambda * sqrt(E||x||^4 / n) relative to the operator: about 5 % here,
    # so 15 % on each eigenvalue (and the cluster means) is a 3-sigma band
    assert np.allclose(ev[:9], want, rtol=0.15)
    assert ev[9] < 0.2 * want[-1]


# ----------------------------------------------------------------------------- FIM <-> NTK map

def test_fisher_ntk_map_agrees_and_matches_monte_carlo_spectrum():
    W = rf.sample_weights(3, 300, seed=8)
    m = fisher_ntk_map(W, n=400, seed=9)
    assert m.max_discrepancy < 1e-9
    assert m.cluster_sizes == (1, 3, 5)
    for c in m.cluster_cosines:
        assert c.min() > 1 - 1e-9
    # the same eigenvalues through the spectrum module's own route on the same input stream
    res = rf.spectrum(W, k=9, fisher="monte-carlo", n=400, seed=9)
    assert np.allclose(m.fim_eigenvalues, res.eigenvalues, rtol=1e-9)
    # and through the dense Monte Carlo FIM (n > p side)
    m2 = fisher_ntk_map(W, n=700, seed=10)
    Jn = rf.monte_carlo_fisher(W, 700, seed=10)
    assert np.allclose(m2.fim_eigenvalues, np.linalg.eigvalsh(Jn)[::-1][:9], rtol=1e-9)
    assert m2.to_dict()["max_discrepancy"] < 1e-9


def test_fisher_ntk_map_inputs():
    W = rf.sample_weights(2, 50, seed=0)
    x = np.random.default_rng(1).standard_normal((30, 2))
    m = fisher_ntk_map(W, x=x, k=4)
    assert m.n == 30 and m.fim_eigenvalues.size == 4 and m.max_discrepancy < 1e-9
    with pytest.raises(ValueError):
        fisher_ntk_map(W, n=10, k=11)
    with pytest.raises(ValueError):
        fisher_ntk_map(W, x=np.ones((5, 3)))


def test_fisher_ntk_map_block_route_matches_dense():
    W = rf.sample_weights(4, 400, seed=3)
    a = fisher_ntk_map(W, n=500, seed=4, method="dense")
    b = fisher_ntk_map(W, n=500, seed=4, method="block")
    assert np.allclose(a.fim_eigenvalues, b.fim_eigenvalues, rtol=1e-10)
    assert b.max_discrepancy < 1e-9

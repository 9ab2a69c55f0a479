"""The MDL estimator (issue 14): the fast route's time at d = 10, p = 10^4, n = 10^4 with the 65 cluster directions
coded, what dominates it, and the exact sphere decoder against the fast route on the same problems.

Prints ratios against baselines run in the same process (not a timed test):

* fast MDL estimate (Babai + local search) vs ridge on all p features at the same n (normal equations, Cholesky):
  the estimator a user would otherwise fit to the same data;
* relufim's exact decoder (search order + separable lower bound) vs the textbook Schnorr-Euchner enumeration
  (same start and radius, no reordering, no bound) vs brute force over the whole box (small lattices only).

    python benchmarks/bench_mdl.py            # the goal (< 5 s) and the exact-vs-fast table
    python benchmarks/bench_mdl.py --quick    # smaller problems only

Goal: the fast estimate at d = 10, p = 10^4, n = 10^4 with 65 coded directions in < 5 s.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
from _common import gemm_rate, machine, peak_rss_gb, summary, timings

import relufim as rf
from relufim.theory import default_target, mdl


def data(W, v, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, W.shape[0]))
    return x, mdl._feature_products(W, x, v[:, None])[:, 0] + rng.standard_normal(n)


def ridge_all_features(W, x, y, lam):
    """Baseline: ridge on all p features, (X^T X + n lam I) v = X^T y, X^T X accumulated over row chunks."""
    p = W.shape[1]
    G = np.zeros((p, p))
    b = np.zeros(p)
    for s in range(0, x.shape[0], 2048):
        F = np.maximum(x[s:s + 2048] @ W, 0.0)
        G += F.T @ F
        b += F.T @ y[s:s + 2048]
    G[np.diag_indices(p)] += x.shape[0] * lam
    c = np.linalg.cholesky(G)
    return np.linalg.solve(c.T, np.linalg.solve(c, b))


def textbook_se(R, t, M, m0, rho0, budget):
    """Schnorr-Euchner enumeration without reordering or lower bound (the classical algorithm): nodes, or None."""
    k = R.shape[0]
    best = rho0
    m = np.zeros(k)
    c, lo, hi, dist = [0.0] * k, [0] * k, [0] * k, [0.0] * (k + 1)
    nodes = 0

    def enter(i):
        c[i] = (t[i] - R[i, i + 1:] @ m[i + 1:]) / R[i, i]
        f = math.floor(c[i])
        lo[i], hi[i] = min(f, int(M[i])), max(f + 1, -int(M[i]))

    i = k - 1
    enter(i)
    while True:
        dl = c[i] - lo[i] if lo[i] >= -M[i] else math.inf
        dh = hi[i] - c[i] if hi[i] <= M[i] else math.inf
        take_lo = dl <= dh
        dv = dl if take_lo else dh
        cost = dist[i + 1] + (R[i, i] * dv) ** 2 if dv != math.inf else math.inf
        if cost >= best:
            i += 1
            if i == k:
                return nodes
            continue
        val = lo[i] if take_lo else hi[i]
        if take_lo:
            lo[i] -= 1
        else:
            hi[i] += 1
        nodes += 1
        if nodes > budget:
            return None
        m[i] = val
        if i == 0:
            best = cost
            continue
        dist[i] = cost
        i -= 1
        enter(i)


def goal(reps: int) -> None:
    d, p, n, k = 10, 10_000, 10_000, 65
    W = rf.sample_weights(d, p, seed=0)
    v = default_target(W)
    t0 = time.perf_counter()
    code = mdl.two_stage_code(W, n, radius=2.0, coding="clusters")
    t_design = time.perf_counter() - t0
    assert code.coded == k
    print(f"\n== goal: fast MDL estimate, d = {d}, p = {p}, n = {n}, {k} cluster directions coded ==")
    print(f"code design (before the data: matrix-free eigensolve of the top pairs): {t_design:.2f} s, "
          f"max eigen residual {code.max_residual:.1e} lambda_1")
    sets = [data(W, v, n, s) for s in range(3)]
    fast = []
    for x, y in sets:
        fast += timings(lambda x=x, y=y: mdl.mdl_estimate(code, x, y, method="fast"), repeats=reps, warmup=False)
    med = sorted(fast)[len(fast) // 2]
    print(f"fast estimate (features + QR + Babai + local search), 3 data sets x {reps}: {summary(fast)}; "
          f"goal < 5 s: {'met' if med < 5 else 'NOT met'} ({med / 5:.2f} of the goal)")
    # what dominates
    x, y = sets[0]
    B = code.basis * code.steps
    t_feat = timings(lambda: mdl._feature_products(W, x, B), repeats=reps)
    Z = mdl._feature_products(W, x, B)
    t_qr = timings(lambda: mdl._cvp_from_design(Z, y, code.box), repeats=reps)
    cvp = mdl._cvp_from_design(Z, y, code.box)
    t_ls = timings(lambda: mdl._local_search(cvp.G, cvp.h, cvp.M, mdl._babai(cvp.R, cvp.t, cvp.M)), repeats=reps)
    flops = 2.0 * n * p * (d + k)
    rate = gemm_rate()
    tf = sorted(t_feat)[len(t_feat) // 2]
    print(f"  features ReLU(xW) B in row chunks: {summary(t_feat)} ({flops / tf / 1e9:.1f} GFLOP/s of "
          f"{rate:.1f} GEMM: {flops / tf / 1e9 / rate:.0%})")
    print(f"  order + QR of X B ({n} x {k}):      {summary(t_qr)}")
    print(f"  Babai + local search:               {summary(t_ls)}")
    t_ex = []
    nodes, gaps = [], []
    for x, y in sets:
        t1 = time.perf_counter()
        est = mdl.mdl_estimate(code, x, y, method="exact", node_budget=2_000_000)
        t_ex.append(time.perf_counter() - t1)
        nodes.append(est.nodes)
        gaps.append(est.gap)
    print(f"exact estimate on the same 3 data sets: {summary(t_ex)}, nodes {nodes}, gap of the fast one {gaps} nats")
    lam = 1.0 / (n * 4.0)
    t_ridge = timings(lambda: ridge_all_features(W, x, y, lam), repeats=1, warmup=False)
    print(f"baseline, ridge on all {p} features (X^T X in chunks + Cholesky): {summary(t_ridge)}; "
          f"fast MDL is {t_ridge[0] / med:.1f}x faster")
    print(f"peak memory {peak_rss_gb():.2f} GB")


def exact_vs_fast(quick: bool, budget: int) -> None:
    print("\n== exact sphere decoder vs fast route vs textbook Schnorr-Euchner (same start, same radius) ==")
    print(f"{'d':>3} {'p':>6} {'n':>6} {'k':>4} {'seed':>4} {'fast s':>8} {'exact s':>8} {'nodes':>9} {'gap nats':>9} "
          f"{'textbook nodes':>15} {'textbook s':>10}")
    cases = [(5, 1000, 300, "clusters"), (5, 1000, 1000, "clusters"), (5, 1000, 10_000, "clusters"),
             (5, 1000, 10_000, "threshold")]
    if not quick:
        cases += [(10, 2000, 1000, "clusters"), (10, 2000, 3000, "clusters"), (10, 2000, 10_000, "clusters"),
                  (10, 10_000, 10_000, "clusters"), (10, 2000, 10_000, "threshold")]
    for d, p, n, coding in cases:
        W = rf.sample_weights(d, p, seed=0)
        v = default_target(W)
        code = mdl.two_stage_code(W, n, radius=2.0, coding=coding)
        for seed in range(2):
            x, y = data(W, v, n, seed)
            t0 = time.perf_counter()
            fast = mdl.mdl_estimate(code, x, y, method="fast")
            tf = time.perf_counter() - t0
            t0 = time.perf_counter()
            try:
                ex = mdl.mdl_estimate(code, x, y, method="exact", node_budget=budget)
                te, nodes, gap = time.perf_counter() - t0, str(ex.nodes), f"{ex.gap:.3g}"
            except ValueError:
                te, nodes, gap = time.perf_counter() - t0, f">{budget:.0e}", "?"
            # the textbook enumeration on the same problem (natural order, fast start)
            Z = mdl._feature_products(W, x, code.basis * code.steps)
            Q, R = np.linalg.qr(Z)
            sgn = np.where(np.diag(R) < 0, -1.0, 1.0)
            R, t = R * sgn[:, None], (Q.T @ y) * sgn
            r = t - R @ fast.m
            t0 = time.perf_counter()
            tb = textbook_se(R, t, code.box, fast.m, float(r @ r), budget)
            tt = time.perf_counter() - t0
            print(f"{d:>3} {p:>6} {n:>6} {code.coded:>4} {seed:>4} {tf:>8.3f} {te:>8.3f} {nodes:>9} {gap:>9} "
                  f"{'>' + format(budget, '.0e') if tb is None else tb:>15} {tt:>10.2f}")


def brute_force(reps: int) -> None:
    print("\n== exact decoder vs brute force over the whole box (small lattices) ==")
    W = rf.sample_weights(3, 30, seed=7)
    code = mdl.two_stage_code(W, 20, radius=3.0, directions=10)
    pts = np.array(list(itertools.product(*[range(-int(M), int(M) + 1) for M in code.box])))
    B = code.basis * code.steps
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 3))
    y = rf.hidden_features(W, x) @ (0.4 * rng.standard_normal(30)) + rng.standard_normal(20)
    F = rf.hidden_features(W, x) @ B

    def brute():
        r = y[:, None] - F @ pts.T
        return pts[int(np.argmin(np.einsum("ij,ij->j", r, r)))]

    tb = timings(brute, repeats=reps)
    te = timings(lambda: mdl.mdl_estimate(code, x, y, method="exact"), repeats=reps)
    assert np.array_equal(brute(), mdl.mdl_estimate(code, x, y).m)
    print(f"k = 10, {len(pts)} points: brute force {summary(tb)}, exact decoder {summary(te)} "
          f"({sorted(tb)[len(tb) // 2] / sorted(te)[len(te) // 2]:.1f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the d = 10 problems (the goal included)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=int, default=2_000_000, help="node budget of the exact and textbook searches")
    args = ap.parse_args()
    print(machine())
    brute_force(args.repeats)
    exact_vs_fast(args.quick, args.budget)
    if not args.quick:
        goal(args.repeats)


if __name__ == "__main__":
    main()

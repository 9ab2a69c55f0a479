"""Top d(d+3)/2 eigenpairs of the exact FIM: matrix-free route vs dense baselines (issue 5).

Prints ratios against baselines run in the same process (not a timed test). Each width runs
in a fresh subprocess so that its peak resident memory (ru_maxrss) is its own.

    python benchmarks/bench_topk.py                 # p = 10^4 with both baselines
    python benchmarks/bench_topk.py --p 100000      # matrix-free only, peak memory
    python benchmarks/bench_topk.py --p 1000000     # t-series route with error bounds

Goals: p=1e4 >= 50x faster than naive build + numpy.linalg.eigh, >= 5x faster than
scipy eigsh(k) on the same dense matrix; p=1e5 < 2 min and < 4 GB; p=1e6 < 15 min, < 8 GB.

The relufim side is timed as a user calls it, ``rf.spectrum(W, k=d(d+3)/2, tol=1e-8)``, build
included, in fresh processes (the median of ``--trials``): matrix-free above p = 3000 (``--route
block`` builds J instead and runs the same solver on it). ``eigsh`` runs with ``tol=0``; its
time hardly depends on the tolerance here (4.5-4.8 s for tol = 0, 1e-10, 1e-8).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np


def naive_fisher(W):
    """The elementwise NumPy expression of Lemma 1 with full-size temporaries (the baseline)."""
    n = np.linalg.norm(W, axis=0)
    T = np.clip((W / n).T @ (W / n), -1.0, 1.0)
    return np.outer(n, n) * (np.sqrt(1.0 - T**2) + (np.pi - np.arccos(T)) * T) / (2 * np.pi)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def run_spectrum(d: int, p: int, tol: float, seed: int, method: str) -> dict:
    """The public call a user makes: ``rf.spectrum(W, k=d(d+3)/2, tol=tol)`` (build included)."""
    import relufim as rf

    k = d * (d + 3) // 2
    W = rf.sample_weights(d, p, seed=seed)
    passes = []
    t0 = time.perf_counter()
    r = rf.spectrum(W, k=k, tol=tol, method=method,
                    progress=lambda c, n: passes.append((round(time.perf_counter() - t0, 1), c)))
    dt = time.perf_counter() - t0
    route = {"block": "dense J (tiled build) + block solver, theory seeds",
             "matrix-free": "matrix-free (numpy tiles) + block solver, default start (seed_degree=auto)",
             }.get(r.method, r.method)
    return {"p": p, "d": d, "k": k, "route": route, "time_s": dt, "products": r.iterations, "matvecs": r.matvecs,
            "max_residual_rel": float(r.residuals.max() / r.eigenvalues[0]), "converged": bool(r.converged.all()),
            "progress": passes, "peak_rss_gb": peak_rss_gb(), "eigenvalues": r.eigenvalues.tolist()}


def run_series(d: int, p: int, seed: int, degree: int, sample_rows: int) -> dict:
    import relufim as rf

    k = d * (d + 3) // 2
    W = rf.sample_weights(d, p, seed=seed)
    t0 = time.perf_counter()
    s = rf.series_fisher(W, k, degree=degree)
    t_series = time.perf_counter() - t0
    # a-posteriori: residuals of the t-series eigenpairs w.r.t. the exact J, estimated on sampled rows
    rng = np.random.default_rng(seed + 1)
    rows = rng.choice(p, size=sample_rows, replace=False)
    op = rf.fisher_operator(W)
    JX = op.rows_times(rows, s.eigenvectors)
    R2 = (JX - s.eigenvectors[rows] * s.eigenvalues) ** 2  # (s, k)
    est = np.sqrt(p * R2.mean(axis=0))
    se = np.sqrt(p) * R2.std(axis=0, ddof=1) / np.sqrt(sample_rows) / (2 * np.maximum(est / np.sqrt(p), 1e-300))
    dt = time.perf_counter() - t0
    lam = s.eigenvalues
    gap = lam[k - 1] - s.gram_eigenvalues[k]  # gap below the top k of J_K
    return {"p": p, "d": d, "k": k, "route": f"t-series degree {degree} ({s.n_features} features) + sampled residuals",
            "time_s": dt, "time_series_s": t_series, "weyl_bound_abs": s.tail_bound,
            "weyl_bound_rel": s.tail_bound / lam[0],
            "davis_kahan_sin_bound_top_space": s.subspace_angle_bound(gap),
            "residual_estimate_max_rel": float(est.max() / lam[0]),
            "residual_estimate_stderr_rel": float(se[np.argmax(est)] / lam[0]), "sample_rows": sample_rows,
            "peak_rss_gb": peak_rss_gb(), "eigenvalues": lam.tolist()}


def baselines(d: int, p: int, seed: int, k: int) -> dict:
    import scipy.linalg as sla
    from scipy.sparse.linalg import eigsh

    import relufim as rf

    W = rf.sample_weights(d, p, seed=seed)
    t0 = time.perf_counter()
    J = naive_fisher(W)
    t_build = time.perf_counter() - t0
    del J
    t0 = time.perf_counter()
    J = rf.fisher_matrix(W)
    t_tiled = time.perf_counter() - t0
    t0 = time.perf_counter()
    lam_all = np.linalg.eigh(J)[0][::-1]
    t_eigh = time.perf_counter() - t0
    t0 = time.perf_counter()
    w, V = eigsh(J, k=k, which="LA", tol=0)
    t_eigsh = time.perf_counter() - t0
    t0 = time.perf_counter()
    sla.eigh(J, subset_by_index=[p - k, p - 1])
    t_evr = time.perf_counter() - t0
    res = np.linalg.norm(J @ V - V * w, axis=0).max() / w.max()
    return {"naive_build_s": t_build, "tiled_build_s": t_tiled, "numpy_eigh_s": t_eigh, "eigsh_s": t_eigsh,
            "eigsh_max_residual_rel": float(res),
            "lapack_evr_topk_s": t_evr, "dense_eigenvalues": lam_all[:k].tolist()}


def child(args) -> None:
    if args.route == "series":
        out = run_series(args.d, args.p, args.seed, args.degree, args.sample_rows)
    else:
        out = run_spectrum(args.d, args.p, args.tol, args.seed, args.route)
    print("RESULT " + json.dumps(out))


def spawn(extra: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *extra], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(proc.stderr[-3000:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=int, nargs="+", default=[10_000])
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--route", choices=["auto", "block", "matrix-free", "series"], default="auto",
                    help="auto: what rf.spectrum picks (matrix-free above p = 3000; block = dense J + block solver); "
                         "series above p = 300000")
    ap.add_argument("--trials", type=int, default=3, help="fresh processes per width (the median is compared)")
    ap.add_argument("--degree", type=int, default=4)
    ap.add_argument("--sample-rows", type=int, default=1000)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.p = args.p[0]
        return child(args)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    for p in args.p:
        route = "series" if args.route == "auto" and p > 300_000 else args.route
        common = ["--p", str(p), "--d", str(args.d), "--seed", str(args.seed), "--tol", str(args.tol),
                  "--route", route, "--degree", str(args.degree), "--sample-rows", str(args.sample_rows)]
        runs = [spawn(common) for _ in range(args.trials if p <= 20_000 else 1)]
        times = np.array([x["time_s"] for x in runs])
        r = runs[int(np.argsort(times)[len(times) // 2])]  # the median run
        lam = np.array(r.pop("eigenvalues"))
        r["time_s_all"] = times.round(3).tolist()
        print(json.dumps(r, indent=1))
        if p <= 20_000 and not args.no_baselines:
            b = baselines(args.d, p, args.seed, r["k"])
            dense = np.array(b.pop("dense_eigenvalues"))
            print(json.dumps(b, indent=1))
            t = float(np.median(times))
            print(f"max |lambda - dense| / lambda_max = {np.abs(lam - dense).max() / dense[0]:.2e}")
            print(f"relufim median {t:.2f} s over {times.size} fresh processes, "
                  f"range [{times.min():.2f}, {times.max():.2f}]")
            print(f"speed-up vs naive build + numpy eigh: {(b['naive_build_s'] + b['numpy_eigh_s']) / t:.1f}x "
                  "(goal >= 50x)")
            print(f"speed-up vs eigsh(k) on the dense matrix: {b['eigsh_s'] / t:.1f}x alone; "
                  f"{(b['naive_build_s'] + b['eigsh_s']) / t:.1f}x with the naive build; "
                  f"{(b['tiled_build_s'] + b['eigsh_s']) / t:.1f}x with relufim's build (goal >= 5x)")
        print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

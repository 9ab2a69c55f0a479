"""The FIM of all parameters (issue 12): dense build, matrix-free top eigenpairs, products against autodiff.

Prints ratios against baselines run in the same process, with the machine's GEMM rate measured in
that process (``_common.gemm_rate``). Each part runs in a fresh subprocess so that its peak resident
memory is its own; timings are medians [ranges] over ``--repeats`` runs.

    python benchmarks/bench_full.py                    # all three parts
    python benchmarks/bench_full.py --part dense       # dense F at p = 2000, d = 10 against a naive build
    python benchmarks/bench_full.py --part topk --k 100 --p 10000
    python benchmarks/bench_full.py --part autodiff    # products per second against torch.func
    python benchmarks/bench_full.py --part peer --p 2000  # top 100 against tuned PRIMME (pip install primme)

Goals (issue 12): dense F at p = 2000, d = 10 (P = 22 000) >= 10x faster than a naive per-block NumPy
build; top 100 at p = 10^4, d = 10 (P = 110 000) matrix-free with residuals <= 1e-8 lambda_max, the
time within 2x of the cost of its products at the GEMM rate, under 2 minutes, peak < 4 GB; a
products-per-second figure against torch.func Jacobian-vector products on Monte Carlo inputs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import gemm_rate, machine, peak_rss_gb, summary, timings  # noqa: E402


def network(d: int, p: int, seed: int = 0):
    from relufim.experiments.full_fisher import draw_network

    return draw_network(d, p, seed)


# ----------------------------------------------------------------------------- the naive baseline

def naive_full_fisher(W: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Block by block with NumPy: every (i, j) pair's v-v entry, v-w row and d x d w-w block from the formulas of
    theory §15.2 (the c-vector form of M_ij), written into a preallocated P x P array."""
    d, p = W.shape
    r = np.linalg.norm(W, axis=0)
    E = W / r
    T = np.clip(E.T @ E, -1.0, 1.0)
    th = np.arccos(T)
    s = np.sin(th)
    k0 = (np.pi - th) / (2 * np.pi)
    kap = (s + (np.pi - th) * T) / (2 * np.pi)
    P = p * (d + 1)
    F = np.empty((P, P))
    F[:p, :p] = np.outer(r, r) * kap
    np.fill_diagonal(F[:p, :p], r * r / 2)
    eye = np.eye(d)
    for i in range(p):
        ei = E[:, i]
        for j in range(p):
            if i == j:
                F[i, p + j * d:p + (j + 1) * d] = v[i] * W[:, i] / 2
                M = eye / 2
            else:
                F[i, p + j * d:p + (j + 1) * d] = v[j] * r[i] * (k0[i, j] * ei + s[i, j] / (2 * np.pi) * E[:, j])
                c = E[:, j] - T[i, j] * ei
                c /= np.linalg.norm(c)
                M = k0[i, j] * eye + s[i, j] / (2 * np.pi) * (T[i, j] * (np.outer(ei, ei) - np.outer(c, c))
                                                            + s[i, j] * (np.outer(ei, c) + np.outer(c, ei)))
            F[p + i * d:p + (i + 1) * d, p + j * d:p + (j + 1) * d] = v[i] * v[j] * M
    F[p:, :p] = F[:p, p:].T
    return F


# ----------------------------------------------------------------------------- the floor of a product

def _compiled_alpha() -> bool:
    """Whether the products use the optional compiled alpha terms (``relufim/fim/_calpha.c``)."""
    from relufim.fim import full

    return full._calpha is not None


def tile_floor(d: int, b: int, tile: int = 256, repeats: int = 5) -> dict:
    """The best share of the GEMM rate a product of the FIM of all parameters can reach here.

    One side of one tile of the product with nothing but its unavoidable operations (the engine's
    ``_full_product``): the four GEMMs of the coefficient tiles with ``(n, d b)`` and ``(n, b)``
    blocks, and per vector the ``alpha`` GEMM of unit columns (inner dimension d), its elementwise
    product with the coefficient tile and the GEMM back onto the unit columns (output width d); no
    accumulation, no angles. Timed on one core against the one-core GEMM rate, and on every core at
    once (one tile side per thread, as the engine runs them) against the all-core GEMM rate: its
    ``(10 d + 2) m n b`` flops at that rate over its time bound what a whole product can reach. The
    alpha terms are timed on the path the engine takes: the compiled pass where it is built.
    """
    from concurrent.futures import ThreadPoolExecutor

    from relufim._threads import single_threaded_blas
    from relufim.fim import full

    compiled = _compiled_alpha()

    def one_side():
        rng = np.random.default_rng(0)
        m = n = tile
        K0, A, B = (rng.random((m, n)) for _ in range(3))
        C2, Q2 = rng.standard_normal((n, d * b)), rng.standard_normal((n, d * b))
        beta, ET, EI = rng.standard_normal((n, b)), rng.standard_normal((n, d)), rng.standard_normal((m, d))
        CT = rng.standard_normal((b, d, n))
        G, z, alpha, y = np.empty((m, d * b)), np.empty((m, b)), np.empty((m, n)), np.empty((m, d))

        def wide() -> None:
            np.matmul(K0, C2, out=G)
            np.matmul(B, Q2, out=G)
            np.matmul(B, C2, out=G)
            np.matmul(A, beta, out=z)

        Y = np.zeros((b, m, d))
        CTn, EJ = np.ascontiguousarray(CT), np.ascontiguousarray(ET.T)

        def narrow() -> None:
            if compiled:  # the engine's own path: the optional fused pass (relufim/fim/_calpha.c)
                full._calpha.add_alpha_terms(EI, CTn, EJ, A, Y)
                return
            for k in range(b):
                np.matmul(EI, CT[k], out=alpha)
                np.multiply(alpha, A, out=alpha)
                np.matmul(alpha, ET, out=y)

        return wide, narrow

    flops_wide, flops_narrow = (6 * d + 2) * tile * tile * b, 4 * d * tile * tile * b
    cores = os.cpu_count() or 1
    sides = [one_side() for _ in range(cores)]
    rate_all = gemm_rate()
    with single_threaded_blas():
        rate = gemm_rate(n=1500)
        wide, narrow = sides[0]
        t_wide, t_narrow = min(timings(wide, repeats)), min(timings(narrow, repeats))

        def both(side) -> None:
            for _ in range(repeats):
                side[0]()
                side[1]()

        with ThreadPoolExecutor(cores) as pool:
            t_all = min(timings(lambda: list(pool.map(both, sides)), 2)) / repeats
    return {"b": b, "tile": tile, "gemm_gflops_one_core": rate, "gemm_gflops_all_cores": rate_all, "cores": cores,
            "alpha": "compiled" if compiled else "NumPy passes",
            "wide_share": flops_wide / (rate * 1e9) / t_wide, "narrow_share": flops_narrow / (rate * 1e9) / t_narrow,
            "share": (flops_wide + flops_narrow) / (rate * 1e9) / (t_wide + t_narrow),
            "share_all_cores": cores * (flops_wide + flops_narrow) / (rate_all * 1e9) / t_all}


# ----------------------------------------------------------------------------- parts

def part_dense(args) -> dict:
    from relufim.fim.full import full_fisher_matrix

    d, p = args.d, args.p or 2000
    W, v = network(d, p)
    rate = gemm_rate()
    out = np.empty(0)

    def ours():
        nonlocal out
        out = np.empty(0)  # free the previous result first: one P x P array at a time
        out = full_fisher_matrix(W, v)

    ts = timings(ours, repeats=args.repeats)
    F = out
    t0 = time.perf_counter()
    Fn = naive_full_fisher(W, v)
    t_naive = time.perf_counter() - t0
    Fn -= F

    def absmax(A: np.ndarray) -> float:  # by row blocks: no P x P temporary
        return max(float(np.abs(A[i:i + 1024]).max()) for i in range(0, A.shape[0], 1024))

    diff = absmax(Fn) / absmax(F)
    return {"part": "dense", "d": d, "p": p, "P": p * (d + 1), "gemm_gflops": rate, "relufim_s": ts,
            "naive_s": t_naive, "speedup": t_naive / statistics.median(ts), "max_rel_difference": diff,
            "peak_rss_gb": peak_rss_gb()}


def part_topk(args) -> dict:
    from relufim.fim.full import full_fisher_operator
    from relufim.theory.curvature import full_spectrum

    d, p, k = args.d, args.p or 10_000, args.k
    W, v = network(d, p)
    rates = [gemm_rate()]  # again after the solve: the machine's limit is the better of the two
    op = full_fisher_operator(W, v)
    # one product alone: the per-vector rate of the engine
    U = np.random.default_rng(0).standard_normal((op.shape[0], 32))
    t_prod = timings(lambda: op @ U, repeats=2, warmup=False)
    passes = []
    t0 = time.perf_counter()
    # the user's call: top k pairs matrix-free from the Hermite features (degree 4 by default), with the
    # statistics, the readout's spectrum and the residuals of 8 rescaling directions (every k pairs required)
    s = full_spectrum(W, v, k, method="matrix-free", tol=args.tol, maxiter=args.maxiter, seed_degree=args.seed_degree,
                      progress=lambda c, n: passes.append((round(time.perf_counter() - t0, 1), c)))
    dt = time.perf_counter() - t0
    rates.append(gemm_rate())
    rate = max(rates)
    res = s.result
    vectors = res.matvecs + 8
    flops = op.flops(vectors)
    lam0 = float(res.eigenvalues[0])
    in_products = s.operator.product_seconds  # the solve's own operator: its products' wall-clock time
    floors = [tile_floor(d, b) for b in (47, 112)]  # the widths of the solver's products here
    best, best_all = max(f["share"] for f in floors), max(f["share_all_cores"] for f in floors)
    gemm_time = flops / (rate * 1e9)
    return {"part": "topk", "d": d, "p": p, "P": op.shape[0], "k": k, "tol": args.tol, "gemm_gflops": rate,
            "gemm_gflops_before_after": rates, "start": res.start, "compiled_alpha": _compiled_alpha(),
            "time_s": dt, "products": res.iterations, "matvecs": res.matvecs, "operator_vectors": vectors,
            "flops": flops, "gemm_time_s": gemm_time, "ratio_to_gemm": dt / gemm_time,
            "product_time_s": in_products, "rest_time_s": dt - in_products, "floors": floors,
            "ratio_floor": (gemm_time / best + dt - in_products) / gemm_time,
            "ratio_floor_all_cores": (gemm_time / best_all + dt - in_products) / gemm_time,
            "time_floor_all_cores_s": gemm_time / best_all,
            "dense_equivalent_time_s": 2.0 * op.shape[0] ** 2 * vectors / (rate * 1e9),
            "product_32_s": t_prod, "product_rate_gflops": op.flops(32) / min(t_prod) / 1e9,
            "max_residual_rel": float(res.residuals.max() / lam0), "converged": int(res.converged.sum()),
            "lambda_max": lam0, "eigenvalues": res.eigenvalues.tolist(), "progress": passes,
            "peak_rss_gb": peak_rss_gb()}


def part_autodiff(args) -> dict:
    import torch
    from torch.func import jvp, vjp, vmap

    from relufim.fim.full import full_fisher_operator, full_gradients
    from relufim.fim.sampled import gaussian_input_chunks

    torch.set_num_threads(os.cpu_count() or 1)
    d, p, b = args.d, args.p or 2000, 16
    W, v = network(d, p)
    op = full_fisher_operator(W, v)
    P = op.shape[0]
    U = np.random.default_rng(0).standard_normal((P, b))
    rate = gemm_rate()
    out = {"part": "autodiff", "d": d, "p": p, "P": P, "b": b, "gemm_gflops": rate}
    t = timings(lambda: op @ U, repeats=args.repeats)
    out["exact_products_per_s"] = b / statistics.median(t)
    out["exact_s"] = t
    Wt, vt = torch.from_numpy(W), torch.from_numpy(v)
    c_err = None
    for n in args.n:
        x = np.vstack(list(gaussian_input_chunks(n, d, 1)))
        xts = [torch.from_numpy(x[i:i + 4096]) for i in range(0, n, 4096)]
        tv = torch.from_numpy(np.ascontiguousarray(U[:p].T))  # (b, p) tangents of v
        tW = torch.from_numpy(np.ascontiguousarray(U[p:].T.reshape(b, p, d).transpose(0, 2, 1)))  # (b, d, p) of W

        def autodiff_products(xts=xts, n=n, tv=tv, tW=tW):
            acc = torch.zeros((P, b), dtype=torch.float64)
            for xt in xts:  # chunks of 4096 inputs: (b, 4096, p) intermediates, about 1 GB at p = 2000
                def model(params, xt=xt):
                    vv, WW = params
                    return torch.relu(xt @ WW) @ vv  # f on the chunk's inputs

                _, vjp_fn = vjp(model, (vt, Wt))
                Ju = vmap(lambda a, B, model=model: jvp(model, ((vt, Wt),), ((a, B),))[1])(tv, tW)  # J u, (b, m)
                gv, gW = vmap(vjp_fn)(Ju / n)[0]  # J^T (J u) / n for every vector
                acc += torch.cat([gv.T, gW.permute(0, 2, 1).reshape(b, -1).T], 0)
            return acc

        def numpy_products(x=x, n=n):
            out = np.zeros((P, b))
            for i in range(0, n, 4096):  # per-sample gradients streamed: G^T (G U) / n
                G = full_gradients(W, v, x[i:i + 4096])
                out += G.T @ (G @ U)
            return out / n

        ta = timings(autodiff_products, repeats=args.repeats)
        tn = timings(numpy_products, repeats=args.repeats)
        agree = float(np.abs(autodiff_products().numpy() - numpy_products()).max())
        if c_err is None:
            from relufim.experiments.full_fisher import monte_carlo_error_constant

            c_err = monte_carlo_error_constant(W, v, math.sqrt(op.frobenius_norm_squared()), n=100_000)[0]
        out[f"n={n}"] = {"autodiff_products_per_s": b / statistics.median(ta), "autodiff_s": ta,
                         "numpy_sampled_products_per_s": b / statistics.median(tn), "numpy_sampled_s": tn,
                         "max_difference": agree, "monte_carlo_relative_error": math.sqrt(c_err / n)}
    out["peak_rss_gb"] = peak_rss_gb()
    return out


def part_peer(args) -> dict:
    """The top ``k`` against the strongest alternative a user would pick, tuned PRIMME, in one process.

    relufim: the user's call ``full_spectrum(W, v, k, method="matrix-free")`` (its statistics, the
    readout's spectrum and the clusters included). PRIMME (``maxBlockSize=32``, ``tol`` relative to
    its estimate of ``||F||``, BLAS on every core): on relufim's own matrix-free operator, and, where
    the dense ``F`` fits, on the dense ``F`` with its build included. The trials alternate; medians
    [ranges]. Residuals are checked after the clocks stop.
    """
    from relufim._validation import available_memory_bytes
    from relufim.fim.full import full_fisher_matrix, full_fisher_operator
    from relufim.theory.curvature import full_spectrum

    d, p, k = args.d, args.p or 2000, args.k
    P = p * (d + 1)
    try:
        import primme
    except ImportError:  # a benchmark-only baseline, not a dependency
        return {"part": "peer", "d": d, "p": p, "P": P, "gemm_gflops": gemm_rate(), "peak_rss_gb": peak_rss_gb(),
                "skipped": "PRIMME is not installed: pip install primme (needs liblapack-dev and libblas-dev)"}
    W, v = network(d, p)
    dense = 8.0 * P * P * 2 < 0.5 * available_memory_bytes()  # F and PRIMME's copy of a block of it

    def ours():
        s = full_spectrum(W, v, k, method="matrix-free", tol=args.tol, maxiter=args.maxiter)
        return s.result.eigenvalues, s.result.eigenvectors, s.result.matvecs

    def primme_on(build):
        A = build()
        w, V, stats = primme.eigsh(A, k=k, which="LA", tol=args.tol, maxBlockSize=32, return_stats=True)
        order = np.argsort(w)[::-1]
        return w[order], V[:, order], int(stats["numMatvecs"])

    runs = {"relufim": ours, "primme_operator": lambda: primme_on(lambda: full_fisher_operator(W, v))}
    if dense:
        runs["primme_dense"] = lambda: primme_on(lambda: full_fisher_matrix(W, v))
    times = {name: [] for name in runs}
    last = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            out = run()
            times[name].append(time.perf_counter() - t0)
            last[name] = out
            del out
    op = full_fisher_operator(W, v)
    check = {}
    for name, (w, V, mv) in last.items():
        res = np.linalg.norm(op @ V - V * w, axis=0).max() / w[0]
        check[name] = {"max_residual_rel": float(res), "matvecs": mv,
                       "eigenvalue_difference": float(np.abs(w - last["relufim"][0]).max() / w[0])}
    ref = statistics.median(times["relufim"])
    return {"part": "peer", "d": d, "p": p, "P": P, "k": k, "tol": args.tol, "gemm_gflops": gemm_rate(),
            "times": times, "checks": check,
            "speedups": {name: statistics.median(t) / ref for name, t in times.items() if name != "relufim"},
            "peak_rss_gb": peak_rss_gb()}


PARTS = {"dense": part_dense, "topk": part_topk, "autodiff": part_autodiff, "peer": part_peer}


def report(r: dict) -> None:
    print(f"--- {r['part']}: d = {r['d']}, p = {r['p']}, P = {r['P']}; GEMM rate {r['gemm_gflops']:.1f} GFLOP/s "
          f"(same process)")
    if r["part"] == "dense":
        print(f"relufim full_fisher_matrix  {summary(r['relufim_s'])}")
        print(f"naive per-block NumPy build {r['naive_s']:.3g} s (one run)")
        print(f"speed-up                    {r['speedup']:.1f}x   (goal >= 10x); max |difference| / max|F| = "
              f"{r['max_rel_difference']:.1e}")
    elif r["part"] == "topk":
        print(f"GEMM rate before and after the solve: {r['gemm_gflops_before_after'][0]:.1f}, "
              f"{r['gemm_gflops_before_after'][1]:.1f} GFLOP/s (the better one is used); start: {r['start']}; "
              f"alpha terms: {'compiled' if r['compiled_alpha'] else 'NumPy passes'}")
        print(f"top {r['k']} eigenpairs, tol {r['tol']:g} (full_spectrum, matrix-free): {r['time_s']:.1f} s, "
              f"{r['products']} products, {r['operator_vectors']} vectors multiplied; {r['converged']}/{r['k']} "
              f"converged, max residual {r['max_residual_rel']:.1e} lambda_max")
        print(f"cost of those products at the GEMM rate: {r['gemm_time_s']:.1f} s ((10d+2) p^2 flops per vector); "
              f"ratio {r['ratio_to_gemm']:.2f} (goal <= 2); a dense P x P product at the GEMM rate would take "
              f"{r['dense_equivalent_time_s']:.1f} s")
        print(f"one product with 32 vectors: {summary(r['product_32_s'])} = {r['product_rate_gflops']:.1f} GFLOP/s")
        print(f"of the {r['time_s']:.1f} s: products {r['product_time_s']:.1f} s "
              f"({100 * r['gemm_time_s'] / r['product_time_s']:.0f} % of the GEMM rate), the rest (solver, "
              f"statistics, readout spectrum, clusters) {r['rest_time_s']:.1f} s")
        for f in r["floors"]:
            print(f"floor, b = {f['b']}: the tile's unavoidable GEMMs reach {100 * f['share']:.0f} % of the one-core "
                  f"GEMM rate ({f['gemm_gflops_one_core']:.1f} GFLOP/s; wide GEMMs {100 * f['wide_share']:.0f} %, "
                  f"the alpha terms ({f['alpha']}) {100 * f['narrow_share']:.0f} %), and "
                  f"{100 * f['share_all_cores']:.0f} % of the {f['cores']}-core rate "
                  f"({f['gemm_gflops_all_cores']:.1f} GFLOP/s) on all cores at once")
        print(f"so, with the rest as measured, the ratio would be at least {r['ratio_floor']:.2f} with every product "
              f"at the better one-core floor and perfect scaling, {r['ratio_floor_all_cores']:.2f} at the better "
              f"all-core floor (the products alone {r['time_floor_all_cores_s']:.1f} s)")
        print(f"peak memory {r['peak_rss_gb']:.2f} GB (goal < 4)")
    elif r["part"] == "peer" and "skipped" in r:
        print(f"skipped: {r['skipped']}")
    elif r["part"] == "peer":
        names = {"relufim": "relufim full_spectrum (matrix-free, statistics included)",
                 "primme_operator": "PRIMME (block 32) on relufim's operator",
                 "primme_dense": "PRIMME (block 32) on the dense F, build included"}
        for name, t in r["times"].items():
            c = r["checks"][name]
            print(f"top {r['k']}, tol {r['tol']:g}: {names[name]:55s} {summary(t)}; {c['matvecs']} vectors, "
                  f"max residual {c['max_residual_rel']:.1e} lambda_max, eigenvalues vs relufim "
                  f"{c['eigenvalue_difference']:.1e}")
        for name, x in r["speedups"].items():
            print(f"relufim is {x:.2f}x faster than {names[name]} (medians)")
    else:
        print(f"exact F (matrix-free): {r['exact_products_per_s']:.1f} products/s ({summary(r['exact_s'])} for "
              f"{r['b']} vectors)")
        for key, val in r.items():
            if key.startswith("n="):
                print(f"sampled F_{key[2:]}: torch.func vmap(jvp) + vmap(vjp) "
                      f"{val['autodiff_products_per_s']:.1f} products/s, "
                      f"numpy per-sample gradients {val['numpy_sampled_products_per_s']:.1f} products/s "
                      f"(agree to {val['max_difference']:.1e}); its Frobenius error vs F ~ "
                      f"{val['monte_carlo_relative_error']:.3f}; exact/autodiff = "
                      f"{r['exact_products_per_s'] / val['autodiff_products_per_s']:.2f}x")
    print(f"peak memory of the part {r['peak_rss_gb']:.2f} GB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["all", *PARTS], default="all")
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--p", type=int, default=None)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--maxiter", type=int, default=300)
    ap.add_argument("--seed-degree", dest="seed_degree", default="auto", type=lambda x: x if x == "auto" else int(x),
                    help="the start of the top-k solve: auto, 2 or 4 (full_spectrum's seed_degree)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, nargs="+", default=[4096, 65536])
    ap.add_argument("--json", action="store_true", help="print one JSON object per part")
    args = ap.parse_args()
    if args.part == "all":
        print(machine())
        for part in PARTS:
            cmd = [sys.executable, __file__, "--part", part, "--d", str(args.d), "--k", str(args.k), "--tol",
                   str(args.tol), "--repeats", str(args.repeats), "--maxiter", str(args.maxiter),
                   "--seed-degree", str(args.seed_degree),
                   "--n", *map(str, args.n)] + (["--json"] if args.json else [])
            if args.p is not None:
                cmd += ["--p", str(args.p)]
            subprocess.run(cmd, check=True)
        return
    r = PARTS[args.part](args)
    if args.json:
        print(json.dumps(r))
    else:
        if args.part != "all":
            print(machine())
        report(r)


if __name__ == "__main__":
    main()

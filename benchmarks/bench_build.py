"""Exact FIM build at p = 10^4 vs the naive elementwise NumPy expression, and the CLI wall time.

Prints ratios against baselines run in the same process (not a timed test).

    python benchmarks/bench_build.py [--p 10000] [--d 10] [--skip-cli]

Goals: tiled in-place build >= 10x faster than the naive expression (issue 2);
``relufim spectrum --d 10 --p 10000`` in < 30 s (issue 5).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np


def naive_fisher(W):
    """Lemma 1 as one elementwise NumPy expression (full-size temporaries, transposed GEMM output)."""
    n = np.linalg.norm(W, axis=0)
    T = np.clip((W / n).T @ (W / n), -1.0, 1.0)
    return np.outer(n, n) * (np.sqrt(1.0 - T**2) + (np.pi - np.arccos(T)) * T) / (2 * np.pi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    import relufim as rf

    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    W = rf.sample_weights(args.d, args.p, seed=0)
    t0 = time.perf_counter()
    J_naive = naive_fisher(W)
    t_naive = time.perf_counter() - t0
    del J_naive
    t0 = time.perf_counter()
    J = rf.fisher_matrix(W)
    t_fast = time.perf_counter() - t0
    print(f"p = {args.p}: naive {t_naive:.2f} s, fisher_matrix {t_fast:.2f} s, ratio {t_naive / t_fast:.1f}x (goal >= 10x)")
    V = np.random.default_rng(0).standard_normal((args.p, 65))
    ref = J @ V
    del J
    op = rf.fisher_operator(W)
    t0 = time.perf_counter()
    out = op @ V
    t_op = time.perf_counter() - t0
    print(f"one matrix-free product with 65 vectors: {t_op:.2f} s (rel. diff to dense "
          f"{np.abs(out - ref).max() / np.abs(ref).max():.1e})")
    if not args.skip_cli:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", "from relufim.cli import main; main()", "spectrum", "--d", str(args.d), "--p", str(args.p),
                               "--quiet"], capture_output=True, text=True)
        t_cli = time.perf_counter() - t0
        print(f"relufim spectrum --d {args.d} --p {args.p}: {t_cli:.1f} s, exit code {proc.returncode} (goal < 30 s)")
        if proc.returncode:
            print(proc.stderr[-2000:])
    print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

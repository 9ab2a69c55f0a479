"""Deep random networks (issue 11): the depth-10 limit spectrum and the streamed Monte Carlo FIM.

Prints ratios against baselines run in the same process (not a timed test):

1. The infinite-width spectrum of a depth-10 ReLU network up to k = 20 (d = 10): goal < 1 s. Baseline: the
   same composed kernel's Funk-Hecke coefficients by adaptive quadrature (scipy.integrate.quad per degree),
   what one writes without the library's engine. Other activations (widths 1000) for information.
2. The Monte Carlo FIM of widths 2000, 2000, 1000 (d = 10) from n = 2e5 Gaussian inputs, streamed: goal
   within 2x of the cost of its matrix products at the machine's GEMM rate measured in this run, i.e.
   time / (flops / GEMM rate) <= 2 with flops = n [2 (d p1 + p1 p2 + p2 p3) + p3^2] (three layer products
   and the symmetric rank update of the Gram, which BLAS syrk does in p3^2 flops per input). Peers on the same
   inputs: a plain NumPy loop (relu of each layer, then ``acc += X.T @ X``) and the same loop in torch.
3. Peak memory independent of n: the streamed FIM at n = 2e4 and n = 2e5, each in a fresh process.

    python benchmarks/bench_depth.py               # everything (about 3 minutes on 2 cores)
    python benchmarks/bench_depth.py --n 50000     # a shorter Monte Carlo

The machine is shared: every timing is the median [range] of repeats; run the script twice and take the
smaller median.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import integrate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gemm_rate, machine, peak_rss_gb, summary, timings  # noqa: E402

WIDTHS = (2000, 2000, 1000)
D = 10


def limit_benchmark(repeats: int) -> None:
    from relufim.model.harmonics import harmonic_multiplicity
    from relufim.theory.depth import composed_kernel, depth_limit_spectrum

    print("1. depth-10 limit spectrum, d = 10, k <= 20 (ReLU, default convention)")
    ts = timings(lambda: depth_limit_spectrum(D, 10, 20), repeats=repeats)
    lim = depth_limit_spectrum(D, 10, 20)
    print(f"   relufim depth_limit_spectrum      {summary(ts)}   (goal < 1 s)")

    # baseline: adaptive quadrature of the same composed kernel, degree by degree (in the angle)
    from scipy import special

    cd = math.exp(math.lgamma(D / 2) - math.lgamma((D - 1) / 2)) / math.sqrt(math.pi)

    def mu_quad(k: int) -> float:
        P = special.eval_gegenbauer(k, D / 2 - 1, 1.0)

        def f(th: float) -> float:
            return float(composed_kernel(math.cos(th), 10)) * special.eval_gegenbauer(k, D / 2 - 1, math.cos(th)) / P \
                * math.sin(th) ** (D - 2)

        return cd * integrate.quad(f, 0.0, math.pi, limit=200, epsabs=1e-14)[0]

    t0 = time.perf_counter()
    mu = [mu_quad(k) for k in range(21)]
    t_quad = time.perf_counter() - t0
    err = max(abs(a - b.mu) for a, b in zip(mu, lim.degrees))
    print(f"   scipy.integrate.quad per degree   {t_quad:.3g} s  (ratio {t_quad / np.median(ts):.0f}x; largest "
          f"|mu_k difference| {err:.1e})")
    print(f"   F_10(10) = {lim.top_fraction:.6f}; sum_k<=20 N(d,k) mu_k = "
          f"{sum(harmonic_multiplicity(D, k) * r.mu for k, r in enumerate(lim.degrees)):.6f}")
    for act in ("leaky-relu", "erf", "tanh", "softplus", "gelu"):
        ts = timings(lambda a=act: depth_limit_spectrum(D, 10, 20, a, widths=1000), repeats=1)
        print(f"   {act:<10} (widths 1000)           {summary(ts)}")


def numpy_loop(Ws: list[np.ndarray], n: int, seed: int) -> np.ndarray:
    """The peer: what one writes by hand, chunk by chunk, with NumPy."""
    from relufim.fim.sampled import gaussian_input_chunks

    acc = np.zeros((Ws[-1].shape[1],) * 2)
    for x in gaussian_input_chunks(n, Ws[0].shape[0], seed):
        h = x
        for W in Ws:
            h = np.maximum(h @ W, 0.0)
        acc += h.T @ h
    return acc / n


def torch_loop(Ws: list[np.ndarray], n: int, seed: int) -> np.ndarray:
    """The same loop in torch (float64, CPU), on the same inputs."""
    import torch

    from relufim.fim.sampled import gaussian_input_chunks

    Wt = [torch.from_numpy(W) for W in Ws]
    acc = torch.zeros((Ws[-1].shape[1],) * 2, dtype=torch.float64)
    for x in gaussian_input_chunks(n, Ws[0].shape[0], seed):
        h = torch.from_numpy(x)
        for W in Wt:
            h = torch.relu(h @ W)
        acc.addmm_(h.T, h)
    return (acc / n).numpy()


def monte_carlo_benchmark(n: int, repeats: int) -> None:
    from relufim.fim.deep import feature_moments
    from relufim.model.network import network

    print(f"2. Monte Carlo FIM, d = {D}, widths {list(WIDTHS)}, n = {n}, streamed")
    rate = gemm_rate()
    p1, p2, p3 = WIDTHS
    flops = n * (2 * (D * p1 + p1 * p2 + p2 * p3) + p3 * p3)
    ideal = flops / (rate * 1e9)
    print(f"   GEMM rate {rate:.1f} GFLOP/s (this run): its matrix products ({flops / 1e12:.2f} TFLOP) take "
          f"{ideal:.1f} s at that rate")
    Ws = network(D, WIDTHS).sample(0)
    mine = timings(lambda: feature_moments(Ws, n=n, seed=1), repeats=repeats, warmup=False)
    med = float(np.median(mine))
    print(f"   relufim feature_moments           {summary(mine)}   ratio to the GEMM cost {med / ideal:.2f} "
          f"(goal <= 2)")
    se = timings(lambda: feature_moments(Ws, n=n, seed=1, stderr=True), repeats=1, warmup=False)
    print(f"   ... with standard errors          {summary(se)}   (one more syrk and the squares: "
          f"{float(np.median(se)) / med:.2f}x)")
    J = feature_moments(Ws, n=min(n, 20_000), seed=1).gram
    ref = numpy_loop(Ws, min(n, 20_000), seed=1)
    print(f"   agreement with the NumPy loop on the same inputs: max |diff| / max |J| = "
          f"{np.abs(J - ref).max() / np.abs(ref).max():.1e}")
    t_np = timings(lambda: numpy_loop(Ws, n, seed=1), repeats=1, warmup=False)
    print(f"   NumPy loop (peer)                 {summary(t_np)}   relufim is {float(np.median(t_np)) / med:.2f}x "
          "faster")
    try:
        import torch  # noqa: F401

        t_t = timings(lambda: torch_loop(Ws, n, seed=1), repeats=1, warmup=False)
        print(f"   torch loop (peer, float64)        {summary(t_t)}   relufim is {float(np.median(t_t)) / med:.2f}x "
              "faster")
    except ImportError:
        print("   torch not installed: no torch peer")


def _vm_hwm_gb() -> float:
    """Peak resident memory of this process image (VmHWM: unlike ru_maxrss, not inherited through fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    return peak_rss_gb()  # pragma: no cover - not Linux


def _memory_child(n: int) -> None:
    from relufim.fim.deep import feature_moments
    from relufim.model.network import network

    Ws = network(D, WIDTHS).sample(0)
    base = _vm_hwm_gb()
    t0 = time.perf_counter()
    feature_moments(Ws, n=n, seed=1)
    print(json.dumps({"n": n, "seconds": time.perf_counter() - t0, "peak_rss_gb": _vm_hwm_gb(),
                      "weights_rss_gb": base}))


def memory_benchmark(ns: list[int]) -> None:
    print("3. peak memory of the streamed Monte Carlo FIM (fresh process per n; VmHWM)")
    for n in ns:
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(n)], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"   n = {n:>7}: peak RSS {r['peak_rss_gb']:.3f} GB (after drawing the weights: "
              f"{r['weights_rss_gb']:.3f} GB), {r['seconds']:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--skip", nargs="*", default=[], choices=["limit", "mc", "memory"])
    args = ap.parse_args()
    if args.memory_child is not None:
        _memory_child(args.memory_child)
        return
    print(machine())
    if "limit" not in args.skip:
        limit_benchmark(args.repeats)
    if "mc" not in args.skip:
        monte_carlo_benchmark(args.n, max(1, args.repeats - 1))
    if "memory" not in args.skip:
        memory_benchmark([args.n // 10, args.n])


if __name__ == "__main__":
    main()

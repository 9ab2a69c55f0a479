"""Which kernel evaluation is fastest here? 2 pi kappa(t) on a 2048 x 2048 tile of cosines, in ns per entry.

    python benchmarks/bench_kernel.py

Compares (one thread each, then all cores where the library threads): the naive NumPy
expression (full-size temporaries), the in-place NumPy sequence used by
:func:`relufim.fisher_operator` (two scratch buffers), numexpr, numba (fused loop), and
torch on CPU. Optional packages that are missing are reported as such. The baseline is the
naive expression in the same process; the ratios are printed.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from relufim.model.kernels import two_pi_kappa_inplace

N = 2048


def timeit(f, reps=5) -> float:
    f()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps / (N * N) * 1e9


def main() -> None:
    rng = np.random.default_rng(0)
    U = rng.standard_normal((10, 2 * N))
    U /= np.linalg.norm(U, axis=0)
    T0 = U[:, :N].T @ U[:, N:]
    ref = np.sqrt(1 - T0**2) + (np.pi - np.arccos(T0)) * T0
    T, S, S2 = np.empty_like(T0), np.empty_like(T0), np.empty_like(T0)
    rows = []

    def naive():
        Tc = np.clip(T0, -1, 1)
        return np.sqrt(1.0 - Tc**2) + (np.pi - np.arccos(Tc)) * Tc

    base = timeit(naive)
    rows.append(("numpy naive expression (baseline)", base, 0.0))

    def inplace():
        np.copyto(T, T0)
        two_pi_kappa_inplace(T, S, S2)

    rows.append(("numpy in place, 2 scratch (relufim)", timeit(inplace) - timeit(lambda: np.copyto(T, T0)),
                 float(np.abs((inplace(), T)[1] - ref).max())))
    try:
        import numexpr as ne

        clipped = "where(T0 > 1, 1, where(T0 < -1, -1, T0))"
        expr = f"sqrt(1 - {clipped}**2) + (1.5707963267948966 + arcsin({clipped})) * T0"
        for th in (1, os.cpu_count() or 1):
            ne.set_num_threads(th)
            f = lambda: ne.evaluate(expr, local_dict={"T0": T0}, out=S)  # noqa: E731
            rows.append((f"numexpr ({th} threads)", timeit(f), float(np.abs((f(), S)[1] - ref).max())))
    except ImportError:
        rows.append(("numexpr: not installed", math.nan, math.nan))
    try:
        import numba

        @numba.njit(parallel=True, fastmath=False, cache=False)
        def fused(A, out):
            n, m = A.shape
            for i in numba.prange(n):
                for j in range(m):
                    t = min(1.0, max(-1.0, A[i, j]))
                    out[i, j] = math.sqrt(1.0 - t * t) + (0.5 * math.pi + math.asin(t)) * t

        fused(T0, S)
        for th in (1, os.cpu_count() or 1):
            numba.set_num_threads(th)
            rows.append((f"numba fused loop ({th} threads)", timeit(lambda: fused(T0, S)),
                         float(np.abs(S - ref).max())))
    except ImportError:
        rows.append(("numba: not installed", math.nan, math.nan))
    try:
        import torch

        Tt, St = torch.from_numpy(T), torch.from_numpy(S)
        T0t = torch.from_numpy(T0)

        S2t = torch.from_numpy(S2)

        def tinplace():
            Tt.copy_(T0t)
            two_pi_kappa_inplace(Tt, St, S2t, torch)

        for th in (1, os.cpu_count() or 1):
            torch.set_num_threads(th)
            rows.append((f"torch CPU in place ({th} threads)", timeit(tinplace),
                         float(np.abs((tinplace(), T)[1] - ref).max())))
    except ImportError:
        rows.append(("torch: not installed", math.nan, math.nan))
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; tile {N} x {N}")
    print(f"{'method':42s} {'ns/entry':>9s} {'vs naive':>9s} {'max abs err':>12s}")
    for name, ns, err in rows:
        print(f"{name:42s} {ns:9.2f} {base / ns if ns == ns else math.nan:9.2f} {err:12.1e}")


if __name__ == "__main__":
    main()

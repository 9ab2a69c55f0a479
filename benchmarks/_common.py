"""Shared by the benchmark scripts: the machine's own GEMM rate (the physical limit), medians with ranges.

Every goal is printed as a ratio against a baseline run in the same process; these machines are
noisy, so timings are reported as the median and the range over repeated runs.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np


def gemm_rate(n: int = 3000, dtype: type = np.float64, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n matrix product with all cores (the best of ``repeats``): the machine's limit."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    C = np.empty((n, n), dtype=dtype)
    np.matmul(A, B, out=C)
    best = min(_timed(lambda: np.matmul(A, B, out=C)) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def _timed(f: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def timings(f: Callable[[], object], repeats: int = 3, warmup: bool = True) -> list[float]:
    """Wall times of ``repeats`` calls of ``f`` (after one warm-up call unless ``warmup=False``)."""
    if warmup:
        f()
    return [_timed(f) for _ in range(repeats)]


def summary(ts: list[float]) -> str:
    """``median [min–max]`` in seconds."""
    return f"{statistics.median(ts):.3g} s [{min(ts):.3g}–{max(ts):.3g}]"


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def machine() -> str:
    """One line: cores, load, processor, Python and NumPy versions."""
    cpu = platform.processor() or platform.machine()
    return (f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, {cpu}, "
            f"Python {platform.python_version()}, NumPy {np.__version__}")

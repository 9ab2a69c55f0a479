"""Thread pools over tiles, without BLAS oversubscription.

Our tile loops run one worker per core; each worker's small GEMMs would otherwise start
their own OpenBLAS threads, and the two levels of threads fight over the cores (the
exact J at p = 10^4 took 0.5 s instead of 0.26 s on 2 cores).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from threadpoolctl import threadpool_limits

__all__ = ["single_threaded_blas"]


def single_threaded_blas() -> AbstractContextManager:
    """Context in which BLAS uses one thread (our own workers provide the parallelism)."""
    return threadpool_limits(limits=1, user_api="blas")

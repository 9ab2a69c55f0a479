r"""The matrix-free FIM on a Dask cluster: row blocks of every product on the workers (theory §9).

:class:`DistributedFisherOperator` splits the rows of :math:`J` into blocks, one task per
block and product. ``W`` is scattered to the cluster once and ``V`` once for each product
(workers fetch both from a peer with their first task); every task computes its rows of
:math:`JV` with the same tile engine as the in-process operator
(:func:`relufim.fim.tiles.rows_product`), and the blocks are gathered in order. Tasks are pure
functions of their inputs, so a worker that dies during a product costs a recomputation of its
blocks on another worker (Dask reschedules the tasks of a lost worker), never a wrong or missing
block. Results equal the in-process operator to round-off (the same kernel, summed in a
different order).

Dask is an optional extra (``pip install 'relufim[distributed]'``); nothing here is imported
unless a client is passed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import format_bytes
from ..model.activations import Activation, get_activation
from ..model.weights import column_norms, unit_columns
from .tiles import FisherFacts, SymmetricProductOperator, make_tile_kernel, rows_product

__all__ = [
    "DistributedFisherOperator",
    "RowBlockOperator",
    "WorkerThroughput",
    "check_client",
    "check_workers_fit",
    "make_distributed_operator",
    "plan_row_blocks",
    "worker_address",
]

Progress = Callable[[int, int], None]

_counter = itertools.count()


def _block_task(W: np.ndarray, activation: Activation, truncation: dict[str, int], start: int, stop: int,
                V: np.ndarray, tile: int, threads: int) -> tuple[int, int, np.ndarray, float, str]:
    """One block of rows of J V on a worker; returns the block with its timing and the worker's address."""
    t0 = time.perf_counter()
    norms = column_norms(W)
    U = unit_columns(W, norms)
    kernel = make_tile_kernel(U, norms, activation, **truncation)
    out = rows_product(kernel, U, np.arange(start, stop), V, tile, threads=threads)
    return start, stop, out, time.perf_counter() - t0, worker_address()


def worker_address() -> str:
    """The address of the Dask worker running this task, or ``"local"`` outside one."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # pragma: no cover - called outside a worker
        return "local"


@dataclass(frozen=True)
class WorkerThroughput:
    """What one worker did so far: blocks, kernel entries and seconds; ``entries_per_second`` is its rate."""

    address: str
    blocks: int
    entries: float
    seconds: float

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else float("nan")


class RowBlockOperator(SymmetricProductOperator):
    r"""A symmetric operator whose products run as row blocks on the workers of a Dask ``client``.

    The data the tasks need (``static``, e.g. ``W``) is scattered once; ``V`` once per product.
    Each task ``task(static, *task_args, start, stop, V, tile, threads)`` returns
    ``(start, stop, block, seconds, worker)`` for the units ``start..stop-1``, and
    :meth:`_place` writes the block into the result. A task lost with its worker is submitted
    again (up to ``retries`` times), so a block is never missing or wrong. Subclasses:
    :class:`DistributedFisherOperator` (``J``) and the all-parameters operator of
    :mod:`relufim.fim.full`.
    """

    def __init__(self, shape: tuple[int, int], *, client: Any, static: np.ndarray, task: Callable[..., Any],
                 task_args: tuple, n_units: int, sigma: float, block: int, row_block: int, threads: int,
                 retries: int, progress: Progress | None):
        super().__init__(dtype=np.dtype(np.float64), shape=shape)
        self.client = client
        self.sigma = sigma
        self.block = min(block, n_units)
        self.row_block = min(row_block, n_units)
        self.threads = threads
        self.retries = retries
        self.progress = progress
        self.products = 0
        self._static = static
        self._task = task
        self._task_args = task_args
        self._static_future = self._send(static)  # once, and again only after a lost worker
        self._n_units = n_units
        self._blocks = [(s, min(s + self.row_block, n_units)) for s in range(0, n_units, self.row_block)]
        self._stats: dict[str, list[float]] = {}

    def _send(self, data: np.ndarray) -> Any:
        """Scatter ``data`` to the cluster, unhashed: each worker fetches it from a peer with its first task.

        Not ``broadcast=True``: its replication loop hung the test suite with two local workers under load.
        """
        return self.client.scatter(data, hash=False)

    def throughput(self) -> list[WorkerThroughput]:
        """Per-worker blocks, kernel entries and seconds over all products so far."""
        return [WorkerThroughput(address=a, blocks=int(v[0]), entries=v[1], seconds=v[2])
                for a, v in sorted(self._stats.items())]

    def _place(self, out: np.ndarray, start: int, stop: int, block: np.ndarray) -> None:
        out[start:stop] = block

    def _product(self, V: np.ndarray) -> np.ndarray:
        from distributed import as_completed

        V = np.ascontiguousarray(V)
        token = next(_counter)
        out = np.empty(V.shape)
        pending = dict(enumerate(self._blocks))
        V_future = self._send(V)  # once per product
        done = 0
        for attempt in range(self.retries + 1):
            futures = {self.client.submit(self._task, self._static_future, *self._task_args, s, e, V_future,
                                          self.block, self.threads,
                                          key=f"relufim-product-{id(self)}-{token}-{attempt}-{i}",
                                          retries=self.retries, pure=False): i
                       for i, (s, e) in pending.items()}
            for fut in as_completed(list(futures)):
                try:
                    s, e, block, seconds, where = fut.result()
                except Exception as exc:  # a lost worker took the block or its scattered inputs with it
                    if type(exc).__name__ not in ("FutureCancelledError", "CancelledError", "KilledWorker"):
                        raise
                    continue
                self._place(out, s, e, block)
                del pending[futures[fut]]
                st = self._stats.setdefault(where, [0.0, 0.0, 0.0])
                st[0] += 1
                st[1] += (e - s) * self._n_units
                st[2] += seconds
                done += 1
                if self.progress is not None:
                    self.progress(done, len(self._blocks))
            if not pending:
                break
            # the inputs of the lost blocks may have died with the worker: send them again, then resubmit
            self._static_future = self._send(self._static)
            V_future = self._send(V)
        if pending:
            raise RuntimeError(f"{len(pending)} row blocks of the distributed product were lost {self.retries + 1} "
                               "times (workers keep dying); check the cluster.")
        self.client.cancel([V_future])
        return out


class DistributedFisherOperator(FisherFacts, RowBlockOperator):
    r"""Matrix-free :math:`J/\sigma^2` whose products run as row blocks on the workers of a Dask ``client``.

    Built by :func:`relufim.fisher_operator` with ``client=``. Attributes as
    :class:`~relufim.fim.operator.FisherOperator`, plus ``client``, ``row_block`` (rows per
    task), ``retries`` (per task, for exceptions; tasks of a lost worker are recomputed by Dask
    in any case) and :meth:`throughput` (per worker).
    """

    def __init__(self, W: np.ndarray, activation: Activation, *, client: Any, sigma: float, block: int,
                 row_block: int, threads: int, retries: int, progress: Progress | None,
                 truncation: dict[str, int] | None = None):
        p = W.shape[1]
        truncation = dict(truncation or {})
        norms = column_norms(W)
        # the one kernel built here: it refuses an unsupported truncation before W is scattered (not on the
        # workers, which build their own from W), and gives the exact diagonal
        kernel = make_tile_kernel(unit_columns(W, norms), norms, activation, **truncation)
        super().__init__((p, p), client=client, static=W, task=_block_task, task_args=(activation, truncation),
                         n_units=p, sigma=sigma, block=block, row_block=row_block, threads=threads,
                         retries=retries, progress=progress)
        self.W = W
        self.activation = activation
        self.truncation = truncation
        self.norms = norms
        self._kernel_diagonal = kernel.diagonal


def check_client(client: Any) -> dict[str, Any]:
    """The workers of a ``dask.distributed.Client`` (scheduler info), or a clear error for anything else."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ValueError("client= needs Dask distributed: pip install 'relufim[distributed]'.") from exc
    if not isinstance(client, Client):
        raise TypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}.")
    return client.scheduler_info().get("workers", {})


def plan_row_blocks(workers: dict[str, Any], n_units: int, block: int, row_block: int | None,
                    threads: int | None) -> tuple[int, int]:
    """``(row_block, threads)`` for the ``workers`` of :func:`check_client`: a few blocks per worker.

    A lost worker costs little and the load balances; ``threads`` defaults to the smallest
    worker's thread count.
    """
    n_workers = max(1, len(workers))
    if threads is None:
        threads = max(1, min(int(w.get("nthreads", 1)) for w in workers.values())) if workers else 1
    if row_block is None:
        row_block = max(block, -(-n_units // (4 * n_workers)))
    return row_block, threads


def check_workers_fit(workers: dict[str, Any], need: float, what: str) -> None:
    """Refuse up front when one task (``need`` bytes) would not fit in the memory limit of one of ``workers``.

    ``workers`` is the scheduler's view that :func:`check_client` returned (the cluster is asked once).
    """
    limits = [w.get("memory_limit") or 0 for w in workers.values()]
    if not limits:
        raise ValueError("the Dask cluster has no workers; start some (dask worker ADDRESS) before a product.")
    smallest = min(limits)
    if smallest and need > 0.8 * smallest:
        raise ValueError(f"one block of the distributed product needs {format_bytes(need)} per worker ({what}) but "
                         f"the smallest worker has {format_bytes(smallest)}; use workers with more memory or fewer "
                         "vectors per product.")


def make_distributed_operator(W: np.ndarray, client: Any, *, activation: str | Activation, sigma: float, block: int,
                              row_block: int | None, threads: int | None, retries: int,
                              progress: Progress | None, min_degree: int = 0,
                              taylor_from: int = 0) -> DistributedFisherOperator:
    """Build the distributed operator after checking the client and the workers' memory."""
    act = get_activation(activation)
    p = W.shape[1]
    workers = check_client(client)
    row_block, threads = plan_row_blocks(workers, p, block, row_block, threads)
    need = 8.0 * (p * 2 + threads * (row_block + 3 * block * block) + 10 * p)  # one vector
    check_workers_fit(workers, need, f"p = {p}, one vector")
    return DistributedFisherOperator(W, act, client=client, sigma=sigma, block=block, row_block=row_block,
                                     threads=threads, retries=retries, progress=progress,
                                     truncation={"min_degree": min_degree, "taylor_from": taylor_from})

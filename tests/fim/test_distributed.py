"""The matrix-free FIM on a Dask cluster (issue 13) against the in-process operator, including a killed worker.

Oracles: the in-process operator (the same kernel summed in another order: 1e-12 relative is
round-off), dense ``eigh`` for the spectrum.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import relufim as rf

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client(dask_cluster):
    """A client of the session's LocalCluster (2 worker processes with nannies, which restart a killed worker)."""
    with distributed.Client(dask_cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def test_products_equal_the_in_process_operator(client):
    W = rf.sample_weights(5, 1500, seed=0)
    V = np.random.default_rng(1).standard_normal((1500, 6))
    ref = rf.fisher_operator(W) @ V
    for kwargs in (dict(), dict(row_block=97, block=64), dict(sigma=0.5), dict(activation="softplus"),
                   dict(min_degree=4)):
        local = rf.fisher_operator(W, **{k: v for k, v in kwargs.items() if k not in ("row_block",)}) @ V
        dist = rf.fisher_operator(W, client=client, **kwargs) @ V
        assert np.abs(dist - local).max() <= 1e-12 * np.abs(local).max(), kwargs
    op = rf.fisher_operator(W, client=client, row_block=300)
    assert np.abs(op @ V - ref).max() <= 1e-12 * np.abs(ref).max()
    stats = op.throughput()
    assert sum(s.blocks for s in stats) == 5 and all(s.entries_per_second > 0 for s in stats)
    assert op.trace() == pytest.approx(0.5 * (W**2).sum(), rel=1e-14)


def test_a_worker_killed_mid_product_costs_a_retry_not_a_wrong_block(client):
    """SIGKILL one worker process while a product runs: the result is still exact and complete."""
    W = rf.sample_weights(10, 6000, seed=2)
    V = np.random.default_rng(3).standard_normal((6000, 8))
    ref = rf.fisher_operator(W) @ V
    started = threading.Event()
    op = rf.fisher_operator(W, client=client, row_block=250, progress=lambda done, total: started.set())
    pids = client.run(os.getpid)  # worker address -> process id
    victim = sorted(pids.values())[0]
    result = {}

    def product():
        result["out"] = op @ V

    runner = threading.Thread(target=product)
    runner.start()
    assert started.wait(60), "the product did not start"
    os.kill(victim, signal.SIGKILL)  # mid-product: blocks of this worker are lost with it
    runner.join(180)
    assert not runner.is_alive(), "the product did not finish after a worker was killed"
    assert np.abs(result["out"] - ref).max() <= 1e-12 * np.abs(ref).max()
    # the nanny restarts the worker; the cluster keeps working for the next product
    deadline = time.time() + 60
    while len(client.scheduler_info()["workers"]) < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert np.abs(op @ V - ref).max() <= 1e-12 * np.abs(ref).max()


def test_spectrum_on_the_cluster_matches_dense(client):
    d, p = 4, 1200
    W = rf.sample_weights(d, p, seed=4)
    res = rf.spectrum(W, k="clusters", client=client, tol=1e-10)
    w = np.linalg.eigvalsh(rf.fisher_matrix(W))[::-1]
    k = 14  # d(d+3)/2 cluster pairs
    assert res.method == "distributed" and res.clusters_converged
    np.testing.assert_allclose(res.eigenvalues[:k], w[:k], rtol=0, atol=1e-10 * w[0])
    assert res.workers and res.to_dict()["workers"][0]["entries_per_second"] > 0


def test_bad_client_and_backend():
    W = rf.sample_weights(3, 50, seed=0)
    with pytest.raises(TypeError, match="dask.distributed.Client"):
        rf.fisher_operator(W, client="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="client= runs the numpy backend"):
        rf.fisher_operator(W, client=object(), backend="torch")

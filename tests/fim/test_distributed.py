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


def test_diagonal_trace_and_truncation_errors_as_in_process(client, monkeypatch):
    """The exact diagonal and trace are the in-process operator's, bit for bit (the same kernel from the same W);
    an unsupported truncation is refused with the in-process message before W is scattered to the workers."""
    W = rf.sample_weights(4, 300, seed=10)
    for kwargs in (dict(), dict(sigma=0.5), dict(activation="softplus"), dict(min_degree=4), dict(taylor_from=4)):
        local = rf.fisher_operator(W, **kwargs)
        dist = rf.fisher_operator(W, client=client, **kwargs)
        assert np.array_equal(dist.diagonal(), local.diagonal()) and dist.trace() == local.trace(), kwargs
    scattered = []
    monkeypatch.setattr(client, "scatter", lambda *args, **kwargs: scattered.append(args))
    with pytest.raises(ValueError, match="leaky-ReLU family"):
        rf.fisher_operator(W, client=client, activation="softplus", min_degree=4)
    with pytest.raises(ValueError, match="not both"):
        rf.fisher_operator(W, client=client, min_degree=4, taylor_from=4)
    assert not scattered


# ----------------------------------------------------------------------------- the FIM of all parameters


def _network(d, p, seed):
    W = rf.sample_weights(d, p, seed=seed)
    v = np.random.default_rng(seed + 1).standard_normal(p) / np.sqrt(p)
    W[:, 7] = 2.0 * W[:, 3] + 1e-10  # a near-parallel and a near-antiparallel pair: the stable form's path
    W[:, 11] = -W[:, 5]
    return W, v


def test_full_fisher_products_equal_the_in_process_operator(client):
    """Row blocks of units on the workers give F U to 1e-12 of the in-process operator, for any blocking."""
    from relufim.fim.full import DistributedFullFisherOperator

    W, v = _network(4, 600, seed=5)
    P = 600 * 5
    U = np.random.default_rng(6).standard_normal((P, 5))
    local = rf.full_fisher_operator(W, v)
    ref = local @ U
    for kwargs in (dict(), dict(row_block=97, block=64), dict(row_block=600), dict(sigma=0.5)):
        sigma = kwargs.get("sigma", 1.0)
        op = rf.full_fisher_operator(W, v, client=client, **kwargs)
        assert isinstance(op, DistributedFullFisherOperator)
        out = op @ U
        assert np.abs(out - ref / sigma**2).max() <= 1e-12 * np.abs(ref).max() / sigma**2, kwargs
    # the dense matrix, an independent oracle of the assembly (v rows, then w rows of every block)
    F = rf.full_fisher_matrix(W, v)
    op = rf.full_fisher_operator(W, v, client=client, row_block=150)
    np.testing.assert_allclose(op @ U[:, 0], F @ U[:, 0], rtol=0, atol=1e-12 * np.abs(F).max() * np.sqrt(P))
    assert op.products == 1 and sum(s.blocks for s in op.throughput()) == 4
    assert op.trace() == pytest.approx(np.trace(F), rel=1e-13)
    assert op.frobenius_norm_squared() == pytest.approx(float(np.sum(F * F)), rel=1e-12)


def test_full_fisher_product_survives_a_killed_worker(client):
    W, v = _network(8, 2500, seed=7)
    U = np.random.default_rng(8).standard_normal((2500 * 9, 6))
    ref = rf.full_fisher_operator(W, v) @ U
    deadline = time.time() + 60
    while len(client.scheduler_info()["workers"]) < 2 and time.time() < deadline:
        time.sleep(0.2)  # the worker killed by the test above is back
    started = threading.Event()
    op = rf.full_fisher_operator(W, v, client=client, row_block=100, progress=lambda done, total: started.set())
    victim = sorted(client.run(os.getpid).values())[0]
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("out", op @ U))
    runner.start()
    assert started.wait(60), "the product did not start"
    os.kill(victim, signal.SIGKILL)
    runner.join(180)
    assert not runner.is_alive(), "the product did not finish after a worker was killed"
    assert np.abs(result["out"] - ref).max() <= 1e-12 * np.abs(ref).max()


def test_full_spectrum_on_the_cluster_matches_dense(client):
    from relufim.theory.curvature import full_spectrum

    W, v = _network(3, 300, seed=9)
    res = full_spectrum(W, v, "clusters", client=client, tol=1e-10)
    lam = np.linalg.eigvalsh(rf.full_fisher_matrix(W, v))[::-1]
    assert res.result.method == "distributed" and res.converged
    np.testing.assert_allclose(res.eigenvalues[:res.required], lam[:res.required], rtol=0, atol=1e-9 * lam[0])
    assert res.second_moment == pytest.approx(float(np.sum(lam**2)) / lam.size, rel=1e-10)
    assert res.to_dict()["workers"] and all(w["entries_per_second"] > 0 for w in res.to_dict()["workers"])
    with pytest.raises(ValueError, match="matrix-free products on a cluster"):
        full_spectrum(W, v, "all", client=client)
    with pytest.raises(ValueError, match="float64"):
        rf.full_fisher_operator(W, v, client=client, dtype="float32")
    with pytest.raises(TypeError, match="dask.distributed.Client"):
        rf.full_fisher_operator(W, v, client="tcp://127.0.0.1:1")


def test_worker_memory_check_charges_one_row_block_and_asks_the_scheduler_once(client, monkeypatch):
    """A task of the FIM of all parameters holds (2, q, d b) accumulators per thread, so the per-worker check
    charges its q units (the allocations themselves are measured in tests/fim/test_full.py): a worker with room
    for a row block but not for a whole product is accepted, one without room for a row block refused with the
    per-worker message. Both operators ask the scheduler for its workers once."""
    from relufim.fim.distributed import check_workers_fit
    from relufim.fim.full import _product_memory

    d, p, q, tile, threads = 6, 3000, 100, 32, 8  # small tiles, many threads: the accumulators dominate
    W, v = _network(d, p, seed=11)
    row = _product_memory(p, d, 1, tile, threads, row_block=q)
    whole = _product_memory(p, d, 1, tile, threads)
    assert 2 * row < whole
    calls = []

    def workers_with(limit):
        def scheduler_info(*args, **kwargs):
            calls.append(limit)
            return {"workers": {"tcp://127.0.0.1:1": {"memory_limit": limit, "nthreads": threads}}}
        monkeypatch.setattr(client, "scheduler_info", scheduler_info)

    workers_with(int(whole / 0.8) - 1)  # too small for a whole product, enough for a row block
    op = rf.full_fisher_operator(W, v, client=client, block=tile, row_block=q)
    assert op.row_block == q and op.threads == threads and len(calls) == 1
    workers_with(int(row / 0.8) - 1)
    with pytest.raises(ValueError, match=r"one block of the distributed product needs .* per worker \(p = 3000"):
        rf.full_fisher_operator(W, v, client=client, block=tile, row_block=q)
    assert len(calls) == 2
    workers_with(10**9)
    rf.fisher_operator(W, client=client)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="the Dask cluster has no workers"):
        check_workers_fit({}, 1.0, "one vector")

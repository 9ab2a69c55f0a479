"""Fixtures shared across the test tree (which mirrors src/relufim/).

Module-specific fixtures stay in their modules; what several modules need lives here: a small
FIM, one Dask LocalCluster for the whole session (starting one costs seconds), and a runner for
the Python blocks of the documentation pages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import relufim as rf
from tests.oracles import python_blocks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_fim() -> tuple[np.ndarray, np.ndarray]:
    """Hidden weights (d, p) = (3, 150) and their exact FIM: a case where every dense oracle is instant."""
    W = rf.sample_weights(3, 150, seed=0)
    return W, rf.fisher_matrix(W)


@pytest.fixture(scope="session")
def dask_cluster():
    """A real LocalCluster for the session: 2 single-threaded worker processes with nannies (a killed worker
    is restarted). Tests that kill a worker wait for the cluster to have its workers back."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster:
        yield cluster


@pytest.fixture
def run_doc_page(tmp_path, monkeypatch) -> Callable[[str], dict]:
    """Run every Python block of ``docs/<page>`` in order, in an empty directory; return the namespace."""

    def run(page: str) -> dict:
        blocks = python_blocks((ROOT / "docs" / page).read_text(encoding="utf-8"))
        assert blocks, f"docs/{page} has no Python blocks"
        monkeypatch.chdir(tmp_path)
        namespace: dict = {"__name__": "__main__"}  # scripts keep their __main__ guards for Dask
        for i, block in enumerate(blocks, start=1):
            try:
                exec(compile(block, f"docs/{page} block {i}", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the message says which block broke
                pytest.fail(f"docs/{page} block {i} failed: {type(exc).__name__}: {exc}\n{block}")
        return namespace

    return run

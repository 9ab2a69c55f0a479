"""``relufim spectrum --scheduler``: the matrix-free products on a Dask cluster, as a user runs it (issue 13)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from click.testing import CliRunner

import relufim as rf
from relufim.cli import main

distributed = pytest.importorskip("distributed")


def test_spectrum_on_a_cluster_reports_workers_and_matches_in_process(dask_cluster):
    args = ["spectrum", "--d", "4", "--p", "800", "--json", "--quiet"]
    r = CliRunner().invoke(main, args + ["--scheduler", dask_cluster.scheduler_address])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["solver"] == "distributed" and out["scheduler"].startswith("tcp://")
    assert len(out["workers"]) >= 1 and all(w["entries_per_second"] > 0 for w in out["workers"])
    ref = json.loads(CliRunner().invoke(main, args).stdout)
    m = 14  # the d(d+3)/2 cluster eigenvalues
    np.testing.assert_allclose(out["eigenvalues"][:m], ref["eigenvalues"][:m], rtol=1e-9)
    assert out["converged"]


def test_unreachable_scheduler_fails_fast_with_its_address():
    t0 = time.perf_counter()
    r = CliRunner().invoke(main, ["spectrum", "--d", "3", "--p", "100", "--scheduler", "tcp://127.0.0.1:9", "--quiet"])
    assert r.exit_code == 2 and time.perf_counter() - t0 < 20
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "tcp://127.0.0.1:9" in lines[0] and lines[0].startswith("relufim: error:")


def test_cluster_options_need_the_exact_fim():
    r = CliRunner().invoke(main, ["spectrum", "--d", "3", "--p", "100", "--method", "monte-carlo", "--n", "50",
                                  "--scheduler", "tcp://127.0.0.1:9", "--quiet"])
    assert r.exit_code == 2 and "exact FIM" in r.stderr
    r = CliRunner().invoke(main, ["spectrum", "--d", "3", "--p", "100", "--seed-degree", "1", "--quiet"])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "'--seed-degree'" in r.stderr
    r = CliRunner().invoke(main, ["spectrum", "--d", "3", "--p", "100", "--seed-degree", "four", "--quiet"])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "'auto' or an integer" in r.stderr
    assert rf.spectrum(rf.sample_weights(3, 100, seed=0), precision="mixed", tol=1e-9).clusters_converged


def test_params_all_on_a_cluster_matches_in_process(dask_cluster):
    args = ["spectrum", "--params", "all", "--d", "3", "--p", "400", "--json", "--quiet"]
    r = CliRunner().invoke(main, args + ["--scheduler", dask_cluster.scheduler_address])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["method"] == "distributed" and out["scheduler"].startswith("tcp://") and out["workers"]
    ref = json.loads(CliRunner().invoke(main, args).stdout)
    m = out["required"]
    np.testing.assert_allclose(out["eigenvalues"][:m], ref["eigenvalues"][:m], rtol=1e-9)
    assert out["second_moment"] == pytest.approx(ref["second_moment"], rel=1e-10)
    r = CliRunner().invoke(main, args + ["--all-eigenvalues", "--scheduler", dask_cluster.scheduler_address])
    assert r.exit_code == 2 and "--scheduler" in r.stderr

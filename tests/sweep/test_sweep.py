"""Sweeps on a real Dask LocalCluster (2 worker processes): results, resume, failures, crashes, bad input."""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("distributed")

from click.testing import CliRunner  # noqa: E402

import relufim as rf  # noqa: E402
from relufim.cli import main  # noqa: E402
from relufim.model import activations  # noqa: E402
from relufim.sweep.runner import (  # noqa: E402
    SchedulerUnreachableError,
    load_sweep_config,
    parse_sweep_config,
    run_sweep,
    run_task,
)
from relufim.sweep.store import DB_NAME, ResultsStore, StoreMismatchError, load_array, load_results  # noqa: E402

ISSUE_EXAMPLE = """\
[grid]
d = [3, 5]
p = [500, 1000]
seed = [0, 1]
activation = ["relu"]
[compute]
what = ["spectrum"]
"""

SMALL = """\
[sweep]
name = "small"
[grid]
d = [2, 4]
p = [120, 200]
seed = [0, 1]
[compute]
what = ["spectrum"]
"""


@pytest.fixture
def cluster(dask_cluster):
    """The session's LocalCluster (2 single-threaded worker processes), with both workers up."""
    with distributed.Client(dask_cluster) as c:
        c.wait_for_workers(2, timeout=60)
    return dask_cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exact_fim(W: np.ndarray) -> np.ndarray:
    """Independent oracle: J_ij = |w_i||w_j| kappa(t_ij) straight from Lemma 1 (theory §2)."""
    r = np.linalg.norm(W, axis=0)
    t = np.clip((W.T @ W) / np.outer(r, r), -1.0, 1.0)
    kappa = (np.sqrt(1.0 - t * t) + (np.pi - np.arccos(t)) * t) / (2 * np.pi)
    J = np.outer(r, r) * kappa
    np.fill_diagonal(J, r * r / 2)
    return J


# ----------------------------------------------------------------------------- configuration

def test_issue_example_expands_to_eight_tasks_with_defaults():
    cfg = parse_sweep_config(ISSUE_EXAMPLE, "sweep.toml")
    tasks = cfg.tasks()
    assert len(tasks) == 8 and len({tid for tid, _ in tasks}) == 8
    assert {(p["d"], p["p"], p["seed"]) for _, p in tasks} == {(d, p, s) for d in (3, 5) for p in (500, 1000)
                                                                for s in (0, 1)}
    assert all(p["activation"] == "relu" and p["scale"] == "1/p" and p["fisher"] == "exact" for _, p in tasks)
    # the identity of a sweep is its grid and computations, not its name; task ids are stable
    renamed = parse_sweep_config("[sweep]\nname = 'x'\n" + ISSUE_EXAMPLE)
    assert renamed.sweep_id == cfg.sweep_id and renamed.tasks() == tasks
    other = parse_sweep_config(ISSUE_EXAMPLE.replace("seed = [0, 1]", "seed = [0, 2]"))
    assert other.sweep_id != cfg.sweep_id
    # scalars are one-element lists; exact FIMs ignore n
    mc = parse_sweep_config("[grid]\nd = 2\np = 50\nfisher = ['exact', 'monte-carlo']\nn = [100, 200]\n")
    assert len(mc.tasks()) == 3


@pytest.mark.parametrize("text, line, words", [
    ("[grid]\nd = [3]\np = [100\n", 3, ["malformed TOML", "Unclosed array"]),
    ("[grid]\nd = [3]\np = 100]\n", 3, ["malformed TOML", "p = 100]"]),
    ("[grid]\nd = [3]\np = [100]\nseeds = [1]\n", 4, ["unknown key 'seeds'", "known keys: d, p, seed"]),
    ("[grid]\nd = [3]\np = [100]\n\n[compute]\nwhat = ['spectrum']\nwhatt = 1\n", 7, ["unknown key 'whatt'"]),
    ("[grid]\nd = [3]\np = [100]\n[output]\nx = 1\n", 4, ["unknown table or key 'output'"]),
    ("[grid]\nd = [3]\np = [100]\n[compute]\nwhat = ['spectrum', 'bogus']\n", 5,
     ["unknown computation 'bogus'", "supported here: spectrum"]),
    ("[grid]\nd = [3]\np = [-100]\n", 3, ["p", ">= 1"]),
    ("[grid]\nd = [3, 3]\np = [100]\n", 2, ["twice"]),
    ("[grid]\nd = [3]\np = [100]\nactivation = ['relux']\n", 4, ["unknown activation 'relux'"]),
    ("[grid]\nd = [3]\np = [100]\nfisher = ['monte-carlo']\n", 4, ["needs the number of samples"]),
    ("[grid]\nd = [2.5]\np = [100]\n", 2, ["expected integers"]),
])
def test_bad_configuration_names_the_line_and_the_key(text, line, words):
    with pytest.raises(ValueError) as info:
        parse_sweep_config(text, "cfg.toml")
    msg = str(info.value)
    assert msg.startswith(f"cfg.toml, line {line}:") or f"line {line}" in msg, msg
    for w in words:
        assert w in msg, msg


def test_missing_grid_and_limit_rejected_when_unavailable():
    with pytest.raises(ValueError, match=r"missing table \[grid\]"):
        parse_sweep_config("[compute]\nwhat = ['spectrum']\n")
    with pytest.raises(ValueError, match="needs 'p'"):
        parse_sweep_config("[grid]\nd = [2]\n")
    limit_toml = "[grid]\nd = [2]\np = [10]\n[compute]\nwhat = ['limit']\n"
    try:
        import relufim.theory.limit  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="unknown computation 'limit'.*supported here: spectrum"):
            parse_sweep_config(limit_toml)
    else:
        assert parse_sweep_config(limit_toml).what == ("limit",)


# ----------------------------------------------------------------------------- one task

def test_run_task_matches_an_independent_dense_eigendecomposition():
    d, p = 4, 150
    params = {"d": d, "p": p, "seed": 7, "activation": "relu", "scale": "1/p", "fisher": "exact", "n": None}
    out = run_task(params)
    assert out["status"] == "done", out["error"]
    row = out["result"]
    lam = np.linalg.eigvalsh(_exact_fim(rf.sample_weights(d, p, seed=7)))[::-1]
    sizes = [row[f"cluster{i}_size"] for i in (1, 2, 3)]
    assert row["clusters_match"] == (sizes == [1, d, d * (d + 1) // 2 - 1])
    bounds = np.cumsum([0] + sizes)
    # both sides are LAPACK eigensolvers of the same matrix: eigenvalue errors ~ 1e-15 * lambda_max
    for i in range(3):
        assert math.isclose(row[f"cluster{i + 1}_mean"], lam[bounds[i]:bounds[i + 1]].mean(), rel_tol=1e-9)
    assert math.isclose(row["top_fraction"], lam[: bounds[3]].sum() / lam.sum(), rel_tol=1e-9)
    eig = out["arrays"]["eigenvalues"]
    assert eig.size == d * (d + 3) // 2 + 10  # the clusters plus `extra`
    np.testing.assert_allclose(eig, lam[: eig.size], rtol=1e-9, atol=1e-14)


def test_limit_computation_matches_the_closed_forms():
    pytest.importorskip("relufim.theory.limit")
    from scipy.special import gammaln

    d, p = 4, 100
    out = run_task({"d": d, "p": p, "seed": 0, "activation": "relu", "scale": "1/p"}, ["spectrum", "limit"])
    assert out["status"] == "done", out["error"]
    row = out["result"]
    # theory §7, ReLU: mu_0 = d Gamma(d/2)^2 / (4 pi Gamma((d+1)/2)^2), mu_1 = 1/(4d), mu_2 = mu_0/(d+1)^2;
    # the FIM eigenvalue is d * mu_k for the default draw. Closed forms in double: agree to ~1e-15.
    mu0 = d * np.exp(2 * gammaln(d / 2) - 2 * gammaln((d + 1) / 2)) / (4 * np.pi)
    assert math.isclose(row["limit_cluster1"], d * mu0, rel_tol=1e-12)
    assert math.isclose(row["limit_cluster2"], 0.25, rel_tol=1e-12)
    assert math.isclose(row["limit_cluster3"], d * mu0 / (d + 1) ** 2, rel_tol=1e-12)
    assert "cluster1_mean" in row  # both computations in one row


def test_run_task_returns_failures_as_data():
    out = run_task({"d": 2, "p": 20, "seed": 0, "activation": "no-such-activation"})
    assert out["status"] == "failed" and out["result"] is None
    assert "no-such-activation" in out["error"] and "Traceback" in out["traceback"]


# ----------------------------------------------------------------------------- sweeps on the cluster

def test_sweep_on_a_local_cluster_resumes_and_refuses_another_sweep(cluster, tmp_path):
    cfg = parse_sweep_config(SMALL)
    seen = []
    outcome = run_sweep(cfg, tmp_path / "out", scheduler=cluster.scheduler_address, progress=seen.append)
    assert (outcome.total, outcome.done, outcome.failed, outcome.ran) == (8, 8, 0, 8)
    assert seen[-1].remaining == 0 and seen[-1].done == 8 and seen[0].remaining == 8
    df = load_results(tmp_path / "out")
    assert len(df) == 8 and set(df["status"]) == {"done"}
    for col in ("d", "p", "seed", "activation", "status", "top_fraction", "cluster1_mean", "cluster2_mean",
                "cluster3_mean", "seconds", "worker"):
        assert col in df.columns
    # the two worker processes shared the work
    assert df["worker"].nunique() == 2
    # each stored row equals the same computation done here (deterministic seeds)
    first = df.iloc[0]
    direct = run_task({k: first[k] for k in ("d", "p", "seed", "activation", "scale", "fisher")} | {"n": None})
    assert first["cluster2_mean"] == direct["result"]["cluster2_mean"]
    np.testing.assert_array_equal(load_array(tmp_path / "out", first["task_id"]), direct["arrays"]["eigenvalues"])
    # resume: nothing to do, nothing recorded twice
    again = run_sweep(cfg, tmp_path / "out", scheduler=cluster.scheduler_address)
    assert (again.ran, again.skipped, again.done) == (0, 8, 8)
    with ResultsStore(tmp_path / "out", readonly=True) as store:
        assert len(store.completions()) == 8
        meta = store.meta()
        runs = store.runs()
    assert meta["last_versions"]["relufim"] == rf.__version__
    assert "git_revision" in runs[0] and runs[0]["workers"] == 2 and runs[0]["seconds"] > 0
    # a different sweep into the same directory is refused, and the results stay
    other = parse_sweep_config(SMALL.replace("p = [120, 200]", "p = [120]"))
    with pytest.raises(StoreMismatchError, match="another sweep"):
        run_sweep(other, tmp_path / "out", scheduler=cluster.scheduler_address)
    assert load_results(tmp_path / "out")["status"].eq("done").sum() == 8


def test_failed_tasks_are_recorded_do_not_stop_the_sweep_and_can_be_retried(cluster, tmp_path, monkeypatch):
    # an activation registered in the driver only: the workers do not know it, so its tasks fail there
    act = dataclasses.replace(activations.get_activation("relu"), name="relu-driver-only")
    monkeypatch.setitem(activations._REGISTRY, act.name, act)
    cfg = parse_sweep_config("[grid]\nd = [2]\np = [60]\nseed = [0, 1]\nactivation = ['relu', 'relu-driver-only']\n")
    outcome = run_sweep(cfg, tmp_path / "out", scheduler=cluster.scheduler_address)
    assert (outcome.done, outcome.failed) == (2, 2)
    df = load_results(tmp_path / "out")
    failed = df[df["status"] == "failed"]
    assert set(failed["activation"]) == {"relu-driver-only"}
    assert all("relu-driver-only" in e for e in failed["error"])
    # a plain re-run keeps the failures; --retry-failed runs them again (now the workers know the activation)
    assert run_sweep(cfg, tmp_path / "out", scheduler=cluster.scheduler_address).ran == 0
    with distributed.Client(cluster.scheduler_address, timeout=10) as client:
        client.run(functools.partial(activations.register_activation, act))
    retried = run_sweep(cfg, tmp_path / "out", scheduler=cluster.scheduler_address, retry_failed=True)
    assert (retried.ran, retried.done, retried.failed) == (2, 4, 0)
    df = load_results(tmp_path / "out")
    assert df.set_index("activation").loc["relu-driver-only", "attempts"].tolist() == [2, 2]


def test_unreachable_scheduler_fails_within_seconds_naming_the_address(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.perf_counter()
    with pytest.raises(SchedulerUnreachableError, match=address.replace(".", r"\.")):
        run_sweep(parse_sweep_config(SMALL), tmp_path / "out", scheduler=address, connect_timeout=1.0)
    assert time.perf_counter() - t0 < 10
    result = CliRunner().invoke(main, ["sweep", str(_write(tmp_path / "s.toml", SMALL)), "--out",
                                       str(tmp_path / "o2"), "--scheduler", address, "--timeout", "1"])
    assert result.exit_code == 2
    assert "relufim: error:" in result.stderr and address in result.stderr and "Traceback" not in result.output


def test_a_scheduler_without_workers_or_with_other_versions_is_refused(cluster, tmp_path, monkeypatch):
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0", silence_logs=40) as empty:
        t0 = time.perf_counter()
        with pytest.raises(SchedulerUnreachableError, match="no Dask worker"):
            run_sweep(parse_sweep_config(SMALL), tmp_path / "a", scheduler=empty.scheduler_address,
                      connect_timeout=1.0)
        assert time.perf_counter() - t0 < 10
    # workers importing another relufim than the driver: refused before any task runs
    monkeypatch.setattr(sys.modules["relufim.sweep.runner"], "__version__", "0.0.0-driver")
    with pytest.raises(ValueError, match=r"run relufim \['[^']+'\], this driver 0\.0\.0-driver"):
        run_sweep(parse_sweep_config(SMALL), tmp_path / "b", scheduler=cluster.scheduler_address)
    assert load_results(tmp_path / "b")["status"].eq("pending").all()


def _write(path, text):
    path.write_text(text)
    return path


def test_cli_sweep_shows_progress_and_refuses_bad_input(cluster, tmp_path):
    cfg = _write(tmp_path / "s.toml", "[grid]\nd = [2]\np = [50, 80]\n")
    r = CliRunner().invoke(main, ["sweep", str(cfg), "--scheduler", cluster.scheduler_address, "--json"])
    assert r.exit_code == 0, r.stderr
    assert "2/2 done, 0 failed, 0 remaining" in r.stderr and "ETA" in r.stderr
    assert '"done": 2' in r.stdout
    assert (tmp_path / "s" / DB_NAME).exists()  # default --out: next to the config
    bad = _write(tmp_path / "bad.toml", "[grid]\nd = [2]\np = [50]\nq = 1\n")
    r = CliRunner().invoke(main, ["sweep", str(bad)])
    assert r.exit_code == 2 and "line 4" in r.stderr and "'q'" in r.stderr and "Traceback" not in r.output


# ----------------------------------------------------------------------------- crashes

def _done_rows(db) -> dict[str, tuple]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("SELECT task_id, finished, run_id FROM tasks WHERE status = 'done'").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return {}
    return {r[0]: (r[1], r[2]) for r in rows}


def _wait_for(pred, timeout, what):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_of_a_worker_and_of_the_driver_loses_nothing_and_duplicates_nothing(cluster, tmp_path):
    psutil = pytest.importorskip("psutil")
    cfg = _write(tmp_path / "crash.toml", "[grid]\nd = [4, 5]\np = [700, 1000]\nseed = [0, 1, 2, 3, 4]\n")
    out = tmp_path / "out"
    db = out / DB_NAME
    total = 20
    # the driver starts its own LocalCluster of 2 worker processes; its own session, so we can clean up after it
    proc = subprocess.Popen([sys.executable, "-c", "from relufim.cli import main; main()", "sweep", str(cfg),
                             "--out", str(out), "--workers", "2", "--quiet"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: len(_done_rows(db)) >= 2 or proc.poll() is not None, 120, "the first tasks")
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        workers = [c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2, [c.cmdline() for c in psutil.Process(proc.pid).children()]
        os.kill(workers[0].pid, signal.SIGKILL)  # a worker dies mid-task: the driver carries on
        n = len(_done_rows(db))
        _wait_for(lambda: len(_done_rows(db)) >= n + 3 or proc.poll() is not None, 120,
                  "progress after the worker died")
        assert proc.poll() is None, "the driver stopped after a worker died"
        os.kill(proc.pid, signal.SIGKILL)  # now the driver
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the process group we started
        except ProcessLookupError:
            pass
        proc.stderr.close()
    before = _done_rows(db)
    assert 0 < len(before) < total, f"{len(before)} tasks done before the kill; the test needs a partial sweep"
    # re-run (on the module's cluster): completes everything, recomputes none of the finished tasks
    outcome = run_sweep(load_sweep_config(cfg), out, scheduler=cluster.scheduler_address)
    assert (outcome.done, outcome.failed, outcome.pending) == (total, 0, 0)
    assert outcome.ran == total - len(before)
    after = _done_rows(db)
    assert set(after) == {tid for tid, _ in load_sweep_config(cfg).tasks()}
    assert {k: after[k] for k in before} == before  # finished rows untouched: same time, same run
    with ResultsStore(out, readonly=True) as store:
        per_task = collections.Counter(c["task_id"] for c in store.completions())
        runs = store.runs()
    assert len(per_task) == total and set(per_task.values()) == {1}
    assert runs[0]["finished"] is None and runs[-1]["finished"] is not None  # the killed run shows as interrupted
    df = load_results(out)
    assert len(df) == total and df["task_id"].is_unique and (df["attempts"] == 1).all()

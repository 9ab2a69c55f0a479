"""The results store: atomic files, exactly-once records, crash consistency, refusal of a foreign sweep."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from relufim.sweep.store import (  # noqa: E402
    DB_NAME,
    ResultsStore,
    StoreLockedError,
    StoreMismatchError,
    git_revision,
    load_array,
    load_results,
    save_array_atomic,
    write_bytes_atomic,
)

TASKS = [("t0", {"d": 2, "p": 10, "seed": 0}), ("t1", {"d": 2, "p": 10, "seed": 1}),
         ("t2", {"d": 3, "p": 10, "seed": 0})]


def _new_store(path, sweep_id="sweep-a"):
    store = ResultsStore(path)
    store.initialise(sweep_id, {"grid": {"d": [2, 3]}})
    store.add_tasks(TASKS)
    return store


def test_atomic_writes_leave_no_temp_files_and_readable_permissions(tmp_path):
    p = write_bytes_atomic(tmp_path / "sub" / "a.bin", b"one")
    write_bytes_atomic(p, b"two")
    assert p.read_bytes() == b"two"
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.bin"]
    # mkstemp creates 0600; the store gives files the usual umask permissions
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
    arr = np.linspace(0, 1, 7)
    q = save_array_atomic(tmp_path / "x.npy", arr)
    np.testing.assert_array_equal(np.load(q), arr)


def test_record_is_exactly_once_and_arrays_are_written_first(tmp_path):
    with _new_store(tmp_path) as store:
        assert store.counts() == {"pending": 3, "done": 0, "failed": 0}
        run = store.start_run({"who": "test"})
        eig = np.array([3.0, 2.0, 1.0])
        assert store.record("t0", run, status="done", result={"top_fraction": 0.99, "x": float("nan")},
                            arrays={"eigenvalues": eig}, seconds=0.1, worker="w")
        # a second outcome for a finished task is refused: nothing changes, no second completion
        assert not store.record("t0", run, status="done", result={"top_fraction": 0.5})
        assert not store.record("t0", run, status="failed", error="late duplicate")
        assert store.record("t1", run, status="failed", error="ValueError: boom", traceback="tb")
        # a failed task may be recorded again (a retry) and then succeed
        assert store.record("t1", run, status="done", result={"top_fraction": 0.98})
        with pytest.raises(KeyError):
            store.record("nope", run, status="done")
        with pytest.raises(ValueError, match="status"):
            store.record("t2", run, status="running")
        assert store.counts() == {"pending": 1, "done": 2, "failed": 0}
        log = store.completions()
        assert [(c["task_id"], c["status"]) for c in log] == [("t0", "done"), ("t1", "failed"), ("t1", "done")]
    df = load_results(tmp_path)
    assert list(df["task_id"]) == ["t0", "t1", "t2"]
    assert list(df["status"]) == ["done", "done", "pending"]
    t0 = df.set_index("task_id").loc["t0"]
    assert t0["top_fraction"] == 0.99 and t0["d"] == 2 and t0["seed"] == 0
    assert t0["x"] is None or np.isnan(t0["x"])  # NaN stored as JSON null
    assert df.set_index("task_id").loc["t1", "attempts"] == 2
    np.testing.assert_array_equal(load_array(tmp_path, "t0"), [3.0, 2.0, 1.0])
    with pytest.raises(FileNotFoundError):
        load_array(tmp_path, "t2")


def test_another_sweeps_directory_is_refused_and_left_untouched(tmp_path):
    with _new_store(tmp_path) as store:
        run = store.start_run({})
        store.record("t0", run, status="done", result={"top_fraction": 0.99})
    with ResultsStore(tmp_path) as store:
        with pytest.raises(StoreMismatchError, match="another sweep"):
            store.initialise("sweep-b", {"grid": {}})
        assert store.initialise("sweep-a", {"grid": {}}) is False  # the same sweep resumes
        assert store.counts()["done"] == 1
    assert load_results(tmp_path)["status"].tolist() == ["done", "pending", "pending"]


def test_a_second_writer_is_locked_out(tmp_path):
    a = _new_store(tmp_path)
    a.lock()
    b = ResultsStore(tmp_path)
    with pytest.raises(StoreLockedError, match="another sweep"):
        b.lock()
    a.close()
    b.lock()  # released with the first writer
    b.close()


def test_a_writer_killed_inside_a_transaction_leaves_the_store_consistent(tmp_path):
    with _new_store(tmp_path) as store:
        run = store.start_run({})
        store.record("t0", run, status="done", result={"top_fraction": 0.9})
    # a child process starts to record t1 and dies by SIGKILL before COMMIT
    code = textwrap.dedent(f"""
        import os, signal
        from relufim.sweep.store import ResultsStore
        s = ResultsStore({str(tmp_path)!r})
        s.conn.execute("BEGIN IMMEDIATE")
        s.conn.execute("UPDATE tasks SET status='done', result='{{}}' WHERE task_id='t1'")
        s.conn.execute("INSERT INTO completions VALUES ('t1', 1, 'done', 0)")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -9
    con = sqlite3.connect(tmp_path / DB_NAME)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with ResultsStore(tmp_path) as store:
        assert store.counts() == {"pending": 2, "done": 1, "failed": 0}
        assert [c["task_id"] for c in store.completions()] == ["t0"]


def test_load_results_errors_and_provenance(tmp_path):
    with pytest.raises(FileNotFoundError, match="relufim sweep"):
        load_results(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        ResultsStore(tmp_path / "missing", readonly=True)
    rev = git_revision()
    assert rev is None or (len(rev.split("+")[0]) == 40 and all(c in "0123456789abcdef" for c in rev.split("+")[0]))
    assert git_revision(tmp_path) is None  # not a git checkout
    with _new_store(tmp_path / "s") as store:
        rid = store.start_run({"a": 1})
        store.finish_run(rid, {"b": float("inf")})
        runs = store.runs()
        assert runs[0]["a"] == 1 and runs[0]["b"] is None and runs[0]["finished"] is not None
        assert json.loads(json.dumps(store.meta()))["sweep_id"] == "sweep-a"

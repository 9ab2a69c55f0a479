"""A crash-safe results store for sweeps: one SQLite database plus per-task arrays.

Layout of a sweep directory ``DIR``::

    DIR/results.sqlite          tasks, their results, runs, configuration (WAL journal)
    DIR/arrays/<task_id>/*.npy  per-task arrays (e.g. eigenvalues), written atomically
    DIR/sweep.toml              a copy of the configuration that made the sweep

Only the driver writes; workers return their results to it. A task's row moves to
``done`` (or ``failed``) in one transaction that also appends a line to the
``completions`` log, guarded so that a finished task is never recorded twice. Its
arrays are written (temp file, fsync, ``os.replace``) *before* that transaction, so
a ``done`` row always points at complete files. A driver killed at any instant
(even by SIGKILL) leaves the database consistent: SQLite rolls back the open
transaction, and the task is simply run again by the next invocation.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import platform
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .._io import to_jsonable as _json_safe
from .._io import write_bytes_atomic
from .._version import __version__

__all__ = [
    "DB_NAME",
    "ARRAYS_DIR",
    "ResultsStore",
    "StoreMismatchError",
    "StoreLockedError",
    "load_results",
    "load_array",
    "git_revision",
    "environment_versions",
    "write_bytes_atomic",
    "save_array_atomic",
]

DB_NAME = "results.sqlite"
ARRAYS_DIR = "arrays"
_LOCK_NAME = ".sweep.lock"
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id   TEXT PRIMARY KEY,
    position  INTEGER NOT NULL,
    params    TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    result    TEXT,
    arrays    TEXT,
    error     TEXT,
    traceback TEXT,
    attempts  INTEGER NOT NULL DEFAULT 0,
    seconds   REAL,
    worker    TEXT,
    run_id    INTEGER,
    finished  REAL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    started   REAL NOT NULL,
    finished  REAL,
    info      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS completions (
    task_id   TEXT NOT NULL,
    run_id    INTEGER NOT NULL,
    status    TEXT NOT NULL,
    finished  REAL NOT NULL
);
"""


class StoreMismatchError(ValueError):
    """The directory holds the results of a different sweep (refused, never overwritten)."""


class StoreLockedError(RuntimeError):
    """Another process is running a sweep into the same directory right now."""


# ----------------------------------------------------------------------------- atomic files

def save_array_atomic(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save ``array`` as ``.npy`` at ``path`` atomically (see :func:`write_bytes_atomic`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = save_array_atomic(pathlib.Path(tempfile.mkdtemp()) / "e.npy", np.arange(3.0))
    >>> np.load(p)
    array([0., 1., 2.])
    """
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return write_bytes_atomic(path, buf.getvalue())


# ----------------------------------------------------------------------------- provenance

def git_revision(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of the checkout holding ``path`` (default: this package), or ``None``.

    A ``+dirty`` suffix marks uncommitted changes to tracked files. ``None`` when git
    is missing or the package is not in a git checkout (e.g. installed from a wheel).
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}+dirty" if dirty else rev or None


def environment_versions() -> dict[str, str | None]:
    """Versions of relufim and the libraries a result depends on (``None`` where not installed)."""
    out: dict[str, str | None] = {"relufim": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "dask", "distributed", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# ----------------------------------------------------------------------------- JSON

def _dumps(obj: Any) -> str:
    return json.dumps(_json_safe(obj), sort_keys=True, allow_nan=False)


# ----------------------------------------------------------------------------- the store

@dataclass(frozen=True)
class TaskRecord:
    """One stored task (as read back from the database)."""

    task_id: str
    position: int
    params: dict[str, Any]
    status: str
    result: dict[str, Any] | None
    arrays: dict[str, str]
    error: str | None
    attempts: int
    seconds: float | None
    worker: str | None
    run_id: int | None
    finished: float | None


class ResultsStore:
    """The SQLite results store of one sweep directory.

    Parameters
    ----------
    directory : path
        The sweep directory (created if missing).
    readonly : bool
        Open an existing store for reading only (``load_results`` does this).

    Notes
    -----
    WAL journal, ``synchronous=FULL``: a committed transaction survives the death of
    the process (and of the machine). Writers hold ``DIR/.sweep.lock`` (an advisory
    ``flock``, released by the kernel when the process dies, even by SIGKILL).
    """

    def __init__(self, directory: str | os.PathLike, *, readonly: bool = False) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.readonly = readonly
        self._lock_fh = None
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no sweep results in {self.directory} (missing {DB_NAME}); "
                                        "run `relufim sweep CONFIG --out DIR` first.")
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(_SCHEMA)
        self.conn.row_factory = sqlite3.Row

    # -- context management
    def close(self) -> None:
        self.conn.close()
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def lock(self) -> None:
        """Take the writer lock, or raise :class:`StoreLockedError` when another sweep holds it."""
        fh = open(self.directory / _LOCK_NAME, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise StoreLockedError(
                f"another sweep is writing to {self.directory} right now; wait for it to finish or use "
                "another --out directory.") from None
        self._lock_fh = fh

    # -- metadata
    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row["value"])

    def meta(self) -> dict[str, Any]:
        return {r["key"]: json.loads(r["value"]) for r in self.conn.execute("SELECT key, value FROM meta")}

    def initialise(self, sweep_id: str, config: Mapping[str, Any], config_text: str | None = None) -> bool:
        """Claim the store for the sweep ``sweep_id``; return ``True`` when it was new.

        Raises
        ------
        StoreMismatchError
            when the directory already holds another sweep's results.
        """
        with self.transaction() as c:
            existing = c.execute("SELECT value FROM meta WHERE key = 'sweep_id'").fetchone()
            if existing is not None:
                old = json.loads(existing["value"])
                if old != sweep_id:
                    n = c.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
                    raise StoreMismatchError(
                        f"{self.directory} already holds the results of another sweep ({n} tasks, sweep id "
                        f"{old[:12]}, this configuration is {sweep_id[:12]}); refusing to overwrite it. "
                        "Use another --out directory, or the configuration that made it.")
                return False
            rows = {"sweep_id": sweep_id, "config": config, "schema_version": _SCHEMA_VERSION,
                    "created": time.time()}
            c.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                          [(k, _dumps(v)) for k, v in rows.items()])
        if config_text is not None:
            write_bytes_atomic(self.directory / "sweep.toml", config_text.encode())
        return True

    # -- tasks
    def add_tasks(self, tasks: list[tuple[str, Mapping[str, Any]]]) -> int:
        """Insert ``(task_id, params)`` pairs as ``pending`` (existing ones untouched); return how many were new."""
        with self.transaction() as c:
            before = c.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
            c.executemany("INSERT OR IGNORE INTO tasks (task_id, position, params, status) VALUES (?, ?, ?, 'pending')",
                          [(tid, i, _dumps(params)) for i, (tid, params) in enumerate(tasks)])
            after = c.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        return after - before

    def task_ids(self, status: str | tuple[str, ...]) -> list[str]:
        statuses = (status,) if isinstance(status, str) else tuple(status)
        q = f"SELECT task_id FROM tasks WHERE status IN ({','.join('?' * len(statuses))}) ORDER BY position"
        return [r["task_id"] for r in self.conn.execute(q, statuses)]

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "done": 0, "failed": 0}
        for r in self.conn.execute("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status"):
            out[r["status"]] = r["n"]
        return out

    def record(self, task_id: str, run_id: int, *, status: str, result: Mapping[str, Any] | None = None,
               arrays: Mapping[str, np.ndarray] | None = None, error: str | None = None,
               traceback: str | None = None, seconds: float | None = None, worker: str | None = None) -> bool:
        """Record the outcome of one task; return ``False`` when it was already ``done`` (nothing written).

        Arrays go to ``arrays/<task_id>/<name>.npy`` (atomically) before the row is committed.
        """
        if status not in ("done", "failed"):
            raise ValueError(f"status must be 'done' or 'failed', got {status!r}.")
        row = self.conn.execute("SELECT status FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
        if row is None:
            raise KeyError(f"unknown task {task_id!r}")
        if row["status"] == "done":
            return False
        paths: dict[str, str] = {}
        for name, arr in (arrays or {}).items():
            rel = f"{ARRAYS_DIR}/{task_id}/{name}.npy"
            save_array_atomic(self.directory / rel, arr)
            paths[name] = rel
        now = time.time()
        with self.transaction() as c:
            cur = c.execute(
                "UPDATE tasks SET status = ?, result = ?, arrays = ?, error = ?, traceback = ?, "
                "attempts = attempts + 1, seconds = ?, worker = ?, run_id = ?, finished = ? "
                "WHERE task_id = ? AND status != 'done'",
                (status, None if result is None else _dumps(result), _dumps(paths), error, traceback,
                 seconds, worker, run_id, now, task_id))
            if cur.rowcount != 1:
                return False
            c.execute("INSERT INTO completions (task_id, run_id, status, finished) VALUES (?, ?, ?, ?)",
                      (task_id, run_id, status, now))
        return True

    def tasks(self) -> list[TaskRecord]:
        rows = self.conn.execute("SELECT * FROM tasks ORDER BY position").fetchall()
        return [TaskRecord(task_id=r["task_id"], position=r["position"], params=json.loads(r["params"]),
                           status=r["status"], result=None if r["result"] is None else json.loads(r["result"]),
                           arrays=json.loads(r["arrays"]) if r["arrays"] else {}, error=r["error"],
                           attempts=r["attempts"], seconds=r["seconds"], worker=r["worker"], run_id=r["run_id"],
                           finished=r["finished"]) for r in rows]

    def completions(self) -> list[dict[str, Any]]:
        """The append-only log of recorded outcomes (one line per task that finished in some run)."""
        return [dict(r) for r in self.conn.execute("SELECT * FROM completions ORDER BY rowid")]

    # -- runs
    def start_run(self, info: Mapping[str, Any]) -> int:
        with self.transaction() as c:
            cur = c.execute("INSERT INTO runs (started, info) VALUES (?, ?)", (time.time(), _dumps(info)))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, info: Mapping[str, Any]) -> None:
        with self.transaction() as c:
            old = json.loads(c.execute("SELECT info FROM runs WHERE run_id = ?", (run_id,)).fetchone()["info"])
            old.update(_json_safe(info))
            c.execute("UPDATE runs SET finished = ?, info = ? WHERE run_id = ?", (time.time(), _dumps(old), run_id))

    def runs(self) -> list[dict[str, Any]]:
        return [{"run_id": r["run_id"], "started": r["started"], "finished": r["finished"], **json.loads(r["info"])}
                for r in self.conn.execute("SELECT * FROM runs ORDER BY run_id")]


# ----------------------------------------------------------------------------- reading results

def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Scalars of a (nested) result dict as ``a_b`` columns; lists of numbers are left to the arrays."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}_{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        return
    else:
        out[prefix] = value


def load_results(directory: str | os.PathLike) -> "pandas.DataFrame":  # noqa: F821
    """Load a sweep directory as a pandas DataFrame, one row per task.

    Columns: ``task_id``, the grid parameters (``d``, ``p``, ``seed``, ``activation``, ...),
    ``status`` (``pending`` / ``done`` / ``failed``), the scalar results (``top_fraction``,
    ``cluster1_mean`` ... ``cluster3_mean``, ``cluster1_size`` ..., ``trace``, ...),
    ``error`` for failed tasks, ``seconds`` (compute time on the worker), ``worker``,
    ``attempts``, ``finished`` (UNIX time) and ``arrays`` (``{name: relative .npy path}``).

    Parameters
    ----------
    directory : path
        A directory written by :func:`relufim.sweep.run_sweep` / ``relufim sweep``.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> load_results("no/such/dir")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    FileNotFoundError: no sweep results in no/such/dir
    """
    path = Path(directory)
    if not (path / DB_NAME).exists():
        raise FileNotFoundError(f"no sweep results in {path} (missing {DB_NAME}); "
                                "run `relufim sweep CONFIG --out DIR` first.")
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas is in the 'distributed' extra
        raise ImportError("load_results needs pandas: pip install 'relufim[distributed]'") from exc
    with ResultsStore(path, readonly=True) as store:
        records = store.tasks()
    rows = []
    for t in records:
        row: dict[str, Any] = {"task_id": t.task_id, **t.params, "status": t.status}
        flat: dict[str, Any] = {}
        _flatten("", t.result or {}, flat)
        for k, v in flat.items():
            row.setdefault(k, v)
        row.update({"error": t.error, "seconds": t.seconds, "worker": t.worker, "attempts": t.attempts,
                    "finished": t.finished, "arrays": t.arrays})
        rows.append(row)
    return pd.DataFrame(rows)


def load_array(directory: str | os.PathLike, task_id: str, name: str = "eigenvalues") -> np.ndarray:
    """One per-task array of a sweep (e.g. the eigenvalues of a task)."""
    p = Path(directory) / ARRAYS_DIR / task_id / f"{name}.npy"
    if not p.exists():
        raise FileNotFoundError(f"no array {name!r} for task {task_id} in {directory}")
    return np.load(p, allow_pickle=False)

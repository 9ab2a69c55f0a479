"""Parameter sweeps on Dask distributed, resumable, with a crash-safe results store.

A sweep is a grid of settings (``d``, ``p``, ``seed``, ``activation``, ...) and a list of
things to compute at each point (``what``). It is written in TOML::

    [grid]
    d = [3, 5]
    p = [500, 1000]
    seed = [0, 1]
    activation = ["relu"]
    [compute]
    what = ["spectrum"]

Every grid point is one task, identified by a hash of its parameters. The driver
submits the unfinished tasks to a Dask cluster (a local cluster of worker
*processes* by default, or an existing scheduler), and records each outcome in the
:class:`~relufim.sweep.store.ResultsStore` of the output directory as soon as it arrives.
Re-running the same sweep skips what is done, so a sweep killed at any instant
loses no finished task and runs none twice.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import re
import socket
import time
import tomllib
import traceback as tb_module
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .._validation import available_memory_bytes, format_bytes
from .._version import __version__
from ..model.activations import known_activations
from ..model.weights import entry_variance
from ..theory.checks import spectrum_summary
from ..theory.limit import limit_cluster_values
from .store import ResultsStore, _dumps, _json_safe, environment_versions, git_revision

__all__ = [
    "SweepConfig",
    "SweepProgress",
    "SweepOutcome",
    "SchedulerUnreachableError",
    "connect",
    "GRID_KEYS",
    "supported_computations",
    "load_sweep_config",
    "parse_sweep_config",
    "run_task",
    "run_sweep",
]

# grid key -> default values (None: required)
GRID_KEYS: dict[str, list[Any] | None] = {
    "d": None,
    "p": None,
    "seed": [0],
    "activation": ["relu"],
    "scale": ["1/p"],
    "fisher": ["exact"],
    "n": [None],
}
_COMPUTE_KEYS = ("what", "save_eigenvalues", "extra")
_SWEEP_KEYS = ("name", "description")
_TABLES: dict[str, tuple[str, ...]] = {"grid": tuple(GRID_KEYS), "compute": _COMPUTE_KEYS, "sweep": _SWEEP_KEYS}
_FISHERS = ("exact", "monte-carlo")


class SchedulerUnreachableError(ConnectionError):
    """The Dask scheduler named by ``--scheduler`` could not be reached in time."""


def supported_computations() -> list[str]:
    """Values ``[compute] what`` accepts: ``"spectrum"`` and ``"limit"``.

    Examples
    --------
    >>> supported_computations()
    ['spectrum', 'limit']
    """
    return ["spectrum", "limit"]


# ----------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class SweepConfig:
    """A parsed, validated sweep: the grid, what to compute, and where it came from.

    Attributes
    ----------
    grid : dict
        Grid key -> list of values, with defaults filled in (``seed=[0]``, ``activation=["relu"]``,
        ``scale=["1/p"]``, ``fisher=["exact"]``, ``n=[None]``).
    what : tuple of str
        Computations per point (``"spectrum"``, ``"limit"``).
    save_eigenvalues : bool
        Store each task's eigenvalues as ``arrays/<task_id>/eigenvalues.npy``.
    extra : int
        Eigenvalues computed beyond the three clusters.
    name, description : str
        Free text from the optional ``[sweep]`` table.
    text : str or None
        The TOML source (copied into the output directory).
    """

    grid: dict[str, list[Any]]
    what: tuple[str, ...] = ("spectrum",)
    save_eigenvalues: bool = True
    extra: int = 10
    name: str = ""
    description: str = ""
    text: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; two configurations with the same dict are the same sweep."""
        return {"grid": _json_safe(self.grid), "compute": {"what": list(self.what),
                                                           "save_eigenvalues": self.save_eigenvalues,
                                                           "extra": self.extra},
                "sweep": {"name": self.name, "description": self.description}}

    @property
    def sweep_id(self) -> str:
        """Hash of the grid and the computations (not of the name or the description)."""
        core = {"grid": self.to_dict()["grid"], "compute": self.to_dict()["compute"]}
        return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()

    def points(self) -> list[dict[str, Any]]:
        """The grid points, in the order of the cartesian product (``d`` slowest)."""
        keys = list(GRID_KEYS)
        pts = []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            pt = dict(zip(keys, values))
            if pt["fisher"] == "exact":
                pt["n"] = None
            pts.append(pt)
        # fisher="exact" makes n irrelevant: drop duplicates, keep the order
        seen: set[str] = set()
        out = []
        for pt in pts:
            key = json.dumps(pt, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(pt)
        return out

    def tasks(self) -> list[tuple[str, dict[str, Any]]]:
        """``(task_id, params)`` for every point; ``task_id`` hashes the parameters and ``what``."""
        out = []
        for pt in self.points():
            key = json.dumps({"params": pt, "what": list(self.what), "extra": self.extra}, sort_keys=True)
            out.append((hashlib.sha1(key.encode()).hexdigest()[:16], pt))
        return out


def _key_line(text: str, table: str | None, key: str) -> int | None:
    """Line number (1-based) where ``key`` is set inside ``[table]`` (or the top level), if found."""
    current: str | None = None
    header = re.compile(r"^\s*\[\s*([^\]\s]+)\s*\]")
    pattern = re.compile(rf"^\s*(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=")
    for i, line in enumerate(text.splitlines(), start=1):
        m = header.match(line)
        if m:
            current = m.group(1)
            if table is None and current == key:
                return i
            continue
        if current == table and pattern.match(line):
            return i
    return None


def _where(source: str, text: str, table: str | None, key: str) -> str:
    line = _key_line(text, table, key)
    return f"{source}, line {line}" if line is not None else source


def parse_sweep_config(text: str, source: str = "<sweep>") -> SweepConfig:
    r"""Parse and validate the TOML text of a sweep.

    Errors name the file, the line and the key, e.g.
    ``sweep.toml, line 3: unknown key 'dd' in [grid]; known keys: d, p, seed, ...``.

    Examples
    --------
    >>> cfg = parse_sweep_config('[grid]\nd = [3]\np = [100, 200]\n[compute]\nwhat = ["spectrum"]\n')
    >>> len(cfg.tasks()), cfg.points()[0]["activation"]
    (2, 'relu')
    >>> parse_sweep_config('[grid]\nd = [3]\np = [100]\nq = 1\n')  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ValueError: <sweep>, line 4: unknown key 'q' in [grid]; known keys: ...
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"line (\d+)", msg)
        snippet = ""
        if m is None and "end of document" in msg:
            msg = f"{msg} (line {max(len(text.splitlines()), 1)}, the last)"
            m = re.search(r"line (\d+)", msg)
        if m:
            lines = text.splitlines()
            k = int(m.group(1))
            if 1 <= k <= len(lines):
                snippet = f": {lines[k - 1].strip()!r}"
        raise ValueError(f"{source}: malformed TOML: {msg}{snippet}") from None

    for tname, value in doc.items():
        if tname not in _TABLES:
            raise ValueError(f"{_where(source, text, None, tname)}: unknown table or key {tname!r}; "
                             f"a sweep has the tables [grid], [compute] and optionally [sweep].")
        if not isinstance(value, dict):
            raise ValueError(f"{_where(source, text, None, tname)}: {tname!r} must be a table [{tname}].")
        for key in value:
            if key not in _TABLES[tname]:
                raise ValueError(f"{_where(source, text, tname, key)}: unknown key {key!r} in [{tname}]; "
                                 f"known keys: {', '.join(_known_keys(tname))}.")
    if "grid" not in doc:
        raise ValueError(f"{source}: missing table [grid] (with at least d = [...] and p = [...]).")

    grid_doc = doc["grid"]
    grid: dict[str, list[Any]] = {}
    for key, default in GRID_KEYS.items():
        if key not in grid_doc:
            if default is None:
                raise ValueError(f"{source}: [grid] needs {key!r}, e.g. {key} = [3, 5].")
            grid[key] = list(default)
            continue
        raw = grid_doc[key]
        values = raw if isinstance(raw, list) else [raw]
        where = _where(source, text, "grid", key)
        if not values:
            raise ValueError(f"{where}: [grid] {key} is empty; give at least one value.")
        grid[key] = [_check_grid_value(key, v, where) for v in values]
        if len(set(map(repr, grid[key]))) != len(grid[key]):
            raise ValueError(f"{where}: [grid] {key} lists a value twice: {raw!r}.")
    if "monte-carlo" in grid["fisher"] and None in grid["n"]:
        raise ValueError(f"{_where(source, text, 'grid', 'fisher')}: fisher = 'monte-carlo' needs the number "
                         "of samples: add n = [20000] to [grid].")

    comp = doc.get("compute", {})
    what_raw = comp.get("what", ["spectrum"])
    where = _where(source, text, "compute", "what")
    what = what_raw if isinstance(what_raw, list) else [what_raw]
    if not what or not all(isinstance(w, str) for w in what):
        raise ValueError(f"{where}: [compute] what must be a list of names, e.g. what = [\"spectrum\"].")
    supported = supported_computations()
    for w in what:
        if w not in supported:
            raise ValueError(f"{where}: unknown computation {w!r} in [compute] what; supported here: "
                             f"{', '.join(supported)}.")
    save = comp.get("save_eigenvalues", True)
    if not isinstance(save, bool):
        raise ValueError(f"{_where(source, text, 'compute', 'save_eigenvalues')}: save_eigenvalues must be "
                         f"true or false, got {save!r}.")
    extra = comp.get("extra", 10)
    if isinstance(extra, bool) or not isinstance(extra, int) or extra < 0:
        raise ValueError(f"{_where(source, text, 'compute', 'extra')}: extra must be an integer >= 0, "
                         f"got {extra!r}.")
    meta = doc.get("sweep", {})
    for key in ("name", "description"):
        if not isinstance(meta.get(key, ""), str):
            raise ValueError(f"{_where(source, text, 'sweep', key)}: [sweep] {key} must be a string.")
    return SweepConfig(grid=grid, what=tuple(dict.fromkeys(what)), save_eigenvalues=save, extra=extra,
                       name=meta.get("name", ""), description=meta.get("description", ""), text=text)


def _known_keys(table: str) -> list[str]:
    return list(GRID_KEYS) if table == "grid" else sorted(_TABLES[table])


def _check_grid_value(key: str, value: Any, where: str) -> Any:
    """Validate one grid value (the same rules as the library's public functions)."""

    def bad(msg: str) -> ValueError:
        return ValueError(f"{where}: [grid] {key}: {msg}")

    if key in ("d", "p", "n", "seed"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(f"expected integers, got {value!r}.")
        minimum = 0 if key == "seed" else 1
        if value < minimum:
            raise bad(f"expected integers >= {minimum}, got {value}.")
        if key == "p":
            # the exact FIM is dense p x p float64 on each worker
            need = 8.0 * value * value * 2
            if need > 0.8 * available_memory_bytes():
                raise bad(f"p = {value} needs about {format_bytes(need)} per task, more than this machine has.")
        return value
    if key == "activation":
        if not isinstance(value, str) or value not in known_activations():
            raise bad(f"unknown activation {value!r}; known: {', '.join(known_activations())}.")
        return value
    if key == "scale":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad(f"expected '1/p', '1/d', 'unit' or a positive number, got {value!r}.")
        try:
            entry_variance(value, 1, 1)
        except (TypeError, ValueError) as exc:
            raise bad(str(exc)) from None
        return value
    if key == "fisher":
        if value not in _FISHERS:
            raise bad(f"expected one of {', '.join(_FISHERS)}, got {value!r}.")
        return value
    raise bad("unknown key")  # pragma: no cover - keys are checked before


def load_sweep_config(path: str | os.PathLike) -> SweepConfig:
    """Read and validate a sweep TOML file (see :func:`parse_sweep_config`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"sweep configuration {path} not found") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason}).") from None
    return parse_sweep_config(text, source=str(path))


# ----------------------------------------------------------------------------- one task (runs on a worker)

def _worker_name() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def run_task(params: Mapping[str, Any], what: tuple[str, ...] | list[str] = ("spectrum",),
             *, extra: int = 10, save_eigenvalues: bool = True) -> dict[str, Any]:
    """Compute one grid point; never raises (a failure is returned as data).

    Returns
    -------
    dict
        ``status`` ("done" or "failed"), ``result`` (flat JSON-ready scalars: ``top_fraction``,
        ``cluster1_mean`` ... and the rest of :func:`relufim.spectrum_summary`),
        ``arrays`` (``{"eigenvalues": ndarray}``), ``error``, ``traceback``, ``seconds``, ``worker``.

    Examples
    --------
    >>> out = run_task({"d": 4, "p": 80, "seed": 0, "activation": "relu"})
    >>> out["status"], [out["result"][f"cluster{i}_size"] for i in (1, 2, 3)]
    ('done', [1, 4, 9])
    """
    t0 = time.perf_counter()
    result: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    try:
        for item in what:
            if item == "spectrum":
                r, a = _compute_spectrum(params, extra)
            elif item == "limit":
                r, a = _compute_limit(params)
            else:
                raise ValueError(f"unknown computation {item!r}; supported: {', '.join(supported_computations())}")
            result.update(r)
            arrays.update(a)
    except Exception as exc:  # a failing task is data, not the end of the sweep
        return {"status": "failed", "result": None, "arrays": {}, "error": f"{type(exc).__name__}: {exc}",
                "traceback": tb_module.format_exc(), "seconds": time.perf_counter() - t0, "worker": _worker_name()}
    if not save_eigenvalues:
        arrays.pop("eigenvalues", None)
    return {"status": "done", "result": _json_safe(result), "arrays": arrays, "error": None, "traceback": None,
            "seconds": time.perf_counter() - t0, "worker": _worker_name()}


def _compute_spectrum(params: Mapping[str, Any], extra: int) -> tuple[dict[str, Any], dict[str, Any]]:
    kwargs = dict(d=params["d"], p=params["p"], seed=params.get("seed", 0), activation=params.get("activation", "relu"),
                  fisher=params.get("fisher", "exact"), n=params.get("n"), scale=params.get("scale", "1/p"))
    summary = spectrum_summary(**kwargs, extra=extra)
    eig = np.asarray(summary.pop("eigenvalues"), dtype=float)
    clusters = summary.pop("clusters", [])
    row: dict[str, Any] = {}
    for key, value in summary.items():
        if key in params or key in ("d", "p", "seed"):
            continue  # the grid parameters are the row's own columns
        if isinstance(value, (list, tuple)):
            row[key] = json.dumps(_json_safe(value))
        else:
            row[key] = value
    for i in range(3):
        c = clusters[i] if i < len(clusters) else {}
        for field_name in ("size", "predicted_size", "mean", "min", "max"):
            row[f"cluster{i + 1}_{field_name}"] = c.get(field_name)
    row["clusters_match"] = (len(clusters) >= 3 and all(c.get("size") == c.get("predicted_size")
                                                        for c in clusters[:3]))
    row["n_eigenvalues"] = int(eig.size)
    return row, {"eigenvalues": eig}


def _compute_limit(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Infinite-width values of the three clusters and of the trace share F(d) (theory §7)."""
    values = limit_cluster_values(params["d"], activation=params.get("activation", "relu"),
                                  scale=params.get("scale", "1/p"),
                p=params["p"])
    return {f"limit_{k}": (None if v is None or not math.isfinite(float(v)) else float(v))
            for k, v in values.items()}, {}


# ----------------------------------------------------------------------------- the driver

@dataclass(frozen=True)
class SweepProgress:
    """What the progress bar shows: counts over the whole sweep and the ETA of this run."""

    total: int
    done: int
    failed: int
    remaining: int
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class SweepOutcome:
    """The result of :func:`run_sweep`: where, how many tasks ended how, and how long it took."""

    directory: Path
    sweep_id: str
    run_id: int | None
    total: int
    done: int
    failed: int
    pending: int
    ran: int
    skipped: int
    seconds: float
    scheduler: str | None
    workers: int | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def connect(scheduler: str | None, *, workers: int | None = None, timeout: float = 5.0,
            check_workers: bool = False) -> tuple[Any, Any]:
    """A Dask client: to ``scheduler`` (an address like ``tcp://host:8786``), or to a new LocalCluster.

    Returns ``(client, cluster)``; ``cluster`` is the LocalCluster to close afterwards, or None.
    An unreachable scheduler raises :class:`SchedulerUnreachableError` within ``timeout`` seconds,
    naming the address; ``check_workers`` also waits for a worker and checks that every worker
    imports this relufim version. Used by the sweeps and by ``relufim spectrum --scheduler``.
    """
    client, cluster = _connect(scheduler, workers, timeout)
    if check_workers:
        try:
            _check_workers(client, scheduler or "the local cluster", timeout)
        except BaseException:
            client.close()
            if cluster is not None:
                cluster.close()
            raise
    return client, cluster


def _connect(scheduler: str | None, workers: int | None, timeout: float):
    """A distributed Client: to ``scheduler``, or to a new LocalCluster of worker processes."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is an optional extra
        raise ImportError("sweeps need Dask distributed: pip install 'relufim[distributed]'") from exc
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise ValueError(f"scheduler must be an address like tcp://host:8786, got {scheduler!r}.")
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachableError(
                f"could not reach the Dask scheduler at {scheduler} within {timeout:g} s ({exc}); "
                "check the address and that `dask scheduler` is running there.") from None
        return client, None
    n = workers or max(1, min(os.cpu_count() or 1, 8))
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    return Client(cluster, timeout=timeout), cluster


def run_sweep(config: SweepConfig | str | os.PathLike, out: str | os.PathLike, *, scheduler: str | None = None,
              workers: int | None = None, retry_failed: bool = False, connect_timeout: float = 5.0,
              progress: Callable[[SweepProgress], None] | None = None) -> SweepOutcome:
    """Run (or resume) a sweep into the directory ``out``.

    Parameters
    ----------
    config : SweepConfig or path to a TOML file
    out : path
        Results directory (created). Holding another sweep's results, it is refused
        (:class:`~relufim.sweep.store.StoreMismatchError`); holding this sweep's, the run resumes.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); default: a new
        ``LocalCluster`` of ``workers`` single-threaded worker processes.
    workers : int, optional
        Local worker processes (default: the number of CPUs, at most 8).
    retry_failed : bool
        Run the tasks recorded as failed again.
    connect_timeout : float
        Seconds to wait for the scheduler before :class:`SchedulerUnreachableError`.
    progress : callable, optional
        Called with a :class:`SweepProgress` at the start and after every task.

    Returns
    -------
    SweepOutcome

    Raises
    ------
    relufim.sweep.store.StoreMismatchError
        ``out`` holds another sweep's results (nothing is written).
    relufim.sweep.store.StoreLockedError
        another process is sweeping into ``out`` now.
    SchedulerUnreachableError
        the scheduler did not answer within ``connect_timeout``, or has no worker.
    ValueError
        a bad configuration, or workers that import another relufim version.
    """
    if not isinstance(config, SweepConfig):
        config = load_sweep_config(config)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}.")
    t0 = time.perf_counter()
    store = ResultsStore(out)
    try:
        store.lock()
        store.initialise(config.sweep_id, config.to_dict(), config.text)
        tasks = config.tasks()
        store.add_tasks(tasks)
        params = dict(tasks)
        statuses = ("pending", "failed") if retry_failed else ("pending",)
        todo = store.task_ids(statuses)
        counts = store.counts()
        total = len(tasks)
        skipped = total - len(todo)

        base_failed = 0 if retry_failed else counts["failed"]
        state = {"ran": 0, "failed": 0, "t_submit": time.perf_counter()}

        def report() -> None:
            if progress is None:
                return
            ran = state["ran"]
            elapsed = time.perf_counter() - state["t_submit"]
            remaining = len(todo) - ran
            eta = elapsed / ran * remaining if ran else None
            progress(SweepProgress(total=total, done=store.counts()["done"], failed=base_failed + state["failed"],
                                   remaining=remaining, elapsed=elapsed, eta=eta))

        if not todo:
            report()
            return SweepOutcome(directory=Path(out), sweep_id=config.sweep_id, run_id=None, total=total,
                                done=counts["done"], failed=counts["failed"], pending=counts["pending"], ran=0,
                                skipped=skipped, seconds=time.perf_counter() - t0, scheduler=scheduler,
                                workers=None)

        client, cluster = _connect(scheduler, workers, connect_timeout)
        try:
            worker_versions = _check_workers(client, scheduler or "the local cluster", connect_timeout)
            n_workers = len(worker_versions)
            info = {"versions": environment_versions(), "git_revision": git_revision(),
                    "scheduler": scheduler or "local", "workers": n_workers, "host": socket.gethostname(),
                    "pid": os.getpid(), "retry_failed": retry_failed, "submitted": len(todo),
                    "worker_relufim_versions": sorted(set(worker_versions.values()))}
            run_id = store.start_run(info)
            _ensure_top_meta(store, info)
            from distributed import as_completed

            futures = {}
            for tid in todo:
                fut = client.submit(run_task, params[tid], list(config.what), extra=config.extra,
                                    save_eigenvalues=config.save_eigenvalues, key=f"relufim-{tid}-r{run_id}",
                                    pure=False)
                futures[fut] = tid
            state["t_submit"] = time.perf_counter()
            report()
            for fut in as_completed(list(futures)):
                tid = futures[fut]
                try:
                    res = fut.result()
                except Exception as exc:  # e.g. KilledWorker: the task took down its workers too often
                    res = {"status": "failed", "result": None, "arrays": {}, "error": f"{type(exc).__name__}: {exc}",
                           "traceback": None, "seconds": None, "worker": None}
                store.record(tid, run_id, status=res["status"], result=res["result"], arrays=res["arrays"],
                             error=res["error"], traceback=res["traceback"], seconds=res["seconds"],
                             worker=res["worker"])
                fut.release()
                state["ran"] += 1
                state["failed"] += res["status"] == "failed"
                report()
            ran = state["ran"]
            counts = store.counts()
            store.finish_run(run_id, {"seconds": time.perf_counter() - t0, "ran": ran, **counts})
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return SweepOutcome(directory=Path(out), sweep_id=config.sweep_id, run_id=run_id, total=total,
                            done=counts["done"], failed=counts["failed"], pending=counts["pending"], ran=ran,
                            skipped=skipped, seconds=time.perf_counter() - t0, scheduler=scheduler,
                            workers=n_workers)
    finally:
        store.close()


def _relufim_version() -> str:
    """Runs on each worker: the relufim version it imports (fails there if relufim is missing)."""
    return __version__


def _check_workers(client: Any, where: str, timeout: float) -> dict[str, str]:
    """Wait for at least one worker; check that every worker imports the same relufim as the driver."""
    try:
        client.wait_for_workers(1, timeout=max(timeout, 1.0))
    except (TimeoutError, OSError):
        raise SchedulerUnreachableError(f"no Dask worker is connected to {where} after {max(timeout, 1.0):g} s; "
                                        "start workers with `dask worker ADDRESS`.") from None
    try:
        versions = client.run(_relufim_version)
    except Exception as exc:  # noqa: BLE001 - anything a worker raised while importing relufim
        raise ValueError(f"the Dask workers of {where} cannot import relufim ({type(exc).__name__}: {exc}); "
                         f"install relufim {__version__} on them.") from None
    bad = {w: v for w, v in versions.items() if v != __version__}
    if bad:
        raise ValueError(f"the Dask workers of {where} run relufim {sorted(set(bad.values()))}, this driver "
                         f"{__version__}; install the same version everywhere (results would not be comparable).")
    return versions


def _ensure_top_meta(store: ResultsStore, info: Mapping[str, Any]) -> None:
    """Record the versions and git revision of the latest run in ``meta`` (the report shows them)."""
    with store.transaction() as c:
        for key in ("versions", "git_revision"):
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"last_{key}", _dumps(info[key])))

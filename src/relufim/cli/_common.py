"""Helpers shared by the CLI subcommands: errors, JSON, atomic output, progress.

The CLI is thin: it parses, calls the library or an experiment, and prints what
:mod:`relufim.report` formats. Library errors (``ValueError``/``TypeError``) become one
line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from .._io import to_jsonable, write_json_atomic
from .._validation import peak_memory_bytes
from ..sweep.runner import connect

__all__ = [
    "fail",
    "handle_errors",
    "emit_json",
    "write_json_atomic",
    "progress_bar",
    "stage",
    "warnings_on_stderr",
    "scheduler_client",
    "product_progress_label",
    "peak_memory_bytes",
    "int_list",
    "positive_float_list",
    "seed_degree_value",
    "parse_scale",
    "json_option",
    "quiet_option",
]

#: ``--json`` of the commands that print a table by default.
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object on stdout instead of the table.")

#: ``--quiet``: no progress lines or bars on stderr.
quiet_option = click.option("--quiet", is_flag=True, help="No progress on stderr.")


def fail(message: str) -> NoReturn:
    """Print ``relufim: error: message`` (one line) on stderr and exit with code 2."""
    click.echo(f"relufim: error: {' '.join(str(message).split())}", err=True)
    sys.exit(2)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: library ValueError/TypeError/OSError/ImportError -> one line on stderr, exit 2; Ctrl-C -> 130.

    ImportError is a missing optional extra (e.g. ``--data digits`` without scikit-learn); its message
    says what to install.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError, OSError, MemoryError, ImportError) as exc:
            fail(str(exc) or type(exc).__name__)
        except KeyboardInterrupt:
            click.echo("relufim: interrupted", err=True)
            sys.exit(130)

    return wrapper


def emit_json(obj: Any) -> None:
    """Print one JSON object on stdout (NaN/inf as null)."""
    click.echo(json.dumps(to_jsonable(obj), allow_nan=False))


@contextmanager
def progress_bar(label: str, total: int, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A click progress bar on stderr; yields a ``callback(done, total)`` for library functions.

    When ``done`` falls back (a library function reporting one round after another, such as the
    tiles of each product of a solver), the bar starts over and its label counts the rounds.
    """
    if not enabled:
        yield lambda done, tot: None
        return
    with click.progressbar(length=max(int(total), 1), label=label, file=sys.stderr, show_eta=True,
                           show_pos=True) as bar:
        state = {"done": 0, "round": 1}

        def callback(done: int, tot: int) -> None:
            if tot and tot != bar.length:
                bar.length = tot
            if int(done) < state["done"]:  # a new round (the next product of a solver): the bar starts over
                state["round"] += 1
                bar.label = f"{label} ({state['round']})"
                bar.pos = 0
                state["done"] = 0
            step = int(done) - state["done"]
            if step > 0:
                bar.update(step)
                state["done"] = int(done)

        yield callback


@contextmanager
def stage(message: str, enabled: bool = True) -> Iterator[None]:
    """Print ``message ...`` on stderr, then the elapsed time when the block ends."""
    t0 = time.perf_counter()
    if enabled:
        click.echo(f"{message} ...", err=True)
    yield
    if enabled:
        click.echo(f"  done in {time.perf_counter() - t0:.1f} s", err=True)


@contextmanager
def warnings_on_stderr(category: type[Warning] = Warning) -> Iterator[None]:
    """Print the warnings raised in the block on stderr once it ends: ``relufim: warning: message``.

    Every warning of ``category`` is recorded (filter ``"always"``), other warnings as the filters
    in force let them through. Each message becomes one line (its whitespace collapsed, as in
    :func:`fail`), never with a source location, and a message already printed is not repeated.
    Nothing is printed when the block raises.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", category)
        yield
    seen: set[str] = set()
    for w in caught:
        text = " ".join(str(w.message).split())
        if text not in seen:
            seen.add(text)
            click.echo(f"relufim: warning: {text}", err=True)


@contextmanager
def scheduler_client(scheduler: str | None, quiet: bool = False) -> Iterator[Any]:
    """The Dask client of ``--scheduler`` for the block, closed when it ends; None without a scheduler.

    Connecting waits at most 5 s for the scheduler and checks that its workers import this relufim
    (:func:`relufim.sweep.runner.connect`); an unreachable address is a one-line error naming it.
    """
    if scheduler is None:
        yield None
        return
    with stage(f"connecting to the Dask scheduler at {scheduler}", enabled=not quiet):
        client, _ = connect(scheduler, timeout=5.0, check_workers=True)
    try:
        yield client
    finally:
        client.close()


def product_progress_label(per_product: bool, distributed: bool) -> str:
    """Label of a solver's progress bar: per product (row blocks on a cluster, else tiles) or per eigenpair."""
    if not per_product:
        return "  eigenpairs converged"
    return "  row blocks of product" if distributed else "  tiles of product"


def _comma_list(value: str, convert: Callable[[str], Any], what: str) -> list[Any]:
    """``"a,b,c"`` -> ``[convert(a), convert(b), convert(c)]``, or click's error naming ``what``."""
    try:
        out = [convert(v) for v in str(value).replace(" ", "").split(",") if v]
    except ValueError:
        out = []
    if not out:
        raise click.BadParameter(f"expected comma-separated {what}, got {value!r}")
    return out


def int_list(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> list[int] | None:
    """Click callback: ``"500,1000,2000"`` -> ``[500, 1000, 2000]`` with a clear error."""
    return None if value is None else _comma_list(value, int, "integers")


def positive_float_list(ctx: click.Context | None, param: click.Parameter | None,
                        value: str | None) -> list[float] | None:
    """Click callback: ``"1e-3,1e-2"`` -> ``[0.001, 0.01]``, positive numbers only."""
    if value is None:
        return None
    out = _comma_list(value, float, "numbers")
    if any(not x > 0 for x in out):
        raise click.BadParameter(f"expected positive numbers, got {value!r}")
    return out


def seed_degree_value(ctx: click.Context | None, param: click.Parameter | None, value: str) -> str | int:
    """Click callback: ``auto`` stays ``"auto"``, an integer >= 2 becomes an int; anything else is a usage error."""
    if str(value).strip().lower() == "auto":
        return "auto"
    try:
        degree = int(value)
    except ValueError:
        degree = None
    if degree is None or degree < 2:
        raise click.BadParameter(f"expected 'auto' or an integer >= 2, got {value!r}")
    return degree


def parse_scale(value: str) -> str | float:
    """``"1/p"``, ``"1/d"``, ``"unit"`` stay strings; numbers become the entry variance."""
    try:
        return float(value)
    except ValueError:
        return value

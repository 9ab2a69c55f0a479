"""``relufim spectrum --widths / --input-cov / --data``: deep networks, correlated inputs and real data (theory §14).

:func:`deep_options` adds the three options to a command; :func:`deep_spectrum_cli` runs what they ask for
with the command's other options and prints a table or one JSON object. ``relufim spectrum`` calls it when
any of the three is given (``--widths 1000`` alone is today's model: one hidden layer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import click
import numpy as np

from ..experiments.depth import deep_spectrum_summary, digits_comparison
from ..fim.sampled import input_chunk_count
from ..model.data import known_datasets
from ..model.network import check_covariance
from ..report.depth import format_deep_spectrum_table, format_digits_table
from ._common import emit_json, parse_scale, peak_memory_bytes, progress_bar, stage

__all__ = ["deep_options", "deep_spectrum_cli", "parse_widths", "load_covariance"]


def deep_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Click options ``--widths``, ``--input-cov`` and ``--data`` (parameters ``widths, input_cov, data``)."""
    command = click.option("--data", "data", type=str, default=None,
                           help=f"Real inputs instead of Gaussian ones: {', '.join(known_datasets())} (needs the "
                                "extra relufim[data]); --d principal components are kept, and the spectrum is shown "
                                "next to the Gaussian prediction with the data's covariance.")(command)
    command = click.option("--input-cov", "input_cov", type=str, default=None, metavar="FILE.npy",
                           help="Gaussian inputs N(0, Sigma): a (d, d) symmetric positive definite matrix saved with "
                                "numpy.save.")(command)
    command = click.option("--widths", "widths", type=str, default=None, metavar="P1,P2,...",
                           help="Hidden widths p_1,...,p_L of a network with L random hidden layers (replaces --p; "
                                "'--widths 1000' is today's model). Deeper networks need --method monte-carlo."
                           )(command)
    return command


def parse_widths(value: str | Sequence[int] | None, p: int | None = None) -> list[int]:
    """``"2000,2000,1000"`` -> ``[2000, 2000, 1000]``; None -> ``[p]``; errors name the option and the fix.

    Examples
    --------
    >>> parse_widths("2000, 2000,1000"), parse_widths(None, 500)
    ([2000, 2000, 1000], [500])
    """
    if value is None:
        if p is None:
            raise ValueError("give the hidden widths with --widths (e.g. --widths 2000,2000,1000) or --p.")
        return [p]
    if not isinstance(value, str):
        return [int(v) for v in value]
    items = [v for v in value.replace(" ", "").split(",") if v]
    if not items:
        raise ValueError(f"--widths is empty ({value!r}): give at least one hidden width (depth >= 1), e.g. "
                         "--widths 2000,2000,1000.")
    out = []
    for v in items:
        try:
            w = int(v)
        except ValueError:
            raise ValueError(f"--widths must be comma-separated positive integers, got {v!r} in {value!r}.") from None
        if w < 1:
            raise ValueError(f"--widths must be positive (every hidden layer needs at least one unit), got {w} in "
                             f"{value!r}.")
        out.append(w)
    return out


def load_covariance(path: str, d: int) -> np.ndarray:
    """Read a ``(d, d)`` covariance from a ``.npy`` file (no pickles), with one-line errors."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"--input-cov: no such file {path!r}.") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"--input-cov: cannot read {path!r} as a .npy array ({exc}); save the matrix with "
                         "numpy.save('cov.npy', Sigma).") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"--input-cov: {path!r} holds several arrays (an .npz archive); save one matrix with "
                         "numpy.save.")
    return check_covariance(arr, d, name="--input-cov")


def deep_spectrum_cli(*, d: int, p: int | None, widths: str | Sequence[int] | None, method: str, n: int | None,
                      seed: int, activation: str, scale: str, extra: int, input_cov: str | None, data: str | None,
                      as_json: bool, quiet: bool) -> None:
    """Run ``relufim spectrum`` for a deep network, correlated inputs or a data set, and print the result.

    Raises ``ValueError`` for bad input (the command's ``handle_errors`` turns it into one line and exit 2).
    With ``data``: the empirical FIM of the data set (``d`` principal components) next to the Gaussian
    prediction with the data's covariance (exact for one hidden layer, else Monte Carlo with ``n`` inputs,
    default 100 000). Otherwise :func:`relufim.experiments.depth.deep_spectrum_summary`; the JSON adds
    ``depth``, ``widths`` and ``limit`` (the limit cluster values; null for inputs with a covariance).
    """
    t0 = time.perf_counter()
    ws = parse_widths(widths, p)
    sc = parse_scale(scale)
    if method == "exact" and len(ws) > 1 and data is None:
        raise ValueError(f"--method exact exists only for one hidden layer (Lemma 1); --widths {widths} has "
                         f"L = {len(ws)}: use --method monte-carlo --n N (e.g. --n 200000).")
    if method == "monte-carlo" and n is None:
        raise ValueError("--method monte-carlo needs --n (number of Gaussian input samples), e.g. --n 200000.")
    if method == "exact" and n is not None and data is None:
        raise ValueError("--n is only used with --method monte-carlo (or with --data, for the Gaussian prediction).")
    if data is not None:
        if input_cov is not None:
            raise ValueError("--data and --input-cov exclude each other: with --data the Gaussian prediction uses the "
                             "data's own covariance.")
        if method == "exact" and len(ws) > 1:
            raise ValueError(f"with --data and L = {len(ws)} hidden layers the Gaussian prediction is Monte Carlo: "
                             "add --method monte-carlo --n N.")
        key = data.strip().lower()
        if key not in known_datasets():
            raise ValueError(f"unknown data set {data!r} for --data; known data sets: {', '.join(known_datasets())}.")
        n_g = n if n is not None else 100_000
        steps = input_chunk_count(n_g)
        with stage(f"{key}: {d} principal components, widths {ws}, empirical FIM and the Gaussian prediction",
                   enabled=not quiet):
            with progress_bar("  Gaussian inputs (chunks)", steps, enabled=not quiet) as cb:
                s = digits_comparison(ws, dim=d, seed=seed, activation=activation, scale=sc, n_gaussian=n_g,
                                      extra=extra, progress=cb)
        s["limit"] = None  # the isotropic limit does not apply to data with their own covariance
        s["memory_peak_bytes"] = peak_memory_bytes()
        s["seconds"] = time.perf_counter() - t0
        if as_json:
            emit_json(s)
        else:
            click.echo(format_digits_table(s))
        return
    cov = None if input_cov is None else load_covariance(input_cov, d)
    steps = input_chunk_count(n) if n is not None else 1
    label = f"network d = {d}, widths {ws} (L = {len(ws)}), {method}" + (f", n = {n}" if n else "")
    with stage(f"{label}: FIM, clusters, function-space spans", enabled=not quiet):
        with progress_bar("  inputs (chunks)", steps, enabled=not quiet and n is not None) as cb:
            s = deep_spectrum_summary(d, ws, method=method, n=n, seed=seed, activation=activation, scale=sc,
                                      input_cov=cov, extra=extra, progress=cb)
    s["seconds"] = time.perf_counter() - t0
    s["memory_peak_bytes"] = peak_memory_bytes()
    if as_json:
        emit_json(s)
    else:
        click.echo(format_deep_spectrum_table(s))

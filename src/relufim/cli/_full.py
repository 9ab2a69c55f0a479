"""The body of ``relufim spectrum --params all``: the FIM of all parameters (theory §15).

``relufim spectrum`` parses its options and, with ``--params all``, calls :func:`run_full_spectrum`
with them. Options that belong to the readout's FIM only (Monte Carlo, other activations, the torch
backend, mixed precision, seed vectors of degree 4) are refused with the reason; ``--scheduler``
runs the products on a Dask cluster.
"""

from __future__ import annotations

import time
from typing import Any

import click

from .._validation import check_positive_int
from ..experiments.full_fisher import full_spectrum_summary
from ..fim.full import full_parameter_count
from ..model.weights import check_weight_sizes
from ..report.full_fisher import format_full_spectrum_table
from ..theory.curvature import full_spectrum_route
from ._common import (
    emit_json,
    peak_memory_bytes,
    product_progress_label,
    progress_bar,
    scheduler_client,
    stage,
)

__all__ = ["run_full_spectrum", "check_full_options"]


def check_full_options(*, method: str = "exact", n: int | None = None, activation: str = "relu",
                       backend: str = "numpy", precision: str = "float64", seed_degree: int | str = "auto") -> None:
    """Refuse (``ValueError``) the options of ``relufim spectrum`` that ``--params all`` does not support."""
    refused = []
    if method != "exact":
        refused.append("--method monte-carlo (use `relufim approximations` for the Monte Carlo FIM of all parameters)")
    if n is not None:
        refused.append("--n")
    if activation.lower() != "relu":
        refused.append(f"--activation {activation} (the FIM of all parameters is in closed form for ReLU)")
    if backend != "numpy":
        refused.append(f"--backend {backend}")
    if precision != "float64":
        refused.append(f"--precision {precision}")
    if seed_degree not in ("auto", 2, 4):
        refused.append(f"--seed-degree {seed_degree} (the start of the FIM of all parameters has degree 2 or 4)")
    if refused:
        raise ValueError("--params all computes the exact FIM of all parameters of a ReLU network in float64; "
                         "leave out " + "; ".join(refused) + ".")


def run_full_spectrum(*, d: int, p: int, seed: int, scale: str | float, extra: int, as_json: bool, quiet: bool,
                      all_eigenvalues: bool = False, density: bool = False, scheduler: str | None = None,
                      **options: Any) -> None:
    """Compute and print the spectrum of the FIM of all parameters (table, or one JSON object with ``--json``).

    ``scheduler``: the address of a Dask scheduler to run the products on. ``options`` are the other
    options of ``relufim spectrum`` (checked by :func:`check_full_options`). The route is the
    library's (:func:`relufim.theory.curvature.full_spectrum_route`). The JSON holds
    :func:`relufim.experiments.full_fisher.full_spectrum_summary` plus ``scheduler``, ``seconds`` and
    ``memory_peak_bytes``.
    """
    check_full_options(**options)
    check_weight_sizes(d, p, scale)  # before any progress output: a bad argument is one line
    check_positive_int(extra, "extra", minimum=0)
    seed_degree = options.get("seed_degree", "auto")
    if all_eigenvalues and seed_degree == 4:
        raise ValueError("--all-eigenvalues takes every eigenvalue by LAPACK, with no start; leave out --seed-degree.")
    if scheduler is not None and all_eigenvalues:
        raise ValueError("--all-eigenvalues needs the dense F on this machine; leave out --scheduler.")
    t0 = time.perf_counter()
    P = full_parameter_count(d, p)
    route = full_spectrum_route(P, "all" if all_eigenvalues else "clusters", distributed=scheduler is not None)
    matrix_free = route != "dense"
    every = "every eigenvalue, " if all_eigenvalues else ""
    with scheduler_client(scheduler, quiet) as client:
        with stage(f"the FIM of all parameters: d = {d}, p = {p}, P = {P} ({every}{route})", enabled=not quiet):
            label = product_progress_label(matrix_free, distributed=route == "distributed")
            with progress_bar(label, 1, enabled=not quiet) as cb, \
                    progress_bar("  Lanczos steps of the density", 1, enabled=not quiet and density) as dcb:
                s = full_spectrum_summary(d, p, seed, scale=scale, extra=extra, all_eigenvalues=all_eigenvalues,
                                          density=density, progress=None if matrix_free else cb,
                                          product_progress=cb if matrix_free else None, density_progress=dcb,
                                          client=client, seed_degree=seed_degree)
    s["scheduler"] = scheduler
    s["seconds"] = time.perf_counter() - t0
    s["memory_peak_bytes"] = peak_memory_bytes()
    if as_json:
        emit_json(s)
    else:
        click.echo(format_full_spectrum_table(s))

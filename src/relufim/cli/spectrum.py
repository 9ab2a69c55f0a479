"""``relufim spectrum``: the clustered spectrum of one FIM against the theory."""

from __future__ import annotations

import time

import click

from ..model.activations import get_activation
from ..model.weights import sample_weights
from ..report.tables import format_spectrum_table
from ..theory.checks import spectrum_summary
from ..theory.limit import limit_cluster_values
from ._common import (
    emit_json,
    handle_errors,
    json_option,
    parse_scale,
    peak_memory_bytes,
    progress_bar,
    quiet_option,
    stage,
)

__all__ = ["spectrum_command"]


def limit_values(d: int, p: int, activation: str, scale: str | float) -> dict[str, float] | None:
    """Infinite-width cluster eigenvalues (None where the limit is not defined, e.g. d = 1)."""
    try:
        return limit_cluster_values(d, activation=activation, scale=scale, p=p)
    except ValueError:
        return None


@click.command("spectrum")
@click.option("--d", "d", type=int, default=10, show_default=True, help="Input dimension.")
@click.option("--p", "p", type=int, default=2000, show_default=True, help="Number of hidden units.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of W (and of the Monte Carlo inputs).")
@click.option("--method", type=click.Choice(["exact", "monte-carlo"]), default="exact", show_default=True,
              help="Exact FIM (Lemma 1) or Monte Carlo FIM from --n Gaussian inputs.")
@click.option("--n", "n", type=int, default=None, help="Monte Carlo samples (required with --method monte-carlo).")
@click.option("--activation", default="relu", show_default=True, help="Activation (see 'relufim limit --help').")
@click.option("--scale", default="1/p", show_default=True, help="Weight scale: 1/p, 1/d, unit, or an entry variance.")
@click.option("--extra", type=int, default=10, show_default=True,
              help="Eigenvalues computed beyond the three clusters.")
@json_option
@quiet_option
@handle_errors
def spectrum_command(d: int, p: int, seed: int, method: str, n: int | None, activation: str, scale: str, extra: int,
                     as_json: bool, quiet: bool) -> None:
    """Top eigenvalues of the FIM, its three clusters, and the theory's predictions next to them.

    Example: relufim spectrum --d 10 --p 2000 --seed 0 --json
    """
    if method == "monte-carlo" and n is None:
        raise ValueError("--method monte-carlo needs --n (number of Gaussian input samples), e.g. --n 20000.")
    if method == "exact" and n is not None:
        raise ValueError("--n is only used with --method monte-carlo.")
    t0 = time.perf_counter()
    sc = parse_scale(scale)
    with stage(f"drawing W (d = {d}, p = {p}, scale = {scale})", enabled=not quiet):
        W = sample_weights(d, p, seed=seed, scale=sc)
    k = d * (d + 3) // 2 + extra
    with stage("computing the spectrum and checking the theory", enabled=not quiet):
        with progress_bar("  eigenpairs converged", k, enabled=not quiet) as cb:
            s = spectrum_summary(d, p, seed, fisher=method, n=n, activation=activation, scale=sc, extra=extra,
                                 W=W, progress=cb)
    s["limit"] = limit_values(d, p, activation, sc)
    if get_activation(activation).name != "relu":
        with stage("ReLU on the same W, for comparison", enabled=not quiet):
            r = spectrum_summary(d, p, seed, fisher=method, n=n, activation="relu", scale=sc, extra=extra, W=W)
        s["relu_comparison"] = {"sizes": [c["size"] for c in r["clusters"][:3]], "top_fraction": r["top_fraction"],
                                "means": [c["mean"] for c in r["clusters"][:3]]}
    s["seconds"] = time.perf_counter() - t0
    s["memory_peak_bytes"] = peak_memory_bytes()
    if as_json:
        emit_json(s)
    else:
        click.echo(format_spectrum_table(s))

"""``relufim spectrum``: the clustered spectrum of one FIM against the theory."""

from __future__ import annotations

import time

import click

from ..model.activations import get_activation
from ..model.weights import check_weight_sizes, sample_weights
from ..report.tables import format_spectrum_table
from ..spectrum.solve import spectrum_route
from ..theory.checks import spectrum_summary
from ..theory.limit import limit_cluster_values
from ._common import (
    emit_json,
    handle_errors,
    json_option,
    parse_scale,
    peak_memory_bytes,
    product_progress_label,
    progress_bar,
    quiet_option,
    scheduler_client,
    seed_degree_value,
    stage,
)
from ._deep import deep_options, deep_spectrum_cli, parse_widths
from ._full import run_full_spectrum

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
@deep_options
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run the matrix-free products on this Dask cluster (row blocks on the workers; "
                   "pip install 'relufim[distributed]').")
@click.option("--backend", type=click.Choice(["numpy", "torch"]), default="numpy", show_default=True,
              help="Matrix-free products in NumPy, or in PyTorch (on a CUDA GPU when there is one, float64).")
@click.option("--precision", type=click.Choice(["float64", "mixed"]), default="float64", show_default=True,
              help="mixed: float32 tiles for the solver's early products; every reported residual is float64.")
@click.option("--seed-degree", "seed_degree", default="auto", show_default=True, callback=seed_degree_value,
              help="Start of the block solver: 2 = the theory's vectors; 4 = eigenvectors of the t-series J_4, "
                   "which also preconditions the solver (fewer products at large p); auto = 4 on the "
                   "matrix-free route where its set-up costs less than a product, else 2. With --params all: "
                   "2 = the Hermite features of degree <= 2; 4 = eigenvectors of their degree-4 truncation F_4, "
                   "also a preconditioner; auto = 4 on the matrix-free route when more pairs than the top "
                   "d(d+3)/2 are asked for.")
@click.option("--params", type=click.Choice(["v", "all"]), default="v", show_default=True,
              help="The FIM of the output weights v (the papers' J), or of all parameters (W and v, theory §15).")
@click.option("--all-eigenvalues", "all_eigenvalues", is_flag=True,
              help="With --params all: every eigenvalue (dense) and the numerical null space.")
@click.option("--density", is_flag=True,
              help="With --params all: the whole eigenvalue distribution by deflated SLQ.")
@json_option
@quiet_option
@handle_errors
def spectrum_command(d: int, p: int, seed: int, method: str, n: int | None, activation: str, scale: str, extra: int,
                     widths: str | None, input_cov: str | None, data: str | None, scheduler: str | None,
                     backend: str, precision: str, seed_degree: int | str, params: str, all_eigenvalues: bool,
                     density: bool, as_json: bool, quiet: bool) -> None:
    """Top eigenvalues of the FIM, its three clusters, and the theory's predictions next to them.

    Example: relufim spectrum --d 10 --p 2000 --seed 0 --json. Deep networks: --widths 2000,2000,1000
    --method monte-carlo --n 200000; correlated inputs: --input-cov FILE.npy; real inputs: --data digits.
    All parameters (W and v): --params all [--all-eigenvalues] [--density].
    """
    if params == "all":
        if widths is not None or input_cov is not None or data is not None:
            raise ValueError("--params all is the FIM of both layers of one hidden layer on Gaussian inputs; leave out "
                             "--widths, --input-cov and --data.")
        return run_full_spectrum(d=d, p=p, seed=seed, scale=parse_scale(scale), extra=extra, as_json=as_json,
                                 quiet=quiet, all_eigenvalues=all_eigenvalues, density=density, method=method, n=n,
                                 activation=activation, scheduler=scheduler, backend=backend, precision=precision,
                                 seed_degree=seed_degree)
    if all_eigenvalues or density:
        raise ValueError("--all-eigenvalues and --density go with --params all (the FIM of all parameters); for the "
                         "readout's whole spectrum use `relufim reproduce --density-p P`.")
    if widths is not None or input_cov is not None or data is not None:
        deep = parse_widths(widths, p)
        if len(deep) == 1 and input_cov is None and data is None:
            p = deep[0]  # one hidden layer: today's model, on the usual route
        else:
            if scheduler is not None or backend != "numpy" or precision != "float64":
                raise ValueError("--scheduler, --backend and --precision are for the exact FIM of one hidden layer; "
                                 "leave them out with --widths P1,P2,..., --input-cov or --data.")
            return deep_spectrum_cli(d=d, p=p, widths=widths, method=method, n=n, seed=seed, activation=activation,
                                     scale=scale, extra=extra, input_cov=input_cov, data=data, as_json=as_json,
                                     quiet=quiet)
    if method == "monte-carlo" and n is None:
        raise ValueError("--method monte-carlo needs --n (number of Gaussian input samples), e.g. --n 20000.")
    if method == "exact" and n is not None:
        raise ValueError("--n is only used with --method monte-carlo.")
    if method != "exact" and (scheduler is not None or backend != "numpy" or precision != "float64"):
        raise ValueError("--scheduler, --backend and --precision are options of the exact FIM's matrix-free "
                         "products; leave them out with --method monte-carlo.")
    t0 = time.perf_counter()
    sc = parse_scale(scale)
    check_weight_sizes(d, p, sc)  # before any progress output: a bad argument is one line
    with scheduler_client(scheduler, quiet) as client:
        solver: dict = {"seed_degree": seed_degree, "precision": precision}
        if backend != "numpy":
            solver["backend"] = backend
        if client is not None:
            solver["client"] = client
        with stage(f"drawing W (d = {d}, p = {p}, scale = {scale})", enabled=not quiet):
            W = sample_weights(d, p, seed=seed, scale=sc)
        k = d * (d + 3) // 2 + extra
        with stage("computing the spectrum and checking the theory", enabled=not quiet):
            # one bar: per product (tiles, or row blocks on a cluster) on the matrix-free routes, else per pair
            per_product = method == "exact" and spectrum_route(p, d=d, extra=extra, activation=activation,
                                                               precision=precision, backend=backend,
                                                               distributed=scheduler is not None) != "dense"
            label = product_progress_label(per_product, distributed=scheduler is not None)
            with progress_bar(label, 1 if per_product else k, enabled=not quiet) as cb:
                if per_product:
                    solver["product_progress"] = cb
                s = spectrum_summary(d, p, seed, fisher=method, n=n, activation=activation, scale=sc, extra=extra,
                                     W=W, progress=None if per_product else cb, **solver)
    s["limit"] = limit_values(d, p, activation, sc)
    if get_activation(activation).name != "relu":
        with stage("ReLU on the same W, for comparison", enabled=not quiet):
            r = spectrum_summary(d, p, seed, fisher=method, n=n, activation="relu", scale=sc, extra=extra, W=W)
        s["relu_comparison"] = {"sizes": [c["size"] for c in r["clusters"][:3]], "top_fraction": r["top_fraction"],
                                "means": [c["mean"] for c in r["clusters"][:3]]}
    s["seconds"] = time.perf_counter() - t0
    s["memory_peak_bytes"] = peak_memory_bytes()
    s["scheduler"] = scheduler
    s["depth"], s["widths"] = 1, [p]
    if as_json:
        emit_json(s)
    else:
        click.echo(format_spectrum_table(s))

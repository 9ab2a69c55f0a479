"""``relufim mdl``: the MDL estimator of the readout over fresh data, its risk against the bound R_n (theory §16)."""

from __future__ import annotations

from pathlib import Path

import click

from ..experiments.mdl import mdl_risk_curve
from ..model.weights import check_weight_sizes
from ..report.figures import save_figure
from ..report.mdl import FIGURE_FILES, format_mdl_table, mdl_risk_figure
from ._common import (
    emit_json,
    handle_errors,
    int_list,
    json_option,
    progress_bar,
    quiet_option,
    stage,
    warnings_on_stderr,
)

__all__ = ["mdl_command", "DEFAULT_OUT"]

#: Where the figure goes when --out is not given (relative to the working directory).
DEFAULT_OUT = Path("relufim-mdl")


@click.command("mdl")
@click.option("--d", "d", type=int, default=5, show_default=True, help="Input dimension.")
@click.option("--p", "p", type=int, default=1000, show_default=True, help="Number of hidden units.")
@click.option("--n", "n_values", callback=int_list, default="100,1000,10000", show_default=True,
              help="Sample sizes, comma-separated.")
@click.option("--reps", type=int, default=50, show_default=True, help="Fresh data sets per sample size.")
@click.option("--beta", type=float, default=2.0, show_default=True,
              help="MDL multiplier beta > 1; the risk is the Renyi divergence of order 1 - 1/beta.")
@click.option("--radius", type=float, default=2.0, show_default=True,
              help="Radius R of the code (targets with ||v*|| <= R; the default target has norm about 1.73).")
@click.option("--sigma", type=float, default=1.0, show_default=True, help="Noise standard deviation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of W and of the data.")
@click.option("--coding", type=click.Choice(["bound", "threshold", "clusters"]), default="bound", show_default=True,
              help="Coded directions: minimize the code's bound, the per-direction threshold rule, or the "
                   "d(d+3)/2 cluster directions.")
@click.option("--method", type=click.Choice(["auto", "exact", "fast"]), default="auto", show_default=True,
              help="Estimator: exact (sphere decoding), fast (Babai + local search), or exact within the node budget.")
@click.option("--node-budget", type=int, default=200_000, show_default=True,
              help="Most lattice nodes an exact estimate may enumerate.")
@click.option("--mc-samples", type=int, default=4096, show_default=True,
              help="Monte Carlo directions per Renyi divergence.")
@click.option("--compare/--no-compare", default=None,
              help="Also ridge and least squares at the same n, and the mixture redundancy (default: when p <= 3000).")
@click.option("--compare-reps", type=int, default=5, show_default=True, help="Data sets of the comparison.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Folder for the figure {FIGURE_FILES['risk']} (risk and bound against n, log axes); "
                   f"default ./{DEFAULT_OUT}.")
@json_option
@quiet_option
@handle_errors
def mdl_command(d: int, p: int, n_values: list[int], reps: int, beta: float, radius: float, sigma: float, seed: int,
                coding: str, method: str, node_budget: int, mc_samples: int, compare: bool | None, compare_reps: int,
                out: Path | None, as_json: bool, quiet: bool) -> None:
    """MDL estimation of the output weights with a two-stage code: simulated risk against the bound R_n.

    For each n, a lattice code in the eigenbasis of the FIM is designed before the data (theory §16.5); the
    MDL estimator is computed on REPS fresh data sets; its mean Renyi risk (± standard error) is printed next
    to the exact index of resolvability R_n, which the theory says bounds it, with ridge and least squares at
    the same n. The figure (log axes) goes to --out.

    Example: relufim mdl --d 5 --p 1000 --n 100,1000,10000 --reps 50
    """
    for name, value in (("--d", d), ("--p", p), ("--reps", reps - 1), ("--mc-samples", mc_samples - 1),
                        ("--compare-reps", compare_reps - 1), ("--node-budget", node_budget)):
        if value < 1:
            minimum = 2 if name in ("--reps", "--mc-samples", "--compare-reps") else 1
            raise ValueError(f"{name} must be >= {minimum}.")
    if any(n < 1 for n in n_values):
        raise ValueError(f"--n must hold sample sizes >= 1, got {','.join(map(str, n_values))}.")
    check_weight_sizes(d, p)  # d < p, before any progress output
    path = (DEFAULT_OUT if out is None else Path(out)) / FIGURE_FILES["risk"]
    total = len(set(n_values)) * reps
    with warnings_on_stderr():
        with stage(f"MDL estimator: d = {d}, p = {p}, n = {','.join(map(str, n_values))}, {reps} data sets each",
                   enabled=not quiet), progress_bar("data sets", total, enabled=not quiet) as bar:
            result = mdl_risk_curve(d, p, n_values, reps=reps, beta=beta, radius=radius, sigma=sigma, seed=seed,
                                    coding=coding, method=method, node_budget=node_budget, mc_samples=mc_samples,
                                    compare=compare, compare_reps=compare_reps, progress=bar)
    with stage(f"writing {path}", enabled=not quiet):
        save_figure(mdl_risk_figure(result), path)
    result["figure"] = str(path)
    if as_json:
        emit_json(result)
    else:
        click.echo(format_mdl_table(result))

"""``relufim dynamics``: gradient descent on v, the error in each cluster against time, and the learning order."""

from __future__ import annotations

from pathlib import Path

import click

from ..experiments.function_space import dynamics_curves
from ..model.weights import check_weight_sizes, sample_weights
from ..report.figures import dynamics_figure, save_figure
from ..report.tables import format_dynamics_table
from ..theory.dynamics import gradient_descent
from ._common import emit_json, handle_errors, json_option, quiet_option, stage

__all__ = ["dynamics_command"]


@click.command("dynamics")
@click.option("--d", "d", type=int, default=10, show_default=True, help="Input dimension.")
@click.option("--p", "p", type=int, default=3000, show_default=True, help="Number of hidden units.")
@click.option("--steps", type=int, default=800, show_default=True, help="Gradient-descent steps.")
@click.option("--lr", type=float, default=None,
              help="Step size (default 0.5/lambda_max, a quarter of the stability limit 2/lambda_max).")
@click.option("--n", "n", type=int, default=None, help="Sample GD on n Gaussian inputs (default: population GD).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of W (and of the inputs).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the figure dynamics.png (error per cluster against time, log axes).")
@json_option
@quiet_option
@handle_errors
def dynamics_command(d: int, p: int, steps: int, lr: float | None, n: int | None, seed: int, out: Path | None,
                     as_json: bool, quiet: bool) -> None:
    """Gradient descent on the output weights v: the error in each cluster decays as exp(-lambda t) (theory §13).

    The target has one unit part in each cluster (||x||, x_1, x_1 x_2/||x||); the table gives the time at
    which each part is learned to 1 %, against ln(100)/(2 lambda). A learning rate at or above the stability
    limit 2/lambda_max is refused.

    Example: relufim dynamics --d 10 --p 3000 --out figs
    """
    if d < 1 or p < 1:
        raise ValueError(f"--d and --p must be >= 1, got d = {d}, p = {p}.")
    check_weight_sizes(d, p)  # d < p, before any progress output
    with stage(f"drawing W (d = {d}, p = {p})", enabled=not quiet):
        W = sample_weights(d, p, seed=seed)
    with stage(f"{steps} steps of {'population' if n is None else f'sample (n = {n})'} gradient descent",
               enabled=not quiet):
        gd = gradient_descent(W, lr=lr, steps=steps, n=n, seed=seed)
    s = gd.to_dict() | {"d": d, "p": p, "seed": seed}
    s["figure"] = None
    if out is not None:
        path = Path(out) / "dynamics.png"
        with stage(f"writing {path}", enabled=not quiet):
            save_figure(dynamics_figure(dynamics_curves(gd), title=f"Gradient descent on v, d = {d}, p = {p}, "
                                                                   f"lr = {gd.lr:.3g}"), path)
        s["figure"] = str(path)
    if as_json:
        s["times"] = gd.times.tolist()
        s["errors"] = gd.errors.tolist()
        s["predicted"] = gd.predicted.tolist()
        emit_json(s)
    else:
        click.echo(format_dynamics_table(s))

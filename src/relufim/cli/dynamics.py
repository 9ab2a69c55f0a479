"""``relufim dynamics``: gradient descent on v, the error in each cluster against time, and the learning order."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from ._common import emit_json, handle_errors, json_option, quiet_option, stage

NAMES = ["||x|| (degree 0)", "linear x_l", "degree 2"]


def format_table(s: dict[str, Any]) -> str:
    lines = [f"Population gradient descent on v: d = {s['d']}, p = {s['p']}, lr = {s['lr']:.4g} "
             f"(stability limit 2/lambda_max = {s['stability_limit']:.4g}), {s['steps']} steps, "
             f"target = v0 + W_1 + v^(1,2) (unit parts)", ""]
    head = (f"{'cluster':>7} {'size':>5} {'mean lambda':>12} {'initial error':>14} {'final error':>12} "
            f"{'t to 1%':>9} {'ln(100)/(2 lambda)':>19}  part")
    lines += [head, "-" * len(head)]
    for i, size in enumerate(s["cluster_sizes"]):
        lam = s["cluster_mean_eigenvalues"][i]
        t = s["learning_times"][i]
        lines.append(f"{i + 1:>7} {size:>5} {lam:>12.5g} {s['initial_errors'][i]:>14.5g} {s['final_errors'][i]:>12.3g} "
                     f"{'never' if t is None else format(t, '.4g'):>9} {math.log(100) / (2 * lam):>19.4g}  {NAMES[i]}")
    lines.append(f"{'rest':>7} {'':>5} {'':>12} {s['initial_errors'][-1]:>14.5g} {s['final_errors'][-1]:>12.3g}")
    lines += ["", f"learning order: {' -> '.join(NAMES[i - 1] for i in s['learning_order'])}",
              f"max deviation of the measured cluster errors from sum lambda_i c_i^2 (1 - lr lambda_i)^(2k): "
              f"{s['max_rel_deviation_from_prediction']:.1e} (relative to the initial error)"]
    if s.get("figure"):
        lines.append(f"figure: {s['figure']}")
    return "\n".join(lines)


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
    """Gradient descent on the output weights v: the error in each cluster decays as exp(-lambda t) (DESIGN §8).

    The target has one unit part in each cluster (||x||, x_1, x_1 x_2/||x||); the table gives the time at
    which each part is learned to 1 %, against ln(100)/(2 lambda). A learning rate at or above the stability
    limit 2/lambda_max is refused.

    Example: relufim dynamics --d 10 --p 3000 --out figs
    """
    from ..theory.dynamics import gradient_descent
    from ..model.weights import sample_weights

    if d < 1 or p < 1:
        raise ValueError(f"--d and --p must be >= 1, got d = {d}, p = {p}.")
    with stage(f"drawing W (d = {d}, p = {p})", enabled=not quiet):
        W = sample_weights(d, p, seed=seed)
    with stage(f"{steps} steps of {'population' if n is None else f'sample (n = {n})'} gradient descent",
               enabled=not quiet):
        gd = gradient_descent(W, lr=lr, steps=steps, n=n, seed=seed)
    s = gd.to_dict() | {"d": d, "p": p, "seed": seed}
    s["figure"] = None
    if out is not None:
        from ..experiments.function_space import figure_dynamics

        path = Path(out) / "dynamics.png"
        with stage(f"writing {path}", enabled=not quiet):
            figure_dynamics(path, gd, title=f"Gradient descent on v, d = {d}, p = {p}, lr = {gd.lr:.3g}")
        s["figure"] = str(path)
    if as_json:
        s["times"] = gd.times.tolist()
        s["errors"] = gd.errors.tolist()
        s["predicted"] = gd.predicted.tolist()
        emit_json(s)
    else:
        click.echo(format_table(s))

"""``relufim functions``: the approximate eigenvectors as functions of the input, against their limiting forms."""

from __future__ import annotations

from pathlib import Path

import click

from ..experiments.function_space import circle_forms
from ..model.weights import check_weight_sizes, sample_weights
from ..report.figures import function_group_figure, save_figure
from ..report.tables import format_functions_table
from ..theory.functions import function_forms
from ._common import emit_json, handle_errors, json_option, quiet_option, stage

__all__ = ["functions_command"]


@click.command("functions")
@click.option("--d", "d", type=int, default=5, show_default=True, help="Input dimension.")
@click.option("--p", "p", type=int, default=5000, show_default=True, help="Number of hidden units.")
@click.option("--n", "n", type=int, default=2000, show_default=True, help="Gaussian inputs for the cosines.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of W (the inputs use seed + 1).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for one figure per group (f_v along a great circle against its limiting form).")
@json_option
@quiet_option
@handle_errors
def functions_command(d: int, p: int, n: int, seed: int, out: Path | None, as_json: bool, quiet: bool) -> None:
    """The FIM's approximate and computed eigenvectors as functions f_v(x) = ReLU(xW).v (theory §11).

    For each group (v0, 1/sqrt(p), rows W_l, v^(a,b), W_a o W_b, v^(g), W_a^2 - W_b^2) prints the cosine and
    relative L2 error of f_v against its predicted limiting form, and for each computed cluster the principal
    cosines between the span of its eigenfunctions and the predicted span.

    Example: relufim functions --d 5 --p 5000 --out figs
    """
    if d < 1 or p < 1 or n < 1:
        raise ValueError(f"--d, --p and --n must be >= 1, got d = {d}, p = {p}, n = {n}.")
    check_weight_sizes(d, p)  # d < p, before any progress output
    with stage(f"drawing W (d = {d}, p = {p})", enabled=not quiet):
        W = sample_weights(d, p, seed=seed)
    with stage("computing the cluster eigenvectors and the function forms", enabled=not quiet):
        ff = function_forms(W, n=n, seed=seed + 1)
    s = ff.to_dict()
    s["seed"] = seed
    s["figures"] = []
    if out is not None:
        with stage(f"writing one figure per group into {out}", enabled=not quiet):
            circle = circle_forms(W)
            for g in circle["groups"]:
                path = save_figure(function_group_figure(circle, g["name"]), Path(out) / f"functions_{g['name']}.png")
                s["figures"].append(str(path))
    if as_json:
        emit_json(s)
    else:
        click.echo(format_functions_table(s))

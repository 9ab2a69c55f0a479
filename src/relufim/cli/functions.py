"""``relufim functions``: the approximate eigenvectors as functions of the input, against their limiting forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import emit_json, handle_errors, json_option, quiet_option, stage


def format_table(s: dict[str, Any]) -> str:
    """Plain-text table: cosines of each group and principal cosines of each cluster."""
    lines = [f"Function forms: d = {s['d']}, p = {s['p']}, n = {s['n']} Gaussian inputs, c = ||W||_F/sqrt(d) = "
             f"{s['scale']:.4f}", ""]
    head = f"{'group':<14} {'count':>5} {'mean cos':>9} {'min cos':>9} {'mean rel.err':>12}  predicted form"
    lines += [head, "-" * len(head)]
    for g in s["groups"]:
        lines.append(f"{g['name']:<14} {g['count']:>5} {g['mean_cosine']:>9.5f} {g['min_cosine']:>9.5f} "
                     f"{g['mean_rel_error']:>12.4f}  {g['form']}")
    if s["clusters"]:
        lines += ["", f"{'cluster':>7} {'size':>5} {'mean eigenvalue':>16} {'predicted':>10} {'min principal cos':>18}"
                      "  span of"]
        for c in s["clusters"]:
            pc = c["min_principal_cosine"]
            lines.append(f"{c['index']:>7} {c['size']:>5} {c['mean_eigenvalue']:>16.6g} {c['predicted_eigenvalue']:>10.5g} "
                         f"{'' if pc is None else format(pc, '.6f'):>18}  {c['form']}")
    if s.get("figures"):
        lines += ["", "figures: " + ", ".join(s["figures"])]
    return "\n".join(lines)


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
    """The FIM's approximate and computed eigenvectors as functions f_v(x) = ReLU(xW).v (DESIGN §5).

    For each group (v0, 1/sqrt(p), rows W_l, v^(a,b), W_a o W_b, v^(g), W_a^2 - W_b^2) prints the cosine and
    relative L2 error of f_v against its predicted limiting form, and for each computed cluster the principal
    cosines between the span of its eigenfunctions and the predicted span.

    Example: relufim functions --d 5 --p 5000 --out figs
    """
    from ..theory.functions import function_forms
    from ..model.weights import sample_weights

    if d < 1 or p < 1 or n < 1:
        raise ValueError(f"--d, --p and --n must be >= 1, got d = {d}, p = {p}, n = {n}.")
    with stage(f"drawing W (d = {d}, p = {p})", enabled=not quiet):
        W = sample_weights(d, p, seed=seed)
    with stage("computing the cluster eigenvectors and the function forms", enabled=not quiet):
        ff = function_forms(W, n=n, seed=seed + 1)
    s = ff.to_dict()
    s["seed"] = seed
    s["figures"] = []
    if out is not None:
        from ..experiments.function_space import figure_group, great_circle

        with stage(f"writing one figure per group into {out}", enabled=not quiet):
            _, x = great_circle(d)
            ffc = function_forms(W, x=x, clusters=False)
            for g in ffc.groups:
                path = Path(out) / f"functions_{g.name}.png"
                figure_group(path, W, g.name, ff_circle=ffc)
                s["figures"].append(str(path))
    if as_json:
        emit_json(s)
    else:
        click.echo(format_table(s))

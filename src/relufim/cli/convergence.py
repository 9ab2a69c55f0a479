"""``relufim convergence``: finite-p cluster eigenvalues against the infinite-width limit, with figures."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..experiments.convergence import check_convergence_arguments, convergence
from ..report.figures import convergence_figure, save_figure, trace_share_figure
from ..report.tables import format_convergence_table
from ..theory.limit import trace_share_curve
from ._common import (
    emit_json,
    handle_errors,
    int_list,
    json_option,
    parse_scale,
    progress_bar,
    quiet_option,
    stage,
    write_json_atomic,
)

__all__ = ["convergence_command"]


@click.command("convergence")
@click.option("--d", "d", type=int, default=10, show_default=True, help="Input dimension (>= 2).")
@click.option("--p", "p", callback=int_list, default="500,1000,2000", show_default=True,
              help="Comma-separated widths.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Seeds per width.")
@click.option("--activation", default="relu", show_default=True, help="Activation (see 'relufim limit --help').")
@click.option("--scale", default="1/p", show_default=True, help="Weight scale: 1/p, 1/d, unit, or an entry variance.")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Folder for convergence.png, trace_share.png and convergence.json.")
@json_option
@quiet_option
@handle_errors
def convergence_command(d: int, p: list[int], seeds: int, activation: str, scale: str, out: str | None,
                        as_json: bool, quiet: bool) -> None:
    """Cluster eigenvalues of the exact FIM at several widths p against the infinite-width limit.

    Prints mean, spread and standard error over seeds of each cluster mean and the top
    fraction, and the limit. A rate |mean - limit| ~ p^b is printed with its standard
    error only when every width differs from the limit by more than its standard error
    (same sign, at least 3 widths); otherwise the table says why there is none. With
    --out, writes the figures. Example: relufim convergence --d 10 --p 500,1000,2000 --seeds 3 --out conv/
    """
    check_convergence_arguments(d, p, seeds, activation, parse_scale(scale))  # before any progress output
    total = len(p) * seeds
    with progress_bar("widths x seeds", total, enabled=not quiet) as cb:
        res = convergence(d=d, p=p, seeds=seeds, activation=activation, scale=parse_scale(scale), progress=cb)
    summary = res.to_dict()
    if out is not None:
        folder = Path(out)
        with stage(f"writing figures to {folder}", enabled=not quiet):
            save_figure(convergence_figure(summary), folder / "convergence.png")
            d_values = np.unique(np.concatenate([np.arange(2, 21), np.geomspace(20, 1000, 25).astype(int), [d]]))
            save_figure(trace_share_figure(d_values, trace_share_curve(d_values), d_mark=d), folder / "trace_share.png")
            write_json_atomic(folder / "convergence.json", summary)
        summary["files"] = [str(folder / n) for n in ("convergence.png", "trace_share.png", "convergence.json")]
    if as_json:
        emit_json(summary)
    else:
        click.echo(format_convergence_table(res))
        if out is not None:
            click.echo("\nwrote " + ", ".join(summary["files"]))

"""``relufim convergence``: finite-p cluster eigenvalues against the infinite-width limit, with figures."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..experiments.convergence import convergence, convergence_figure, trace_share_figure
from ..theory.limit import trace_share_curve
from ._common import (
    emit_json,
    handle_errors,
    int_list,
    json_option,
    progress_bar,
    quiet_option,
    save_figure_atomic,
    stage,
    write_json_atomic,
)
from .limit import parse_scale


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

    Prints mean and spread over seeds of each cluster mean and the top fraction, the
    limit, and the fitted rate |mean - limit| ~ p^b. With --out, writes the figures.
    Example: relufim convergence --d 10 --p 500,1000,2000 --seeds 3 --out conv/
    """
    total = len(p) * seeds
    with progress_bar("widths x seeds", total, enabled=not quiet) as cb:
        res = convergence(d=d, p=p, seeds=seeds, activation=activation, scale=parse_scale(scale), progress=cb)
    summary = res.to_dict()
    if out is not None:
        folder = Path(out)
        with stage(f"writing figures to {folder}", enabled=not quiet):
            import matplotlib.pyplot as plt

            fig = convergence_figure(res)
            save_figure_atomic(fig, folder / "convergence.png")
            plt.close(fig)
            d_values = np.unique(np.concatenate([np.arange(2, 21), np.geomspace(20, 1000, 25).astype(int), [d]]))
            F = trace_share_curve(d_values)
            fig = trace_share_figure(d_values, F, d_mark=d)
            save_figure_atomic(fig, folder / "trace_share.png")
            plt.close(fig)
            write_json_atomic(folder / "convergence.json", summary)
        summary["files"] = [str(folder / n) for n in ("convergence.png", "trace_share.png", "convergence.json")]
    if as_json:
        emit_json(summary)
    else:
        click.echo(res.format_table())
        if out is not None:
            click.echo("\nwrote " + ", ".join(summary["files"]))

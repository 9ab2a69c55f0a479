"""``relufim approximations``: curvature approximations judged against the exact FIM of all parameters."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..experiments.full_fisher import approximations_summary, check_approximations_arguments
from ..report.figures import save_figure
from ..report.full_fisher import approximations_figures, format_approximations_table
from ._common import (
    emit_json,
    handle_errors,
    int_list,
    json_option,
    parse_scale,
    peak_memory_bytes,
    positive_float_list,
    progress_bar,
    quiet_option,
    stage,
    write_json_atomic,
)

__all__ = ["approximations_command"]


@click.command("approximations")
@click.option("--d", "d", type=int, default=10, show_default=True, help="Input dimension.")
@click.option("--p", "p", type=int, default=1000, show_default=True,
              help="Hidden units (P = p(d+1) parameters; the dense FIM needs 8 P^2 bytes).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of W and v (the teacher uses seed + 1000).")
@click.option("--scale", default="1/p", show_default=True, help="Weight scale of W: 1/p, 1/d, unit, or a variance.")
@click.option("--n", "n_values", default="250,1000,4000", show_default=True, callback=int_list,
              help="Sample sizes of the Monte Carlo and empirical Fishers (comma-separated).")
@click.option("--seeds", type=int, default=1, show_default=True, help="Draws of the samples per n (error bars).")
@click.option("--noise", type=float, default=0.1, show_default=True,
              help="Noise level sigma of the model (FIM = F / sigma^2) and of the teacher's labels.")
@click.option("--damping", default="1e-3", show_default=True, callback=positive_float_list,
              help="Damping of the natural gradients relative to lambda_max (comma-separated: one comparison each).")
@click.option("--k", "k", type=int, default=None, help="Top eigenpairs compared (default d(d+3)/2, at the gap).")
@click.option("--teacher-width", type=int, default=None, help="Hidden units of the teacher (default p).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write approximations.json and the figures (PNG) to this folder.")
@json_option
@quiet_option
@handle_errors
def approximations_command(d: int, p: int, seed: int, scale: str, n_values: list[int], seeds: int, noise: float,
                           damping: list[float], k: int | None, teacher_width: int | None, out: Path | None,
                           as_json: bool, quiet: bool) -> None:
    """Block-diagonal, K-FAC, diagonal, Monte Carlo and empirical Fishers against the exact FIM of all parameters.

    For each: the relative Frobenius error, the errors of the top-k eigenvalues, the principal angles
    of the top-k eigenspaces, and the angle between its damped natural gradient and the exact one for
    the gradient of a teacher's squared loss; the sampled ones against n (theory §15.7-15.8).

    Example: relufim approximations --d 10 --p 1000 --json
    """
    t0 = time.perf_counter()
    check_approximations_arguments(d, p, scale=parse_scale(scale), seeds=seeds, noise=noise, n_values=n_values,
                                   teacher_width=teacher_width)
    total = 3 + 2 * len(n_values) * seeds
    with stage(f"judging the approximations: d = {d}, p = {p}, P = {p * (d + 1)}", enabled=not quiet):
        with progress_bar("  approximations judged", total, enabled=not quiet) as cb:
            s = approximations_summary(d, p, seed, scale=parse_scale(scale), n_values=tuple(n_values), seeds=seeds,
                                       noise=noise, damping=tuple(damping), k=k, teacher_width=teacher_width,
                                       progress=cb)
    s["seconds"] = time.perf_counter() - t0
    s["memory_peak_bytes"] = peak_memory_bytes()
    if out is not None:
        with stage(f"writing {out}", enabled=not quiet):
            write_json_atomic(out / "approximations.json", s)
            files = []
            for name, _caption, fig in approximations_figures(s):
                save_figure(fig, out / name)
                files.append(str(out / name))
        s["files"] = files
    if as_json:
        emit_json(s)
    else:
        click.echo(format_approximations_table(s))
        if out is not None:
            click.echo(f"wrote {out / 'approximations.json'} and {len(s['files'])} figures")

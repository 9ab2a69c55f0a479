"""``relufim limit``: the infinite-width FIM eigenvalue of every harmonic degree, for one or more hidden layers."""

from __future__ import annotations

import click

from ..model.activations import AccuracyWarning, known_activations
from ..report.depth import format_depth_limit_table
from ..report.tables import format_limit_table
from ..theory.depth import depth_limit_spectrum
from ..theory.limit import limit_spectrum
from ._common import emit_json, handle_errors, json_option, parse_scale, warnings_on_stderr

__all__ = ["limit_command"]


@click.command("limit")
@click.option("--d", "d", type=int, default=10, show_default=True, help="Input dimension (>= 2).")
@click.option("--kmax", type=int, default=12, show_default=True, help="Largest harmonic degree.")
@click.option("--depth", type=int, default=1, show_default=True,
              help="Number of random hidden layers L (the composed dual kernel of theory §14).")
@click.option("--activation", default="relu", show_default=True,
              help=f"One of {', '.join(known_activations())}; 'leaky-relu:A' sets the slope A.")
@click.option("--scale", default="1/p", show_default=True,
              help="Weight scale: 1/p, 1/d, unit, or an entry variance. With --depth >= 2: 1/p (He inside, the "
                   "papers' scale in the last layer), he, 1/d, 1/width, or an entry variance.")
@click.option("--p", "p", type=int, default=None,
              help="Width (of every hidden layer with --depth); needed when the eigenvalues depend on it (scales "
                   "other than 1/p, non-homogeneous activations).")
@json_option
@handle_errors
def limit_command(d: int, kmax: int, depth: int, activation: str, scale: str, p: int | None, as_json: bool) -> None:
    """Infinite-width FIM spectrum: eigenvalue, multiplicity, share and cumulative share per degree k.

    ReLU, leaky ReLU and abs use closed forms at one layer and the Funk-Hecke quadrature of the composed
    dual deeper; other activations the degree-k radial operator (needs --p). Example:
    relufim limit --d 10 --depth 3 --kmax 12
    """
    if depth < 1:
        raise ValueError(f"--depth must be >= 1 (the number of hidden layers), got {depth}.")
    if depth == 1:
        res = limit_spectrum(d=d, kmax=kmax, activation=activation, scale=parse_scale(scale), p=p)
        if as_json:
            out = res.to_dict()
            out["depth"] = 1
            emit_json(out)
        else:
            click.echo(format_limit_table(res))
        return
    with warnings_on_stderr(AccuracyWarning):
        res = depth_limit_spectrum(d, depth, kmax, activation, scale=parse_scale(scale), widths=p)
    if as_json:
        emit_json(res.to_dict())
    else:
        click.echo(format_depth_limit_table(res))

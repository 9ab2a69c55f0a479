"""``relufim limit``: the infinite-width FIM eigenvalue of every harmonic degree."""

from __future__ import annotations

import click

from ..model.activations import known_activations
from ..report.tables import format_limit_table
from ..theory.limit import limit_spectrum
from ._common import emit_json, handle_errors, json_option, parse_scale

__all__ = ["limit_command"]


@click.command("limit")
@click.option("--d", "d", type=int, default=10, show_default=True, help="Input dimension (>= 2).")
@click.option("--kmax", type=int, default=12, show_default=True, help="Largest harmonic degree.")
@click.option("--activation", default="relu", show_default=True,
              help=f"One of {', '.join(known_activations())}; 'leaky-relu:A' sets the slope A.")
@click.option("--scale", default="1/p", show_default=True, help="Weight scale: 1/p, 1/d, unit, or an entry variance.")
@click.option("--p", "p", type=int, default=None,
              help="Width; needed when the eigenvalues depend on it (scales other than 1/p, non-homogeneous "
                   "activations).")
@json_option
@handle_errors
def limit_command(d: int, kmax: int, activation: str, scale: str, p: int | None, as_json: bool) -> None:
    """Infinite-width FIM spectrum: eigenvalue, multiplicity and cumulative trace share per degree k.

    ReLU, leaky ReLU and abs use closed forms; other activations the degree-k radial
    operator of the Mehler expansion (needs --p). Example: relufim limit --d 10 --kmax 12
    """
    res = limit_spectrum(d=d, kmax=kmax, activation=activation, scale=parse_scale(scale), p=p)
    if as_json:
        emit_json(res.to_dict())
    else:
        click.echo(format_limit_table(res))

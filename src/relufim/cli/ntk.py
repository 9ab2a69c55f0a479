"""``relufim ntk``: eigenpairs of the NTK Gram and of the FIM side by side, and what each cluster captures."""

from __future__ import annotations

import click

from ..experiments.function_space import TARGET_PARTS
from ..model.weights import sample_weights
from ..report.tables import format_ntk_table
from ..theory.ntk import fisher_ntk_map
from ._common import emit_json, handle_errors, json_option, quiet_option, stage

__all__ = ["ntk_command"]


@click.command("ntk")
@click.option("--d", "d", type=int, default=10, show_default=True, help="Input dimension.")
@click.option("--p", "p", type=int, default=3000, show_default=True, help="Number of hidden units.")
@click.option("--n", "n", type=int, default=4000, show_default=True, help="Gaussian input samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of W (the inputs use seed + 1).")
@json_option
@quiet_option
@handle_errors
def ntk_command(d: int, p: int, n: int, seed: int, as_json: bool, quiet: bool) -> None:
    """Eigenvalues of the NTK Gram K/n and of the FIM J^(n) on the same inputs, computed independently (theory §12).

    Also maps each FIM eigenvector u to X u / sqrt(n lambda) and checks it is an NTK eigenvector, and prints how
    much of ||x||, x_1 and x_1 x_2/||x|| each cluster's eigenfunctions capture.

    Example: relufim ntk --d 10 --p 3000 --n 4000 --json
    """
    if d < 2:
        raise ValueError(f"--d must be >= 2 (x_1 x_2 / ||x|| needs two inputs), got {d}.")
    if p < 1 or n < 1:
        raise ValueError(f"--p and --n must be >= 1, got p = {p}, n = {n}.")
    k = d * (d + 3) // 2
    if k > min(n, p):
        raise ValueError(f"the three clusters need d(d+3)/2 = {k} eigenpairs but min(n, p) = {min(n, p)}; "
                         f"increase --n or --p.")
    with stage(f"drawing W (d = {d}, p = {p}) and {n} inputs", enabled=not quiet):
        W = sample_weights(d, p, seed=seed)
    with stage("diagonalizing the FIM and the NTK Gram (block Krylov, both sides)", enabled=not quiet):
        m = fisher_ntk_map(W, n=n, seed=seed + 1, tol=1e-10)
    s = m.to_dict()
    s["seed"] = seed
    s["captured_fractions"] = {name: m.captured_fractions(fn) for name, fn in TARGET_PARTS.items()}
    if as_json:
        emit_json(s)
    else:
        click.echo(format_ntk_table(s))

"""``relufim reproduce``: the 2023 paper's numerical check, with figures and a report."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import click

from ..experiments.reproduce import reproduce
from ..report import count_claims, prepare_output_dir, write_reproduce_run
from ._common import handle_errors, progress_bar

__all__ = ["reproduce_command"]


@click.command("reproduce")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default ./relufim-results/<timestamp>).")
@click.option("--quick", is_flag=True, help="p = 2000 instead of 10 000 (about a minute).")
@click.option("--d", "d", type=int, default=10, show_default=True, help="Input dimension.")
@click.option("--p", "p", type=int, default=None, help="Hidden units (overrides --quick).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of W (Monte Carlo inputs use seed + 1).")
@click.option("--n", "n", type=int, default=None, help="Monte Carlo samples (default: p).")
@click.option("--no-sections", is_flag=True, help="Only the 2023 check, without the limit and function-space sections.")
@click.option("--density-p", "density_p", type=int, default=None,
              help="Also draw the eigenvalue distribution at this width beyond dense sizes, e.g. 100000 "
                   "(stochastic Lanczos quadrature, about 8 minutes at 100000 on 2 cores).")
@click.option("--density-steps", "density_steps", type=int, default=40, show_default=True,
              help="Lanczos steps for --density-p (one pass over the kernel each).")
@click.option("--density-vectors", "density_vectors", type=int, default=8, show_default=True,
              help="Random vectors for --density-p.")
@handle_errors
def reproduce_command(out: Path | None, quick: bool, d: int, p: int | None, seed: int, n: int | None,
                      no_sections: bool, density_p: int | None, density_steps: int, density_vectors: int) -> None:
    """Reproduce the 2023 paper's check: exact and Monte Carlo FIM at p = 10 000 (--quick: 2 000).

    Writes summary.json, PNG figures, report.md and report.html (claims next to measured
    numbers) into --out; `relufim report OUT` writes the same two reports again from summary.json.
    """
    out = prepare_output_dir(out, create=False)  # a file as --out is refused before the computation
    t0 = time.perf_counter()
    with ExitStack() as stack:

        def log(msg: str) -> None:
            click.echo(f"[{time.perf_counter() - t0:6.1f} s] {msg}", err=True)

        def progress(label: str, total: int):
            # a bar that closes itself once complete (and at the end otherwise)
            inner = ExitStack()
            stack.callback(inner.close)
            callback = inner.enter_context(progress_bar(label, total))

            def update(done: int, tot: int) -> None:
                callback(done, tot)
                if done >= tot:
                    inner.close()

            return update

        summary = reproduce(quick=quick, d=d, p=p, seed=seed, n=n, sections=not no_sections,
                            density_p=density_p, density_vectors=density_vectors, density_steps=density_steps,
                            log=log, progress=progress)
    files = write_reproduce_run(out, summary, log=log)
    click.echo(f"relufim reproduce: {count_claims(summary['claims']).text()}; "
               f"{time.perf_counter() - t0:.0f} s")
    click.echo(f"report: {files.markdown} and {files.html}")

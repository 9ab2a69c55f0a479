"""``relufim sweep``: run a parameter grid on Dask, resumably, into a results directory."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..sweep import SchedulerUnreachableError, load_sweep_config, run_sweep
from ..sweep.store import StoreLockedError
from ._common import emit_json, fail, handle_errors

__all__ = ["sweep_command"]


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:d}:{sec:02d}"


class _ProgressLine:
    """``sweep [#####.....] 5/8 done, 0 failed, 3 remaining, ETA 0:04`` on stderr.

    Redrawn in place on a terminal; on a pipe, one line at most every 2 seconds (and the last).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.drawn = False

    def __call__(self, s) -> None:  # s: relufim.sweep.SweepProgress
        if not self.enabled:
            return
        now = time.monotonic()
        final = s.remaining == 0
        if not self.tty and not final and now - self.last < 2.0:
            return
        self.last = now
        width = 30
        frac = (s.done + s.failed) / s.total if s.total else 1.0
        bar = "#" * int(round(frac * width))
        line = (f"sweep [{bar:<{width}}] {s.done}/{s.total} done, {s.failed} failed, {s.remaining} remaining, "
                f"ETA {_fmt_seconds(s.eta) if not final else '0:00'}")
        if self.tty:
            click.echo("\r" + line, err=True, nl=final)
        else:
            click.echo(line, err=True)
        self.drawn = True


@click.command("sweep")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786. Default: a local cluster "
                   "of worker processes.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes of the local cluster (default: number of CPUs, at most 8).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results directory (default: the config's name without .toml, next to it). "
                   "Re-running into the same directory resumes.")
@click.option("--retry-failed", is_flag=True, help="Run the tasks recorded as failed again.")
@click.option("--timeout", "connect_timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for the scheduler.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def sweep_command(config: Path, scheduler: str | None, workers: int | None, out: Path | None, retry_failed: bool,
                  connect_timeout: float, as_json: bool, quiet: bool) -> None:
    """Run the grid of a sweep TOML file on Dask and store every task's result in OUT.

    \b
    CONFIG is a TOML file, for example:
        [grid]
        d = [3, 5]
        p = [500, 1000]
        seed = [0, 1]
        activation = ["relu"]
        [compute]
        what = ["spectrum"]

    Grid keys: d, p (required), seed, activation, scale ("1/p", "1/d", "unit" or a variance),
    fisher ("exact", "monte-carlo"), n (samples for monte-carlo). [compute] keys: what
    (spectrum, limit), save_eigenvalues, extra. Finished tasks are skipped when the same
    command runs again; failed ones are kept with their error (see --retry-failed).
    Read the results with relufim.sweep.load_results(OUT) or `relufim report OUT`.
    """  # noqa: D301 - "\b" keeps click from rewrapping the example
    cfg = load_sweep_config(config)
    if out is None:
        out = config.with_suffix("")
        if out == config:
            out = config.parent / (config.name + ".results")
    progress = _ProgressLine(enabled=not quiet)
    try:
        outcome = run_sweep(cfg, out, scheduler=scheduler, workers=workers, retry_failed=retry_failed,
                            connect_timeout=connect_timeout, progress=progress)
    except (SchedulerUnreachableError, StoreLockedError) as exc:
        fail(str(exc))
    if as_json:
        emit_json(outcome.to_dict())
    if not quiet:
        msg = (f"{outcome.done}/{outcome.total} tasks done, {outcome.failed} failed "
               f"({outcome.ran} run now, {outcome.skipped} already finished) in {outcome.seconds:.1f} s -> {out}")
        click.echo(msg, err=True)
        if outcome.failed:
            click.echo(f"  see the errors with relufim.sweep.load_results('{out}'), re-run them with --retry-failed",
                       err=True)
    if outcome.failed or outcome.pending:
        sys.exit(1)


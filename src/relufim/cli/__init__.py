"""Command-line interface: ``relufim <command>``. Thin: parses, calls the library or an experiment, prints.

Every table it prints is formatted by :mod:`relufim.report.tables`, every figure drawn by
:mod:`relufim.report.figures`, every report written by :mod:`relufim.report`.
"""

from __future__ import annotations

import sys

import click

from .._version import __version__
from .approximations import approximations_command
from .convergence import convergence_command
from .dynamics import dynamics_command
from .functions import functions_command
from .limit import limit_command
from .mdl import mdl_command
from .ntk import ntk_command
from .report import report_command
from .reproduce import reproduce_command
from .spectrum import spectrum_command
from .sweep import sweep_command

__all__ = ["main"]


class _Group(click.Group):
    """A click group whose usage errors are one line on stderr with exit code 2 (never a traceback)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        try:
            rv = super().main(args=args, prog_name=prog_name or "relufim", complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.UsageError as exc:
            if type(exc).__name__.startswith("NoArgsIsHelp") and exc.ctx is not None:
                click.echo(exc.ctx.get_help())
                sys.exit(0)
            path = exc.ctx.command_path if exc.ctx is not None else "relufim"
            click.echo(f"relufim: error: {' '.join(exc.format_message().split())} (see '{path} --help')", err=True)
            sys.exit(2)
        except click.exceptions.Abort:
            click.echo("relufim: aborted", err=True)
            sys.exit(130)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="relufim")
def main() -> None:
    """relufim: Fisher information and NTK spectra of two-layer ReLU networks with random hidden weights.

    Start with `relufim reproduce --quick` (the 2023 paper's numerical check) or
    `relufim spectrum --d 10 --p 2000`.
    """


# Subcommands: one module each, one registration line each.
for _command in (spectrum_command, reproduce_command, sweep_command, report_command, limit_command,
                 convergence_command, functions_command, ntk_command, dynamics_command, mdl_command,
                 approximations_command):
    main.add_command(_command)

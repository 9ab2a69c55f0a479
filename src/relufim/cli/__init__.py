"""Command-line interface: ``relufim <command>``. Thin: parses, calls the library, prints."""

from __future__ import annotations

import sys

import click

from .. import __version__


class _Group(click.Group):
    """A click group whose usage errors are one line on stderr with exit code 2."""

    def main(self, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("standalone_mode", True)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.NoArgsIsHelp as exc:  # pragma: no cover - click >= 8.2
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            sys.exit(2)
        except click.UsageError as exc:
            hint = f" (see 'relufim {exc.ctx.command_path.split(' ', 1)[-1]} --help')" if exc.ctx and " " in exc.ctx.command_path else " (see 'relufim --help')"
            click.echo(f"relufim: error: {' '.join(exc.format_message().split())}{hint}", err=True)
            sys.exit(2)
        except click.exceptions.Abort:
            click.echo("relufim: aborted", err=True)
            sys.exit(130)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="relufim")
def main() -> None:
    """relufim: Fisher information and NTK spectra of two-layer ReLU networks with random hidden weights.

    Start with `relufim reproduce --quick` (the 2023 paper's numerical check) or
    `relufim spectrum --d 10 --p 2000`.
    """


# Subcommands: one module each, one registration line each.

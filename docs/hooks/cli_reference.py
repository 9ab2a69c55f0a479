"""MkDocs hook: replace ``<!-- relufim-cli-reference -->`` with the ``--help`` of every command.

The CLI reference is generated from the click commands themselves at build time, so it
cannot drift from the code. ``render_cli_reference()`` is also used by tests/test_docs.py.
"""

from __future__ import annotations

import click

from relufim.cli import main

MARKER = "<!-- relufim-cli-reference -->"


def render_cli_reference() -> str:
    """Markdown: one section per ``relufim`` subcommand with its usage, help text and options."""
    parts = []
    with click.Context(main, info_name="relufim", terminal_width=100, max_content_width=100,
                       help_option_names=["-h", "--help"]) as root:
        parts.append("## relufim\n\n```text\n" + main.get_help(root) + "\n```\n")
        for name in sorted(main.list_commands(root)):
            cmd = main.get_command(root, name)
            with click.Context(cmd, info_name=name, parent=root, terminal_width=100, max_content_width=100,
                               help_option_names=["-h", "--help"]) as ctx:
                parts.append(f"## relufim {name}\n\n```text\n" + cmd.get_help(ctx) + "\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs hook signature
    if MARKER in markdown:
        return markdown.replace(MARKER, render_cli_reference())
    return markdown

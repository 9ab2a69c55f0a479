"""The version of relufim: its one home (pyproject.toml reads it)."""

__version__ = "0.2.0.dev0"

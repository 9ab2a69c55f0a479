"""The documentation: the tutorial's code runs, the CLI reference covers every option, the site builds strictly."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def test_tutorial_code_runs(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    pytest.importorskip("pandas")
    blocks = _python_blocks((DOCS / "tutorial.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 8, "the tutorial lost its code blocks"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}  # the tutorial's sweep sits under a __main__ guard, as in a script
    for i, block in enumerate(blocks, start=1):
        try:
            exec(compile(block, f"tutorial.md block {i}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message says which block broke
            pytest.fail(f"tutorial block {i} failed: {type(exc).__name__}: {exc}\n{block}")
    # what the tutorial promises at the end
    assert (tmp_path / "results" / "report.html").exists() and (tmp_path / "results" / "report.md").exists()
    assert len(namespace["df"]) == 8


def _cli_reference_module():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "hooks" / "cli_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_reference_documents_every_command_and_option():
    import click

    from relufim.cli import main

    mod = _cli_reference_module()
    assert mod.MARKER in (DOCS / "cli.md").read_text(encoding="utf-8")
    text = mod.render_cli_reference()
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        assert f"## relufim {name}\n" in text, name
        for param in main.get_command(ctx, name).params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in text, (name, opt)
    assert mod.on_page_markdown("before\n" + mod.MARKER, None, None, None).startswith("before\n## relufim")


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip("mkdocs / mkdocstrings not installed (pip install -e '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = tmp_path / "site"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("run_sweep", "load_results", "build_report", "sample_weights", "spectrum_summary"):
        assert name in api, name
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--retry-failed" in cli and "relufim-cli-reference" not in cli
    assert not (site / "hooks").exists()

"""The documentation: the tutorial's code runs, the CLI reference covers every option, the site builds strictly."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


from tests.oracles import python_blocks as _python_blocks  # noqa: E402


def test_tutorial_code_runs(tmp_path, run_doc_page):
    pytest.importorskip("distributed")
    pytest.importorskip("pandas")
    assert len(_python_blocks((DOCS / "tutorial.md").read_text(encoding="utf-8"))) >= 8, \
        "the tutorial lost its code blocks"
    namespace = run_doc_page("tutorial.md")  # the tutorial's sweep sits under a __main__ guard, as in a script
    # what the tutorial promises at the end
    assert (tmp_path / "results" / "report.html").exists() and (tmp_path / "results" / "report.md").exists()
    assert len(namespace["df"]) == 8


def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's Python block runs as written (it is what a new user tries first)."""
    blocks = _python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks, "the README lost its Python example"
    monkeypatch.chdir(tmp_path)
    for i, block in enumerate(blocks, start=1):
        exec(compile(block, f"README.md block {i}", "exec"), {"__name__": "__main__"})


def _hook_module(name):
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _cli_reference_module():
    return _hook_module("cli_reference")


def test_every_exported_name_is_documented():
    """The API reference is generated from __all__; every exported name needs a docstring to show there."""
    griffe = pytest.importorskip("griffe")  # what mkdocstrings reads: docstrings, and attribute docstrings of constants

    import relufim

    mod = _hook_module("api_reference")
    names = mod.exported_names()
    assert {n for _, n in names} >= set(relufim.__all__) - {"__version__"}, "the root exports a name no package owns"
    loaded = griffe.load("relufim", search_paths=[str(ROOT / "src")])
    missing = []
    for package, name in names:
        obj = loaded[f"{package.removeprefix('relufim.')}.{name}"]
        while getattr(obj, "is_alias", False):
            obj = obj.final_target
        doc = obj.docstring.value if obj.docstring else ""
        if len(doc.strip()) < 20:
            missing.append(f"{package}.{name}")
    assert not missing, f"exported names without a docstring: {missing}"
    text = mod.render_api_reference()
    for package, name in names:
        assert f"::: {package}.{name}\n" in text


def test_docs_cite_only_the_repository():
    """Nothing in the repository points outside it: no ../shared, no DESIGN.md (the theory ships in docs/)."""
    offenders = []
    for path in [ROOT / "README.md", *ROOT.joinpath("src").rglob("*.py"), *DOCS.rglob("*.md"),
                 *ROOT.joinpath("benchmarks").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        if "../shared" in text or "DESIGN.md" in text or "DESIGN §" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


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
    mod = _hook_module("api_reference")
    # every exported name has its own heading (mkdocstrings ids are the dotted paths)
    for package, name in mod.exported_names():
        assert f'id="{package}.{name}"' in api, f"{package}.{name} is exported but not in the API reference"
    # docstrings cite the theory by section, linked to its headings
    assert 'href="../theory/#2-the-exact-fim-of-the-readout"' in api
    theory = (site / "theory" / "index.html").read_text(encoding="utf-8")
    assert 'id="16-mdl-two-stage-codes-and-the-index-of-resolvability"' in theory
    assert (site / "assets" / "katex" / "katex.min.js").exists()  # the math renders offline
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--retry-failed" in cli and "relufim-cli-reference" not in cli
    assert not (site / "hooks").exists()

"""The application layer's shape: experiments compute (no matplotlib, no files), report renders, cli prints.

The import-linter contract (.ci) enforces the layers between packages; these tests check what it cannot
see: what importing the experiments pulls in, function-level imports, and file output in the experiments.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "relufim"
APP = ("experiments", "report", "cli", "sweep")
#: Optional extras that may stay lazy (imported inside the function that needs them, with a clear error).
OPTIONAL = {"dask", "distributed", "pandas", "playwright", "torch"}
#: What each application package may import from the others (cli -> report -> experiments | sweep).
ALLOWED = {"experiments": set(), "sweep": set(), "report": {"experiments", "sweep"},
           "cli": {"report", "experiments", "sweep"}}


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).glob("*.py"))


def test_importing_the_experiments_imports_no_matplotlib_and_no_report():
    code = ("import sys, relufim.experiments, relufim.experiments.reproduce, relufim.experiments.function_space, "
            "relufim.experiments.limit_section, relufim.experiments.convergence, relufim.experiments.activations\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' or "
            "m.startswith(('relufim.report', 'relufim.cli'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_the_library_never_imports_the_application_layer():
    code = ("import sys, relufim, relufim.model, relufim.fim, relufim.spectrum, relufim.theory\n"
            "print(sorted(m for m in sys.modules if m.startswith(tuple('relufim.' + p for p in "
            f"{APP!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def _relufim_imports(tree: ast.AST, package: str) -> set[str]:
    """The application packages a module imports (relative or absolute)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 2 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 2:
                found.update(a.name for a in node.names)
            elif node.level == 0 and node.module and node.module.startswith("relufim."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("relufim."))
    return found & set(APP) - {package}


@pytest.mark.parametrize("package", APP)
def test_layers_inside_the_application(package):
    for path in _modules(package):
        bad = _relufim_imports(ast.parse(path.read_text()), package) - ALLOWED[package]
        assert not bad, f"{path.relative_to(SRC)} imports relufim.{bad}: allowed {ALLOWED[package] or 'none'}"


@pytest.mark.parametrize("package", APP)
def test_no_function_level_imports_but_optional_extras(package):
    for path in _modules(package):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = ["." * node.level + (node.module or "")]
                else:
                    continue
                assert all(n.split(".")[0] in OPTIONAL for n in names), \
                    f"{path.relative_to(SRC)}:{node.lineno} imports {names} inside {fn.name}()"


def test_experiments_draw_nothing_and_write_no_file():
    for path in _modules("experiments"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in ("_io", "relufim._io") and "matplotlib" not in (node.module or ""), \
                    f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                assert name not in {"open", "savefig", "write_text", "write_bytes", "mkdir", "save"}, \
                    f"{path.name}:{node.lineno} calls {name}()"

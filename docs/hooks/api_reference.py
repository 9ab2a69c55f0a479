"""MkDocs hook: replace ``<!-- relufim-api-reference -->`` with every name each package exports.

The API reference is generated from the ``__all__`` of the package root and of each
subpackage at build time, so an exported name cannot be left out; tests/test_docs.py checks
that every one of them has a docstring and a heading in the built site.
"""

from __future__ import annotations

import importlib

MARKER = "<!-- relufim-api-reference -->"

#: The packages whose ``__all__`` is documented, in the order data flows through them.
PACKAGES = [
    ("relufim.model", "Model: weights, activations, harmonic analysis"),
    ("relufim.fim", "The Fisher information: matrices, sampled versions, the matrix-free operator"),
    ("relufim.spectrum", "Spectra: eigenpairs with certificates, clusters, density"),
    ("relufim.theory", "Theory: approximate eigenvectors, checks, limits, function space, NTK, learning, risk"),
    ("relufim.experiments", "Experiments (application layer): the reproduced results"),
    ("relufim.report", "Reports (application layer): figures, tables and documents"),
    ("relufim.sweep", "Sweeps (application layer): grids on Dask and the results store"),
]


def exported_names() -> list[tuple[str, str]]:
    """``(package, name)`` for every name in the ``__all__`` of the documented packages."""
    out = []
    for package, _ in PACKAGES:
        mod = importlib.import_module(package)
        out += [(package, name) for name in mod.__all__]
    return out


def render_api_reference() -> str:
    """Markdown: one section per package, one mkdocstrings block per exported name."""
    parts = []
    for package, title in PACKAGES:
        mod = importlib.import_module(package)
        parts.append(f"## {title}\n\n`import {package}`\n")
        parts += [f"::: {package}.{name}\n" for name in mod.__all__]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs hook signature
    if MARKER in markdown:
        return markdown.replace(MARKER, render_api_reference())
    return markdown


def theory_anchors(theory_markdown: str) -> dict[str, str]:
    """Section number -> anchor of its heading in theory.md (``## N. Title``, slugified as the toc extension does)."""
    import re

    from markdown.extensions.toc import slugify

    out = {}
    for m in re.finditer(r"^## (\d+)\. (.+)$", theory_markdown, flags=re.M):
        out[m.group(1)] = slugify(f"{m.group(1)}. {m.group(2)}".strip(), "-")
    return out


def link_theory_references(html: str, anchors: dict[str, str], prefix: str) -> str:
    """Turn every "theory §N" (also "§N–M", "§N, §M") into links to the sections of theory.md."""
    import re

    def one(m: re.Match) -> str:
        n = m.group(1)
        return f'<a href="{prefix}#{anchors[n]}">§{n}</a>' if n in anchors else m.group(0)

    def phrase(m: re.Match) -> str:
        return re.sub(r"§(\d+)", one, m.group(0))

    return re.sub(r"theory (?:§\d+(?:[–-]\d+)?(?:, )?)+", phrase, html)


def on_page_content(html: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs hook signature
    if page.file.src_uri == "theory.md":
        return html
    from pathlib import Path

    theory = Path(config["docs_dir"]) / "theory.md"
    if not theory.exists():
        return html
    depth = page.url.count("/")
    return link_theory_references(html, theory_anchors(theory.read_text(encoding="utf-8")), "../" * depth + "theory/")

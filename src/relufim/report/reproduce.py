"""The report of a ``relufim reproduce`` run directory, built from its ``summary.json``.

Schema read (every key optional; what is missing is said in the report, never a crash)::

    {"config": {...}, "versions": {"relufim": ..., "numpy": ..., ...},
     "settings": [{"name": "exact" | "monte-carlo", <spectrum_summary fields>}],
     "claims": [{"claim": str, "source": str, "predicted": str, "measured": str, "holds": bool | null}],
     "figures": [{"file": "x.png", "caption": str}],
     "sections": [{"name": str, "summary": {...}}]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from .document import Figure, Paragraph, Preformatted, Report, Section, Table

__all__ = ["SUMMARY_NAME", "reproduce_report", "load_summary", "claims_table", "flatten"]

SUMMARY_NAME = "summary.json"
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
         ".gif": "image/gif", ".webp": "image/webp"}
_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8", "image/gif": b"GIF8", "image/webp": b"RIFF"}


def load_summary(directory: str | Path) -> dict[str, Any]:
    """Read ``DIR/summary.json`` (a JSON object), with a clear error when it is absent or malformed."""
    path = Path(directory) / SUMMARY_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{directory} has no {SUMMARY_NAME}; is it a `relufim reproduce` run?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}.")
    return data


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as ``(a.b.c, value)`` pairs; lists stay whole.

    Examples
    --------
    >>> flatten({"a": 1, "b": {"c": 2, "d": [1, 2]}})
    [('a', 1), ('b.c', 2), ('b.d', [1, 2])]
    """
    if isinstance(obj, Mapping):
        out: list[tuple[str, Any]] = []
        for k, v in obj.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, obj)]


def _as_list(value: Any, what: str, warnings: list[str]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        warnings.append(f"summary.json: '{what}' should be a list, got {type(value).__name__}; ignored.")
        return []
    return value


def claims_table(claims: list[Mapping[str, Any]], table_id: str = "claims") -> Table:
    """The papers' claims next to the measured values."""
    rows = [[c.get("claim"), c.get("source"), c.get("predicted"), c.get("measured"),
             c.get("holds") if isinstance(c.get("holds"), bool) else None]
            for c in claims if isinstance(c, Mapping)]
    return Table(["claim", "source", "predicted", "measured", "holds"], rows, id=table_id,
                 caption="The papers' claims and what this run measured (holds: – where it is not a yes/no test).")


def _clusters_text(setting: Mapping[str, Any], field: str) -> str | None:
    clusters = setting.get("clusters")
    if not isinstance(clusters, list) or not clusters:
        return None
    vals = [c.get(field) if isinstance(c, Mapping) else None for c in clusters[:3]]
    if field == "mean":
        return ", ".join("–" if v is None else f"{v:.4g}" for v in vals)
    return "/".join("–" if v is None else str(v) for v in vals)


def _settings_table(settings: list[Mapping[str, Any]]) -> Table:
    cols = ["name", "d", "p", "seed", "method", "n", "top_fraction", "trace", "cluster sizes", "predicted sizes",
            "cluster means", "perron_frobenius", "max_residual"]
    rows = []
    for s in settings:
        rows.append([s.get("name"), s.get("d"), s.get("p"), s.get("seed"), s.get("method", s.get("fisher")),
                     s.get("n"), s.get("top_fraction"), s.get("trace"), _clusters_text(s, "size"),
                     _clusters_text(s, "predicted_size"), _clusters_text(s, "mean"), s.get("perron_frobenius"),
                     s.get("max_residual")])
    return Table(cols, rows, id="settings", caption="One row per setting: the measured spectrum and its clusters.")


def _theorem3_table(settings: list[Mapping[str, Any]]) -> Table | None:
    rows = []
    for s in settings:
        th = s.get("theorem3")
        if not isinstance(th, Mapping):
            continue
        for family, vals in th.items():
            if isinstance(vals, Mapping):
                rows.append([s.get("name"), family, vals.get("min"), vals.get("bound"), vals.get("min_over_bound")])
    if not rows:
        return None
    return Table(["setting", "vectors", "min Rayleigh quotient", "Theorem 3 bound (δ = 0)", "min / bound"], rows,
                 id="theorem3", caption="Theorem 3: Rayleigh quotients of the theory's vectors against the bounds.")


def _lemma2_table(settings: list[Mapping[str, Any]]) -> Table | None:
    rows = []
    for s in settings:
        lem = s.get("lemma2")
        if not isinstance(lem, Mapping):
            continue
        for family, vals in lem.items():
            if isinstance(vals, Mapping) and "mean_sq_norm" in vals:
                rows.append([s.get("name"), family, vals.get("count"), vals.get("mean_sq_norm"),
                             vals.get("expected_sq_norm_finite_d"), vals.get("max_dev_from_expected")])
    if not rows:
        return None
    return Table(["setting", "vectors", "count", "mean ‖v‖²", "expected at finite d", "max deviation"], rows,
                 id="lemma2", caption="Lemma 2: squared norms of the theory's vectors (→ 1 as p → ∞; exact "
                                      "finite-d expectation shown).")


def _limit_table(limit: Any) -> Table | None:
    if not isinstance(limit, Mapping) or not limit:
        return None
    return Table(["quantity", "infinite-width value"], list(limit.items()), id="limit",
                 caption="Infinite-width values (DESIGN §4) that the measured clusters approach.")


def _alignment_table(settings: list[Mapping[str, Any]]) -> Table | None:
    rows = []
    for s in settings:
        al = s.get("alignment")
        if isinstance(al, Mapping) and al:
            for k, v in al.items():
                rows.append([s.get("name"), k, v])
    if not rows:
        return None
    return Table(["setting", "subspace", "min principal cosine"], rows, id="alignment",
                 caption="Alignment of the measured cluster eigenspaces with the predicted spans (1 = identical).")


def _figure_blocks(directory: Path, figures: list[Any], warnings: list[str]) -> list[Any]:
    blocks: list[Any] = []
    for i, f in enumerate(figures):
        if not isinstance(f, Mapping) or not isinstance(f.get("file"), str):
            warnings.append(f"summary.json: figure {i + 1} has no 'file'; skipped.")
            continue
        name = f["file"]
        caption = str(f.get("caption") or name)
        path = (directory / name).resolve()
        mime = _MIME.get(path.suffix.lower())
        if mime is None:
            blocks.append(Paragraph(f"Figure {name}: unsupported image type {path.suffix!r}; not embedded.",
                                    kind="warning"))
            continue
        try:
            data = path.read_bytes()
        except OSError:
            blocks.append(Paragraph(f"Figure {name} is missing from the run directory.", kind="warning"))
            continue
        magic = _MAGIC.get(mime)
        if (magic is not None and not data.startswith(magic)) or (mime == "image/svg+xml" and b"<svg" not in data[:4096]):
            blocks.append(Paragraph(f"Figure {name} is not a valid {mime} file; not embedded.", kind="warning"))
            continue
        blocks.append(Figure(data, caption, file=name, id=f"figure-{i + 1}", mime=mime))
    return blocks


def reproduce_report(directory: str | Path) -> Report:
    """Build the report of a reproduce run directory from its ``summary.json``."""
    directory = Path(directory)
    summary = load_summary(directory)
    warnings: list[str] = []
    config = summary.get("config") if isinstance(summary.get("config"), Mapping) else {}
    versions = summary.get("versions") if isinstance(summary.get("versions"), Mapping) else {}
    settings = [s for s in _as_list(summary.get("settings"), "settings", warnings) if isinstance(s, Mapping)]
    claims = [c for c in _as_list(summary.get("claims"), "claims", warnings) if isinstance(c, Mapping)]
    figures = _as_list(summary.get("figures"), "figures", warnings)
    extra_sections = [s for s in _as_list(summary.get("sections"), "sections", warnings) if isinstance(s, Mapping)]

    sections: list[Section] = []
    n_hold = sum(1 for c in claims if c.get("holds") is True)
    n_fail = sum(1 for c in claims if c.get("holds") is False)
    blocks: list[Any] = [Paragraph(f"{n_hold} of {len(claims)} claims hold in this run"
                                   + (f", {n_fail} do not." if n_fail else ".")) if claims else
                         Paragraph("This run recorded no claims.", kind="warning")]
    if claims:
        blocks.append(claims_table(claims))
    sections.append(Section("Claims and measurements", blocks, id="claims-section"))

    if settings:
        blocks = [_settings_table(settings)]
        for t in (_limit_table(summary.get("limit")), _theorem3_table(settings), _lemma2_table(settings),
                  _alignment_table(settings)):
            if t is not None:
                blocks.append(t)
        sections.append(Section("Settings", blocks, id="settings-section"))

    fig_blocks = _figure_blocks(directory, figures, warnings)
    if fig_blocks:
        sections.append(Section("Figures", fig_blocks, id="figures"))

    for i, sec in enumerate(extra_sections):
        name = str(sec.get("name") or f"Section {i + 1}")
        summ = sec.get("summary")
        blocks = []
        if isinstance(sec.get("markdown"), str) and sec["markdown"].strip():
            blocks.append(Preformatted(sec["markdown"].strip()))
        if isinstance(summ, Mapping):
            blocks.append(Table(["quantity", "value"], flatten(summ), id=f"section-{i + 1}-table"))
        elif summ is None:
            blocks.append(Paragraph("No summary recorded."))
        else:
            blocks.append(Preformatted(json.dumps(summ, indent=2, default=str)))
        sections.append(Section(name, blocks, id=f"section-{i + 1}"))

    sections.append(Section("Configuration and versions", [
        Table(["setting", "value"], flatten(config), id="config", caption="Configuration of the run."),
        Table(["package", "version"], list(versions.items()), id="versions", caption="Versions."),
    ], id="config-section"))
    if warnings:
        sections.insert(0, Section("Warnings", [Paragraph(w, kind="warning") for w in warnings], id="warnings"))

    facts = [("directory", str(directory)), ("relufim", versions.get("relufim")),
             ("settings", len(settings)), ("claims holding", f"{n_hold} / {len(claims)}")]
    return Report(title="relufim reproduce report",
                  subtitle="The numerical check of the 2023 paper: spectrum clusters of the FIM against the theory.",
                  facts=facts, sections=sections)

"""The report of a ``relufim reproduce`` run, built from its data (``summary.json``), and its figures.

:func:`reproduce_figures` draws the figures of a run from the data
:func:`relufim.experiments.reproduce` returned; :func:`reproduce_report` builds the document
(claims, tables, figures, configuration) that :mod:`relufim.report.markdown` and
:mod:`relufim.report.html` render as ``report.md`` and ``report.html``. Both read only the
summary, so ``relufim report DIR`` regenerates exactly what ``relufim reproduce`` wrote.
:data:`SECTION_REPORTS` says how each section of a run is shown (title, tables, figures).

Schema read (every key optional; what is missing is said in the report, never a crash)::

    {"config": {...}, "versions": {"relufim": ..., "numpy": ..., ...},
     "limit": {"cluster1": ..., ...}, "theorem3_bounds": {...},
     "settings": [{"name": "exact" | "monte-carlo", <spectrum_summary fields>}],
     "claims": [{"claim": str, "source": str, "predicted": str, "measured": str, "holds": bool | null}],
     "figures": [{"file": "x.png", "caption": str, "section": null | <section name>}],
     "spectra": {...}, "rayleigh_quotients": {...}, "principal_cosines": {...}, "density": {...},
     "sections": [{"name": "limit" | "function_space" | str, "summary": {...}}]}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from matplotlib.figure import Figure as MplFigure

from ..experiments.convergence import ClusterConvergence
from . import depth as depth_report
from . import full_fisher as full_fisher_report
from . import mdl as mdl_report
from .claims import JUDGEMENT_NOTE, claims_table, count_claims, norm_signs
from .document import Figure, Paragraph, Preformatted, Report, Section, Table
from .figures import (
    FigureFile,
    approximation_figure,
    convergence_figure,
    density_figure,
    dynamics_figure,
    eigenvalue_distribution_figure,
    fisher_ntk_figure,
    function_forms_figure,
    principal_angles_figure,
    rayleigh_figure,
    trace_share_figure,
)

__all__ = ["SUMMARY_NAME", "FigureFile", "reproduce_figures", "reproduce_report", "load_summary", "flatten"]

SUMMARY_NAME = "summary.json"
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
         ".gif": "image/gif", ".webp": "image/webp"}
_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8", "image/gif": b"GIF8", "image/webp": b"RIFF"}


@dataclass(frozen=True)
class SectionReport:
    """How the report shows one section of a reproduce run (``summary["sections"][i]``).

    ``blocks`` and ``figures`` take the section's ``summary``: its tables and text (document
    blocks of :mod:`relufim.report.document`), and its figures as ``(file, caption, figure)``.
    """

    title: str
    blocks: Callable[[Mapping[str, Any]], list[Any]]
    figures: Callable[[Mapping[str, Any]], list[tuple[str, str, MplFigure]]]

    @classmethod
    def of_module(cls, module: ModuleType) -> SectionReport:
        """A report module's section: its ``SECTION_TITLE``, ``section_blocks`` and ``section_figures``."""
        return cls(module.SECTION_TITLE, module.section_blocks, module.section_figures)


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


def _pct(x: Any, digits: int = 4) -> str | None:
    return None if x is None else f"{x:.{digits}%}"


def _cos(x: Any) -> str | None:
    """A cosine near 1: five decimals (four significant digits would round 0.99995 to 1)."""
    return f"{x:.5f}" if isinstance(x, (int, float)) else None


# ----------------------------------------------------------------------------- figures

def _section_summary(summary: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for sec in summary.get("sections") or []:
        if isinstance(sec, Mapping) and sec.get("name") == name and isinstance(sec.get("summary"), Mapping):
            return sec["summary"]
    return None


def reproduce_figures(summary: Mapping[str, Any]) -> list[FigureFile]:
    """The figures of a reproduce run, drawn from its data (what :func:`relufim.experiments.reproduce` returns).

    Parameters
    ----------
    summary : dict
        The run's data.

    Returns
    -------
    list of FigureFile
        In report order: the 2023 check (eigenvalue distribution, Rayleigh quotients, principal
        angles, the distribution at ``density_p``), then each section's figures (:data:`SECTION_REPORTS`).
    """
    cfg = summary["config"]
    d, p = cfg["d"], cfg["p"]
    limit = summary.get("limit")
    bounds = summary["theorem3_bounds"]
    settings = summary["settings"]
    out = [
        FigureFile("eigenvalue_distribution.png",
                   "Eigenvalue distribution of the exact and Monte Carlo FIM (log scale); shaded: the three clusters; "
                   "dashed: Theorem 3 bounds; dotted: infinite-width limit values.", None,
                   eigenvalue_distribution_figure({"exact": summary["spectra"]["exact_all"],
                                                   "monte-carlo": summary["spectra"]["monte_carlo_all"]},
                                                  settings[0]["clusters"], bounds, limit, d)),
        FigureFile("rayleigh_quotients.png",
                   "Rayleigh quotients of v^(0), the rows W_l, v^(a,b) and v^(gamma) against Theorem 3's bounds.",
                   None, rayleigh_figure(summary["rayleigh_quotients"], bounds)),
        FigureFile("principal_angles.png",
                   "Cosines of the principal angles between each computed cluster eigenspace and its predicted span.",
                   None, principal_angles_figure(summary["principal_cosines"])),
    ]
    dens = summary.get("density")
    if dens:
        out.append(FigureFile(
            f"eigenvalue_distribution_p{dens['p']}.png",
            f"Eigenvalue distribution of the exact FIM at p = {dens['p']} (stochastic Lanczos quadrature after "
            f"deflating the three clusters; band: 2 standard errors over the random vectors) over the dense one at "
            f"p = {p}; dotted: infinite-width limits.", "density",
            density_figure(dens["smoothed_histogram"], d=d, p=dens["p"], n_vectors=dens["n_vectors"],
                           lanczos_steps=dens["lanczos_steps"], limit=limit)))
    for name, section in SECTION_REPORTS.items():
        sec = _section_summary(summary, name)
        if sec is not None:
            out += [FigureFile(f, caption, name, fig) for f, caption, fig in section.figures(sec)]
    return out


def _figure_blocks(directory: Path, figures: list[tuple[int, Mapping[str, Any]]], warnings: list[str]) -> list[Any]:
    blocks: list[Any] = []
    for i, f in figures:
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
        bad_svg = mime == "image/svg+xml" and b"<svg" not in data[:4096]
        if (magic is not None and not data.startswith(magic)) or bad_svg:
            blocks.append(Paragraph(f"Figure {name} is not a valid {mime} file; not embedded.", kind="warning"))
            continue
        blocks.append(Figure(data, caption, file=name, id=f"figure-{i + 1}", mime=mime))
    return blocks


# ----------------------------------------------------------------------------- the 2023 check

def _as_list(value: Any, what: str, warnings: list[str]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        warnings.append(f"summary.json: '{what}' should be a list, got {type(value).__name__}; ignored.")
        return []
    return value


def _intro(config: Mapping[str, Any]) -> list[Paragraph]:
    if not {"d", "p", "seed", "n"} <= set(config):
        return []
    run = (f"Run {config['started']} UTC, computed in {config['seconds']:.0f} s. " if "started" in config and
           isinstance(config.get("seconds"), (int, float)) else "")
    return [Paragraph(f"{run}d = {config['d']}, p = {config['p']}, seed = {config['seed']}, W_ij ~ N(0, 1/p); Monte "
                      f"Carlo FIM from n = {config['n']} Gaussian inputs."),
            Paragraph("The 2023 paper (Takeishi, Iida, Takeuchi) states that the FIM of the output weights has three "
                      "clusters of eigenvalues (sizes 1, d, d(d+1)/2 - 1) carrying at least 97.7 % of its trace, with "
                      "eigenvectors built from the hidden weights, and that this was confirmed numerically at about "
                      "10 000 hidden units. Below, each claim next to what was measured here.")]


def _clusters_text(setting: Mapping[str, Any], field: str) -> str | None:
    clusters = setting.get("clusters")
    if not isinstance(clusters, list) or not clusters:
        return None
    vals = [c.get(field) if isinstance(c, Mapping) else None for c in clusters[:3]]
    if field == "mean":
        return ", ".join("–" if v is None else f"{v:.4g}" for v in vals)
    return "/".join("–" if v is None else str(v) for v in vals)


def _clusters_table(settings: list[Mapping[str, Any]]) -> Table | None:
    rows = []
    for s in settings:
        clusters = s.get("clusters")
        if not isinstance(clusters, list):
            continue
        al = s.get("alignment") if isinstance(s.get("alignment"), Mapping) else {}
        for i, c in enumerate(clusters[:3]):
            if isinstance(c, Mapping):
                rows.append([s.get("name"), i + 1, c.get("size"), c.get("predicted_size"), c.get("mean"), c.get("min"),
                             c.get("max"), _cos(al.get(f"cluster{i + 1}"))])
    if not rows:
        return None
    return Table(["setting", "cluster", "size", "predicted", "mean", "min", "max", "min cos(angle)"], rows,
                 id="clusters", caption="The three clusters of each FIM: sizes against the prediction, eigenvalues, "
                                        "and the smallest cosine of the principal angles with the predicted span.")


def _settings_table(settings: list[Mapping[str, Any]]) -> Table:
    cols = ["name", "d", "p", "seed", "method", "n", "top_fraction", "trace", "cluster sizes", "predicted sizes",
            "cluster means", "perron_frobenius", "max_residual", "solver"]
    rows = []
    for s in settings:
        rows.append([s.get("name"), s.get("d"), s.get("p"), s.get("seed"), s.get("method", s.get("fisher")),
                     s.get("n"), s.get("top_fraction"), s.get("trace"), _clusters_text(s, "size"),
                     _clusters_text(s, "predicted_size"), _clusters_text(s, "mean"), s.get("perron_frobenius"),
                     s.get("max_residual"), s.get("solver")])
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
                 caption="Infinite-width values (theory §7) that the measured clusters approach.")


def _alignment_table(settings: list[Mapping[str, Any]]) -> Table | None:
    rows = []
    for s in settings:
        al = s.get("alignment")
        if isinstance(al, Mapping) and al:
            for k, v in al.items():
                rows.append([s.get("name"), k, _cos(v)])
    if not rows:
        return None
    return Table(["setting", "subspace", "min principal cosine"], rows, id="alignment",
                 caption="Alignment of the measured cluster eigenspaces with the predicted spans (1 = identical).")


def _density_blocks(dens: Mapping[str, Any]) -> list[Any]:
    rows = [["width p", dens.get("p")], ["random vectors", dens.get("n_vectors")],
            ["Lanczos steps", dens.get("lanczos_steps")], ["deflated top eigenpairs", dens.get("k_exact")],
            ["share of the trace in them", _pct(dens.get("top_fraction"))],
            ["their max residual / lambda_max", dens.get("top_max_residual_rel")],
            ["trace (Hutchinson estimate)", dens.get("trace_estimate")], ["trace (exact)", dens.get("trace_exact")],
            ["seconds", dens.get("seconds")]]
    return [Table(["quantity", "value"], rows, id="density",
                  caption="The whole eigenvalue distribution beyond dense sizes: stochastic Lanczos quadrature after "
                          "deflating the three clusters (theory §10).")]


# ----------------------------------------------------------------------------- sections of the other results

def _limit_blocks(s: Mapping[str, Any]) -> list[Any]:
    lim = s["limit"]
    d = lim["d"]
    blocks: list[Any] = [Table(
        ["degree k", "multiplicity N(d,k)", "eigenvalue", "cumulative share"],
        [[g["k"], g["multiplicity"], g["eigenvalue"], _pct(g["cumulative_fraction"], 6)] for g in lim["degrees"]],
        id="limit-degrees",
        caption=f"Limit eigenvalues of J for d = {d} (default draw, lambda_k = d mu_k; theory §7).")]
    tsc = s.get("trace_share_curve") or {}
    tail = (f"; the share decreases with d toward 1/2 + 3/(2 pi) (F({tsc['d'][-1]}) = {tsc['F'][-1]:.6f})"
            if tsc.get("d") else "")
    blocks.append(Paragraph(f"F({d}) = {lim['top_fraction']:.6f}{tail}."))
    conv = s.get("convergence")
    if isinstance(conv, Mapping):
        n_seeds = len(conv.get("seeds") or []) or None
        stats = [ClusterConvergence.from_dict(v, n_seeds=n_seeds) for v in conv["statistics"].values()]
        rows = []
        for st in stats:
            for i, p in enumerate(st.p):
                rows.append([st.name, p, st.mean[i], st.std[i], st.stderr[i], st.limit[i], st.error[i],
                             st.significant[i] if st.n_seeds > 1 else None])
        blocks.append(Table(["statistic", "p", "mean", "sd", "standard error", "limit", "mean − limit",
                             "beyond noise"], rows, id="convergence",
                            caption=f"Finite p against the limit (d = {conv['d']}, {len(conv['seeds'])} seeds per "
                                    "width; standard error = sd / √seeds; beyond noise: |mean − limit| > standard "
                                    "error)."))
        blocks.append(Table(["statistic", "rate in p"], [[st.name, st.rate_text] for st in stats],
                            id="convergence-rates",
                            caption="A rate |mean − limit| ~ p^b (b ± its standard error) is fitted only when every "
                                    "width is beyond noise, with one sign, over at least 3 widths."))
    sp = s.get("softplus_vs_relu")
    if isinstance(sp, Mapping):
        rows = [[name, sp[name]["cluster_sizes"], sp[name]["sizes_match"], _pct(sp[name]["top_fraction"]),
                 ", ".join(f"{m:.4g}" for m in sp[name]["cluster_means"])]
                for name in ("softplus", "relu") if isinstance(sp.get(name), Mapping)]
        blocks.append(Table(["activation", "cluster sizes", "as predicted", "share of the trace", "cluster means"],
                            rows, id="softplus-vs-relu",
                            caption=f"Softplus against ReLU on the same W (d = {sp['d']}, p = {sp['p']}, "
                                    f"scale {sp['scale']}; theory §8)."))
    return blocks


def _limit_figures(lim: Mapping[str, Any]) -> list[tuple[str, str, MplFigure]]:
    tsc = lim["trace_share_curve"]
    return [
        ("limit_convergence.png",
         f"Cluster eigenvalues against p (mean and spread over seeds) with the infinite-width limit, "
         f"d = {lim['convergence']['d']}.", convergence_figure(lim["convergence"])),
        ("trace_share_vs_d.png",
         "F(d), the limit share of the trace in the three clusters, against d with the 0.977 bound.",
         trace_share_figure(tsc["d"], tsc["F"], d_mark=lim["limit"]["d"])),
    ]


def _function_space_blocks(s: Mapping[str, Any]) -> list[Any]:
    fs = s["function_forms"]
    blocks: list[Any] = [Table(
        ["group", "vectors", "predicted form", "count", "mean cosine", "min cosine", "mean rel. error"],
        [[g["name"], norm_signs(g["description"]), norm_signs(g["form"]), g["count"], g["mean_cosine"],
          g["min_cosine"], g["mean_rel_error"]] for g in fs["groups"].values()], id="function-forms",
        caption=f"Function forms at d = {fs['d']}, p = {fs['p']}: cosine and relative L2 error of f_v against the "
                f"predicted limiting form on {fs.get('n', 2000)} Gaussian inputs, every vector unit-normalized "
                "(theory §11).")]
    blocks.append(Table(
        ["cluster", "size", "mean eigenvalue", "predicted c²dμ_k", "form", "min principal cosine"],
        [[c["index"], c["size"], c["mean_eigenvalue"], c["predicted_eigenvalue"], norm_signs(c["form"]),
          _cos(c["min_principal_cosine"])] for c in fs["clusters"]], id="function-clusters",
        caption="The computed clusters as functions: the span of their eigenfunctions against the predicted span."))
    ips = s.get("inner_products")
    if isinstance(ips, list) and ips:
        pairs = ["u, u", "u, v", "v, v"]
        blocks.append(Table(
            ["pair (u = a row W_l, v = v0)", "u^T J v", "Monte Carlo E[f_u f_v]", "standard error", "z"],
            [[pairs[i] if i < len(pairs) else str(i + 1), ip["exact"], ip["monte_carlo"], ip["stderr"], ip["z"]]
             for i, ip in enumerate(ips)], id="inner-products",
            caption="The FIM is the Gram operator of v -> f_v: u^T J v against a Monte Carlo estimate of E[f_u f_v]."))
    ntk = s.get("fisher_ntk")
    if isinstance(ntk, Mapping) and isinstance(ntk.get("captured_fractions"), Mapping):
        blocks.append(Table(
            ["function", "cluster 1", "cluster 2", "cluster 3"],
            [[norm_signs(k), *v] for k, v in ntk["captured_fractions"].items()], id="captured-fractions",
            caption=f"Share of each function's energy (on the samples) in each NTK cluster eigenspace (theory §12); "
                    f"FIM and NTK Gram agree to {ntk['max_discrepancy']:.1e}."))
    approx = s.get("approximation")
    if isinstance(approx, Mapping):
        c = approx["curve"]
        blocks.append(Table(
            ["d", "measured error share", "standard error", "predicted 1 − F(d)"],
            [list(r) for r in zip(c["d"], c["measured"], c["stderr"], c["predicted"])], id="approximation",
            caption="Relative L2 error of the degree-≤2 approximation formula over random v, against 1 − F(d) "
                    "(theory §11)."))
    gd = s.get("gradient_descent")
    if isinstance(gd, Mapping):
        blocks.append(Table(
            ["cluster", "size", "mean eigenvalue", "time to 1 %"],
            [[i + 1, size, lam, t] for i, (size, lam, t) in
             enumerate(zip(gd["cluster_sizes"], gd["cluster_mean_eigenvalues"], gd["learning_times"]))],
            id="gradient-descent",
            caption=f"Population gradient descent (d = {gd.get('d')}, p = {gd.get('p')}): learning order "
                    f"{gd['learning_order']}; largest deviation from the closed form "
                    f"{gd['max_rel_deviation_from_prediction']:.1e} (theory §13)."))
    return blocks


def _function_space_figures(fs: Mapping[str, Any]) -> list[tuple[str, str, MplFigure]]:
    forms, ntk, gd = fs["function_forms"], fs["fisher_ntk"], fs["gradient_descent"]
    return [
        ("function_forms.png",
         f"f_v of each group of approximate eigenvectors along a great circle of the input sphere "
         f"(solid) and its predicted limiting form (dashed), d = {forms['d']}, p = {forms['p']}.",
         function_forms_figure(forms["circle"])),
        ("fisher_ntk.png",
         f"Top eigenvalues of the Monte Carlo FIM and of the NTK Gram K/n on the same {ntk['n']} "
         f"inputs (d = {ntk['d']}, p = {ntk['p']}), computed independently.", fisher_ntk_figure(ntk)),
        ("approximation_error.png",
         "Relative L2 error of the degree-<=2 approximation formula over random v (points, "
         "±2 standard errors) against 1 - F(d).", approximation_figure(fs["approximation"]["curve"])),
        ("gradient_descent.png",
         "Excess risk carried by each cluster during population gradient descent (solid) and the "
         "predictions sum lambda_i c_i^2 (1 - eta lambda_i)^(2k) (dashed) and exp(-2 lambda_i t) "
         "(dotted), log axes: the ‖x‖ part is learned first, then the linear part, then the "
         "degree-2 part.",
         dynamics_figure(gd["curves"], title=f"Population GD, target ‖x‖ + x_1 + x_1x_2/‖x‖ parts, "
                                             f"d = {gd['d']}, p = {gd['p']}")),
    ]


#: How each section a reproduce run may hold is shown, by name (``summary["sections"][i]["name"]``), in the
#: order its figures are drawn. A section of another name is listed as recorded.
SECTION_REPORTS: dict[str, SectionReport] = {
    "limit": SectionReport("Infinite width and other activations", _limit_blocks, _limit_figures),
    "function_space": SectionReport("Function space, NTK and learning (the 2025 papers)", _function_space_blocks,
                                    _function_space_figures),
    "depth": SectionReport.of_module(depth_report),
    "all-parameters": SectionReport.of_module(full_fisher_report),
    "mdl": SectionReport.of_module(mdl_report),
}


def _section_blocks(i: int, name: str, sec: Mapping[str, Any], warnings: list[str]) -> list[Any]:
    summ = sec.get("summary")
    section = SECTION_REPORTS.get(name)
    if section is not None and isinstance(summ, Mapping):
        try:
            return section.blocks(summ)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            warnings.append(f"summary.json: section '{name}' lacks what its tables need ({type(exc).__name__}: "
                            f"{exc}); its values are listed as recorded.")
    blocks: list[Any] = []
    if isinstance(sec.get("markdown"), str) and sec["markdown"].strip():  # written by relufim before 0.2
        blocks.append(Preformatted(sec["markdown"].strip()))
    if isinstance(summ, Mapping):
        blocks.append(Table(["quantity", "value"], flatten(summ), id=f"section-{i + 1}-table"))
    elif summ is None:
        blocks.append(Paragraph("No summary recorded."))
    else:
        blocks.append(Preformatted(json.dumps(summ, indent=2, default=str)))
    return blocks


# ----------------------------------------------------------------------------- the report

def reproduce_report(directory: str | Path, summary: Mapping[str, Any] | None = None) -> Report:
    """Build the report of a reproduce run directory from its ``summary.json`` (or the given ``summary``).

    Figures are embedded from the files that ``summary["figures"]`` names, in the section
    each belongs to; a missing or invalid file is reported, never a crash.
    """
    directory = Path(directory)
    if summary is None:
        summary = load_summary(directory)
    warnings: list[str] = []
    config = summary.get("config") if isinstance(summary.get("config"), Mapping) else {}
    versions = summary.get("versions") if isinstance(summary.get("versions"), Mapping) else {}
    settings = [s for s in _as_list(summary.get("settings"), "settings", warnings) if isinstance(s, Mapping)]
    claims = [c for c in _as_list(summary.get("claims"), "claims", warnings) if isinstance(c, Mapping)]
    figures = _as_list(summary.get("figures"), "figures", warnings)
    extra_sections = [s for s in _as_list(summary.get("sections"), "sections", warnings) if isinstance(s, Mapping)]

    placed: dict[str | None, list[tuple[int, Mapping[str, Any]]]] = {}
    for i, f in enumerate(figures):
        if not isinstance(f, Mapping) or not isinstance(f.get("file"), str):
            warnings.append(f"summary.json: figure {i + 1} has no 'file'; skipped.")
            continue
        placed.setdefault(f.get("section") if isinstance(f.get("section"), str) else None, []).append((i, f))

    sections: list[Section] = []
    counts = count_claims(claims)
    blocks: list[Any] = [*_intro(config), counts.paragraph()]
    if claims:
        blocks += [claims_table(claims), Paragraph(JUDGEMENT_NOTE)]
    sections.append(Section("Claims and measurements", blocks, id="claims-section"))

    if settings:
        blocks = [t for t in (_clusters_table(settings), _settings_table(settings), _limit_table(summary.get("limit")),
                              _theorem3_table(settings), _lemma2_table(settings), _alignment_table(settings))
                  if t is not None]
        sections.append(Section("Settings and clusters", blocks, id="settings-section"))

    fig_blocks = _figure_blocks(directory, placed.pop(None, []), warnings)
    if fig_blocks:
        sections.append(Section("Figures", fig_blocks, id="figures"))

    dens = summary.get("density")
    if isinstance(dens, Mapping):
        sections.append(Section(f"The distribution at p = {dens.get('p')}",
                                _density_blocks(dens) + _figure_blocks(directory, placed.pop("density", []), warnings),
                                id="density-section"))

    for i, sec in enumerate(extra_sections):
        name = str(sec.get("name") or f"Section {i + 1}")
        blocks = _section_blocks(i, name, sec, warnings)
        blocks += _figure_blocks(directory, placed.pop(name, []), warnings)
        title = SECTION_REPORTS[name].title if name in SECTION_REPORTS else name
        sections.append(Section(title, blocks, id=f"section-{i + 1}"))
    leftover = [f for group in placed.values() for f in group]  # figures of a section the summary does not hold
    if leftover:
        sections.append(Section("Other figures", _figure_blocks(directory, leftover, warnings), id="other-figures"))

    sections.append(Section("Configuration and versions", [
        Table(["setting", "value"], flatten(config), id="config", caption="Configuration of the run."),
        Table(["package", "version"], list(versions.items()), id="versions", caption="Versions."),
    ], id="config-section"))
    if warnings:
        sections.insert(0, Section("Warnings", [Paragraph(w, kind="warning") for w in warnings], id="warnings"))

    facts = [("run", directory.resolve().name), ("relufim", versions.get("relufim")), ("settings", len(settings)),
             *counts.facts()]
    return Report(title="relufim reproduce report",
                  subtitle="The numerical check of the 2023 paper: spectrum clusters of the FIM against the theory, "
                           "and the results that followed.",
                  facts=facts, sections=sections)

r"""The MDL estimator's risk against its bound (theory §16): the CLI table, the figures and the report section.

Everything here renders what :mod:`relufim.experiments.mdl` and
:mod:`relufim.experiments.mdl_section` computed; nothing is computed. Figures follow
:mod:`relufim.report.figures` (object-oriented matplotlib, no pyplot, no global state).

* :func:`format_mdl_table`: the table of ``relufim mdl``;
* :func:`mdl_risk_figure`: mean risk ± 2 standard errors, the index of resolvability
  :math:`R_n`, its closed-form estimate and its leading term, ridge and least squares, against
  ``n`` on log axes;
* :func:`resolvability_width_figure`: :math:`R_n` against ``n`` for each width;
* :func:`section_blocks` and :func:`section_figures`: the ``mdl`` section of a reproduce report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .document import Paragraph, Table
from .figures import axes, style

__all__ = ["format_mdl_table", "mdl_risk_figure", "resolvability_width_figure", "section_blocks",
           "section_figures", "SECTION_TITLE", "FIGURE_FILES"]

#: Title of the reproduce report's MDL section.
SECTION_TITLE = "MDL: two-stage codes, the MDL estimator and its risk bound (theory §16)"

#: File names of the section's figures (and of the figure ``relufim mdl`` writes).
FIGURE_FILES = {"risk": "mdl_risk.png", "width": "mdl_width.png"}

_GROUPS = (("norm", "||x||"), ("linear", "linear"), ("degree2", "degree 2"), ("remaining", "rest"))
#: The same groups as the report's tables name them (a pipe would need escaping in Markdown).
_REPORT_GROUPS = tuple((g, "‖x‖" if g == "norm" else label) for g, label in _GROUPS)


def _pm(mean: float | None, se: float | None, spec: str = ".3g") -> str:
    if mean is None:
        return "–"
    if se is None or not math.isfinite(se):
        return format(mean, spec)
    return f"{format(mean, spec)} ± {se:.1g}"


def format_mdl_table(result: Mapping[str, Any]) -> str:
    """The table of ``relufim mdl``: per ``n``, the code, the bound and the simulated risks.

    ``result``: :func:`relufim.experiments.mdl.mdl_risk_curve` (optionally with ``figure``).
    """
    c = result["config"]
    rows = result["rows"]
    order = c["order"]
    lines = [f"MDL estimator of the readout v: d = {c['d']}, p = {c['p']}, sigma = {c['sigma']:g}, "
             f"beta = {c['beta']:g} (Renyi order {order:g}), radius R = {c['radius']:g}, coding = {c['coding']}, "
             f"{c['reps']} data sets per n",
             f"target: {c['target']}, ||v*|| = {c['target_norm']:.4g}",
             "bound R_n: exact index of resolvability min_v {D(p*||p_v) + beta L/n} (theory §16.4, §16.8); "
             "estimate: closed form (§16.6); leading: beta d(d+3)/4 log n/n (§16.7)", ""]
    compare = any("ridge_kl_mean" in r for r in rows)
    head = (f"{'n':>7} {'coded':>5} {'L (nats)':>9} {'beta L/n':>9} {'R_n':>9} {'estimate':>9} {'leading':>9} "
            f"{'risk (Renyi)':>18} {'KL':>18} {'exact':>6}")
    if compare:
        head += f" {'ridge KL':>18} {'least-squares KL':>18} {'mixture/n':>9}"
    lines += [head, "-" * len(head)]
    for r in rows:
        line = (f"{r['n']:>7} {r['coded_directions']:>5} {r['code_length_nats']:>9.2f} {r['code_term']:>9.4g} "
                f"{r['bound']:>9.4g} {r['estimate']:>9.4g} {r['leading']:>9.4g} "
                f"{_pm(r['risk_mean'], r['risk_se']):>18} {_pm(r['kl_mean'], r['kl_se']):>18} "
                f"{r['methods']['exact']:>3}/{r['reps']:<2}")
        if compare:
            line += (f" {_pm(r.get('ridge_kl_mean'), r.get('ridge_kl_se')):>18} "
                     f"{_pm(r.get('least_squares_kl_mean'), r.get('least_squares_kl_se')):>18} "
                     f"{r.get('mixture_per_sample', float('nan')):>9.4g}")
        lines.append(line)
    last = rows[-1]
    split = last["length_by_cluster"]
    lines += ["", f"code length by cluster at n = {last['n']} (nats / directions): " + ", ".join(
        f"{label} {split[g]['nats']:.2f}/{split[g]['directions']}" for g, label in _GROUPS), ""]
    worst = max(rows, key=lambda r: r["excess_over_bound_se"])
    lines.append(f"largest (mean risk - R_n) / standard error: {worst['excess_over_bound_se']:.1f} at n = {worst['n']} "
                 "(the theorem: mean risk <= R_n)")
    lines.append(f"Kraft sums: {sorted({r['kraft_sum'] for r in rows})} (exact: 1)")
    if compare:
        lines.append(f"ridge penalty {c['ridge_penalty_rule']}; comparison over {rows[0]['compare_reps']} data sets; "
                     "mixture/n: the Bayes-mixture redundancy (1/2n) log det(I + nJ/sigma^2), not a two-stage length")
    gaps = [r["max_gap"] for r in rows if r["max_gap"] is not None]
    fast = sum(r["methods"]["fast"] for r in rows)
    lines.append(f"estimator: {c['method']}; {fast} data set(s) solved by the fast route only; largest gap of the "
                 f"fast route where the exact one also ran: {max(gaps) if gaps else 0.0:.3g} nats")
    if result.get("figure"):
        lines.append(f"figure: {result['figure']}")
    return "\n".join(lines)


def _arr(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)


def mdl_risk_figure(result: Mapping[str, Any]) -> Figure:
    """Mean risk (± 2 standard errors) and the bound :math:`R_n` against ``n``, log axes.

    ``result``: :func:`relufim.experiments.mdl.mdl_risk_curve`. Also drawn: the closed-form
    estimate and the leading term of :math:`R_n`, the KL risk of the MDL estimator and, when
    computed, of ridge and least squares (least squares beyond the plotted range is cut off).
    """
    c, rows = result["config"], result["rows"]
    n = _arr(rows, "n")
    fig, ax = axes((7.2, 4.8))
    ax.plot(n, _arr(rows, "bound"), "k-o", ms=4, lw=2, label="$R_n$, exact index of resolvability (the bound)")
    ax.plot(n, _arr(rows, "estimate"), "k--", lw=1, label="closed-form estimate of $R_n$ (theory §16.6)")
    ax.plot(n, _arr(rows, "leading"), "k:", lw=1, label=r"$\beta\,d(d+3)/4\cdot\log n/n$")
    ax.errorbar(n, _arr(rows, "risk_mean"), yerr=2 * _arr(rows, "risk_se"), fmt="o-", color="C3", capsize=3,
                label=f"MDL: mean Rényi risk $d_{{{c['order']:g}}}$ ± 2 s.e.")
    ax.errorbar(n, _arr(rows, "kl_mean"), yerr=2 * _arr(rows, "kl_se"), fmt="s-", ms=4, color="C1", capsize=3,
                alpha=0.8, label="MDL: mean KL risk ± 2 s.e.")
    top = float(np.nanmax(_arr(rows, "estimate"))) * 5
    if any("ridge_kl_mean" in r for r in rows):
        ax.errorbar(n, _arr(rows, "ridge_kl_mean"), yerr=2 * _arr(rows, "ridge_kl_se"), fmt="^-", ms=4, color="C0",
                    capsize=3, label=r"ridge ($\ell = \sigma^2/(nR^2)$): mean KL risk")
        ls = _arr(rows, "least_squares_kl_mean")
        ax.plot(n, np.where(ls <= top, ls, np.nan), "v-", ms=4, color="C2", label="least squares: mean KL risk")
        for ni, li in zip(n, ls):
            if li > top:  # off the scale (near n = p least squares interpolates the noise): say its value
                ax.annotate(f"LS {li:.2g} ↑", (ni, top), xytext=(0, -12), textcoords="offset points", ha="center",
                            fontsize=7, color="C2")
    bottom = float(np.nanmin(np.concatenate([_arr(rows, "risk_mean"), _arr(rows, "kl_mean")]))) / 3
    ax.set_ylim(max(bottom, 1e-12), top)
    style(ax, xlabel="samples n", ylabel="risk (nats per sample)", xlog=True, ylog=True, grid=True, legend=7,
           title_size=9, title=f"MDL estimator against its bound: d = {c['d']}, p = {c['p']}, β = {c['beta']:g}, "
                               f"R = {c['radius']:g}, σ = {c['sigma']:g}, {c['reps']} data sets per n")
    fig.tight_layout()
    return fig


def resolvability_width_figure(width: Mapping[str, Any]) -> Figure:
    """:math:`R_n` against ``n`` for each width ``p`` (cluster code solid, the code's own choice dashed), log axes.

    ``width``: :func:`relufim.experiments.mdl.resolvability_vs_width`.
    """
    c, rows = width["config"], width["rows"]
    fig, ax = axes((7, 4.5))
    styles = {"clusters": ("-", "o", "cluster code"), "bound": ("--", "x", "bound-minimizing code"),
              "threshold": (":", "+", "threshold code")}
    for j, p in enumerate(c["widths"]):
        for coding in c["codings"]:
            sel = [r for r in rows if r["p"] == p and r["coding"] == coding]
            ls, mk, label = styles.get(coding, ("-.", ".", coding))
            ax.plot(_arr(sel, "n"), _arr(sel, "bound"), ls=ls, marker=mk, color=f"C{j}", ms=4,
                    label=f"p = {p}, {label}")
    sel = [r for r in rows if r["p"] == c["widths"][0] and r["coding"] == c["codings"][0]]
    ax.plot(_arr(sel, "n"), _arr(sel, "leading"), "k:", lw=1, label=r"$\beta\,d(d+3)/4\cdot\log n/n$")
    style(ax, xlabel="samples n", ylabel="$R_n$ (nats per sample)", xlog=True, ylog=True, grid=True, legend=7,
           title_size=9, title=f"Index of resolvability as the width grows, d = {c['d']}, β = {c['beta']:g}, "
                               f"R = {c['radius']:g} (default target)")
    fig.tight_layout()
    return fig


def section_figures(summary: Mapping[str, Any]) -> list[tuple[str, str, Figure]]:
    """The section's figures as ``(file name, caption, figure)``, from the section's summary.

    ``summary``: what :func:`relufim.experiments.mdl_section.reproduce_section` returned under
    ``"summary"``. The risk figure is drawn for the widest simulated width that has the ridge and
    least-squares comparison.
    """
    curves = summary["grid"]["curves"]
    compared = [cv for cv in curves if any("ridge_kl_mean" in r for r in cv["rows"])]
    main = (compared or curves)[-1]
    mc = main["config"]
    out = [(FIGURE_FILES["risk"],
            f"Mean Rényi risk of the MDL estimator (± 2 standard errors over {mc['reps']} data sets) against the "
            f"exact index of resolvability R_n, its closed-form estimate and leading term, with the KL risks of MDL, "
            f"ridge and least squares; d = {mc['d']}, p = {mc['p']}, log axes (theory §16).",
            mdl_risk_figure(main))]
    w = summary["width"]
    out.append((FIGURE_FILES["width"],
                f"R_n for the default target against n, for widths {w['config']['widths']} at d = {w['config']['d']}: "
                "with the cluster code the curves lie on top of each other (theory §16.7).",
                resolvability_width_figure(w)))
    return out


def section_blocks(summary: Mapping[str, Any]) -> list[Any]:
    """The section's tables and text (document blocks of :mod:`relufim.report.document`), from its summary."""
    st = summary["settings"]
    blocks: list[Any] = [Paragraph(
        f"Two-stage codes for the readout v (relufim's construction in the framework of Barron & Cover 1991 and "
        f"Kawakita & Takeuchi 2020; theory §16): a uniform code over a box of the lattice in the eigenbasis of J, "
        f"designed before the data from (W, n, sigma = {st['sigma']:g}, beta = {st['beta']:g}, R = {st['radius']:g}). "
        "The MDL estimator is computed exactly by sphere decoding; its Rényi risk is averaged over fresh data sets "
        "and compared with the bound R_n, computed exactly over the lattice.")]
    rows = []
    for cv in summary["grid"]["curves"]:
        c = cv["config"]
        for r in cv["rows"]:
            rows.append([c["p"], r["n"], r["coded_directions"], r["code_length_nats"], r["bound"], r["estimate"],
                         r["leading"], _pm(r["risk_mean"], r["risk_se"]), _pm(r["kl_mean"], r["kl_se"]),
                         _pm(r.get("ridge_kl_mean"), r.get("ridge_kl_se")),
                         _pm(r.get("least_squares_kl_mean"), r.get("least_squares_kl_se")),
                         f"{r['methods']['exact']}/{r['reps']}"])
    blocks.append(Table(["p", "n", "coded", "L (nats)", "R_n", "estimate", "leading", "Rényi risk", "KL risk",
                         "ridge KL", "least-squares KL", "exact"], rows, id="mdl-risk",
                        caption=f"Simulated risks (mean ± standard error) against the bound R_n, d = {st['d']}; "
                                "estimate: closed form of theory §16.6; leading: β d(d+3)/4 log n/n; exact: data "
                                "sets solved by sphere decoding."))
    split_rows = []
    for cv in summary["grid"]["curves"]:
        for r in cv["rows"]:
            sp = r["length_by_cluster"]
            split_rows.append([cv["config"]["p"], r["n"], *[f"{sp[g]['nats']:.2f} ({sp[g]['directions']})"
                                                             for g, _ in _REPORT_GROUPS]])
    blocks.append(Table(["p", "n", *[f"{label}: nats (directions)" for _, label in _REPORT_GROUPS]], split_rows,
                        id="mdl-code-split", caption="The code length split by cluster."))
    w = summary["width"]
    blocks.append(Table(["p", "n", "coding", "coded", "R_n", "guarantee (‖v*‖ ≤ R)", "leading"],
                        [[r["p"], r["n"], r["coding"], r["coded_directions"], r["bound"], r["guarantee"], r["leading"]]
                         for r in w["rows"]], id="mdl-width",
                        caption=f"R_n and the code's guarantee over all targets with ‖v*‖ ≤ R as the width grows, "
                                f"d = {w['config']['d']} (no simulation)."))
    return blocks

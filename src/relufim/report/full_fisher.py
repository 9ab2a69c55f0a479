"""Tables and figures of the FIM of all parameters (theory §15): the CLI's and the reproduce section's.

Every function takes the JSON-ready records of :mod:`relufim.experiments.full_fisher` and returns a
string, a list of document blocks or :class:`matplotlib.figure.Figure` objects (drawn with the
object-oriented API, as :mod:`relufim.report.figures` does); nothing here computes or writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .document import Block, Paragraph, Table
from .figures import axes, style

__all__ = [
    "format_full_spectrum_table",
    "format_approximations_table",
    "full_spectrum_figure",
    "full_distribution_figure",
    "sampled_error_figure",
    "natural_gradient_figure",
    "approximation_spectra_figure",
    "approximations_figures",
    "section_blocks",
    "section_figures",
    "SECTION_TITLE",
]

#: Title of the reproduce report's section on the FIM of all parameters.
SECTION_TITLE = "The Fisher information of all parameters (theory §15)"

_COLORS = {"exact": "k", "block-diagonal": "#2f5d9e", "k-fac": "#c0392b", "diagonal": "#7f8c8d",
           "monte-carlo": "#1b7f3b", "empirical": "#8e44ad"}
_SHADES = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def _g(x: Any, spec: str = ".4g") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


# ----------------------------------------------------------------------------- tables

def format_full_spectrum_table(s: Mapping[str, Any]) -> str:
    """``relufim spectrum --params all``: the measured clusters of F beside the readout's J, statistics, null space.

    ``s``: :func:`relufim.experiments.full_fisher.full_spectrum_summary`.
    """
    lines = [f"FIM of all parameters: d = {s['d']}, p = {s['p']}, P = p(d+1) = {s['P']}, seed = {s.get('seed')}, "
             f"solver = {s['method']}", ""]
    head = (f"{'group':>5}  {'size':>4}  {'mean':>11}  {'min':>11}  {'max':>11}  {'gap below':>9}  "
            f"{'v-share':>7}  {'deg<=0':>6}  {'deg<=1':>6}  {'deg<=2':>6}  {'limit':>9}  {'J size':>6}  {'J mean':>11}")
    lines += [head, "-" * len(head)]
    readout = s["readout"]["clusters"]
    lim = (s.get("limit") or {}).get("eigenvalues") or []
    for c in s["clusters"]:
        cap = c.get("captured") or {}
        j = readout[c["index"] - 1] if c["index"] <= len(readout) else None
        limit = lim[c["index"] - 1] if c["index"] <= 3 and c["index"] <= len(lim) else None
        lines.append(f"{c['index']:>5}  {c['size']:>4}{'' if c['closed'] else '+'}{' ' if c['closed'] else ''}"
                     f"{c['mean']:>10.5g}  {c['min']:>11.5g}  {c['max']:>11.5g}  {_g(c['gap_below'], '.3g'):>9}  "
                     f"{_g(c['readout_share'], '.3f'):>7}  {_g(cap.get('0'), '.3f'):>6}  {_g(cap.get('1'), '.3f'):>6}  "
                     f"{_g(cap.get('2'), '.3f'):>6}  {_g(limit, '.5g'):>9}  {_g(j and j['size'], 'd'):>6}  "
                     f"{_g(j and j['mean'], '.5g'):>11}")
    lines += ["", "groups: cut where lambda_i / lambda_(i+1) > 1.4 (no sizes assumed; '+': open, the last computed); "
              "v-share: share of the eigenvectors on the readout v; deg<=k: share captured by E[grad f h], h Hermite "
              "of degree <= k; limit: d m_k of degree k = 0, 1, 2 for the NTK of both layers at infinite width"]
    if len(lim) > 4:
        lines.append(f"(degree 3 is absent in the limit, d m_3 = {abs(lim[3]):.1g}; degree 4: d m_4 = {lim[4]:.4g} "
                     f"with multiplicity {s['limit']['multiplicities'][4]})")
    lines.append("")
    lines.append(f"trace                  {s['trace']:.6g}   (= ||W||_F^2/2 + d||v||^2/2)")
    lines.append(f"mean eigenvalue        {s['mean_eigenvalue']:.6g}   (tr F / P)")
    lines.append(f"second moment          {s['second_moment']:.6g}   (||F||_F^2 / P, {s['second_moment_method']})")
    lines.append(f"lambda_max             {s['lambda_max']:.6g}   ({s['lambda_max_share']:.3%} of the trace)")
    if s.get("top_share") is not None:
        lines.append(f"top {len(s['eigenvalues'])} share           {s['top_share']:.4%}")
    ns = s["null_space"]
    if ns["dimension"] is not None and ns["threshold"] is not None:  # from every eigenvalue
        lines.append(f"null space             dimension {ns['dimension']} (p = {ns['expected']} rescaling directions), "
                     f"cut at {ns['threshold']:.1e} lambda_max across a gap of {ns['gap']:.1e}; min cosine with "
                     f"span(z_j) {ns['min_cosine']:.10f}")
    elif ns["dimension"] is not None:  # the theorem of theory §15.3, its hypotheses checked
        lines.append(f"null space             dimension {ns['dimension']} (p = {ns['expected']} rescaling directions) "
                     f"by theory §15.3: every v_j, w_j nonzero, largest |cos(w_i, w_j)| {ns['max_unit_cosine']:.6f} "
                     f"< 1; F z_j / lambda_max <= {ns['rescaling_residual']:.1e}")
    else:
        lines.append(f"null space             F z_j / lambda_max <= {ns['rescaling_residual']:.1e} for the rescaling "
                     f"directions (p = {ns['expected']}); its dimension needs every eigenvalue (--all-eigenvalues)")
    n_req = sum(c["size"] for c in s["clusters"] if c["closed"])
    lines.append(f"max residual           {s['max_residual']:.2e}   (tol {s['tol']:g} lambda_max; the "
                 f"{s['required']} required pairs {'converged' if s['converged'] else 'did NOT all converge'}; "
                 f"{s['converged_pairs']} of {len(s['eigenvalues'])} pairs converged, the rest are flagged)")
    if s.get("products"):
        lines.append(f"solver                 {s['products']} products, {s['matvecs']} vectors multiplied")
    ev = s["eigenvalues"]
    lines.append(f"eigenvalues            {len(ev)} computed; beyond the closed groups: "
                 + ", ".join(f"{x:.4g}" for x in ev[n_req:][:4]))
    dens = s.get("density")
    if dens:
        lines.append(f"distribution           deflated SLQ ({dens['n_vectors']} vectors x {dens['lanczos_steps']} "
                     f"steps, {dens['deflated']} pairs deflated); trace estimate {dens['trace_estimate']:.5g} vs "
                     f"{dens['trace_exact']:.5g}")
    if s.get("seconds") is not None:
        lines.append(f"time                   {s['seconds']:.1f} s"
                     + (f", peak memory {s['memory_peak_bytes'] / 1e9:.2f} GB" if s.get("memory_peak_bytes") else ""))
    return "\n".join(lines)


def format_approximations_table(s: Mapping[str, Any]) -> str:
    """``relufim approximations``: each approximation against the exact FIM, and the sampled ones against n.

    ``s``: :func:`relufim.experiments.full_fisher.approximations_summary`.
    """
    lines = [f"Curvature approximations against the exact FIM of all parameters: d = {s['d']}, p = {s['p']}, "
             f"P = {s['P']}, seed = {s['seed']}, sigma = {s['sigma']:g}",
             f"top k = {s['k']} eigenpairs (gap lambda_k / lambda_(k+1) = {s['gap']:.3g}); natural gradient of the "
             f"squared loss of a teacher ({s['teacher_width']} units), damping {s['dampings'][0]:g} lambda_max", ""]
    head = (f"{'approximation':>15}  {'n':>6}  {'rel. Frobenius':>14}  {'max eig err':>11}  {'med eig err':>11}  "
            f"{'min cos':>8}  {'overlap':>7}  {'nat-grad angle':>14}  {'time':>6}")
    lines += [head, "-" * len(head)]
    for a in s["approximations"]:
        lines.append(f"{a['name']:>15}  {_g(a['n'], 'd'):>6}  {a['relative_frobenius_error']:>14.4g}  "
                     f"{a['max_eigenvalue_error']:>11.3g}  {a['median_eigenvalue_error']:>11.3g}  "
                     f"{a['min_principal_cosine']:>8.4f}  {a['subspace_overlap']:>7.4f}  "
                     f"{a['natural_gradient_angle']:>12.2f} °  {a['seconds']:>5.1f}s")
    lines += ["", "max/med eig err: relative errors of the top-k eigenvalues; min cos: smallest principal cosine of "
              "the top-k eigenspaces; overlap: mean squared cosine; nat-grad angle: between (A + lambda I)^-1 g and "
              "(F + lambda I)^-1 g", ""]
    sm = s["sampled"]
    lines.append(f"{'n':>7}  {'Monte Carlo error':>17}  {'predicted sqrt(c/n)':>19}  {'empirical error':>15}  "
                 f"{'MC angle':>8}  {'EF angle':>8}")
    for i, n in enumerate(sm["n"]):
        mc, ef = sm["monte-carlo"], sm["empirical"]
        lines.append(f"{n:>7}  {mc['relative_frobenius_error'][i]:>17.4g}  {sm['predicted_monte_carlo'][i]:>19.4g}  "
                     f"{ef['relative_frobenius_error'][i]:>15.4g}  "
                     f"{math.degrees(math.acos(min(1, max(-1, mc['natural_gradient_cosine'][i])))):>7.1f}°  "
                     f"{math.degrees(math.acos(min(1, max(-1, ef['natural_gradient_cosine'][i])))):>7.1f}°")
    c = sm["error_constant"]
    lines.append(f"(means over {sm['seeds']} seed(s); c = E||g||^4/||F||_F^2 - 1 = {c['value']:.4g} ± {c['stderr']:.2g}"
                 f"; labels y = f*(x) + sigma eps, rms residual {_g(s.get('residual_rms'), '.3g')})")
    if len(s["dampings"]) > 1:
        order = np.argsort(s["dampings"])
        lines += ["", "natural-gradient angle (degrees) against the damping (relative to lambda_max):",
                  f"{'approximation':>15}  " + "  ".join(f"{s['dampings'][i]:>8g}" for i in order)]
        for a in s["approximations"]:
            lines.append(f"{a['name']:>15}  " + "  ".join(f"{a['natural_gradient_angles'][i]:>8.2f}" for i in order))
    lines.append(f"\ntime {s['seconds']:.1f} s")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- figures

def full_spectrum_figure(s: Mapping[str, Any]) -> Figure:
    """The top eigenvalues of F (all parameters) beside those of J (the readout), index against value, log scale.

    The measured groups of F are shaded; ``s`` is a :func:`~relufim.experiments.full_fisher.full_spectrum_summary`.
    """
    lam = np.asarray(s["eigenvalues"], dtype=float)
    J = np.asarray(s["readout"]["eigenvalues"], dtype=float)
    fig, ax = axes((8, 4.5))
    start = 0
    for c in s["clusters"]:
        ax.axvspan(start + 0.5, start + c["size"] + 0.5, color=_SHADES[(c["index"] - 1) % len(_SHADES)], alpha=0.12,
                   label=f"group {c['index']} of F: {c['size']}{'' if c['closed'] else '+'} eigenvalues")
        start += c["size"]
    ax.plot(np.arange(1, lam.size + 1), lam, "o", ms=3.5, color="k", label=f"F, all P = {s['P']} parameters")
    lim = (s.get("limit") or {}).get("eigenvalues") or []
    for k in (0, 1, 2, 4):
        if k < len(lim) and lim[k] > 0:
            ax.axhline(lim[k], color="k", ls=":", lw=1,
                       label="infinite width, NTK of both layers: d m_k (k = 0, 1, 2, 4)" if k == 0 else None)
    ax.plot(np.arange(1, J.size + 1), J, "s", ms=3, mfc="none", color="C1", label=f"J, the readout's p = {s['p']}")
    style(ax, xlabel="index i", ylabel="eigenvalue λ_i", ylog=True, grid=True, legend=7, legend_loc="upper right",
          title=f"Top of the spectrum, d = {s['d']}, p = {s['p']}")
    return fig


def full_distribution_figure(s: Mapping[str, Any]) -> Figure:
    """Every eigenvalue of F and of J (log bins), with the SLQ estimate of F's distribution when recorded.

    Needs ``all_eigenvalues`` (dense) or ``density`` (deflated SLQ) in ``s``. The null space (``p``
    zero eigenvalues) cannot appear on a log axis; its size is in the legend.
    """
    fig, ax = axes((8, 4.5))
    allv = s.get("all_eigenvalues")
    lmax = float(s["lambda_max"])
    lo_edge = lmax * 1e-13
    edges = np.logspace(np.log10(lo_edge), np.log10(lmax) + 0.1, 70)
    if allv is not None:
        ev = np.asarray(allv, dtype=float)
        pos = ev[ev > lo_edge]
        ax.hist(pos, bins=edges, histtype="step", color="k", lw=1.4,
                label=f"F: {pos.size} of {ev.size} eigenvalues (dense; {ev.size - pos.size} below "
                      f"{lo_edge / lmax:.0e} λ_max: the null space)")
        Jall = s.get("readout_all_eigenvalues")
        if Jall is not None:
            ax.hist(np.asarray(Jall)[np.asarray(Jall) > lo_edge], bins=edges, histtype="step", color="C1", lw=1.2,
                    label="J (readout)")
    dens = s.get("density")
    if dens:
        e = np.asarray(dens["edges"], dtype=float)
        cnt, err = np.asarray(dens["counts"], dtype=float), np.asarray(dens["stderr"], dtype=float)
        ax.stairs(cnt, e, color="C0", lw=1.2, label=f"F: deflated SLQ ({dens['n_vectors']} vectors × "
                                                     f"{dens['lanczos_steps']} steps, smoothed)")
        ax.stairs(cnt + 2 * err, e, baseline=np.maximum(cnt - 2 * err, 0), fill=True, color="C0", alpha=0.2,
                  label="± 2 standard errors")
    ax.set_ylim(0.3, None)
    ax.set_ylim(0.3, ax.get_ylim()[1] * 8)  # room for the legend above the histograms
    style(ax, xlabel="eigenvalue", ylabel="eigenvalues per bin", xlog=True, ylog=True, legend=7,
          legend_loc="upper left", title=f"Distribution of the eigenvalues of F, d = {s['d']}, p = {s['p']}")
    return fig


def sampled_error_figure(a: Mapping[str, Any]) -> Figure:
    """Relative Frobenius error of the Monte Carlo and empirical Fishers against n, with the exact sqrt(c/n) law.

    Right: the natural-gradient angle to the exact direction against ``n``. Error bars: one standard
    error over the seeds. ``a``: :func:`~relufim.experiments.full_fisher.approximations_summary`.
    """
    sm = a["sampled"]
    n = np.asarray(sm["n"], dtype=float)
    fig, (ax, ax2) = axes((10, 4.2), 1, 2)
    for name, label in (("monte-carlo", "Monte Carlo Fisher, fresh Gaussian inputs"),
                        ("empirical", "empirical Fisher, teacher's labels")):
        rec = sm[name]
        se = [0.0 if x is None else x for x in rec["stderr"]["relative_frobenius_error"]]
        ax.errorbar(n, rec["relative_frobenius_error"], yerr=se, marker="o", ms=4, capsize=3, color=_COLORS[name],
                    label=label)
        cos = np.clip(np.asarray(rec["natural_gradient_cosine"], dtype=float), -1, 1)
        ax2.plot(n, np.degrees(np.arccos(cos)), "o-", ms=4, color=_COLORS[name], label=label)
    ax.plot(n, sm["predicted_monte_carlo"], "k--", lw=1, label="exact law sqrt(c/n), c = E‖g‖⁴/‖F‖² − 1")
    for r in a["approximations"]:
        if r["n"] is None:
            ax.axhline(r["relative_frobenius_error"], color=_COLORS.get(r["name"], "0.5"), ls=":", lw=1,
                       label=f"{r['name']} (no samples)")
            ax2.axhline(r["natural_gradient_angle"], color=_COLORS.get(r["name"], "0.5"), ls=":", lw=1)
    style(ax, xlabel="samples n", ylabel="‖A − F‖_F / ‖F‖_F", xlog=True, ylog=True, grid=True, legend=7,
          title=f"Error against n, d = {a['d']}, p = {a['p']} ({sm['seeds']} seeds)")
    style(ax2, xlabel="samples n", ylabel="angle to (F + λI)⁻¹g (degrees)", xlog=True, grid=True,
          title=f"Natural gradient, damping {a['dampings'][0]:g} λ_max")
    return fig


def natural_gradient_figure(a: Mapping[str, Any]) -> Figure:
    """The angle between each approximation's damped natural gradient and the exact one, against the damping."""
    damp = np.asarray(a["dampings"], dtype=float)
    order = np.argsort(damp)
    fig, ax = axes((7, 4.2))
    for r in a["approximations"]:
        ang = np.asarray(r["natural_gradient_angles"], dtype=float)
        label = r["name"] + (f" (n = {r['n']})" if r["n"] else "")
        ax.plot(damp[order], ang[order], "o-", ms=4, color=_COLORS.get(r["name"], "0.5"), label=label)
    style(ax, xlabel="damping λ / λ_max", ylabel="angle to the exact direction (degrees)", xlog=True, grid=True,
          legend=7, title=f"Natural gradients against the exact FIM, d = {a['d']}, p = {a['p']}")
    return fig


def approximation_spectra_figure(a: Mapping[str, Any]) -> Figure:
    """The top-k eigenvalues of each approximation over the exact ones (index against value, log scale)."""
    fig, ax = axes((8, 4.5))
    ex = np.asarray(a["exact"]["eigenvalues"], dtype=float)
    idx = np.arange(1, ex.size + 1)
    ax.plot(idx, ex, "o", ms=4.5, color="k", label="exact F")
    for r in a["approximations"]:
        ax.plot(idx, r["eigenvalues"], ".-", ms=3, lw=0.8, color=_COLORS.get(r["name"], "0.5"),
                label=r["name"] + (f" (n = {r['n']})" if r["n"] else ""))
    style(ax, xlabel="index i", ylabel="eigenvalue λ_i", ylog=True, grid=True, legend=7,
          title=f"Top {ex.size} eigenvalues, d = {a['d']}, p = {a['p']}")
    return fig


def approximations_figures(a: Mapping[str, Any]) -> list[tuple[str, str, Figure]]:
    """``(file, caption, figure)`` of ``relufim approximations --out`` (the damping figure with several dampings)."""
    out = [("approximations_error_vs_n.png",
            "Relative Frobenius error of the sampled Fishers against n with the exact law sqrt(c/n), and the "
            "angle of their natural gradients to the exact one.", sampled_error_figure(a)),
           ("approximations_spectra.png", "Top eigenvalues of each approximation over those of the exact FIM.",
            approximation_spectra_figure(a))]
    if len(a["dampings"]) > 1:
        out.append(("approximations_natural_gradient.png",
                    "Angle between each approximation's damped natural gradient and the exact one, against the "
                    "damping.", natural_gradient_figure(a)))
    return out


# ----------------------------------------------------------------------------- the reproduce section

def section_blocks(summary: Mapping[str, Any]) -> list[Block]:
    """The tables of the reproduce section ``all-parameters`` (``summary``: the section's ``summary``)."""
    sp, ap = summary["spectrum"], summary["approximations"]
    readout = sp["readout"]["clusters"]
    blocks: list[Block] = [Table(
        ["group", "size", "mean", "min", "max", "gap below", "readout share", "captured deg<=0", "deg<=1", "deg<=2",
         "readout J: size", "J mean"],
        [[c["index"], c["size"], c["mean"], c["min"], c["max"], c["gap_below"], c["readout_share"],
          c["captured"].get("0"), c["captured"].get("1"), c["captured"].get("2"),
          readout[c["index"] - 1]["size"] if c["index"] <= len(readout) else None,
          readout[c["index"] - 1]["mean"] if c["index"] <= len(readout) else None] for c in sp["clusters"]],
        id="full-clusters",
        caption=f"The top of the spectrum of the FIM of all parameters (d = {sp['d']}, p = {sp['p']}, "
                f"P = {sp['P']}), cut where λ_i/λ_(i+1) > 1.4, beside the readout's J; readout share: the "
                "eigenvectors' squared norm on v; captured: by E[∇f h] over Hermite h of degree ≤ k (theory §15.5).")]
    ns = sp["null_space"]
    blocks.append(Table(["quantity", "value"], [
        ["P = p(d+1)", sp["P"]], ["trace", sp["trace"]], ["mean eigenvalue tr F / P", sp["mean_eigenvalue"]],
        ["second moment ‖F‖²_F / P", sp["second_moment"]], ["λ_max", sp["lambda_max"]],
        ["λ_max share of the trace", sp["lambda_max_share"]],
        ["null space dimension (numerical)", ns["dimension"]], ["rescaling directions p", ns["expected"]],
        ["gap across the null-space cut", ns["gap"]], ["min cosine with span(z_j)", ns["min_cosine"]]],
        id="full-statistics", caption="Statistics of the spectrum of F (exact; null space from dense eigenvalues)."))
    blocks.append(Table(
        ["approximation", "n", "rel. Frobenius error", "max eig. error", "min principal cosine", "subspace overlap",
         *[f"angle at λ = {ap['dampings'][i]:g} λ_max" for i in np.argsort(ap["dampings"])]],
        [[r["name"], r["n"], r["relative_frobenius_error"], r["max_eigenvalue_error"], r["min_principal_cosine"],
          r["subspace_overlap"], *[r["natural_gradient_angles"][i] for i in np.argsort(ap["dampings"])]]
         for r in ap["approximations"]],
        id="full-approximations",
        caption=f"Curvature approximations against the exact FIM (d = {ap['d']}, p = {ap['p']}, top k = {ap['k']} at a "
                f"gap of {ap['gap']:.3g}; natural gradients of a teacher's squared loss, angles in degrees; "
                "theory §15.7–15.8)."))
    sm = ap["sampled"]
    mc, ef = sm["monte-carlo"], sm["empirical"]
    blocks.append(Table(
        ["n", "Monte Carlo error", "standard error", "predicted sqrt(c/n)", "empirical error", "standard error"],
        [[n, mc["relative_frobenius_error"][i], mc["stderr"]["relative_frobenius_error"][i],
          sm["predicted_monte_carlo"][i], ef["relative_frobenius_error"][i],
          ef["stderr"]["relative_frobenius_error"][i]] for i, n in enumerate(sm["n"])],
        id="full-sampled",
        caption=f"Sampled Fishers against n ({sm['seeds']} seeds; c = {sm['error_constant']['value']:.4g} ± "
                f"{sm['error_constant']['stderr']:.2g})."))
    blocks.append(Paragraph("K-FAC is exact on the readout block; it drops the v–w blocks and the rank-two sin θ part "
                            "of every w–w block (theory §15.7). Every number above is measured against the exact F."))
    return blocks


def section_figures(summary: Mapping[str, Any]) -> list[tuple[str, str, Figure]]:
    """``(file, caption, figure)`` of the reproduce section ``all-parameters``."""
    sp, ap = summary["spectrum"], summary["approximations"]
    out = [("full_fisher_spectrum.png",
            f"Top eigenvalues of the FIM of all parameters (P = {sp['P']}) and of the readout's J (p = {sp['p']}), "
            "d = " + str(sp["d"]) + "; shaded: the groups as measured.", full_spectrum_figure(sp))]
    if sp.get("all_eigenvalues") is not None or sp.get("density"):
        out.append(("full_fisher_distribution.png",
                    "Every eigenvalue of F (dense, log bins) with the deflated SLQ estimate; the p-dimensional null "
                    "space lies below the axis.", full_distribution_figure(sp)))
    out += approximations_figures(ap)
    return out

"""Plain-text tables of the ``relufim`` commands: every table the CLI prints is formatted here.

Each function takes what the library or an experiment returned (a result object or its
JSON-ready dict) and returns a string; the CLI prints it. Nothing here computes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..experiments.convergence import ConvergenceResult
from ..theory import TRACE_SHARE_BOUND
from ..theory.limit import LimitSpectrum

__all__ = [
    "format_spectrum_table",
    "format_limit_table",
    "format_convergence_table",
    "format_functions_table",
    "format_ntk_table",
    "format_dynamics_table",
]

#: The part of the default target each cluster carries (``relufim dynamics``).
DYNAMICS_PARTS = ["||x|| (degree 0)", "linear x_l", "degree 2"]


def _opt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def format_spectrum_table(s: Mapping[str, Any]) -> str:
    """The clusters of one FIM against the theory (``relufim spectrum``).

    ``s``: :func:`relufim.spectrum_summary`, with ``limit`` (infinite-width cluster values or
    ``None``) and optionally ``relu_comparison``, ``seconds`` and ``memory_peak_bytes``.
    """
    lines = [f"FIM spectrum: d = {s['d']}, p = {s['p']}, seed = {s['seed']}, fisher = {s['fisher']}"
             + (f" (n = {s['n']})" if s.get("n") else "") + f", activation = {s['activation']}, solver = {s['solver']}",
             ""]
    head = (f"{'cluster':>7}  {'size':>4}  {'pred':>4}  {'mean':>11}  {'min':>11}  {'max':>11}  {'RQ bound':>9}  "
            f"{'limit':>11}  {'cos(angle)':>10}")
    lines += [head, "-" * len(head)]
    bound_keys = ["v0", "rows", "v_ab"]
    for i, c in enumerate(s["clusters"][:3]):
        t3 = s.get("theorem3", {}).get(bound_keys[i], {})
        lim = (s.get("limit") or {}).get(f"cluster{i + 1}")
        cos = s.get("alignment", {}).get(f"cluster{i + 1}")
        lines.append(f"{i + 1:>7}  {c['size']:>4}  {c['predicted_size']:>4}  {c['mean']:>11.5g}  {c['min']:>11.5g}  "
                     f"{c['max']:>11.5g}  {_opt(t3.get('bound'), '.4g'):>9}  {_opt(lim, '.5g'):>11}  "
                     f"{_opt(cos, '.6f'):>10}")
    lines.append("")
    tf = s.get("top_fraction")
    paper_setting = s["activation"] == "relu" and s["scale"] == "1/p"  # where Theorem 3's numbers apply
    lines.append(f"trace                  {s['trace']:.6g}"
                 + (f"   (Theorem 3: <= d/2 (1+delta) = {s['d'] / 2:g})" if paper_setting else ""))
    if tf is not None:
        lines.append(f"top d(d+3)/2 share     {tf:.4%}"
                     + (f"   (Theorem 3 asymptotic bound: >= {s['top_fraction_bound']:.4%})"
                        if s["activation"] == "relu" else ""))
    lines.append(f"Perron-Frobenius       {'yes' if s['perron_frobenius'] else 'NO'}   (top eigenvector has one sign)")
    if "hadamard" in s.get("alignment", {}):
        lines.append(f"span(c1 + c3) vs Hadamard products: min cos = {s['alignment']['hadamard']:.6f}")
    if s.get("remainder_min_eigenvalue") is not None:
        lines.append(f"Theorem 2 remainder R: min eigenvalue {s['remainder_min_eigenvalue']:.3g} (PSD), "
                     f"share of trace {s['remainder_trace_share']:.3%}")
    n_pairs = sum(c['size'] for c in s['clusters'][:3])
    lines.append(f"max residual           {s['max_residual']:.2e}   (the {n_pairs} "
                 f"cluster pairs {'converged' if s['converged'] else 'did NOT all converge'})")
    if s.get("extra"):
        lines.append(f"                       {s['max_residual_extra']:.2e}   ({s['extra_converged']} of the "
                     f"{s['extra']} pairs beyond the clusters converged; the rest are flagged: their Ritz values "
                     "are lower bounds)")
    ev = s["eigenvalues"]
    lines.append(f"eigenvalues            {len(ev)} computed; first beyond the clusters: "
                 + ", ".join(f"{x:.4g}" for x in ev[n_pairs:][:3]))
    if s.get("products"):
        low = f" + {s['low_matvecs']} float32" if s.get("low_matvecs") else ""
        lines.append(f"solver work            {s['products']} block products, {s['matvecs']} float64 vectors{low} "
                     f"({_opt(s.get('matvecs_per_pair'), '.2f')} per converged pair)")
    for w in s.get("workers") or []:
        lines.append(f"  worker {w['address']}: {w['blocks']} row blocks, "
                     f"{_opt(w['entries_per_second'] / 1e6 if w.get('entries_per_second') else None, '.1f')} "
                     "M kernel entries/s")
    cmp = s.get("relu_comparison")
    if cmp:
        lines += ["", f"{s['activation']} against ReLU on the same W:",
                  f"  {'':>12}  {'sizes':>14}  {'top share':>10}  {'cluster means':>36}"]
        for name, row in ((s["activation"], {"sizes": [c["size"] for c in s["clusters"][:3]],
                                              "top_fraction": s["top_fraction"],
                                              "means": [c["mean"] for c in s["clusters"][:3]]}), ("relu", cmp)):
            means = ", ".join(f"{m:.4g}" for m in row["means"])
            lines.append(f"  {name:>12}  {str(row['sizes']):>14}  {row['top_fraction']:>10.4%}  {means:>36}")
    if "memory_peak_bytes" in s:
        lines.append(f"time {s['seconds']:.1f} s, peak memory {s['memory_peak_bytes'] / 1e9:.2f} GB")
    return "\n".join(lines)


def format_limit_table(lim: LimitSpectrum) -> str:
    """The infinite-width spectrum by harmonic degree (``relufim limit``).

    Examples
    --------
    >>> from relufim import limit_spectrum
    >>> print(format_limit_table(limit_spectrum(d=3, kmax=1)))  # doctest: +NORMALIZE_WHITESPACE
    Infinite-width FIM spectrum: d = 3, activation = relu, scale = 1/p  (closed form)
    <BLANKLINE>
       k     eigenvalue    multiplicity           mu_k  cumulative share
    --------------------------------------------------------------------
       0         0.5625               1         0.1875        37.500000%
       1           0.25               3      0.0833333        87.500000%
    <BLANKLINE>
    F(d) = share of degrees <= 2: 99.218750%   (asymptotic bound 97.7465%)
    total sum_k N(d,k) mu_k = 0.5;  limit trace = 1.5
    """
    lines = [f"Infinite-width FIM spectrum: d = {lim.d}, activation = {lim.activation}, scale = {lim.scale}"
             + (f", p = {lim.p}" if lim.p is not None else "") + f"  ({lim.method})", ""]
    head = f"{'k':>4}  {'eigenvalue':>13}  {'multiplicity':>14}  {'mu_k':>13}  {'cumulative share':>16}"
    lines += [head, "-" * len(head)]
    for row in lim.degrees:
        lines.append(f"{row.k:>4}  {row.eigenvalue:>13.6g}  {row.multiplicity:>14}  {row.mu:>13.6g}  "
                     f"{row.cumulative_fraction:>16.6%}")
    lines += ["", f"F(d) = share of degrees <= 2: {lim.top_fraction:.6%}   (asymptotic bound {TRACE_SHARE_BOUND:.4%})",
              f"total sum_k N(d,k) mu_k = {lim.total:.12g};  limit trace = {lim.trace:.6g}"]
    return "\n".join(lines)


def format_convergence_table(res: ConvergenceResult) -> str:
    """Finite-``p`` statistics against the limit, per width, with the rate only where the data support one.

    Each statistic ends with :attr:`relufim.experiments.ClusterConvergence.rate_text`: the rate
    ``b ± se`` with its number of widths, or why no rate is claimed (``relufim convergence``).
    """
    lines = [f"Convergence to the infinite-width limit: d = {res.d}, activation = {res.activation}, "
             f"scale = {res.scale}, seeds = {len(res.seeds)}", ""]
    head = (f"{'statistic':>12}  {'p':>7}  {'mean':>12}  {'std':>10}  {'std error':>10}  {'limit':>12}  "
            f"{'mean - limit':>13}  {'beyond noise':>12}")
    lines += [head, "-" * len(head)]
    for s in res.statistics:
        for i, p in enumerate(s.p):
            beyond = ("yes" if s.significant[i] else "no") if math.isfinite(s.stderr[i]) else ""
            lines.append(f"{s.name:>12}  {p:>7}  {s.mean[i]:>12.6g}  {s.std[i]:>10.3g}  {s.stderr[i]:>10.3g}  "
                         f"{s.limit[i]:>12.6g}  {s.error[i]:>13.3g}  {beyond:>12}")
        lines.append(f"{'':>12}  {s.rate_text}")
    lines += ["", "beyond noise: |mean - limit| > std error = std / sqrt(seeds). A rate |mean - limit| ~ p^b is "
                  "fitted only when every width is beyond noise, with one sign, over at least 3 widths."]
    return "\n".join(lines)


def format_functions_table(s: Mapping[str, Any]) -> str:
    """Cosines of each group and principal cosines of each cluster (``relufim functions``).

    ``s``: :meth:`relufim.FunctionForms.to_dict`, optionally with ``figures`` (paths).
    """
    lines = [f"Function forms: d = {s['d']}, p = {s['p']}, n = {s['n']} Gaussian inputs, c = ||W||_F/sqrt(d) = "
             f"{s['scale']:.4f}", ""]
    head = f"{'group':<14} {'count':>5} {'mean cos':>9} {'min cos':>9} {'mean rel.err':>12}  predicted form"
    lines += [head, "-" * len(head)]
    for g in s["groups"]:
        lines.append(f"{g['name']:<14} {g['count']:>5} {g['mean_cosine']:>9.5f} {g['min_cosine']:>9.5f} "
                     f"{g['mean_rel_error']:>12.4f}  {g['form']}")
    if s["clusters"]:
        lines += ["", f"{'cluster':>7} {'size':>5} {'mean eigenvalue':>16} {'predicted':>10} {'min principal cos':>18}"
                      "  span of"]
        for c in s["clusters"]:
            lines.append(f"{c['index']:>7} {c['size']:>5} {c['mean_eigenvalue']:>16.6g} "
                         f"{c['predicted_eigenvalue']:>10.5g} {_opt(c['min_principal_cosine'], '.6f'):>18}  "
                         f"{c['form']}")
    if s.get("figures"):
        lines += ["", "figures: " + ", ".join(s["figures"])]
    return "\n".join(lines)


def format_ntk_table(s: Mapping[str, Any]) -> str:
    """Eigenvalues of the FIM and the NTK Gram side by side, and what each cluster captures (``relufim ntk``).

    ``s``: :meth:`relufim.FisherNTKMap.to_dict` with ``captured_fractions``.
    """
    lines = [f"FIM J^(n) = X^T X / n  vs  NTK Gram K/n = X X^T / n:  d = {s['d']}, p = {s['p']}, n = {s['n']}", ""]
    head = f"{'#':>4} {'FIM eigenvalue':>15} {'NTK eigenvalue':>15} {'rel. diff':>10}"
    lines += [head, "-" * len(head)]
    fim, ntk = s["fim_eigenvalues"], s["ntk_eigenvalues"]
    sizes = s["cluster_sizes"]
    bounds = {sum(sizes[:i]) for i in range(1, len(sizes) + 1)}
    for i, (a, b) in enumerate(zip(fim, ntk)):
        lines.append(f"{i + 1:>4} {a:>15.8g} {b:>15.8g} {abs(a - b) / fim[0]:>10.1e}")
        if i + 1 in bounds and i + 1 < len(fim):
            lines.append(" " * 4 + " " + "." * (len(head) - 5))
    lines += ["", f"max eigenvalue difference {s['max_eigenvalue_rel_diff']:.1e}, residual of u -> Xu/sqrt(n lambda) "
                  f"{s['max_mapped_residual']:.1e}, back {s['max_back_residual']:.1e} (relative to lambda_1)",
              "min principal cosine per cluster (mapped FIM vs NTK eigenvectors): "
              + ", ".join(f"{c:.12f}" for c in s["min_cluster_cosine"]), "",
              "share of each function's energy on the samples in each cluster's NTK eigenspace:",
              f"{'function':<18}" + "".join(f"{'cluster ' + str(i + 1):>12}" for i in range(len(sizes)))]
    for name, fr in s["captured_fractions"].items():
        lines.append(f"{name:<18}" + "".join(f"{x:>12.5f}" for x in fr))
    return "\n".join(lines)


def format_dynamics_table(s: Mapping[str, Any]) -> str:
    """Error per cluster during gradient descent, learning times and order (``relufim dynamics``).

    ``s``: :meth:`relufim.GradientDescentResult.to_dict` with ``d``, ``p`` and optionally ``figure``.
    """
    lines = [f"Population gradient descent on v: d = {s['d']}, p = {s['p']}, lr = {s['lr']:.4g} "
             f"(stability limit 2/lambda_max = {s['stability_limit']:.4g}), {s['steps']} steps, "
             f"target = v0 + W_1 + v^(1,2) (unit parts)", ""]
    head = (f"{'cluster':>7} {'size':>5} {'mean lambda':>12} {'initial error':>14} {'final error':>12} "
            f"{'t to 1%':>9} {'ln(100)/(2 lambda)':>19}  part")
    lines += [head, "-" * len(head)]
    for i, size in enumerate(s["cluster_sizes"]):
        lam = s["cluster_mean_eigenvalues"][i]
        t = s["learning_times"][i]
        lines.append(f"{i + 1:>7} {size:>5} {lam:>12.5g} {s['initial_errors'][i]:>14.5g} {s['final_errors'][i]:>12.3g} "
                     f"{'never' if t is None else format(t, '.4g'):>9} {math.log(100) / (2 * lam):>19.4g}  "
                     f"{DYNAMICS_PARTS[i]}")
    lines.append(f"{'rest':>7} {'':>5} {'':>12} {s['initial_errors'][-1]:>14.5g} {s['final_errors'][-1]:>12.3g}")
    lines += ["", f"learning order: {' -> '.join(DYNAMICS_PARTS[i - 1] for i in s['learning_order'])}",
              f"max deviation of the measured cluster errors from sum lambda_i c_i^2 (1 - lr lambda_i)^(2k): "
              f"{s['max_rel_deviation_from_prediction']:.1e} (relative to the initial error)"]
    if s.get("figure"):
        lines.append(f"figure: {s['figure']}")
    return "\n".join(lines)

r"""The ``reproduce`` run's section on the FIM of all parameters (theory §15).

The whole spectrum of ``F`` beside the readout's ``J`` (dense, with the numerical null space and the
deflated SLQ density), the clusters as measured and what their eigenvectors are made of, and the
curvature approximations judged against ``F`` with the Monte Carlo error against its exact
:math:`\sqrt{c/n}` law. Computes and returns data; :mod:`relufim.report.full_fisher` draws and formats it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .full_fisher import approximations_summary, full_spectrum_summary

__all__ = ["NAME", "DAMPINGS", "reproduce_section", "settings"]

#: The section's name in a reproduce summary (``summary["sections"][i]["name"]``).
NAME = "all-parameters"


#: Dampings of the natural gradients, relative to lambda_max (the first is the main one).
DAMPINGS = (1e-3, 1e-1, 1e-2, 1e-4, 1e-6)


def settings(quick: bool) -> dict[str, dict[str, Any]]:
    """The sizes of the section: quick (about 20 s on two cores) or full (minutes)."""
    if quick:
        return {"spectrum": {"d": 5, "p": 200}, "approximations": {"d": 5, "p": 100, "n_values": (100, 400, 1600),
                                                                     "seeds": 3}}
    return {"spectrum": {"d": 10, "p": 500}, "approximations": {"d": 10, "p": 300, "n_values": (250, 1000, 4000),
                                                                  "seeds": 3}}


def reproduce_section(quick: bool = False, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Compute the section: ``{"name": "all-parameters", "summary": {"spectrum", "approximations"}, "claims"}``.

    ``summary["spectrum"]`` is :func:`~relufim.experiments.full_fisher.full_spectrum_summary` with every
    eigenvalue and the density; ``summary["approximations"]`` is
    :func:`~relufim.experiments.full_fisher.approximations_summary`. Every claim is measured here;
    ``holds`` is ``None`` where the values are for judgement.
    """
    cfg = settings(quick)
    sp = full_spectrum_summary(**cfg["spectrum"], seed=0, all_eigenvalues=True, density=True,
                               density_vectors=8 if quick else 16, density_steps=40 if quick else 60)
    ap = approximations_summary(**cfg["approximations"], seed=0, damping=DAMPINGS, progress=progress)
    return {"name": NAME, "summary": {"spectrum": sp, "approximations": ap}, "claims": claims(sp, ap)}


def claims(sp: dict[str, Any], ap: dict[str, Any]) -> list[dict[str, Any]]:
    """The section's claims from its two records (each measured; ``holds`` None where only judgement applies)."""
    d, p = sp["d"], sp["p"]
    ns = sp["null_space"]
    out: list[dict[str, Any]] = [{
        "claim": "The FIM of all parameters is singular: its null space is spanned by the p rescaling directions "
                 "z_j (w_j -> c w_j, v_j -> v_j / c)",
        "source": "theory §15.3 (derived)",
        "predicted": f"dimension p = {p}, principal cosines with span{{z_j}} = 1",
        "measured": f"numerical null space of dimension {ns['dimension']} (cut at {ns['threshold']:.1e} of "
                    f"lambda_max, a gap of {ns['gap']:.1e}), smallest principal cosine {ns['min_cosine']:.12f} "
                    f"(d = {d}, P = {sp['P']}, dense eigenvalues)",
        "holds": bool(ns["dimension"] == p and ns["min_cosine"] > 1 - 1e-8)}]
    lam = np.asarray(sp["all_eigenvalues"])
    out.append({
        "claim": "tr F = ||W||_F^2 / 2 + d ||v||^2 / 2",
        "source": "theory §15.3 (derived)",
        "predicted": f"{sp['trace']:.12g}",
        "measured": f"sum of the {lam.size} eigenvalues {lam.sum():.12g}; mean eigenvalue {sp['mean_eigenvalue']:.4g}, "
                    f"second moment ||F||_F^2 / P {sp['second_moment']:.4g}, lambda_max share "
                    f"{sp['lambda_max_share']:.4f}",
        "holds": bool(abs(lam.sum() / sp["trace"] - 1) < 1e-10)})
    sizes = [c["size"] for c in sp["clusters"] if c["closed"]][:3]
    readout = [1, d, d * (d + 1) // 2 - 1]
    ratios = [c["gap_below"] for c in sp["clusters"] if c["closed"]][:3]
    means = ", ".join(f"{c['mean']:.4g}" for c in sp["clusters"][:3])
    readout_means = ", ".join(f"{c['mean']:.4g}" for c in sp["readout"]["clusters"][:3])
    out.append({
        "claim": "The top of the spectrum of F falls into groups of the readout's three sizes (not assumed: "
                 "the groups are cut where lambda_i / lambda_(i+1) > 1.4)",
        "source": "theory §15.5 (measured)",
        "predicted": f"sizes {readout} if the readout's law carried over",
        "measured": f"sizes {sizes}, gaps below them {', '.join(f'{r:.3g}' for r in ratios)}; means {means} "
                    f"against the readout's {readout_means}",
        "holds": sizes == readout})
    lim = sp["limit"]["eigenvalues"]
    out.append({
        "claim": "The groups' eigenvalues approach, as p grows, the infinite-width eigenvalues d m_k of the NTK of "
                 "both layers, Theta = |x||x'| [kappa(t) + |v|^2 t kappa0(t)] (degree 3 absent)",
        "source": "theory §15.5 (derived from §12; v independent of W)",
        "predicted": "d m_k = " + ", ".join(f"{lim[k]:.4g}" for k in range(3))
                     + f" (k = 0, 1, 2); d m_4 = {lim[4]:.3g}",
        "measured": f"group means {means} at p = {p} (spread within each group: "
                    + ", ".join(f"{c['min']:.3g}-{c['max']:.3g}" for c in sp["clusters"][:3]) + ")",
        "holds": None})  # a statement about p -> infinity: the values are for judgement
    caps = [c["captured"] for c in sp["clusters"][:3]]
    ok = all(cap[str(k)] > 0.95 and all(cap[str(j)] < 0.05 for j in range(k)) for k, cap in enumerate(caps))
    out.append({
        "claim": "The k-th group's eigenvectors are E[grad f h] for Hermite polynomials h of degree k (k = 0, 1, 2)",
        "source": "theory §15.5 (measured)",
        "predicted": "captured > 95 % by the features of degree <= k, < 5 % by those of lower degree",
        "measured": "; ".join(f"group {k + 1}: " + ", ".join(f"deg<={j}: {cap[str(j)]:.3f}" for j in range(3))
                              for k, cap in enumerate(caps))
                    + "; readout share of the eigenvectors "
                    + ", ".join(f"{c['readout_share']:.3f}" for c in sp["clusters"][:3]),
        "holds": bool(ok)})
    mc = ap["sampled"]["monte-carlo"]
    ns_ = ap["sampled"]["n"]
    c = ap["sampled"]["error_constant"]
    within = []
    texts = []
    for i, n in enumerate(ns_):
        e2 = np.asarray(mc["values"]["relative_frobenius_error"][i]) ** 2
        se = float(e2.std(ddof=1) / math.sqrt(e2.size)) if e2.size > 1 else float("inf")
        pred, pred_se = c["value"] / n, c["stderr"] / n
        within.append(abs(e2.mean() - pred) <= 4 * math.hypot(se, pred_se))
        texts.append(f"n = {n}: {math.sqrt(e2.mean()):.4f} (predicted {math.sqrt(max(pred, 0)):.4f})")
    out.append({
        "claim": "The Monte Carlo Fisher's relative Frobenius error falls as sqrt(c / n), "
                 "c = E||g||^4 / ||F||_F^2 - 1",
        "source": "theory §15.8 (derived; c by Monte Carlo)",
        "predicted": f"c = {c['value']:.4g} ± {c['stderr']:.2g}",
        "measured": "root-mean-square over " + f"{ap['sampled']['seeds']} seeds: " + "; ".join(texts),
        "holds": bool(all(within)) if ap["sampled"]["seeds"] > 1 else None})
    recs = {r["name"]: r for r in ap["approximations"]}
    out.append({
        "claim": "Curvature approximations against the exact FIM (top-k eigenvalues, subspaces, natural gradient)",
        "source": "theory §15.7-15.8 (measured)",
        "predicted": f"k = {ap['k']} (gap {ap['gap']:.3g}), damping {ap['dampings'][0]:g} lambda_max",
        "measured": "; ".join(f"{name}: Frobenius {r['relative_frobenius_error']:.3g}, max eigenvalue error "
                              f"{r['max_eigenvalue_error']:.3g}, min principal cosine {r['min_principal_cosine']:.3g}, "
                              f"natural-gradient angle {r['natural_gradient_angle']:.1f} deg"
                              + (f" (n = {r['n']})" if r["n"] else "") for name, r in recs.items()),
        "holds": None})
    return out

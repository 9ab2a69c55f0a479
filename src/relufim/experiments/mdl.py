r"""The MDL estimator's risk against its bound, over a grid of ``n`` and ``p`` (theory §16); compute only.

:func:`mdl_risk_curve` simulates the MDL estimator of the two-stage code of
:func:`relufim.theory.mdl.two_stage_code` at one width over a grid of sample sizes and puts
next to each mean risk the index of resolvability :math:`R_n` (exact, with its closed-form
estimates and the leading term :math:`\beta\,d(d+3)/4\cdot\log n/n`), ridge and least squares at the
same ``n`` (:func:`relufim.theory.risk.estimator_risk`, as KL divergences) and the mixture
redundancy per sample. :func:`resolvability_vs_width` follows :math:`R_n` as ``p`` grows at fixed
``d``; :func:`mdl_risk_grid` repeats the simulation over widths. Nothing is drawn or written:
:mod:`relufim.report.mdl` renders what these return.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from .._validation import check_positive_float, check_positive_int
from ..fim.exact import fisher_matrix
from ..model.weights import sample_weights
from ..theory.dynamics import default_target
from ..theory.mdl import NODE_BUDGET, index_of_resolvability, simulate_mdl_risk, two_stage_code
from ..theory.risk import estimator_risk, mixture_redundancy

__all__ = ["mdl_risk_curve", "mdl_risk_grid", "resolvability_vs_width", "ridge_penalty", "DENSE_COMPARISON_LIMIT"]

Progress = Callable[[int, int], None]

#: Ridge, least squares and the mixture redundancy need the dense J and all its eigenvalues: up to this width.
DENSE_COMPARISON_LIMIT = 3000

TARGET = "default_target(W): one unit part in each cluster, f* ~ ||x|| + x_1 + x_1x_2/||x|| (theory §11)"


def ridge_penalty(n: int, sigma: float, radius: float) -> float:
    r"""The ridge penalty :math:`\ell = \sigma^2/(nR^2)` of the comparison.

    Ridge :math:`(\mathbf X^\top\mathbf X + n\ell I)^{-1}\mathbf X^\top y` is the posterior mean under the
    prior :math:`v\sim N(0, (\sigma^2/(n\ell))I)`; this :math:`\ell` gives every coordinate the prior
    variance :math:`R^2`, the Gaussian counterpart of the code's box :math:`|c_i|\le R`. Like the code,
    it is fixed before the data.
    """
    return sigma**2 / (n * radius**2)


def _check_ns(n_values: Sequence[int], name: str = "n_values") -> list[int]:
    if isinstance(n_values, (int, np.integer)):
        n_values = [int(n_values)]
    out = [check_positive_int(n, name) for n in n_values]
    if not out:
        raise ValueError(f"{name} must hold at least one sample size.")
    return sorted(set(out))


def mdl_risk_curve(d: int = 5, p: int = 1000, n_values: Sequence[int] = (100, 1000, 10000), *, reps: int = 50,
                   beta: float = 2.0, radius: float = 2.0, sigma: float = 1.0, seed: int = 0,
                   coding: Literal["bound", "threshold", "clusters"] = "bound",
                   method: Literal["exact", "fast", "auto"] = "auto", node_budget: int = NODE_BUDGET,
                   mc_samples: int = 4096, compare: bool | None = None, compare_reps: int | None = None,
                   progress: Progress | None = None) -> dict[str, Any]:
    r"""Mean risk of the MDL estimator (± standard error) against :math:`R_n` for each ``n``, at one width.

    ``W`` is the default draw (``seed``), the target :func:`relufim.theory.default_target` (norm
    about :math:`\sqrt3`). For each ``n`` the code is designed before the data (from one eigensolve,
    for the largest ``n``), then :func:`relufim.theory.mdl.simulate_mdl_risk` runs ``reps`` fresh
    data sets.

    Parameters
    ----------
    d, p : int
        Input dimension and width.
    n_values : sequence of int
        Sample sizes.
    reps : int
        Data sets per ``n``.
    beta, radius, sigma : float
        The code's multiplier, radius and noise level.
    seed : int
        Seed of ``W`` and of the data.
    coding : {"bound", "threshold", "clusters"}
        Which directions are coded (:func:`relufim.theory.mdl.two_stage_code`).
    method, node_budget :
        The estimator (:func:`relufim.theory.mdl.mdl_estimate`): ``"auto"`` solves exactly within
        the budget and falls back to the fast one, and the rows count both.
    mc_samples : int
        Monte Carlo directions per Rényi divergence.
    compare : bool, optional
        Also ridge (penalty :func:`ridge_penalty`) and least squares at each ``n``, and the mixture
        redundancy; default: when ``p <= 3000`` (they need the dense ``J``).
    compare_reps : int, optional
        Data sets of the comparison (default ``min(reps, 10)``: least squares at ``n = 10^4`` costs a
        dense solve each).
    progress : callable(done, total), optional
        Called after each simulated data set.

    Returns
    -------
    dict
        ``config`` and ``rows`` (one per ``n``: ``n``, ``bound`` (:math:`R_n`), ``estimate``,
        ``bound_with_lengths``, ``leading``, ``code_term``, ``risk_mean``, ``risk_se``,
        ``kl_mean``, ``kl_se``, ``coded_directions``, ``code_length_nats``, ``kraft_sum``,
        ``length_by_cluster``, ``methods``, ``max_gap``, and with the comparison
        ``ridge_kl_mean/se``, ``least_squares_kl_mean/se``, ``mixture_per_sample``).
    """
    d = check_positive_int(d, "d")
    p = check_positive_int(p, "p")
    ns = _check_ns(n_values)
    reps = check_positive_int(reps, "reps", minimum=2)
    radius = check_positive_float(radius, "radius")
    if compare is None:
        compare = p <= DENSE_COMPARISON_LIMIT
    compare_reps = min(reps, 10) if compare_reps is None else check_positive_int(compare_reps, "compare_reps", 2)
    W = sample_weights(d, p, seed=seed)
    v_star = default_target(W)
    # one eigensolve: the largest n has the lowest coding threshold and needs the most eigenpairs
    top = two_stage_code(W, ns[-1], radius=radius, sigma=sigma, beta=beta, coding=coding)
    J = fisher_matrix(W) if compare else None  # J and its eigh: shared by both estimators at every n
    eigh = np.linalg.eigh(J) if compare else None
    eigenvalues_all = eigh[0][::-1].copy() if compare else None  # the same decomposition, descending
    total = len(ns) * reps
    rows = []
    for j, n in enumerate(ns):
        code = top if n == ns[-1] else two_stage_code(W, n, radius=radius, sigma=sigma, beta=beta, coding=coding,
                                                        eigenpairs=top.eigenpairs)
        done = j * reps
        sim = simulate_mdl_risk(code, v_star, reps=reps, seed=seed + 1 + j, method=method, node_budget=node_budget,
                                mc_samples=mc_samples,
                                progress=None if progress is None else (lambda r, _t, o=done: progress(o + r, total)))
        row = sim.to_dict()
        res = sim.resolvability
        row.update({"code_term": res.code_term, "approximation_term": res.approximation_term,
                    "uncoded_term": res.uncoded_term, "within_radius": res.within_radius,
                    "threshold": code.threshold, "next_eigenvalue": code.next_eigenvalue})
        if compare:
            lam = ridge_penalty(n, sigma, radius)
            ridge = estimator_risk(W, n, sigma=sigma, estimator="ridge", lam=lam, sims=compare_reps,
                                   seed=seed + 101 + j, v_star=v_star, eigh=eigh, fim=J)
            ls = estimator_risk(W, n, sigma=sigma, estimator="least-squares", sims=compare_reps, seed=seed + 201 + j,
                                v_star=v_star, eigh=eigh, fim=J)
            s2 = 2 * sigma**2
            row.update({"ridge_penalty": lam, "ridge_kl_mean": ridge.simulated / s2,
                        "ridge_kl_se": ridge.simulated_stderr / s2, "least_squares_kl_mean": ls.simulated / s2,
                        "least_squares_kl_se": ls.simulated_stderr / s2, "compare_reps": compare_reps,
                        "mixture_per_sample": mixture_redundancy(eigenvalues_all, n, sigma) / n})
        rows.append(row)
    config = {"d": d, "p": p, "n_values": ns, "reps": reps, "beta": beta, "order": 1 - 1 / beta, "radius": radius,
              "sigma": sigma, "seed": seed, "method": method, "node_budget": node_budget, "mc_samples": mc_samples,
              "compare": compare, "target": TARGET, "target_norm": float(np.linalg.norm(v_star)),
              "coding": top.coding, "ridge_penalty_rule": "sigma^2/(n R^2)",
              "max_eigen_residual": top.max_residual}
    return {"config": config, "rows": rows}


def resolvability_vs_width(d: int = 5, widths: Sequence[int] = (100, 1000, 10000),
                           n_values: Sequence[int] = (100, 1000, 10000), *, beta: float = 2.0, radius: float = 2.0,
                           sigma: float = 1.0, seed: int = 0, codings: Sequence[str] = ("clusters", "bound"),
                           progress: Progress | None = None) -> dict[str, Any]:
    r""":math:`R_n` (exact, default target) and the code's guarantee as the width grows at fixed ``d`` (theory §16.7).

    No simulation: for each width one ``W`` (``seed``), one eigensolve, and for each ``n`` and
    each ``coding`` the code, its exact index of resolvability ``bound`` and its guarantee over
    all targets with :math:`\|v^*\|\le R`, ``guarantee`` (theory §16.5, exact lengths).
    ``spread[coding][quantity][n]`` is the relative range :math:`(\max_p - \min_p)/\mathrm{mean}_p`.
    """
    d = check_positive_int(d, "d")
    ps = _check_ns(widths, "widths")
    ns = _check_ns(n_values)
    rows = []
    for i, p in enumerate(ps):
        W = sample_weights(d, p, seed=seed)
        v_star = default_target(W)
        pairs = two_stage_code(W, ns[-1], radius=radius, sigma=sigma, beta=beta).eigenpairs
        for coding in codings:
            for n in ns:
                code = two_stage_code(W, n, radius=radius, sigma=sigma, beta=beta, coding=coding, eigenpairs=pairs)
                r = index_of_resolvability(code, v_star, warn=False)
                rows.append({"p": p, "n": n, "coding": coding, "bound": r.value, "guarantee": r.bound_with_lengths,
                             "estimate": r.estimate, "leading": r.leading, "code_term": r.code_term,
                             "approximation_term": r.approximation_term, "coded_directions": code.coded,
                             "code_length_nats": code.length, "target_norm": r.target_norm,
                             "within_radius": r.within_radius})
        if progress is not None:
            progress(i + 1, len(ps))
    spread: dict[str, dict[str, dict[str, float]]] = {}
    for coding in codings:
        spread[coding] = {}
        for q in ("bound", "guarantee"):
            spread[coding][q] = {}
            for n in ns:
                vals = np.array([r[q] for r in rows if r["n"] == n and r["coding"] == coding])
                spread[coding][q][str(n)] = float((vals.max() - vals.min()) / vals.mean())
    return {"config": {"d": d, "widths": ps, "n_values": ns, "beta": beta, "radius": radius, "sigma": sigma,
                       "seed": seed, "codings": list(codings), "target": TARGET},
            "rows": rows, "spread": spread}


def mdl_risk_grid(d: int = 5, widths: Sequence[int] = (100, 1000), n_values: Sequence[int] = (30, 100, 1000),
                  *, reps: int = 30, progress: Progress | None = None, **kwargs: Any) -> dict[str, Any]:
    """:func:`mdl_risk_curve` at each width: ``{"curves": [...], "max_excess_over_bound_se": ...}``.

    ``max_excess_over_bound_se`` is the largest (mean risk - R_n)/standard error over the grid
    (the theorem says it is below noise: at most about 3).
    """
    ps = _check_ns(widths, "widths")
    curves = []
    total = len(ps) * len(_check_ns(n_values)) * reps
    for i, p in enumerate(ps):
        offset = i * total // len(ps)
        curves.append(mdl_risk_curve(d, p, n_values, reps=reps, progress=None if progress is None else
                                     (lambda done, _t, o=offset: progress(o + done, total)), **kwargs))
    worst = max(r["excess_over_bound_se"] for c in curves for r in c["rows"])
    return {"curves": curves, "max_excess_over_bound_se": worst if math.isfinite(worst) else None}

"""The 2025 results, reproduced: function forms, FIM <-> NTK, the approximation formula, learning order.

:func:`reproduce_section` computes the section of ``relufim reproduce`` and returns its data
(summary and claims); the data helpers (:func:`circle_forms`, :func:`dynamics_curves`) are
shared with the ``relufim functions`` / ``dynamics`` commands. Nothing here draws or writes
files: :mod:`relufim.report` does (theory §11–13).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..fim import fisher_operator
from ..model.harmonics import degree_le2_fraction
from ..model.weights import sample_weights
from ..theory import TRACE_SHARE_BOUND
from ..theory.dynamics import GradientDescentResult, gradient_descent
from ..theory.functions import approximate_function, fisher_inner_product, function_forms, network_function
from ..theory.ntk import fisher_ntk_map

__all__ = [
    "NAME",
    "TARGET_PARTS",
    "approximation_error_curve",
    "circle_forms",
    "dynamics_curves",
    "great_circle",
    "reproduce_section",
]

#: The section's name in a reproduce summary (``summary["sections"][i]["name"]``).
NAME = "function_space"

#: The three parts of the default target and their functions (for captured fractions).
TARGET_PARTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "||x||": lambda x: np.linalg.norm(x, axis=1),
    "x_1": lambda x: x[:, 0],
    "x_1 x_2 / ||x||": lambda x: x[:, 0] * x[:, 1] / np.maximum(np.linalg.norm(x, axis=1), 1e-300),
}


def _plot_values(a: np.ndarray, digits: int = 6) -> list:
    """An array as nested lists rounded to ``digits`` significant digits: figure data, a sixth of the JSON."""
    return np.vectorize(lambda x: float(f"{x:.{digits}g}"), otypes=[float])(np.asarray(a, dtype=float)).tolist()


def great_circle(d: int, m: int = 361) -> tuple[np.ndarray, np.ndarray]:
    """Angles and unit inputs ``cos(theta) e_1 + sin(theta) e_2`` on a great circle of :math:`S^{d-1}`.

    Examples
    --------
    >>> theta, x = great_circle(3, m=5)
    >>> x.shape, bool(np.allclose(np.linalg.norm(x, axis=1), 1))
    ((5, 3), True)
    """
    theta = np.linspace(0, 2 * np.pi, m)
    x = np.zeros((m, d))
    x[:, 0] = np.cos(theta)
    if d > 1:
        x[:, 1] = np.sin(theta)
    return theta, x


def circle_forms(W: np.ndarray, show: int = 3, m: int = 181) -> dict[str, Any]:
    r""":math:`f_v` of the theory's vectors along a great circle, with their predicted forms: the data of a figure.

    Returns ``{"d", "p", "theta", "groups": [{"name", "form", "labels", "values", "predicted"}]}``
    with ``values`` and ``predicted`` of shape ``(m, min(show, count))`` as nested lists (the first
    ``show`` vectors of each group, to 6 significant digits: data to draw), JSON-ready.

    Examples
    --------
    >>> data = circle_forms(sample_weights(3, 200, seed=0), m=7)
    >>> [g["name"] for g in data["groups"]][:3], len(data["theta"]), len(data["groups"][2]["values"][0])
    (['v0', 'ones', 'rows'], 7, 3)
    """
    theta, x = great_circle(W.shape[0], m)
    ff = function_forms(W, x=x, clusters=False)
    groups = []
    for g in ff.groups:
        k = min(show, len(g.labels))
        groups.append({"name": g.name, "form": g.form, "labels": list(g.labels[:k]),
                       "values": _plot_values(g.values[:, :k]), "predicted": _plot_values(g.predicted[:, :k])})
    return {"d": int(W.shape[0]), "p": int(W.shape[1]), "theta": _plot_values(theta), "groups": groups}


def dynamics_curves(gd: GradientDescentResult, max_points: int = 400) -> dict[str, Any]:
    """The error per cluster against time (measured, exact recursion, gradient flow): the data of a figure.

    Times ``t = lr k`` for ``k >= 1`` (at most ``max_points`` of them, log-spaced in ``k``, since
    the figure has log axes); ``errors``, ``predicted`` and ``predicted_flow`` have one row per
    time and one column per cluster (``errors`` has one more: the rest of the spectrum), to 6
    significant digits (data to draw).
    """
    steps = gd.times.size - 1
    if steps <= max_points:
        idx = np.arange(1, steps + 1)
    else:
        idx = np.unique(np.round(np.logspace(0, np.log10(steps), max_points)).astype(int))
    sizes = tuple(int(s) for s in gd.cluster_sizes)
    bounds = np.cumsum((0,) + sizes)
    return {"times": _plot_values(gd.times[idx]), "errors": _plot_values(gd.errors[idx]),
            "predicted": _plot_values(gd.predicted[idx]), "predicted_flow": _plot_values(gd.predicted_flow[idx]),
            "initial_errors": gd.errors[0].tolist(), "cluster_sizes": list(sizes), "lr": float(gd.lr),
            "cluster_mean_eigenvalues": [float(gd.eigenvalues[bounds[i]:bounds[i + 1]].mean())
                                         for i in range(len(sizes))]}


def approximation_error_curve(ds: list[int], p: int, draws: int, seed: int = 0) -> dict[str, Any]:
    r"""Relative L2 error of the degree-<=2 formula over isotropic random ``v``, per ``d``, against ``1 - F(d)``.

    For each ``d``: ``sum_v error / sum_v energy`` over ``draws`` Gaussian ``v`` (a ratio estimator
    of :math:`E[v^TJ_{\ge4}v]/E[v^TJv] = 1 - F(d)`), with a delta-method standard error.
    ``limit_curve`` holds ``1 - F(d)`` for every ``d = 1 .. max(ds)`` and ``large_d_limit`` its
    value as :math:`d \to \infty`, :math:`1/2 - 3/(2\pi)` (theory §7, §11).
    """
    out: dict[str, Any] = {"d": [], "measured": [], "stderr": [], "predicted": []}
    rng = np.random.default_rng(seed)
    for d in ds:
        W = sample_weights(d, p, seed=int(rng.integers(1 << 31)))
        V = rng.standard_normal((p, draws))
        energy = np.einsum("ij,ij->j", V, fisher_operator(W) @ V)
        error = np.einsum("ij,ij->j", V, fisher_operator(W, min_degree=4) @ V)
        ratio = error.sum() / energy.sum()
        resid = error - ratio * energy
        se = math.sqrt(resid.var(ddof=1) / draws) / energy.mean()
        out["d"].append(d)
        out["measured"].append(float(ratio))
        out["stderr"].append(float(se))
        out["predicted"].append(1.0 - degree_le2_fraction(d))
    grid = list(range(1, max(ds) + 1))
    out["limit_curve"] = {"d": grid, "one_minus_F": [1.0 - degree_le2_fraction(d) for d in grid]}
    out["large_d_limit"] = 1.0 - TRACE_SHARE_BOUND
    out["p"] = p
    return out


def _least_squares_check(d: int, p: int, n: int, seed: int) -> dict[str, float]:
    """The formula against a least-squares fit on the degree-<=2 basis with Gaussian inputs."""
    rng = np.random.default_rng(seed)
    W = sample_weights(d, p, seed=seed)
    v = rng.standard_normal(p)
    ap = approximate_function(W, v)
    x = rng.standard_normal((n, d))
    f = network_function(W, v, x)
    r = np.linalg.norm(x, axis=1)
    B = np.stack([r] + [x[:, l] for l in range(d)] + [x[:, a] * x[:, b] / r for a in range(d) for b in range(a, d)], 1)
    coef, *_ = np.linalg.lstsq(B, f, rcond=None)
    dev = float(np.sqrt(np.mean((B @ coef - ap.evaluate(x)) ** 2)))
    scale = math.sqrt(B.shape[1] * ap.error / n)
    return {"d": d, "p": p, "n": n, "rms_deviation": dev, "sampling_scale": scale,
            "relative_error": ap.relative_error, "expected_relative_error": ap.expected_relative_error}


def reproduce_section(quick: bool = False, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Compute the 2025 results: ``{"name": "function_space", "summary": {...}, "claims": [...]}``.

    ``summary`` holds ``config``, ``function_forms`` (with ``circle``: :func:`circle_forms`),
    ``inner_products``, ``fisher_ntk`` (with ``captured_fractions``), ``approximation``
    (``curve``, ``least_squares``), ``gradient_descent`` (with ``curves``: :func:`dynamics_curves`)
    and ``seconds``; everything a figure or table of the report needs. Nothing is drawn or written.
    ``progress(done, 4)`` is called after each of the four stages (function forms, FIM <-> NTK, the
    approximation formula, gradient descent): the one keyword every section of ``relufim reproduce``
    takes, and how each reports its stages.
    """
    t0 = time.perf_counter()
    cfg = {
        "forms": (4, 3000) if quick else (5, 4000),
        "ntk": (5, 800, 1000) if quick else (8, 2000, 2500),
        "dyn": (5, 600, 1000) if quick else (8, 2000, 2500),
        "approx_ds": [2, 3, 5, 8] if quick else [2, 3, 4, 6, 8, 12, 16],
        "approx_p": 400 if quick else 1200,
        "approx_draws": 20 if quick else 40,
    }

    finished = progress or (lambda done, total: None)
    claims: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"config": cfg}

    # 1. function forms
    d, p = cfg["forms"]
    W = sample_weights(d, p, seed=0)
    ff = function_forms(W, n=2000, seed=1)
    groups = {g.name: g.to_dict() for g in ff.groups}
    clusters = [c.to_dict() for c in ff.clusters]
    summary["function_forms"] = {"d": d, "p": p, "n": 2000, "groups": groups, "clusters": clusters,
                                 "circle": circle_forms(W)}
    worst = min(g["mean_cosine"] for g in groups.values())
    worst_pc = min(c["min_principal_cosine"] for c in clusters)
    claims.append({
        "claim": "The approximate eigenvectors are, as functions of x, close to ||x||, x_l, x_a x_b/||x|| and "
                 "(x_a^2 - x_b^2)/||x|| (the four groups converge to distinct function forms)",
        "source": "Ho, Takeishi, Takeuchi (May 2025), abstract; theory §11",
        "predicted": "cosine -> 1 as p -> inf; at finite p, 1 - cos = O(d^2/p)",
        "measured": f"d = {d}, p = {p}: mean cosine per group >= {worst:.4f}; computed cluster eigenfunctions vs "
                    f"predicted spans: min principal cosine {worst_pc:.5f}",
        "holds": bool(worst > 0.95 and worst_pc > 0.99),
    })
    u, v = ff.group("rows").vectors[0], ff.group("v0").vectors[0]
    ips = [fisher_inner_product(W, a, b, n=20000, seed=2) for a, b in ((u, u), (u, v), (v, v))]
    summary["inner_products"] = [ip.to_dict() for ip in ips]
    claims.append({
        "claim": "The FIM induces the function-space inner product u^T J v = E_x[f_u(x) f_v(x)], and the groups "
                 "are nearly orthogonal in it",
        "source": "Ho, Takeishi, Takeuchi (May 2025), abstract; theory §11",
        "predicted": "Monte Carlo E[f_u f_v] within its error bar of u^T J v",
        "measured": "; ".join(f"{ip.exact:.4g} vs {ip.monte_carlo:.4g} ± {ip.stderr:.1g}" for ip in ips),
        "holds": bool(all(abs(ip.z) < 5 for ip in ips)),
    })

    # 2. FIM <-> NTK
    finished(1, 4)
    d, p, n = cfg["ntk"]
    W = sample_weights(d, p, seed=3)
    m = fisher_ntk_map(W, n=n, seed=4)
    captured = {name: m.captured_fractions(fn) for name, fn in TARGET_PARTS.items()}
    summary["fisher_ntk"] = m.to_dict() | {"captured_fractions": captured}
    claims.append({
        "claim": "The FIM and the NTK Gram are related by a linear map: same nonzero eigenvalues, "
                 "u -> X(.)u/sqrt(lambda)",
        "source": "Takeuchi, Takeishi, Murata et al. (July 2025), abstract; theory §12",
        "predicted": "identical eigenvalues; mapped vectors are eigenvectors (residual 0)",
        "measured": f"max relative discrepancy {m.max_discrepancy:.1e} (eigenvalues, residuals both ways)",
        "holds": bool(m.max_discrepancy < 1e-8),
    })
    diag = [captured[k][i] for i, k in enumerate(TARGET_PARTS)]
    claims.append({
        "claim": "The NTK eigenfunctions of the major eigenvalues are ||x||, x_l and degree-2 forms over ||x||",
        "source": "Takeuchi, Takeishi, Murata et al. (July 2025), abstract; theory §12",
        "predicted": "||x||, x_1, x_1x_2/||x|| lie in clusters 1, 2, 3 respectively",
        "measured": "share captured by its cluster: " + ", ".join(f"{k}: {c:.4f}" for k, c in zip(TARGET_PARTS, diag)),
        "holds": bool(min(diag) > 0.95),
    })

    # 3. approximation formula
    finished(2, 4)
    curve = approximation_error_curve(cfg["approx_ds"], cfg["approx_p"], cfg["approx_draws"], seed=5)
    ls = _least_squares_check(5, cfg["approx_p"], 20000 if quick else 60000, seed=6)
    summary["approximation"] = {"curve": curve, "least_squares": ls}
    zs = [abs(mv - pv) / se for mv, pv, se in zip(curve["measured"], curve["predicted"], curve["stderr"])]
    claims.append({
        "claim": "Approximation formula f_v(x) ~ A||x|| + b.x + x^T C x/||x||, the exact projection on degrees <= 2, "
                 "with L2 error v^T J_>=4 v, a fraction 1 - F(d) on average",
        "source": "Takeuchi, Takeishi, Murata et al. (July 2025), abstract; theory §11",
        "predicted": "formula = least-squares projection; mean error share = 1 - F(d) (" +
                     ", ".join(f"d={dd}: {pv:.4f}" for dd, pv in zip(curve["d"], curve["predicted"])) + ")",
        "measured": f"least squares (d = 5, n = {ls['n']}): rms deviation {ls['rms_deviation']:.2e} vs sampling scale "
                    f"{ls['sampling_scale']:.2e}; error shares " +
                    ", ".join(f"{mv:.4f}±{se:.4f}" for mv, se in zip(curve["measured"], curve["stderr"])),
        "holds": bool(max(zs) < 5 and ls["rms_deviation"] < 3.5 * ls["sampling_scale"]),
    })

    # 4. gradient descent priority
    finished(3, 4)
    d, p, steps = cfg["dyn"]
    W = sample_weights(d, p, seed=7)
    gd0 = gradient_descent(W, steps=1, seed=0)  # to read the stability limit
    gd = gradient_descent(W, steps=steps, lr=0.1 * gd0.stability_limit, seed=0)
    gdd = gd.to_dict()
    summary["gradient_descent"] = gdd | {"d": d, "p": p, "curves": dynamics_curves(gd)}
    claims.append({
        "claim": "Gradient descent learns the parts of a target in the order of the clusters, at rates lambda_0 : "
                 "lambda_1 : lambda_2",
        "source": "Ho, Takeishi, Takeuchi (May 2025), abstract; theory §13",
        "predicted": "order [1, 2, 3]; cluster error = sum lambda_i c_i^2 (1 - eta lambda_i)^(2k)",
        "measured": f"order {gdd['learning_order']}; times to 1 %: " +
                    ", ".join("never" if t is None else f"{t:.3g}" for t in gdd["learning_times"]) +
                    f"; max deviation from the closed form {gdd['max_rel_deviation_from_prediction']:.1e}",
        "holds": bool(gdd["learning_order"] == [1, 2, 3] and gdd["max_rel_deviation_from_prediction"] < 1e-8),
    })

    summary["seconds"] = time.perf_counter() - t0
    finished(4, 4)
    return {"name": NAME, "summary": summary, "claims": claims}

"""The ``reproduce`` run's section "Depth and real inputs" (theory §14): compute and return data, every claim measured.

* one hidden layer through the deep path against today's exact FIM;
* the infinite-width limit by harmonic degree for depths 1..10 (shares, :math:`F_L(d)`, the time of the
  depth-10 spectrum), and finite networks' cluster shares by Monte Carlo at two widths, with error bars;
* one deep network's clustered spectrum (L = 3) against its limit and its function-space spans;
* the digits' empirical FIM next to the Gaussian prediction with the data's covariance (one and, in the full
  run, two hidden layers).

:mod:`relufim.report.depth` draws and tabulates what :func:`reproduce_section` returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..fim.deep import deep_fisher
from ..fim.exact import fisher_matrix
from ..model.network import network
from ..model.weights import sample_weights
from ..spectrum import predicted_cluster_sizes
from ..theory.depth import depth_limit_spectrum
from ._stages import stage_counter
from .depth import deep_spectrum_summary, depth_shares, digits_comparison, limit_by_depth

__all__ = ["NAME", "reproduce_section", "SETTINGS"]

#: The section's name in a reproduce summary (``summary["sections"][i]["name"]``).
NAME = "depth"

#: Sizes of the quick and full runs.
SETTINGS: dict[bool, dict[str, Any]] = {
    True: {"identity_p": 500, "share_widths": (200, 800), "share_n": 8_000, "share_seeds": 2,
           "deep_widths": (1000, 1000, 500), "deep_n": 20_000, "digits_widths": [(1000,)], "digits_n": 20_000},
    False: {"identity_p": 2000, "share_widths": (400, 1600), "share_n": 20_000, "share_seeds": 3,
            "deep_widths": (2000, 2000, 1000), "deep_n": 100_000, "digits_widths": [(2000,), (1000, 1000)],
            "digits_n": 50_000},
}

_SOURCE = "theory §14 (derived)"


def _fmt(values: Any, spec: str = ".4f") -> str:
    return "[" + ", ".join(format(float(v), spec) for v in values) + "]"


def reproduce_section(quick: bool = False, progress: Callable[[int, int], None] | None = None,
                      d: int = 10) -> dict[str, Any]:
    """Compute the section: ``{"name": "depth", "summary": {...}, "claims": [...]}``.

    ``summary`` holds ``d, quick, identity`` (the one-layer check), ``limit`` (:func:`limit_by_depth`),
    ``limit_seconds`` (depth 10, ``k <= 20``), ``shares`` (two :func:`depth_shares`, small and large width),
    ``deep`` (:func:`deep_spectrum_summary` at ``L = 3``), ``digits`` (a list of :func:`digits_comparison`;
    empty, with the reason in ``digits_skipped``, when the optional data extra is not installed)
    and ``seconds``. Every claim's ``measured`` comes from these; ``holds`` is a computed bool, or None for
    statements about infinite width that finite numbers can only illustrate.
    """
    cfg = SETTINGS[bool(quick)]
    t_start = time.perf_counter()
    advance = stage_counter(progress, 5 + len(cfg["digits_widths"]))

    # one hidden layer through the deep path is today's model
    p0 = cfg["identity_p"]
    J_today = fisher_matrix(sample_weights(d, p0, seed=0))
    J_deep = deep_fisher(network(d, p0).sample(0), method="exact")
    identity = {"p": p0, "max_abs_difference": float(np.abs(J_today - J_deep).max()),
                "bitwise_equal": bool(np.array_equal(J_today, J_deep))}
    del J_today, J_deep
    advance()

    lim = limit_by_depth(d, list(range(1, 11)), kmax=4)
    t0 = time.perf_counter()
    depth_limit_spectrum(d, 10, 20)
    limit_seconds = time.perf_counter() - t0
    advance()

    shares = [depth_shares(d, (1, 2, 3), width=w, n=cfg["share_n"], seeds=cfg["share_seeds"])
              for w in cfg["share_widths"]]
    advance()
    deep = deep_spectrum_summary(d, cfg["deep_widths"], method="monte-carlo", n=cfg["deep_n"], seed=0)
    advance()
    digits, digits_skipped = [], None
    for widths in cfg["digits_widths"]:
        try:
            digits.append(digits_comparison(widths, dim=d, seed=0, n_gaussian=cfg["digits_n"]))
        except ImportError as exc:  # the data extra is optional: the section says what is missing
            digits_skipped = str(exc)
        finally:
            advance()

    claims = _claims(d, identity, lim, limit_seconds, shares, deep, digits)
    advance()
    summary = {"d": d, "quick": bool(quick), "identity": identity, "limit": lim, "limit_seconds": limit_seconds,
               "shares": shares, "deep": deep, "digits": digits, "digits_skipped": digits_skipped,
               "seconds": time.perf_counter() - t_start}
    return {"name": NAME, "summary": summary, "claims": claims}


def _claims(d: int, identity: dict[str, Any], lim: dict[str, Any], limit_seconds: float,
            shares: list[dict[str, Any]], deep: dict[str, Any], digits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pred = list(predicted_cluster_sizes(d))
    S = np.array(lim["shares"])
    F = np.array(lim["top_fraction"])
    depths = lim["depths"]
    claims: list[dict[str, Any]] = [
        {"claim": "One hidden layer through the deep path is today's exact FIM",
         "source": "theory §14.1 (L = 1 is Lemma 1)", "predicted": "identical, bit for bit",
         "measured": f"max |J_deep - J| = {identity['max_abs_difference']:.3g} at p = {identity['p']}",
         "holds": identity["bitwise_equal"]},
        {"claim": "For L >= 2 the odd degree 3 is no longer zero (infinite width)", "source": _SOURCE,
         "predicted": "share of degree 3: 0 at L = 1, > 0 for L >= 2",
         "measured": f"shares of degree 3 for L = 1..{depths[-1]}: {_fmt(S[:, 3])}",
         "holds": bool(S[0, 3] == 0 and np.all(S[1:, 3] > 0))},
        {"claim": "Degree 0 gains share of the trace with every layer (infinite width)", "source": _SOURCE,
         "predicted": "increasing in L",
         "measured": f"shares of degree 0 for L = 1..{depths[-1]}: {_fmt(S[:, 0])}",
         "holds": bool(np.all(np.diff(S[:, 0]) > 0))},
        {"claim": "The levels of degrees 0, 1, 2 remain the three largest at every depth (infinite width)",
         "source": _SOURCE, "predicted": "min(lambda_0, lambda_1, lambda_2) > max over k = 3..20 of lambda_k",
         "measured": f"true for {sum(lim['degree_le2_largest'])} of {len(depths)} depths",
         "holds": bool(all(lim["degree_le2_largest"]))},
        {"claim": f"Degrees <= 2 carry most of the limit trace at every depth (F_L({d}) > 0.9 for L <= 10)",
         "source": _SOURCE, "predicted": "F_L > 0.9",
         "measured": f"F_L for L = 1..{depths[-1]}: {_fmt(F)}; smallest at L = {depths[int(np.argmin(F))]}",
         "holds": bool(F.min() > 0.9)},
        {"claim": "Depth-10 limit spectrum up to k = 20 in under 1 s", "source": "issue 11 (speed)",
         "predicted": "< 1 s", "measured": f"{limit_seconds:.3g} s", "holds": limit_seconds < 1.0},
    ]
    small, large = shares
    dev_small = np.abs(np.array(small["mean"]) - np.array(small["limit"]))
    dev_large = np.abs(np.array(large["mean"]) - np.array(large["limit"]))
    claims.append({
        "claim": "Finite-width shares of the three clusters approach the limit as the widths grow (L = 1, 2, 3)",
        "source": _SOURCE + "; Monte Carlo, error bars over seeds",
        "predicted": f"largest |share - limit| (any depth, any cluster or their sum F_L) smaller at width "
                     f"{large['width']} than at {small['width']}",
        "measured": f"{dev_small.max():.4f} at width {small['width']}, {dev_large.max():.4f} at width "
                    f"{large['width']}; F_L at the larger width {_fmt(np.array(large['mean'])[:, 3])} against "
                    f"{_fmt(np.array(large['limit'])[:, 3])} (finite widths leave fewer eigenvalues for the "
                    "higher degrees)",
        "holds": bool(dev_large.max() < dev_small.max())})
    sizes = deep["cluster_sizes"]
    claims.append({"claim": f"A deep network (widths {deep['widths']}) has three clusters of sizes 1, d, "
                            "d(d+1)/2 - 1", "source": _SOURCE, "predicted": str(pred),
                   "measured": f"{sizes} (Monte Carlo, n = {deep['n']}; cluster residuals <= "
                               f"{deep['max_cluster_residual']:.1e})", "holds": sizes == pred})
    lv = deep.get("limit") or {}
    means = deep.get("cluster_means")
    if lv and means:
        rel = [m / lv[f"cluster{i + 1}"] - 1 for i, m in enumerate(means)]
        claims.append({"claim": "The deep network's cluster means (top eigenvalues cut at the predicted sizes) are "
                                "near their infinite-width limits",
                       "source": _SOURCE, "predicted": _fmt([lv[f"cluster{i + 1}"] for i in range(3)], ".5g"),
                       "measured": f"{_fmt(means, '.5g')} (relative differences {_fmt(rel, '+.2%')})",
                       "holds": None})
    al = deep.get("alignment") or {}
    if al:
        claims.append({"claim": "The deep network's clusters lie in the function-space spans E[h_L psi] (psi = ‖x‖, "
                                "x_l, degree-2 forms)", "source": "theory §14.5",
                       "predicted": "captured share of each span -> 1 (criterion here: >= 0.95)",
                       "measured": f"captured {_fmt(al['captured'])}; min cosines {_fmt(al['min_cosines'])} "
                                   f"(sampling error of the vectors {_fmt(al['vector_relative_errors'], '.2f')})",
                       "holds": bool(min(al["captured"]) >= 0.95)})
    for dg in digits:
        tag = f" [digits, {dg['d']} principal components, widths {dg['widths']}]"
        emp, gau = dg["empirical"], dg["gaussian"]
        if dg["depth"] == 1:
            claims.append({"claim": "Three clusters of sizes 1, d, d(d+1)/2 - 1 on real inputs" + tag,
                           "source": "theory §14.7 (question of issue 11)", "predicted": str(pred),
                           "measured": f"data {emp['cluster_sizes']}; Gaussian with the data's covariance "
                                       f"{gau['cluster_sizes']}", "holds": emp["cluster_sizes"] == pred})
        else:
            claims.append({"claim": "The Gaussian prediction with the data's covariance has the data's cluster sizes"
                                    + tag, "source": "theory §14.6-14.7",
                           "predicted": f"Gaussian: {gau['cluster_sizes']}",
                           "measured": f"data: {emp['cluster_sizes']} (isotropic prediction {pred})",
                           "holds": emp["cluster_sizes"] == gau["cluster_sizes"]})
        claims.append({"claim": "The Gaussian prediction with the data's covariance gives the cluster shares" + tag,
                       "source": "theory §14.6-14.7", "predicted": f"shares {_fmt(gau['cluster_shares'])}",
                       "measured": f"shares {_fmt(emp['cluster_shares'])}; cluster means data / Gaussian "
                                   f"{_fmt(dg['cluster_mean_ratios'], '.3f')}", "holds": None})
        claims.append({"claim": "The data's top d(d+3)/2 eigenvectors capture the predicted cluster subspaces" + tag,
                       "source": "theory §14.5-14.7",
                       "predicted": "captured share of each predicted subspace -> 1 (criterion here: >= 0.9)",
                       "measured": f"Gaussian clusters {_fmt(dg['captured_gaussian_clusters'])}; function-space "
                                   f"spans {_fmt(dg['captured_function_spans'])}",
                       "holds": bool(min(dg["captured_gaussian_clusters"]) >= 0.9)})
    return claims

r"""Reproduction of the 2023 paper's numerical check (and the sections other results add).

``p = 10 000`` hidden units (``quick``: 2 000), ``d = 10``, the exact FIM and the
Monte Carlo FIM: the three clusters, their sizes and eigenvalues next to Theorem 3's
bounds and the infinite-width limit, the Perron–Frobenius vector, the alignment of
each cluster with its predicted span, and Theorem 2's remainder (theory §4–5, §7).

:func:`reproduce` computes and returns the run's data (the content of ``summary.json``);
it draws nothing and writes no file. :func:`relufim.report.write_reproduce_run` turns the
data into ``summary.json``, the figures, ``report.md`` and ``report.html``.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np
import scipy
from scipy.sparse.linalg import LinearOperator

from .._validation import check_positive_int
from .._version import __version__
from ..fim import fisher_matrix, gaussian_input_chunks, hidden_features
from ..model.weights import sample_weights
from ..spectrum import feature_spectrum, matrix_spectrum, n_top, predicted_cluster_sizes
from ..spectrum.density import smoothed_counts, spectral_density
from ..theory import TRACE_SHARE_BOUND, theorem3_bounds, theory_vectors
from ..theory.checks import check_theory, cluster_cosines, rayleigh_quotients, summarize_result
from ..theory.limit import limit_cluster_values
from . import depth_section, full_fisher_section, function_space, limit_section, mdl_section

__all__ = ["reproduce", "SECTIONS", "DENSITY_SMOOTHING"]

Log = Callable[[str], None]
Progress = Callable[[int, int], None]

#: The section modules a full run adds after the 2023 check, in order; each has ``NAME`` and
#: ``reproduce_section(quick, progress=None)``, called alike.
_SECTION_MODULES = (limit_section, function_space, depth_section, full_fisher_section, mdl_section)

#: Their names, in order.
SECTIONS = tuple(m.NAME for m in _SECTION_MODULES)

#: Width (decades) of the log-scale smoothing of the density figure: about the resolution of the Gauss rules.
DENSITY_SMOOTHING = 0.08


def _versions() -> dict[str, str | None]:
    """Versions of what computed (and will draw) the run; matplotlib is looked up, not imported."""
    try:
        mpl = metadata.version("matplotlib")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency of relufim
        mpl = None
    return {"relufim": __version__, "numpy": np.__version__, "scipy": scipy.__version__, "matplotlib": mpl,
            "python": platform.python_version(), "platform": platform.platform()}


# ----------------------------------------------------------------------------- claims

def _claims(d: int, p: int, settings: list[dict[str, Any]], limit: dict[str, float]) -> list[dict[str, Any]]:
    pred = list(predicted_cluster_sizes(d))
    claims: list[dict[str, Any]] = []
    src = "2023 paper (poster, Theorem 2); theory §4"
    for s in settings:
        tag = f" [{s['name']}]"
        sizes = [c["size"] for c in s["clusters"][:3]]
        claims.append({"claim": "Three clusters of eigenvalues of sizes 1, d, d(d+1)/2 - 1" + tag, "source": src,
                       "predicted": str(pred), "measured": str(sizes), "holds": sizes == pred})
        claims.append({"claim": "Top eigenvector is the Perron-Frobenius vector (one sign)" + tag,
                       "source": "2023 paper, result 1", "predicted": "one sign",
                       "measured": "one sign" if s["perron_frobenius"] else "mixed signs",
                       "holds": bool(s["perron_frobenius"])})
        al = s.get("alignment", {})
        if "cluster2" in al:
            claims.append({"claim": "Second cluster's eigenspace is spanned by the rows of W" + tag,
                           "source": "2023 paper, result 2",
                           "predicted": "min cos(principal angle) -> 1 (criterion here: >= 0.95)",
                           "measured": f"{al['cluster2']:.4f}", "holds": al["cluster2"] >= 0.95})
        if "hadamard" in al:
            claims.append({"claim": "First + third clusters' eigenspace = span of Hadamard products of rows" + tag,
                           "source": "2023 paper, result 3",
                           "predicted": "min cos(principal angle) -> 1 (criterion here: >= 0.95)",
                           "measured": f"{al['hadamard']:.4f}", "holds": al["hadamard"] >= 0.95})
        tf = s.get("top_fraction")
        if tf is not None:
            claims.append({"claim": "First three clusters carry >= 97.7 % of the trace" + tag,
                           "source": "Theorem 3 (1/2 + 3/(2 pi) = 0.97746)",
                           "predicted": f">= {TRACE_SHARE_BOUND:.4%} (as p -> inf)", "measured": f"{tf:.4%}",
                           "holds": tf >= TRACE_SHARE_BOUND})
    ex = settings[0]
    tol = 3 * math.sqrt(2.0 / (d * p))  # three standard deviations of ||W||_F^2 / d
    claims.append({"claim": "tr J <= (d/2)(1 + delta)", "source": "Theorem 3",
                   "predicted": f"<= {d / 2:g} (1 + delta); 3-sd delta = {tol:.3g}",
                   "measured": f"{ex['trace']:.6g}", "holds": ex["trace"] <= d / 2 * (1 + tol)})
    if ex.get("remainder_min_eigenvalue") is not None:
        lam_max = ex["eigenvalues"][0]
        claims.append({"claim": "Theorem 2 remainder R is positive semidefinite", "source": "Theorem 2",
                       "predicted": ">= 0 (up to round-off, -1e-12 lambda_max)",
                       "measured": f"min eigenvalue {ex['remainder_min_eigenvalue']:.3g}",
                       "holds": ex["remainder_min_eigenvalue"] >= -1e-12 * lam_max})
    claims.append({"claim": "Theorem 2 remainder carries a small share of the trace", "source": "Theorem 2, theory §7",
                   "predicted": f"about 1 - F(d) = {1 - limit['top_fraction']:.4%}",
                   "measured": f"{ex['remainder_trace_share']:.4%}", "holds": None})
    for key, label in [("v0", "v^(0)"), ("rows", "W_l"), ("v_ab", "v^(a,b)"), ("v_gamma", "v^(gamma)")]:
        t3 = ex.get("theorem3", {}).get(key)
        if t3:
            claims.append({"claim": f"Rayleigh quotient of {label} >= bound (1 - delta - xi)", "source": "Theorem 3",
                           "predicted": f">= {t3['bound']:.5g} (1 - delta - xi), asymptotic",
                           "measured": f"min {t3['min']:.5g}, mean {t3['mean']:.5g} "
                                       f"(min/bound {t3['min_over_bound']:.3f})",
                           "holds": None})
    lem = ex.get("lemma2", {})
    if "v_ab" in lem:
        claims.append({"claim": "‖v^(a,b)‖² -> 1 (Lemma 2); finite-d mean d/(d+2)", "source": "Lemma 2, theory §5",
                       "predicted": f"1 as d -> inf; {lem['v_ab']['expected_sq_norm_finite_d']:.4f} at d = {d}",
                       "measured": f"mean {lem['v_ab']['mean_sq_norm']:.4f}", "holds": None})
    for i in range(3):
        c = ex["clusters"][i]
        claims.append({"claim": f"Cluster {i + 1} mean -> infinite-width eigenvalue d mu_{i}",
                       "source": "theory §7 (derived)", "predicted": f"{limit[f'cluster{i + 1}']:.6g}",
                       "measured": f"{c['mean']:.6g} (rel. diff {c['mean'] / limit[f'cluster{i + 1}'] - 1:+.2%})",
                       "holds": None})
    return claims


def _density_claim(density: dict[str, Any]) -> dict[str, Any]:
    return {"claim": f"First three clusters carry >= 97.7 % of the trace [exact, p = {density['p']}]",
            "source": "Theorem 3 (1/2 + 3/(2 pi) = 0.97746)",
            "predicted": f">= {TRACE_SHARE_BOUND:.4%} (as p -> inf)",
            "measured": f"{density['top_fraction']:.4%} (matrix-free, max residual "
                        f"{density['top_max_residual_rel']:.1e} lambda_max)",
            "holds": density["top_fraction"] >= TRACE_SHARE_BOUND}


# ----------------------------------------------------------------------------- driver

def reproduce(*, quick: bool = False, d: int = 10, p: int | None = None, seed: int = 0, n: int | None = None,
              sections: bool = True, density_p: int | None = None, density_vectors: int = 8,
              density_steps: int = 40, log: Log | None = None,
              progress: Callable[[str, int], Progress] | None = None) -> dict[str, Any]:
    r"""Reproduce the 2023 paper's numerical check; return the run's data (nothing is drawn or written).

    Parameters
    ----------
    quick : bool
        ``p = 2000`` instead of ``10 000``.
    d, p, seed : int
        Problem size and seed (``p`` overrides ``quick``).
    n : int, optional
        Monte Carlo samples (default ``p``; the nonzero spectrum is computed from the ``n x n`` Gram).
    sections : bool
        Add the sections of the other results: the infinite-width limit and other activations
        (:mod:`~relufim.experiments.limit_section`), the function space, NTK and learning
        (:mod:`~relufim.experiments.function_space`), depth and real inputs
        (:mod:`~relufim.experiments.depth_section`), the FIM of all parameters
        (:mod:`~relufim.experiments.full_fisher_section`), the MDL estimator
        (:mod:`~relufim.experiments.mdl_section`).
    density_p : int, optional
        Also estimate the whole eigenvalue distribution of the exact FIM at this width (beyond
        dense sizes, e.g. 100 000) with :func:`relufim.spectral_density`: matrix-free deflation of
        the three clusters, then stochastic Lanczos quadrature with ``density_vectors`` random
        vectors and ``density_steps`` Lanczos steps (one pass over the ``p^2/2`` kernel entries per step).
    log : callable(str), optional
        Receives one line per stage.
    progress : callable(label, total) -> callback(done, total), optional
        Factory of progress callbacks for long stages.

    Returns
    -------
    dict
        JSON-ready (through :func:`relufim._io.to_jsonable`): ``config``, ``versions``, ``limit``
        (infinite-width cluster values), ``theorem3_bounds``, ``settings`` (one
        :func:`relufim.spectrum_summary`-style record per FIM: ``exact``, ``monte-carlo``),
        ``claims`` (``claim, source, predicted, measured, holds``; ``holds`` is ``None`` for the
        statements left to judgement), ``spectra`` (every eigenvalue of both FIMs),
        ``rayleigh_quotients`` (per group of theory vectors), ``principal_cosines`` (per setting
        and cluster), ``sections`` (``name, summary``) and, with ``density_p``, ``density``.

    Examples
    --------
    >>> s = reproduce(d=3, p=300, sections=False)
    >>> [st["name"] for st in s["settings"]], [c["size"] for c in s["settings"][0]["clusters"]]
    (['exact', 'monte-carlo'], [1, 3, 5])
    """
    t_start = time.perf_counter()
    say = log or (lambda msg: None)
    d = check_positive_int(d, "d", minimum=2)
    p = check_positive_int(p if p is not None else (2000 if quick else 10_000), "p", minimum=n_top(d) + 1)
    if density_p is not None:
        density_p = check_positive_int(density_p, "density_p", minimum=n_top(d) + 2)
        density_vectors = check_positive_int(density_vectors, "density_vectors", minimum=2)
        density_steps = check_positive_int(density_steps, "density_steps", minimum=2)
    n = check_positive_int(n if n is not None else p, "n", minimum=n_top(d) + 1)
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    limit = limit_cluster_values(d, activation="relu", scale="1/p")
    W = sample_weights(d, p, seed=seed)
    th = theory_vectors(W)

    # exact FIM: full spectrum for the histogram, top clusters with vectors, theory checks
    say(f"exact FIM: building J ({p} x {p})")
    J = fisher_matrix(W)
    say("exact FIM: all eigenvalues (dense)")
    ev_exact = np.linalg.eigvalsh(J)[::-1]
    say("exact FIM: top clusters (theory-seeded block solver) and theory checks")
    cb = progress("  converged", n_top(d) + 10) if progress else None
    seeds = th.seed_block()
    res_exact = matrix_spectrum(J, "clusters", d=d, X0=seeds, progress=cb)
    chk = check_theory(W, result=res_exact, J=J, remainder=p <= 4000)
    exact = summarize_result(W, res_exact, chk, seed=seed, fisher="exact")
    rq = rayleigh_quotients(J.__matmul__, th)
    del J

    ev_mc, res_mc = _monte_carlo_stage(W, n, seed + 1, seeds, say, progress)
    mc = summarize_result(W, res_mc, chk, seed=seed, fisher="monte-carlo", n=n)
    exact["name"], mc["name"] = "exact", "monte-carlo"
    settings = [exact, mc]
    cosines = {"exact": cluster_cosines(th, res_exact), "monte-carlo": cluster_cosines(th, res_mc)}

    density = None
    if density_p is not None:
        density = _density_stage(d, density_p, seed, density_vectors, density_steps, ev_exact, say, progress)

    section_results = []
    for module in _SECTION_MODULES if sections else ():
        say(f"section: {module.NAME}")
        section_results.append(module.reproduce_section(quick, progress=progress(f"  {module.NAME}", 1)
                                                        if progress else None))

    claims = _claims(d, p, settings, limit)
    if density is not None:
        claims.append(_density_claim(density))
    for sec in section_results:
        claims.extend(sec["claims"])
    config = {"d": d, "p": p, "seed": seed, "n": n, "quick": quick, "density_p": density_p, "scale": "1/p",
              "started": started, "seconds": time.perf_counter() - t_start,
              "command": "relufim reproduce" + (" --quick" if quick else "")}
    summary: dict[str, Any] = {
        "config": config, "versions": _versions(), "limit": limit, "theorem3_bounds": theorem3_bounds(d),
        "settings": settings, "claims": claims,
        "sections": [{"name": s["name"], "summary": s["summary"]} for s in section_results],
        "spectra": {"exact_all": ev_exact.tolist(), "monte_carlo_all": ev_mc.tolist()},
        "rayleigh_quotients": {k: np.asarray(v).tolist() for k, v in rq.items()},
        "principal_cosines": {name: {k: np.asarray(v).tolist() for k, v in cos.items()}
                              for name, cos in cosines.items()},
    }
    if density is not None:
        summary["density"] = density
    return summary


def _monte_carlo_stage(W: np.ndarray, n: int, seed: int, seeds: np.ndarray, say: Log,
                       progress: Callable[[str, int], Progress] | None) -> tuple[np.ndarray, Any]:
    """The Monte Carlo FIM from ``n`` Gaussian inputs (``seed``): all ``p`` eigenvalues and the top clusters.

    Every eigenvalue through the cheaper side (the ``n x n`` Gram when ``n <= p``), the top
    clusters by the block solver on products with the features ``X`` (freed on return).
    """
    d, p = W.shape
    say(f"Monte Carlo FIM: n = {n} inputs, all eigenvalues (dense, cheaper side)")
    X = hidden_features(W, np.vstack(list(gaussian_input_chunks(n, d, seed))))
    ev = feature_spectrum(X, "all", vectors=False).eigenvalues
    ev = np.concatenate([ev, np.zeros(p - ev.size)])
    say("Monte Carlo FIM: top clusters")
    cb = progress("  converged", n_top(d) + 10) if progress else None

    def product(V: np.ndarray) -> np.ndarray:
        return X.T @ (X @ V) / n

    res = matrix_spectrum(LinearOperator((p, p), matvec=product, matmat=product, dtype=np.float64),
                          n_top(d) + 10, d=d, X0=seeds, progress=cb, trace=float(np.einsum("ij,ij->", X, X) / n))
    return ev, res


def _density_stage(d: int, p: int, seed: int, n_vectors: int, steps: int, dense: np.ndarray, say: Log,
                   progress: Callable[[str, int], Progress] | None) -> dict[str, Any]:
    """The eigenvalue distribution at width ``p`` by deflated SLQ: its summary and the smoothed histograms to draw."""
    t0 = time.perf_counter()
    say(f"spectral density at p = {p}: the three clusters matrix-free, then {steps} Lanczos steps "
        f"on {n_vectors} random vectors (one kernel pass per step)")
    W = sample_weights(d, p, seed=seed)
    sd = spectral_density(W, n_vectors=n_vectors, lanczos_steps=steps, bins=90, seed=seed,
                          deflation_progress=progress("  converged", n_top(d)) if progress else None,
                          progress=progress("  Lanczos steps", steps) if progress else None)
    top = sd.top_eigenvalues
    width = DENSITY_SMOOTHING
    edges = sd.smoothing_edges(width)
    counts, se = sd.smoothed_histogram(edges, width)
    histogram = {"width_decades": width, "edges": edges.tolist(), "fraction": (counts / sd.p).tolist(),
                 "fraction_2se": (2 * se / sd.p).tolist(), "dense_p": int(dense.size),
                 "dense_fraction": (smoothed_counts(dense, edges, width) / dense.size).tolist()}
    return {**sd.to_dict(), "seconds": time.perf_counter() - t0, "top_eigenvalues": top.tolist(),
            "top_fraction": float(top.sum() / sd.trace_exact),
            "top_max_residual_rel": float(sd.top_residuals.max() / top[0]), "smoothed_histogram": histogram}

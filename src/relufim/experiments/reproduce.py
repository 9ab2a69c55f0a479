r"""Reproduction of the 2023 paper's numerical check (and the sections other results add).

``p = 10 000`` hidden units (``quick``: 2 000), ``d = 10``, the exact FIM and the
Monte Carlo FIM: the three clusters, their sizes and eigenvalues next to Theorem 3's
bounds and the infinite-width limit, the Perron–Frobenius vector, the alignment of
each cluster with its predicted span, and Theorem 2's remainder. Writes
``summary.json``, PNG figures and ``report.md`` into the output folder, every file
atomically.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.util
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .._version import __version__
from .._io import save_figure_atomic, write_json_atomic, write_text_atomic
from .._validation import check_positive_int
from ..theory.checks import check_theory, summarize_result
from ..fim import fisher_matrix
from ..fim import gaussian_input_chunks, hidden_features
from ..spectrum import SpectrumResult, feature_spectrum, matrix_spectrum, n_top, predicted_cluster_sizes, principal_cosines
from ..theory import TRACE_SHARE_BOUND, theorem3_bounds, theory_vectors
from ..model.weights import sample_weights

__all__ = ["reproduce", "default_output_dir", "SECTION_MODULES"]

Log = Callable[[str], None]
Progress = Callable[[int, int], None]

#: Modules that add a section to the report: each has ``reproduce_section(outdir, quick, progress) -> dict``
#: returning ``{"name", "summary", "claims", "figures", "markdown"}``.
SECTION_MODULES = ["relufim.experiments.limit_section", "relufim.experiments.function_space"]


def default_output_dir() -> Path:
    """``./relufim-results/<UTC timestamp>``."""
    return Path("relufim-results") / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def _versions() -> dict[str, str]:
    import matplotlib
    import scipy

    return {"relufim": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "matplotlib": matplotlib.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def _limit_values(d: int) -> dict[str, float] | None:
    try:
        from ..theory.limit import limit_cluster_values
    except ImportError:  # pragma: no cover
        return None
    return limit_cluster_values(d, activation="relu", scale="1/p")


# ----------------------------------------------------------------------------- figures

def _log_axes_with_limits(ax: Any, limit: dict[str, float] | None, ylabel: str) -> None:
    """Log-log eigenvalue axes with the three infinite-width cluster values drawn dotted."""
    if limit:
        for i in range(3):
            ax.axvline(limit[f"cluster{i + 1}"], color="k", ls=":", lw=1.2,
                       label="infinite-width limit $d\\mu_k$" if i == 0 else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue of J")
    ax.set_ylabel(ylabel)


def _figure_distribution(path: Path, d: int, spectra: dict[str, np.ndarray], clusters: dict[str, Any],
                         limit: dict[str, float] | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    all_pos = np.concatenate([ev[ev > 0] for ev in spectra.values()])
    lo = max(all_pos.min(), all_pos.max() * 1e-14)
    bins = np.logspace(np.log10(lo), np.log10(all_pos.max()) + 0.05, 90)
    colors = {"exact": "C0", "monte-carlo": "C1"}
    for name, ev in spectra.items():
        ax.hist(ev[ev >= lo], bins=bins, histtype="step", lw=1.5, color=colors.get(name, "C2"),
                label=f"{name} FIM ({ev.size} eigenvalues)")
    shade = ["#d62728", "#2ca02c", "#9467bd"]
    for i, c in enumerate(clusters.get("exact", [])[:3]):
        ax.axvspan(c["min"] / 1.05, c["max"] * 1.05, color=shade[i], alpha=0.15,
                   label=f"cluster {i + 1} (size {c['size']}, predicted {c['predicted_size']})")
    b = theorem3_bounds(d)
    for i, key in enumerate(["v0", "rows", "v_ab"]):
        ax.axvline(b[key], color=shade[i], ls="--", lw=1, label="Theorem 3 bounds" if i == 0 else None)
    _log_axes_with_limits(ax, limit, "count")
    ax.set_title(f"FIM eigenvalue distribution, d = {d}, p = {next(iter(spectra.values())).size}")
    ax.legend(fontsize=7, loc="upper left")
    save_figure_atomic(fig, path)


def _figure_density(path: Path, d: int, sd: Any, dense: np.ndarray, limit: dict[str, float] | None) -> None:
    """Log-scale eigenvalue distribution at a large width (SLQ, with its error band) over the dense one."""
    import matplotlib

    from ..spectrum.density import smoothed_counts

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.08  # decades: about the resolution of the Gauss rules
    edges = sd.smoothing_edges(width)
    counts, se = sd.smoothed_histogram(edges, width)
    frac, err = counts / sd.p, 2 * se / sd.p
    ax.stairs(frac, edges, color="C0", lw=1.5, label=f"exact FIM, p = {sd.p}: stochastic Lanczos quadrature "
                                                    f"({sd.n_vectors} vectors x {sd.lanczos_steps} steps)")
    ax.stairs(frac + err, edges, baseline=np.maximum(frac - err, 0), fill=True, color="C0", alpha=0.2,
              label="± 2 standard errors (random vectors)")
    ax.stairs(smoothed_counts(dense, edges, width) / dense.size, edges, color="C1", lw=1.2,
              label=f"exact FIM, p = {dense.size}: dense eigenvalues (same smoothing, {width} decades)")
    _log_axes_with_limits(ax, limit, "fraction of eigenvalues per bin")
    ax.set_ylim(0.3 / max(sd.p, dense.size), 2.0)  # below a third of one eigenvalue per bin: smoothing tails
    ax.set_title(f"FIM eigenvalue distribution beyond dense sizes, d = {d}")
    ax.legend(fontsize=7, loc="upper center")
    save_figure_atomic(fig, path)


def _figure_rayleigh(path: Path, d: int, rq: dict[str, dict[str, np.ndarray]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = theorem3_bounds(d)
    groups = ["v0", "rows", "v_ab", "v_gamma"]
    labels = ["$v^{(0)}$", "$W_l$", "$v^{(\\alpha,\\beta)}$", "$v^{(\\gamma)}$"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, g in enumerate(groups):
        vals = rq[g]
        jitter = np.linspace(-0.15, 0.15, vals.size) if vals.size > 1 else np.zeros(1)
        ax.scatter(i + jitter, vals, s=10, color=f"C{i}", label=f"{labels[i]} ({vals.size})")
        ax.hlines(b[g], i - 0.3, i + 0.3, color="k", lw=2)
    ax.hlines([], 0, 0, color="k", lw=2, label="Theorem 3 lower bound ($\\delta=\\xi=0$)")
    ax.set_yscale("log")
    ax.set_xticks(range(4), labels)
    ax.set_ylabel("Rayleigh quotient $v^T J v / v^T v$")
    ax.set_title("Rayleigh quotients of the theory's vectors (exact J)")
    ax.legend(fontsize=7)
    save_figure_atomic(fig, path)


def _figure_angles(path: Path, cosines: dict[str, dict[str, np.ndarray]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.5), sharey=True)
    for i, ax in enumerate(axes):
        for j, (name, cos) in enumerate(cosines.items()):
            c = cos.get(f"cluster{i + 1}")
            if c is not None:
                ax.plot(np.arange(1, c.size + 1), c, "o-", ms=3, color=f"C{j}", label=name)
        ax.set_title(f"cluster {i + 1}")
        ax.set_xlabel("principal angle index")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cos(principal angle)\ncomputed vs predicted span")
    axes[0].legend(fontsize=7)
    fig.suptitle("Alignment of computed eigenspaces with the theory's spans")
    save_figure_atomic(fig, path)


# ----------------------------------------------------------------------------- claims

def _claims(d: int, p: int, settings: list[dict[str, Any]], limit: dict[str, float] | None) -> list[dict[str, Any]]:
    pred = list(predicted_cluster_sizes(d))
    claims: list[dict[str, Any]] = []
    src = "2023 paper (poster, Theorem 2); DESIGN §3"
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
    claims.append({"claim": "Theorem 2 remainder carries a small share of the trace", "source": "Theorem 2, DESIGN §4",
                   "predicted": "about 1 - F(d)" + (f" = {1 - limit['top_fraction']:.4%}" if limit else ""),
                   "measured": f"{ex['remainder_trace_share']:.4%}", "holds": None})
    for key, label in [("v0", "v^(0)"), ("rows", "W_l"), ("v_ab", "v^(a,b)"), ("v_gamma", "v^(gamma)")]:
        t3 = ex.get("theorem3", {}).get(key)
        if t3:
            claims.append({"claim": f"Rayleigh quotient of {label} >= bound (1 - delta - xi)", "source": "Theorem 3",
                           "predicted": f">= {t3['bound']:.5g} (1 - delta - xi), asymptotic",
                           "measured": f"min {t3['min']:.5g}, mean {t3['mean']:.5g} (min/bound {t3['min_over_bound']:.3f})",
                           "holds": None})
    lem = ex.get("lemma2", {})
    if "v_ab" in lem:
        claims.append({"claim": "‖v^(a,b)‖² -> 1 (Lemma 2); finite-d mean d/(d+2)", "source": "Lemma 2, DESIGN §3",
                       "predicted": f"1 as d -> inf; {lem['v_ab']['expected_sq_norm_finite_d']:.4f} at d = {d}",
                       "measured": f"mean {lem['v_ab']['mean_sq_norm']:.4f}", "holds": None})
    if limit:
        for i in range(3):
            c = ex["clusters"][i]
            claims.append({"claim": f"Cluster {i + 1} mean -> infinite-width eigenvalue d mu_{i}",
                           "source": "DESIGN §4 (derived)", "predicted": f"{limit[f'cluster{i + 1}']:.6g}",
                           "measured": f"{c['mean']:.6g} (rel. diff {c['mean'] / limit[f'cluster{i + 1}'] - 1:+.2%})",
                           "holds": None})
    return claims


def _markdown(config: dict[str, Any], settings: list[dict[str, Any]], claims: list[dict[str, Any]],
              figures: list[dict[str, str]], sections: list[dict[str, Any]], versions: dict[str, str]) -> str:
    def verdict(h: Any) -> str:
        return "yes" if h is True else ("**no**" if h is False else "see value")

    L = ["# relufim reproduce: the FIM of a two-layer ReLU network with random hidden weights", "",
         f"Run {config['started']} UTC, {config['seconds']:.0f} s. d = {config['d']}, p = {config['p']}, "
         f"seed = {config['seed']}, W_ij ~ N(0, 1/p); Monte Carlo FIM from n = {config['n']} Gaussian inputs.", "",
         "The 2023 paper (Takeishi, Iida, Takeuchi) states that the FIM of the output weights has three clusters "
         "of eigenvalues (sizes 1, d, d(d+1)/2 - 1) carrying at least 97.7 % of its trace, with eigenvectors "
         "built from the hidden weights, and that this was confirmed numerically at about 10 000 hidden units. "
         "Below, each claim next to what was measured here.", "",
         "## Claims and measurements", "", "| claim | source | predicted | measured | holds |", "|---|---|---|---|---|"]
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    for c in claims:
        L.append(f"| {cell(c['claim'])} | {cell(c['source'])} | {cell(c['predicted'])} | {cell(c['measured'])} "
                 f"| {verdict(c['holds'])} |")
    L += ["", "'see value': an asymptotic statement with unspecified constants (delta, xi) or a derived limit; "
          "the measured value is shown for judgement.", "", "## Clusters", "",
          "| setting | cluster | size | predicted | mean | min | max | min cos(angle) |", "|---|---|---|---|---|---|---|---|"]
    for s in settings:
        for i, c in enumerate(s["clusters"][:3]):
            cos = s.get("alignment", {}).get(f"cluster{i + 1}")
            L.append(f"| {s['name']} | {i + 1} | {c['size']} | {c['predicted_size']} | {c['mean']:.6g} | {c['min']:.6g} "
                     f"| {c['max']:.6g} | {'' if cos is None else f'{cos:.5f}'} |")
    L += ["", "| setting | trace | top fraction | Perron-Frobenius | max residual | solver |", "|---|---|---|---|---|---|"]
    for s in settings:
        L.append(f"| {s['name']} | {s['trace']:.6g} | {s['top_fraction']:.4%} | {s['perron_frobenius']} | "
                 f"{s['max_residual']:.2e} | {s['solver']} |")
    L += ["", "## Figures", ""]
    for f in figures:
        L += [f"![{f['caption']}]({f['file']})", "", f"*{f['caption']}*", ""]
    for sec in sections:
        if sec.get("markdown"):
            L += [sec["markdown"].rstrip(), ""]
    L += ["## Configuration and versions", "", "```", *(f"{k}: {v}" for k, v in config.items()),
          *(f"{k}: {v}" for k, v in versions.items()), "```", ""]
    return "\n".join(L)


# ----------------------------------------------------------------------------- driver

def reproduce(out: str | Path | None = None, *, quick: bool = False, d: int = 10, p: int | None = None, seed: int = 0,
              n: int | None = None, sections: bool = True, density_p: int | None = None, density_vectors: int = 8,
              density_steps: int = 40, log: Log | None = None,
              progress: Callable[[str, int], Progress] | None = None) -> dict[str, Any]:
    r"""Reproduce the 2023 paper's numerical check; write ``summary.json``, figures and ``report.md`` into ``out``.

    Parameters
    ----------
    out : path, optional
        Output folder (created; default ``./relufim-results/<timestamp>``). Files already in it
        with the same names are replaced atomically.
    quick : bool
        ``p = 2000`` instead of ``10 000``.
    d, p, seed : int
        Problem size and seed (``p`` overrides ``quick``).
    n : int, optional
        Monte Carlo samples (default ``p``; the nonzero spectrum is computed from the ``n x n`` Gram).
    sections : bool
        Add the sections of the other results (limit values, function space) when available.
    density_p : int, optional
        Also draw the whole eigenvalue distribution of the exact FIM at this width (beyond dense
        sizes, e.g. 100 000) with :func:`relufim.spectral_density`: matrix-free deflation of the
        three clusters, then stochastic Lanczos quadrature with ``density_vectors`` random vectors
        and ``density_steps`` Lanczos steps (one pass over the ``p^2/2`` kernel entries per step).
    log : callable(str), optional
        Receives one line per stage.
    progress : callable(label, total) -> callback(done, total), optional
        Factory of progress callbacks for long stages.

    Returns
    -------
    dict
        The content of ``summary.json``.
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
    out = Path(out) if out is not None else default_output_dir()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder; choose another path.")
    out.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    limit = _limit_values(d)
    W = sample_weights(d, p, seed=seed)

    # exact FIM: full spectrum for the histogram, top clusters with vectors, theory checks
    say(f"exact FIM: building J ({p} x {p})")
    J = fisher_matrix(W)
    say("exact FIM: all eigenvalues (dense)")
    ev_exact = np.linalg.eigvalsh(J)[::-1]
    say("exact FIM: top clusters (theory-seeded block solver) and theory checks")
    cb = progress("  converged", n_top(d) + 10) if progress else None
    seeds = theory_vectors(W).seed_block()
    res_exact = matrix_spectrum(J, "clusters", d=d, X0=seeds, progress=cb)
    chk = check_theory(W, result=res_exact, J=J, remainder=p <= 4000)
    exact = summarize_result(W, res_exact, chk, seed=seed, fisher="exact")
    rq = _rayleigh_by_group(J, W)
    del J

    # Monte Carlo FIM from n Gaussian inputs (seed + 1): every eigenvalue through the cheaper side (the
    # n x n Gram when n <= p), the top clusters by the block solver on products with the features X
    say(f"Monte Carlo FIM: n = {n} inputs, all eigenvalues (dense, cheaper side)")
    X = np.vstack(list(gaussian_input_chunks(n, d, seed + 1)))
    X = hidden_features(W, X)
    ev_mc = feature_spectrum(X, "all", vectors=False).eigenvalues
    ev_mc = np.concatenate([ev_mc, np.zeros(p - ev_mc.size)])
    say("Monte Carlo FIM: top clusters")
    cb = progress("  converged", n_top(d) + 10) if progress else None
    product = (lambda V: X.T @ (X @ V) / n)
    res_mc = matrix_spectrum(LinearOperator((p, p), matvec=product, matmat=product, dtype=np.float64),
                             n_top(d) + 10, d=d, X0=seeds, progress=cb, trace=float(np.einsum("ij,ij->", X, X) / n))
    del X
    mc = summarize_result(W, res_mc, chk, seed=seed, fisher="monte-carlo", n=n)
    exact["name"], mc["name"] = "exact", "monte-carlo"
    settings = [exact, mc]

    say("figures")
    figures = [
        {"file": "eigenvalue_distribution.png",
         "caption": "Eigenvalue distribution of the exact and Monte Carlo FIM (log scale); shaded: the three "
                    "clusters; dashed: Theorem 3 bounds; dotted: infinite-width limit values."},
        {"file": "rayleigh_quotients.png",
         "caption": "Rayleigh quotients of v^(0), the rows W_l, v^(a,b) and v^(gamma) against Theorem 3's bounds."},
        {"file": "principal_angles.png",
         "caption": "Cosines of the principal angles between each computed cluster eigenspace and its predicted span."},
    ]
    _figure_distribution(out / figures[0]["file"], d, {"exact": ev_exact, "monte-carlo": ev_mc},
                         {"exact": exact["clusters"]}, limit)
    _figure_rayleigh(out / figures[1]["file"], d, rq)
    _figure_angles(out / figures[2]["file"], {"exact": _all_cosines(W, res_exact), "monte-carlo": _all_cosines(W, res_mc)})

    density = None
    if density_p is not None:
        density = _density_stage(out, d, density_p, seed, density_vectors, density_steps, ev_exact, limit, say,
                                 progress)
        figures.append(density.pop("figure"))

    section_results = []
    if sections:
        for modname in SECTION_MODULES:
            if importlib.util.find_spec(modname) is None:
                continue
            mod = importlib.import_module(modname)
            say(f"section: {modname.rsplit('.', 1)[-1]}")
            sec = mod.reproduce_section(out, quick, None)
            section_results.append(sec)

    claims = _claims(d, p, settings, limit)
    if density is not None:
        claims.append({"claim": f"First three clusters carry >= 97.7 % of the trace [exact, p = {density_p}]",
                       "source": "Theorem 3 (1/2 + 3/(2 pi) = 0.97746)",
                       "predicted": f">= {TRACE_SHARE_BOUND:.4%} (as p -> inf)",
                       "measured": f"{density['top_fraction']:.4%} (matrix-free, max residual "
                                   f"{density['top_max_residual_rel']:.1e} lambda_max)",
                       "holds": density["top_fraction"] >= TRACE_SHARE_BOUND})
    for sec in section_results:
        claims.extend(sec.get("claims", []))
        figures.extend(sec.get("figures", []))
    config = {"d": d, "p": p, "seed": seed, "n": n, "quick": quick, "density_p": density_p, "scale": "1/p",
              "started": started,
              "seconds": time.perf_counter() - t_start, "command": "relufim reproduce" + (" --quick" if quick else "")}
    versions = _versions()
    summary = {"config": config, "versions": versions, "limit": limit, "settings": settings, "claims": claims,
               "figures": figures,
               "sections": [{"name": s.get("name"), "summary": s.get("summary", {}), "markdown": s.get("markdown", "")}
                            for s in section_results],
               "spectra": {"exact_all": ev_exact.tolist(), "monte_carlo_all": ev_mc.tolist()}}
    if density is not None:
        summary["density"] = density
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "report.md", _markdown(config, settings, claims, figures, section_results, versions))
    say(f"wrote {out / 'summary.json'}, {out / 'report.md'} and {len(figures)} figures")
    return summary


def _density_stage(out: Path, d: int, p: int, seed: int, n_vectors: int, steps: int, dense: np.ndarray,
                   limit: dict[str, float] | None, say: Log, progress: Callable[[str, int], Progress] | None) -> dict:
    """The eigenvalue distribution at width ``p`` by deflated SLQ; returns its summary and figure entry."""
    from ..spectrum.density import spectral_density

    t0 = time.perf_counter()
    say(f"spectral density at p = {p}: the three clusters matrix-free, then {steps} Lanczos steps "
        f"on {n_vectors} random vectors (one kernel pass per step)")
    W = sample_weights(d, p, seed=seed)
    sd = spectral_density(W, n_vectors=n_vectors, lanczos_steps=steps, bins=90, seed=seed,
                          deflation_progress=progress("  converged", n_top(d)) if progress else None,
                          progress=progress("  Lanczos steps", steps) if progress else None)
    name = f"eigenvalue_distribution_p{p}.png"
    _figure_density(out / name, d, sd, dense, limit)
    top = sd.top_eigenvalues
    return {**sd.to_dict(), "seconds": time.perf_counter() - t0, "top_eigenvalues": top.tolist(),
            "top_fraction": float(top.sum() / sd.trace_exact),
            "top_max_residual_rel": float(sd.top_residuals.max() / top[0]),
            "figure": {"file": name,
                       "caption": f"Eigenvalue distribution of the exact FIM at p = {p} (stochastic Lanczos quadrature "
                                  f"after deflating the three clusters; band: 2 standard errors over the random "
                                  f"vectors) over the dense one at p = {dense.size}; dotted: infinite-width limits."}}


def _rayleigh_by_group(J: np.ndarray, W: np.ndarray) -> dict[str, np.ndarray]:
    from ..theory.checks import rayleigh_quotients

    return rayleigh_quotients(J.__matmul__, theory_vectors(W))


def _all_cosines(W: np.ndarray, res: SpectrumResult) -> dict[str, np.ndarray]:

    if [c.size for c in res.clusters][:3] != list(predicted_cluster_sizes(W.shape[0])):
        return {}
    bases = theory_vectors(W).predicted_bases()
    return {f"cluster{i}": principal_cosines(res.cluster_vectors(i), bases[i - 1]) for i in (1, 2, 3)}

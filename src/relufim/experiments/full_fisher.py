r"""The FIM of all parameters: its spectrum, and curvature approximations judged against it (theory §15).

Computes and returns JSON-ready data for ``relufim spectrum --params all``, ``relufim approximations``
and the ``all-parameters`` section of ``relufim reproduce``; :mod:`relufim.report.full_fisher` draws
and formats it. Nothing here draws or writes a file.

The networks: ``W`` from :func:`relufim.sample_weights` (``scale``, default entries :math:`N(0, 1/p)`),
and the readout ``v`` with entries :math:`N(0, 1/p)` from its own stream of the same seed
(:func:`draw_network`), so that both blocks of ``F`` have traces of the same order
(:math:`\|W\|_F^2/2\approx d/2`, :math:`d\|v\|^2/2\approx d/2`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from scipy.sparse.linalg import LinearOperator

from .._validation import check_positive_float, check_positive_int
from ..fim.exact import fisher_matrix
from ..fim.full import (
    check_network,
    full_empirical_fisher,
    full_fisher_operator,
    full_hermite_features,
    full_monte_carlo_fisher,
)
from ..fim.sampled import gaussian_input_chunks
from ..model.weights import Scale, check_weight_sizes, sample_weights
from ..spectrum.density import matrix_spectral_density
from ..theory.curvature import (
    FullSpectrum,
    block_diagonal_fisher,
    compare_curvature,
    curvature_reference,
    diagonal_fisher,
    full_spectrum,
    kfac_fisher,
    teacher_gradient,
)
from ..theory.ntk import ntk_limit
from ._stages import stage_counter

__all__ = ["draw_network", "full_spectrum_summary", "approximations_summary", "check_approximations_arguments",
           "monte_carlo_error_constant", "APPROXIMATION_NAMES"]

Progress = Callable[[int, int], None]

#: The approximations :func:`approximations_summary` judges, in table order.
APPROXIMATION_NAMES = ("block-diagonal", "k-fac", "diagonal", "monte-carlo", "empirical")


def draw_network(d: int, p: int, seed: int | None = 0, scale: Scale = "1/p") -> tuple[np.ndarray, np.ndarray]:
    """Hidden weights ``W`` (d, p) of :func:`relufim.sample_weights` and a readout ``v`` (p,) with entries N(0, 1/p).

    ``v`` comes from its own stream (``SeedSequence([seed, 1])``), so ``W`` is the same as
    ``relufim spectrum`` draws for the same seed.

    Examples
    --------
    >>> W, v = draw_network(3, 50, seed=0)
    >>> W.shape, v.shape, bool(np.array_equal(W, sample_weights(3, 50, seed=0)))
    ((3, 50), (50,), True)
    """
    d = check_positive_int(d, "d")
    p = check_positive_int(p, "p")
    W = sample_weights(d, p, seed=seed, scale=scale)
    ss = np.random.SeedSequence([0 if seed is None else int(seed), 1]) if seed is not None else None
    v = np.random.default_rng(ss).standard_normal(p) / math.sqrt(p)
    return W, v


# ----------------------------------------------------------------------------- the spectrum

def full_spectrum_summary(d: int, p: int, seed: int | None = 0, *, scale: Scale = "1/p", sigma: float = 1.0,
                          extra: int = 10, method: Literal["auto", "dense", "matrix-free"] = "auto",
                          all_eigenvalues: bool = False, density: bool = False, density_vectors: int = 16,
                          density_steps: int = 60, tol: float = 1e-10, gap: float = 1.4,
                          progress: Progress | None = None, product_progress: Progress | None = None,
                          density_progress: Progress | None = None, client: Any = None,
                          seed_degree: int | Literal["auto"] = "auto") -> dict[str, Any]:
    r"""The spectrum of the FIM of all parameters for a drawn network: the record of ``relufim spectrum --params all``.

    Keys: everything :meth:`relufim.theory.curvature.FullSpectrum.to_dict` holds (``params: "all"``,
    ``P``, ``eigenvalues``, residuals, ``mean_eigenvalue``, ``second_moment``, ``lambda_max``,
    ``lambda_max_share``, the measured ``clusters``, ``null_space_dimension`` and ``null_space``, the
    readout's spectrum), plus ``seed``, ``scale``, ``gap_ratios`` (:math:`\lambda_i/\lambda_{i+1}` of the
    computed eigenvalues), ``limit`` (the infinite-width eigenvalue of each harmonic degree, :math:`d\,m_k`
    for the NTK of both layers with this :math:`\|v\|^2`, and its multiplicity :math:`N(d, k)`), ``seconds``;
    with ``all_eigenvalues`` also ``readout_all_eigenvalues``; with ``density``, the deflated SLQ estimate
    of the whole distribution (``density``: counts smoothed in log scale, with standard errors) on the
    operator the spectrum's products ran through (``operator`` of
    :class:`~relufim.theory.curvature.FullSpectrum`; one is built on the dense route), deflating the
    closed clusters with the spectrum's own converged eigenpairs (no second solve; theory §10.9).

    ``all_eigenvalues``: every eigenvalue by dense LAPACK and the numerical null space (the dense
    route; P x P memory). Otherwise the route is ``method`` (``"auto"``: dense up to P = 6000), or the
    products run on a Dask ``client`` (matrix-free; ``workers`` then lists each worker's throughput).
    ``seed_degree``: the block solver's start, as in :func:`~relufim.theory.curvature.full_spectrum`.

    Examples
    --------
    >>> s = full_spectrum_summary(3, 60, seed=0, all_eigenvalues=True)
    >>> s["params"], s["P"], s["null_space_dimension"], [c["size"] for c in s["clusters"]][:3]
    ('all', 240, 60, [1, 3, 5])
    """
    t0 = time.perf_counter()
    W, v = draw_network(d, p, seed, scale)
    k: Any = "all" if all_eigenvalues else "clusters"
    s = full_spectrum(W, v, k, sigma=sigma, method="dense" if all_eigenvalues else method, extra=extra, tol=tol,
                      gap=gap, progress=progress, product_progress=product_progress, client=client,
                      seed_degree=seed_degree)
    out = s.to_dict()
    lam = np.asarray(out["eigenvalues"])
    out["gap_ratios"] = [float(x) for x in lam[:-1] / np.where(lam[1:] > 0, lam[1:], np.nan)]
    out.update({"seed": seed, "scale": str(scale), "readout_scale": "N(0, 1/p)"})
    # the infinite-width prediction by harmonic degree: the NTK of both layers, Mercer eigenvalue d m_k (theory §15.5)
    lim = ntk_limit(np.eye(d)[:1], which="full", scale=scale, d=d, p=p, v_sq_norm=float(v @ v), max_degree=6)
    out["limit"] = {"degrees": lim.degrees.tolist(), "eigenvalues": [float(x) for x in lim.eigenvalues],
                    "multiplicities": lim.multiplicities.tolist(), "v_sq_norm": float(v @ v)}
    if all_eigenvalues:  # the readout's whole spectrum beside F's (p x p, LAPACK)
        out["readout_all_eigenvalues"] = [float(x) for x in np.linalg.eigvalsh(fisher_matrix(W, sigma=sigma))[::-1]]
    if density:
        op = _density_operator(s, W, v)
        kdef = sum(c["size"] for c in out["clusters"] if c["closed"]) or 0
        # the spectrum's pairs are of F / sigma^2 (SpectrumResult.from_pairs divides), as op's products are:
        # deflate them when certified, instead of solving the same top eigenproblem again
        reuse = kdef > 0 and s.result.eigenvectors is not None and bool(np.all(s.result.converged[:kdef]))
        sd = matrix_spectral_density(op, n_vectors=density_vectors, lanczos_steps=density_steps, deflate=kdef,
                                     X0=full_hermite_features(W, v) if kdef and not reuse else None, trace=s.trace,
                                     progress=density_progress, eigenpairs=s.result if reuse else None)
        counts, stderr = sd.smoothed_histogram()
        edges = sd.smoothing_edges()
        out["density"] = {"edges": edges.tolist(), "counts": counts.tolist(), "stderr": stderr.tolist(),
                          "deflated": kdef, "n_vectors": density_vectors, "lanczos_steps": density_steps,
                          "trace_estimate": sd.trace_estimate, "trace_exact": sd.trace_exact,
                          "zero_fraction_exact": p / (p * (d + 1))}
    out["seconds"] = time.perf_counter() - t0
    return out


def _density_operator(s: FullSpectrum, W: np.ndarray, v: np.ndarray) -> LinearOperator:
    r""":math:`F/\sigma^2` for the spectral density of ``s`` (its exact trace is ``s.trace``).

    The operator of :math:`F` the spectrum's products ran through (``s.operator``;
    :func:`~relufim.theory.curvature.full_spectrum` builds it at :math:`\sigma = 1` and divides the
    eigenvalues by :math:`\sigma^2`), its products divided by :math:`\sigma^2` as the pairs are. The
    dense route formed ``F`` and built none (it never runs on a cluster): one is built (theory §10.9).
    """
    op = full_fisher_operator(W, v) if s.operator is None else s.operator
    return op * (1.0 / s.sigma**2)


# ----------------------------------------------------------------------------- the approximations

def monte_carlo_error_constant(W: np.ndarray, v: np.ndarray, frobenius_norm: float, n: int = 200_000,
                               seed: int = 12345) -> tuple[float, float]:
    r"""The constant ``c`` of :math:`E\|F_n - F\|_F^2/\|F\|_F^2 = c/n` for i.i.d. inputs, with its standard error.

    :math:`E\|gg^\top - F\|_F^2 = E\|g\|^4 - \|F\|_F^2`, so :math:`c = E\|g\|^4/\|F\|_F^2 - 1`
    (:math:`\sigma = 1`), with :math:`E\|g\|^4` estimated from ``n`` inputs (theory §15.8), where
    :math:`\|g(x)\|^2 = \sum_j\mathrm{ReLU}(w_j\cdot x)^2 + \|x\|^2\sum_jv_j^2\mathbf 1[w_j\cdot x > 0]`.
    """
    d = W.shape[0]
    v2 = v * v
    m4 = []
    for x in gaussian_input_chunks(n, d, seed):
        z = x @ W  # ||grad f(x)||^2 = sum_j relu(w_j.x)^2 + ||x||^2 sum_j v_j^2 1[w_j.x > 0], O(p) per input
        g2 = (np.maximum(z, 0.0) ** 2).sum(axis=1) + (x * x).sum(axis=1) * ((z > 0) @ v2)
        m4.append(g2 * g2)
    q = np.concatenate(m4)
    f2 = frobenius_norm**2
    return float(q.mean() / f2 - 1.0), float(q.std(ddof=1) / math.sqrt(q.size) / f2)


def check_approximations_arguments(d: int, p: int, *, scale: Scale = "1/p", seeds: int = 1, noise: float = 0.1,
                                   n_values: Sequence[int] = (250,), teacher_width: int | None = None
                                   ) -> tuple[int, int, int, float, tuple[int, ...], int]:
    """The sizes and sample settings of :func:`approximations_summary`, checked before any work.

    Returns ``(d, p, seeds, noise, n_values, teacher_width)`` with ``n_values`` sorted and unique
    and ``teacher_width`` defaulting to ``p``. The CLI calls it before its progress output.

    Examples
    --------
    >>> check_approximations_arguments(3, 40, n_values=(400, 100, 400))
    (3, 40, 1, 0.1, (100, 400), 40)
    """
    d, p = check_weight_sizes(d, p, scale)
    seeds = check_positive_int(seeds, "seeds")
    noise = check_positive_float(noise, "noise")
    n_values = tuple(sorted({check_positive_int(n, "n") for n in n_values}))
    if not n_values:
        raise ValueError("n_values must hold at least one sample size.")
    q = p if teacher_width is None else check_positive_int(teacher_width, "teacher_width")
    if q <= d:
        raise ValueError(f"teacher_width must exceed d = {d} (hidden weights need d < p), got {q}.")
    return d, p, seeds, noise, n_values, q


def approximations_summary(d: int, p: int, seed: int | None = 0, *, scale: Scale = "1/p",
                           n_values: tuple[int, ...] = (250, 1000, 4000), seeds: int = 1, noise: float = 0.1,
                           damping: float | tuple[float, ...] = 1e-3, k: int | None = None,
                           teacher_width: int | None = None, progress: Progress | None = None) -> dict[str, Any]:
    r"""Each curvature approximation of the FIM of all parameters judged against the exact one (theory §15.7–15.8).

    The network ``(W, v)`` is :func:`draw_network`'s; the teacher another network of the same kind
    (``teacher_width`` units, default ``p``; seed offset 1000). The model's noise level is ``noise``
    (the FIM is :math:`F/\sigma^2`, :math:`\sigma` = ``noise``), and the data of the empirical Fisher are
    Gaussian inputs with labels :math:`y = f^*(x) + \sigma\varepsilon`. The gradient judged is the exact
    gradient of the population squared loss :math:`\frac12E[(f - f^*)^2]`; natural gradients are damped by
    ``damping`` times :math:`\lambda_{max}` (``F`` is singular: the rescaling directions; its positive
    eigenvalues reach down to ~1e-10 of :math:`\lambda_{max}`, where ``g`` carries no usable direction).

    Parameters
    ----------
    d, p : int
    seed : int
    scale : weight scale of ``W``
    n_values : tuple of int
        Sample sizes of the Monte Carlo and empirical Fishers (the error-against-``n`` curves).
    seeds : int
        Independent draws of the samples per ``n`` (means and standard errors over them).
    noise : float
        :math:`\sigma`.
    damping : float or tuple of float
        Damping of the natural gradients relative to :math:`\lambda_{max}` (several: the comparison
        at each, the first in the main records).
    k : int, optional
        Top eigenpairs compared (default ``d(d+3)/2``, where the spectrum has its widest gap).
    teacher_width : int, optional
    progress : callable(done, total), optional
        After each approximation judged.

    Returns
    -------
    dict
        ``d, p, P, seed, sigma, dampings, dampings_absolute, k, gap, teacher_width, gradient_norm,
        exact`` (top-``k`` eigenvalues), ``approximations`` (one record per approximation of
        :data:`APPROXIMATION_NAMES`, the sampled ones at the largest ``n``: relative Frobenius error,
        eigenvalue errors, principal angles, natural-gradient cosine and angle, seconds),
        ``sampled`` (per ``n``: mean, standard error and the values per seed of each measure for
        ``monte-carlo`` and ``empirical``, and ``predicted_monte_carlo``, the exact :math:`\sqrt{c/n}`
        law of the root-mean-square error with ``c`` from :func:`monte_carlo_error_constant`), ``seconds``.

    Examples
    --------
    >>> s = approximations_summary(2, 12, n_values=(100, 400), seeds=2)
    >>> [a["name"] for a in s["approximations"]]
    ['block-diagonal', 'k-fac', 'diagonal', 'monte-carlo', 'empirical']
    >>> s["sampled"]["n"], len(s["sampled"]["monte-carlo"]["relative_frobenius_error"])
    ([100, 400], 2)
    """
    t_start = time.perf_counter()
    d, p, seeds, noise, n_values, q = check_approximations_arguments(
        d, p, scale=scale, seeds=seeds, noise=noise, n_values=n_values, teacher_width=teacher_width)
    W, v = check_network(*draw_network(d, p, seed, scale))
    base = 0 if seed is None else int(seed)
    Wt, vt = draw_network(d, q, base + 1000, scale)
    sigma = noise
    g = teacher_gradient(W, v, Wt, vt) / sigma**2  # the gradient of the negative log-likelihood
    ref = curvature_reference(W, v, g, k=k, damping=damping, sigma=sigma)
    step = stage_counter(progress, 3 + 2 * len(n_values) * seeds)

    def judge(name: str, A: np.ndarray, t0: float, n: int | None = None) -> dict[str, Any]:
        """Compare ``A`` with the reference; ``seconds`` counts its construction (from ``t0``) and the comparison."""
        pairs = None
        if name == "diagonal":  # its top pairs: the largest entries and their unit vectors
            top = np.argsort(np.diag(A), kind="stable")[::-1][:ref.k]
            vecs = np.zeros((A.shape[0], ref.k))
            vecs[top, np.arange(ref.k)] = 1.0
            pairs = (np.diag(A)[top], vecs)
        rec = compare_curvature(ref, A, name, n=n, eigenpairs=pairs).to_dict()
        rec["seconds"] = time.perf_counter() - t0
        step()
        return rec

    records: list[dict[str, Any]] = []
    for name, build in (("block-diagonal", block_diagonal_fisher), ("k-fac", kfac_fisher),
                        ("diagonal", diagonal_fisher)):
        t0 = time.perf_counter()
        records.append(judge(name, build(W, v, sigma), t0))

    measures = ("relative_frobenius_error", "max_eigenvalue_error", "min_principal_cosine", "natural_gradient_cosine")
    sampled: dict[str, Any] = {"n": list(n_values), "seeds": seeds}
    last: dict[str, dict[str, Any]] = {}
    residual_scale = []
    for name in ("monte-carlo", "empirical"):
        per_n: dict[str, list[list[float]]] = {m: [] for m in measures}
        for n in n_values:
            vals: dict[str, list[float]] = {m: [] for m in measures}
            for s in range(seeds):
                t0 = time.perf_counter()
                stream = np.random.SeedSequence([base, 7, n, s])
                if name == "monte-carlo":
                    A = full_monte_carlo_fisher(W, v, n, seed=stream, sigma=sigma)
                else:
                    xs, ys = _teacher_data(Wt, vt, n, stream, sigma)
                    residual_scale.append(float(np.sqrt(np.mean((ys - np.maximum(xs @ W, 0.0) @ v) ** 2))))
                    A = full_empirical_fisher(W, v, xs, y=ys, sigma=sigma)
                rec = judge(name, A, t0, n=n)
                del A
                for m in measures:
                    vals[m].append(rec[m])
                if n == n_values[-1] and s == 0:
                    last[name] = rec
            for m in measures:
                per_n[m].append(vals[m])
        sampled[name] = {m: [float(np.mean(x)) for x in per_n[m]] for m in measures}
        sampled[name]["stderr"] = {m: [float(np.std(x, ddof=1) / math.sqrt(len(x))) if len(x) > 1 else None
                                       for x in per_n[m]] for m in measures}
        sampled[name]["values"] = per_n
    c, c_se = monte_carlo_error_constant(W, v, ref.frobenius_norm * sigma**2)
    sampled["predicted_monte_carlo"] = [math.sqrt(max(c, 0.0) / n) for n in n_values]
    sampled["error_constant"] = {"value": c, "stderr": c_se}
    records += [last["monte-carlo"], last["empirical"]]
    return {"d": d, "p": p, "P": p * (d + 1), "seed": seed, "scale": str(scale), "sigma": sigma,
            "dampings": list(ref.relative_dampings), "dampings_absolute": list(ref.dampings), "k": ref.k,
            "gap": ref.gap, "teacher_width": q,
            "gradient_norm": float(np.linalg.norm(g)), "exact": {"eigenvalues": [float(x) for x in ref.eigenvalues]},
            "residual_rms": float(np.mean(residual_scale)) if residual_scale else None,
            "approximations": records, "sampled": sampled, "seconds": time.perf_counter() - t_start}


def _teacher_data(Wt: np.ndarray, vt: np.ndarray, n: int, seed: np.random.SeedSequence,
                  sigma: float) -> tuple[np.ndarray, np.ndarray]:
    r"""``n`` Gaussian inputs and labels :math:`y = f^*(x) + \sigma\varepsilon` of the teacher."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, Wt.shape[0]))
    return x, np.maximum(x @ Wt, 0.0) @ vt + sigma * rng.standard_normal(n)

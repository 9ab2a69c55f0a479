r"""Deep random networks, Gaussian inputs with a covariance, and a real data set (theory §14): compute, return data.

* :func:`deep_spectrum_summary`: the clustered spectrum of one deep network's readout FIM (exact for one
  layer, Monte Carlo otherwise), its residuals, the infinite-width limit of its clusters and the principal
  angles between the computed clusters and the function-space spans :math:`E[h_L\psi]` (what
  ``relufim spectrum --widths ...`` prints).
* :func:`digits_comparison`: the empirical FIM of the digits (:func:`relufim.model.data.load_inputs`) next to
  the Gaussian prediction with the data's own covariance: cluster sizes, shares, and how much of each
  predicted cluster subspace the data's top eigenvectors capture.
* :func:`depth_shares`: the share of the trace per harmonic degree against depth, in the limit and for finite
  networks by Monte Carlo with error bars over seeds.

Nothing here draws or writes: :mod:`relufim.report.depth` renders what these return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._validation import check_choice, check_positive_int, peak_memory_bytes
from ..fim.deep import deep_features, deep_fisher
from ..fim.sampled import gaussian_input_chunks
from ..model.data import load_inputs
from ..model.harmonics import harmonic_multiplicity
from ..model.network import Network, check_covariance, covariance_root, network
from ..spectrum import SpectrumResult, feature_spectrum, matrix_spectrum, n_top, predicted_cluster_sizes
from ..theory.depth import (
    DepthLimit,
    depth_limit_spectrum,
    network_limit_spectrum,
    predicted_subspaces,
    subspace_alignment,
)

__all__ = ["deep_spectrum_summary", "digits_comparison", "depth_shares", "limit_by_depth", "cluster_shares"]

Progress = Callable[[int, int], None]


def cluster_shares(eigenvalues: np.ndarray, trace: float, d: int) -> list[float]:
    """Share of ``trace`` in the top eigenvalues cut at the predicted cluster sizes ``1, d, d(d+1)/2 - 1``.

    Examples
    --------
    >>> cluster_shares(np.array([4.0, 2.0, 2.0, 1.0, 0.5, 0.5]), 10.0, 2)
    [0.4, 0.4, 0.15]
    """
    ev = np.asarray(eigenvalues, dtype=float)
    cuts = np.cumsum((0,) + predicted_cluster_sizes(d))
    return [float(ev[cuts[i]:cuts[i + 1]].sum() / trace) for i in range(3) if cuts[i + 1] > cuts[i]]


def _result_record(res: SpectrumResult) -> dict[str, Any]:
    """The parts of a SpectrumResult a summary keeps (no vectors)."""
    rec = res.to_dict()
    keep = ("eigenvalues", "trace", "top_fraction", "clusters", "max_residual", "converged", "method", "fisher", "n")
    out = {k: rec[k] for k in keep}
    out["max_cluster_residual"] = res.max_cluster_residual
    out["clusters_converged"] = res.clusters_converged
    out["cluster_sizes"] = [c.size for c in res.clusters][:3]
    return out


def _cut_means(eigenvalues: np.ndarray, d: int) -> list[float] | None:
    """Means of the top eigenvalues cut at the predicted sizes (None when fewer were computed)."""
    cuts = np.cumsum((0,) + predicted_cluster_sizes(d))
    if eigenvalues.size < cuts[-1]:
        return None
    return [float(eigenvalues[cuts[i]:cuts[i + 1]].mean()) for i in range(3) if cuts[i + 1] > cuts[i]]


def _limit_values(net: Network, input_cov: np.ndarray | None) -> dict[str, float] | None:
    """Limit cluster values of the network (None for inputs with a covariance: the limit assumes N(0, I))."""
    if input_cov is not None:
        return None
    try:
        return network_limit_spectrum(net, kmax=3).cluster_values()
    except ValueError:  # d = 1: no harmonic degrees to speak of
        return None


def deep_spectrum_summary(d: int = 10, widths: int | Sequence[int] = (1000,), *, method: str = "exact",
                          n: int | None = None, seed: int = 0, activation: str = "relu", scale: Any = "1/p",
                          input_cov: np.ndarray | None = None, extra: int = 10, alignment_n: int = 20_000,
                          progress: Progress | None = None) -> dict[str, Any]:
    r"""The clustered spectrum of a deep random network's readout FIM, with the limit and the predicted spans.

    Parameters
    ----------
    d : int
    widths : int or sequence of int
        Hidden widths ``p_1..p_L`` (an int: one hidden layer, today's model).
    method : {"exact", "monte-carlo"}
        ``"exact"``: one hidden layer only (Lemma 1 on :math:`\Sigma^{1/2}W`); ``"monte-carlo"``: ``n``
        inputs :math:`N(0,\Sigma)` streamed once for :math:`J` and the function-space vectors.
    n : int, optional
        Monte Carlo inputs (required with ``method="monte-carlo"``).
    seed : int
        Seed of the weights and of the Monte Carlo inputs.
    activation, scale
        As :func:`relufim.model.network.network`.
    input_cov : array (d, d), optional
        Covariance of the inputs (validated: symmetric positive definite).
    extra : int
        Eigenpairs beyond the ``d(d+3)/2`` of the clusters.
    alignment_n : int
        With ``method="exact"``, Monte Carlo inputs for the function-space vectors.
    progress : callable(done, total), optional
        Chunks of the Monte Carlo pass.

    Returns
    -------
    dict
        ``d, depth, widths, variances, activation, scale, seed, method, n, input_cov`` (its eigenvalues or
        None), ``eigenvalues, trace, top_fraction, clusters, cluster_sizes, predicted_sizes, cluster_shares,
        cluster_means`` (the top eigenvalues cut at the predicted sizes), ``max_residual, converged, limit``
        (limit cluster values and ``top_fraction`` :math:`F_L`; None with a covariance),
        ``alignment`` (:func:`relufim.theory.depth.subspace_alignment` without the cosine lists, plus the
        vectors' relative sampling errors), ``seconds, memory_peak_bytes``.

    Examples
    --------
    >>> s = deep_spectrum_summary(3, (200, 100), method="monte-carlo", n=4000, extra=2)
    >>> s["depth"], s["cluster_sizes"], len(s["eigenvalues"])
    (2, [1, 3, 5], 11)
    """
    t0 = time.perf_counter()
    check_choice(method, "method", ("exact", "monte-carlo"))
    net = network(d, widths, activation, scale)
    if method == "exact" and net.depth > 1:
        raise ValueError(f"method 'exact' exists only for one hidden layer (Lemma 1); widths {list(net.widths)} have "
                         f"L = {net.depth}: use method 'monte-carlo' with n (e.g. n=200000).")
    if method == "exact" and n is not None:
        raise ValueError("n is only used with method 'monte-carlo'.")
    if method == "monte-carlo":
        if n is None:
            raise ValueError("method 'monte-carlo' needs the number of Gaussian inputs n, e.g. n=200000.")
        n = check_positive_int(n, "n", minimum=2)
    extra = check_positive_int(extra, "extra", minimum=0)
    cov = None if input_cov is None else check_covariance(input_cov, net.d)
    Ws = net.sample(seed)
    p = net.widths[-1]
    k = min(p, n_top(net.d) + extra)
    if method == "exact":
        J = deep_fisher(Ws, method="exact", input_cov=cov, activation=net.activation)
        ps = predicted_subspaces(Ws, n=check_positive_int(alignment_n, "alignment_n", minimum=2), seed=seed,
                                 activation=net.activation, input_cov=cov, gram=False)
        res = matrix_spectrum(J, k, d=net.d)
    else:
        ps = predicted_subspaces(Ws, n=n, seed=seed, activation=net.activation, input_cov=cov, progress=progress)
        if n < p:  # the n x n side is cheaper: the features of the same inputs
            x = np.vstack(list(gaussian_input_chunks(n, net.d, seed)))
            if cov is not None:
                x = x @ covariance_root(cov, net.d)
            res = feature_spectrum(deep_features(Ws, x, activation=net.activation), k, d=net.d)
        else:
            res = matrix_spectrum(ps.gram, k, d=net.d)
    al = subspace_alignment(res, ps.vectors) if res.eigenvectors.shape[1] >= n_top(net.d) else None
    rec = _result_record(res)
    out: dict[str, Any] = {
        **net.to_dict(), "seed": seed, "method": method, "n": n,
        "input_cov": None if cov is None else np.sort(np.linalg.eigvalsh(cov))[::-1].tolist(),
        **{key: rec[key] for key in ("eigenvalues", "trace", "top_fraction", "clusters", "cluster_sizes",
                                     "max_residual", "converged", "max_cluster_residual", "clusters_converged")},
        "solver": rec["method"], "predicted_sizes": list(predicted_cluster_sizes(net.d)),
        "cluster_shares": cluster_shares(res.eigenvalues, res.trace, net.d) if res.eigenvalues.size >= n_top(net.d)
        else None,
        "cluster_means": _cut_means(res.eigenvalues, net.d),
        "limit": _limit_values(net, cov),
        "alignment": None if al is None else {
            "min_cosines": [c["min_cosine"] for c in al["clusters"]],
            "mean_cosines": [c["mean_cosine"] for c in al["clusters"]],
            "captured": [c["captured"] for c in al["clusters"]], "sizes_match": al["sizes_match"],
            "vector_relative_errors": ps.relative_errors(), "vector_samples": ps.n},
    }
    out["seconds"] = time.perf_counter() - t0
    out["memory_peak_bytes"] = peak_memory_bytes()
    return out


# ----------------------------------------------------------------------------- real inputs

def digits_comparison(widths: int | Sequence[int] = (2000,), dim: int = 10, *, seed: int = 0,
                      activation: str = "relu", scale: Any = "1/p", n_gaussian: int = 100_000, extra: int = 10,
                      spectrum_size: int = 400, progress: Progress | None = None) -> dict[str, Any]:
    r"""The empirical FIM of the digits next to the Gaussian prediction with the data's own covariance (theory §14.7).

    The inputs are :func:`relufim.model.data.load_inputs` ``("digits", dim)`` (centred, top ``dim`` principal
    axes, mean squared norm ``dim``), with covariance :math:`\Sigma`. On the same network:

    * *data*: :math:`J_{\rm data} = \frac1n\sum_t h_L(x_t)h_L(x_t)^\top` over the 1797 images (its spectrum
      through the ``n x n`` side);
    * *Gaussian prediction*: :math:`J_\Sigma = E_{x\sim N(0,\Sigma)}[h_Lh_L^\top]`, exact for one layer
      (Lemma 1 on :math:`\Sigma^{1/2}W`), else Monte Carlo with ``n_gaussian`` inputs;
    * the *predicted cluster subspaces*: the eigenvectors of :math:`J_\Sigma` cut at the sizes
      :math:`1, d, d(d+1)/2-1`, and the function-space spans :math:`E_{N(0,\Sigma)}[h_L\psi(x\Sigma^{-1/2})]`;
      ``captured`` is the share of each that the data's top :math:`d(d+3)/2` eigenvectors contain.

    Returns
    -------
    dict
        ``data`` (description), ``d, depth, widths, activation, scale, seed``, ``empirical`` and ``gaussian``
        (each: ``eigenvalues`` (top ``spectrum_size``), ``trace, top_fraction, clusters, cluster_sizes,
        cluster_shares, cluster_means, max_residual``; ``gaussian.method``), ``predicted_sizes``,
        ``captured_gaussian_clusters``, ``captured_function_spans`` (three shares each),
        ``gaussian_function_alignment`` (min cosines of the Gaussian clusters against the function spans),
        ``cluster_mean_ratios`` (data / Gaussian), ``seconds``.

    Examples
    --------
    >>> s = digits_comparison(widths=300, dim=3, n_gaussian=5000, spectrum_size=20)
    >>> s["predicted_sizes"], s["empirical"]["cluster_sizes"], len(s["gaussian"]["eigenvalues"])
    ([1, 3, 5], [1, 3, 5], 20)
    """
    t0 = time.perf_counter()
    data = load_inputs("digits", dim)
    net = network(data.d, widths, activation, scale)
    d = net.d
    Ws = net.sample(seed)
    p = net.widths[-1]
    k = min(p, n_top(d) + check_positive_int(extra, "extra", minimum=0))
    spectrum_size = check_positive_int(spectrum_size, "spectrum_size")
    # the data: every nonzero eigenvalue through the n x n side, and the top pairs with vectors
    X = deep_features(Ws, data.x, activation=net.activation)
    res_data = feature_spectrum(X, k, d=d)
    all_data = feature_spectrum(X, "all", vectors=False).eigenvalues
    # the Gaussian prediction with the data's covariance, and its function-space spans (one Monte Carlo pass)
    ps = predicted_subspaces(Ws, n=check_positive_int(n_gaussian, "n_gaussian", minimum=2), seed=seed + 1,
                             activation=net.activation, input_cov=data.covariance, gram=net.depth > 1,
                             progress=progress)
    if net.depth == 1:
        Jg = deep_fisher(Ws, method="exact", input_cov=data.covariance, activation=net.activation)
        g_method = "exact (Lemma 1 on Sigma^(1/2) W)"
    else:
        Jg = ps.gram
        g_method = f"Monte Carlo, n = {ps.n}"
    res_gauss = matrix_spectrum(Jg, k, d=d)
    all_gauss = np.linalg.eigvalsh(Jg)[::-1]
    # how much of each predicted subspace the data's top eigenvectors capture
    top = n_top(d)
    U_data = res_data.eigenvectors[:, :top]
    cuts = np.cumsum((0,) + predicted_cluster_sizes(d))
    captured_g, captured_f = [], []
    for i, V in enumerate(ps.vectors):
        G = res_gauss.eigenvectors[:, cuts[i]:cuts[i + 1]]
        captured_g.append(float(np.sum((U_data.T @ G) ** 2) / G.shape[1]))
        Q, _ = np.linalg.qr(V)
        captured_f.append(float(np.sum((U_data.T @ Q) ** 2) / Q.shape[1]))
    al_g = subspace_alignment(res_gauss, ps.vectors)

    def record(res: SpectrumResult, values: np.ndarray, trace: float) -> dict[str, Any]:
        rec = _result_record(res)
        ev = res.eigenvalues
        means = _cut_means(ev, d)
        return {**{key: rec[key] for key in ("trace", "top_fraction", "clusters", "cluster_sizes", "max_residual",
                                             "converged")},
                "eigenvalues": values[:spectrum_size].tolist(), "cluster_shares": cluster_shares(ev, trace, d),
                "cluster_means": means}

    emp = record(res_data, all_data, res_data.trace)
    gau = {**record(res_gauss, all_gauss, res_gauss.trace), "method": g_method}
    return {
        "data": data.to_dict(), **net.to_dict(), "seed": seed, "n": data.n, "predicted_sizes":
            list(predicted_cluster_sizes(d)), "empirical": emp, "gaussian": gau,
        "captured_gaussian_clusters": captured_g, "captured_function_spans": captured_f,
        "gaussian_function_alignment": [c["min_cosine"] for c in al_g["clusters"]],
        "cluster_mean_ratios": [a / b for a, b in zip(emp["cluster_means"], gau["cluster_means"])],
        "seconds": time.perf_counter() - t0,
    }


# ----------------------------------------------------------------------------- shares against depth

def limit_by_depth(d: int = 10, depths: Sequence[int] = tuple(range(1, 11)), kmax: int = 4,
                   activation: str = "relu") -> dict[str, Any]:
    r"""Limit shares per degree, :math:`F_L(d)` and :math:`\lambda_k` for each depth (default convention; theory §14.3).

    Returns ``{"d", "depths", "kmax", "shares"`` (rows: depth, columns: ``k = 0..kmax``), ``"eigenvalues",
    "top_fraction"`` (:math:`F_L`), ``"multiplicities", "degree_le2_largest"`` (whether the levels of degrees
    0, 1, 2 are the three largest up to ``k = 20``) ``}``.

    Examples
    --------
    >>> lim = limit_by_depth(10, [1, 2], kmax=3)
    >>> [round(f, 4) for f in lim["top_fraction"]]
    [0.9839, 0.9489]
    """
    rows: list[DepthLimit] = [depth_limit_spectrum(d, check_positive_int(L, "depth"), max(kmax, 20), activation)
                              for L in depths]
    largest = []
    for lim in rows:
        ev = lim.eigenvalues
        largest.append(bool(ev[:3].min() > ev[3:].max()))
    return {"d": d, "depths": [int(L) for L in depths], "kmax": kmax, "activation": activation,
            "shares": [lim.shares[:kmax + 1].tolist() for lim in rows],
            "eigenvalues": [lim.eigenvalues[:kmax + 1].tolist() for lim in rows],
            "top_fraction": [lim.top_fraction for lim in rows],
            "multiplicities": [harmonic_multiplicity(d, k) for k in range(kmax + 1)],
            "degree_le2_largest": largest}


def depth_shares(d: int = 10, depths: Sequence[int] = (1, 2, 3), *, width: int = 1000, n: int = 20_000,
                 seeds: int = 3, activation: str = "relu", progress: Progress | None = None) -> dict[str, Any]:
    r"""Finite-width shares of the trace in the three clusters against depth, by Monte Carlo, with error bars.

    For each depth ``L`` a network of widths ``(width, ..., width, width // 2)`` (default convention) and
    ``seeds`` draws: :math:`J` exact for ``L = 1`` (Lemma 1), else from ``n`` Monte Carlo inputs; the shares
    of the trace in the top eigenvalues cut at ``1, d, d(d+1)/2 - 1``. Error bars: the standard error over
    the draws (it holds the input sampling as well). The limit of each share is the degree's
    :math:`N(d,k)\mu_k(K_L)`.

    Returns
    -------
    dict
        ``d, width, n, seeds, depths, widths`` (per depth), ``mean, stderr`` (rows: depth; columns: the three
        clusters and their sum), ``limit`` (same layout), ``z`` ((mean - limit) / stderr), ``seconds``.

    Examples
    --------
    >>> s = depth_shares(3, [1, 2], width=200, n=3000, seeds=2)
    >>> len(s["mean"]), len(s["mean"][0])
    (2, 4)
    """
    t0 = time.perf_counter()
    d = check_positive_int(d, "d", minimum=2)
    width = check_positive_int(width, "width", minimum=2)
    seeds = check_positive_int(seeds, "seeds", minimum=2)
    depths = [check_positive_int(L, "depth") for L in depths]
    total = len(depths) * seeds
    means, errs, limits, widths_used = [], [], [], []
    done = 0
    for L in depths:
        widths = (width,) * (L - 1) + (width // 2,) if L > 1 else (width // 2,)
        widths_used.append(list(widths))
        net = network(d, widths, activation)
        vals = []
        for s in range(seeds):
            Ws = net.sample(s)
            J = deep_fisher(Ws, method="exact", activation=net.activation) if L == 1 else \
                deep_fisher(Ws, n=n, seed=1000 + s, activation=net.activation)
            ev = np.linalg.eigvalsh(J)[::-1]
            sh = cluster_shares(ev, float(np.trace(J)), d)
            vals.append(sh + [sum(sh)])
            done += 1
            if progress is not None:
                progress(done, total)
        vals = np.array(vals)
        means.append(vals.mean(axis=0).tolist())
        errs.append((vals.std(axis=0, ddof=1) / np.sqrt(seeds)).tolist())
        lim = network_limit_spectrum(net, kmax=2)
        sh = lim.shares[:3].tolist()
        limits.append(sh + [lim.top_fraction])
    m, e, lm = np.array(means), np.array(errs), np.array(limits)
    z = np.where(e > 0, (m - lm) / np.where(e > 0, e, 1.0), 0.0)
    return {"d": d, "width": width, "n": n, "seeds": seeds, "activation": activation, "depths": depths,
            "widths": widths_used, "mean": means, "stderr": errs, "limit": limits, "z": z.tolist(),
            "seconds": time.perf_counter() - t0}

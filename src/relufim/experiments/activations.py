"""Softplus against ReLU (the 2022 paper, theory §8): cluster sizes and share of the trace side by side."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model.weights import Scale, sample_weights
from ..spectrum import predicted_cluster_sizes, spectrum
from ..theory.limit import limit_cluster_values

__all__ = ["softplus_vs_relu_summary"]


def softplus_vs_relu_summary(d: int = 10, p: int = 2000, seed: int = 0, scale: Scale = "1/d",
                             activations: tuple[str, ...] = ("relu", "softplus")) -> dict[str, Any]:
    """Three-cluster structure of the exact FIM for softplus and ReLU on the same ``W``.

    Returns ``{"d", "p", "seed", "scale", "predicted_sizes", <activation>: {cluster_sizes,
    sizes_match, cluster_means, top_fraction, trace, limit}}``. ``scale="1/d"`` keeps the
    column norms near 1, where softplus is far from linear (with ``"1/p"`` the norms are
    ~ sqrt(d/p) and softplus is nearly affine: its third cluster shrinks like 1/p).
    Dense LAPACK eigenvalues (``p`` up to a few thousand).

    Examples
    --------
    >>> s = softplus_vs_relu_summary(d=3, p=300, seed=0)
    >>> s["relu"]["cluster_sizes"], s["softplus"]["cluster_sizes"]
    ([1, 3, 5], [1, 3, 5])
    """
    W = sample_weights(d, p, seed=seed, scale=scale)
    out: dict[str, Any] = {"d": d, "p": p, "seed": seed, "scale": scale,
                           "predicted_sizes": list(predicted_cluster_sizes(d))}
    sizes = predicted_cluster_sizes(d)
    for name in activations:
        res = spectrum(W, k="clusters", activation=name, method="dense")
        e = res.eigenvalues
        means = [float(e[0]), float(e[1:1 + sizes[1]].mean()), float(e[1 + sizes[1]:sum(sizes)].mean())]
        try:
            limit = limit_cluster_values(d, name, scale, p)
        except ValueError:
            limit = None
        out[name] = {"cluster_sizes": [c.size for c in res.clusters],
                     "sizes_match": tuple(c.size for c in res.clusters) == sizes,
                     "cluster_means": means, "top_fraction": res.top_fraction, "trace": res.trace,
                     "limit": limit, "next_eigenvalue": float(e[sum(sizes)]) if e.size > sum(sizes) else np.nan}
    return out

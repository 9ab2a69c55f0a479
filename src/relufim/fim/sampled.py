r"""Sampled Fisher information: Monte Carlo over fresh Gaussian inputs and the empirical FIM (theory §3).

:math:`J^{(n)} = \frac1n\sum_t X(x_t)^\top X(x_t)`. Its nonzero spectrum equals that of the
``n x n`` Gram :math:`XX^\top/n`; :func:`relufim.spectrum` uses the cheaper side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from .._validation import check_dense_fits, check_inputs, check_positive_int, check_sigma, check_weights
from ..model.activations import Activation, get_activation

__all__ = ["monte_carlo_fisher", "empirical_fisher", "hidden_features", "gaussian_input_chunks", "INPUT_CHUNK"]

Progress = Callable[[int, int], None]

def hidden_features(W: np.ndarray, x: np.ndarray, activation: str | Activation = "relu") -> np.ndarray:
    r"""Hidden layer :math:`X = \phi(xW)` for inputs ``x`` of shape ``(n, d)``; returns ``(n, p)`` (theory §1).

    Examples
    --------
    >>> W = np.array([[1.0, -1.0]])
    >>> hidden_features(W, np.array([[2.0], [-3.0]]))
    array([[2., 0.],
           [0., 3.]])
    """
    W = check_weights(W)
    x = check_inputs(x, W.shape[0])
    return get_activation(activation).phi(x @ W)


#: Inputs are drawn in chunks of this many rows, each from its own spawned seed, so the
#: same ``(n, seed)`` gives the same samples whatever batch size a caller uses.
INPUT_CHUNK = 4096


def gaussian_input_chunks(n: int, d: int, seed: int | np.random.SeedSequence | None) -> Iterator[np.ndarray]:
    """Yield the ``n`` standard Gaussian inputs of ``(n, seed)`` as ``(m, d)`` chunks (m <= 4096).

    Deterministic for an integer seed and independent of how the caller batches them,
    so :func:`monte_carlo_fisher` and the Monte Carlo spectrum see the same samples.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    n_chunks = -(-n // INPUT_CHUNK)
    for c, child in enumerate(ss.spawn(n_chunks)):
        m = min(INPUT_CHUNK, n - c * INPUT_CHUNK)
        yield np.random.default_rng(child).standard_normal((m, d))


def monte_carlo_fisher(W: np.ndarray, n: int, *, seed: int | None = None,
                       sigma: float = 1.0, activation: str | Activation = "relu",
                       return_stderr: bool = False, progress: Progress | None = None):
    r"""Monte Carlo FIM :math:`J^{(n)} = \frac1n\sum_t X(x_t)^\top X(x_t)`, :math:`x_t\sim N(0,I_d)`.

    Inputs are drawn and consumed in chunks of 4096 (:func:`gaussian_input_chunks`),
    so memory stays ``O(4096 p + p^2)`` for any ``n``.

    Parameters
    ----------
    W : array (d, p)
    n : int
        Number of Gaussian input samples (>= 1).
    seed : int, optional
        Seed of the input stream (the same samples as ``spectrum(W, fisher="monte-carlo")``).
    sigma : float
        Returns :math:`J^{(n)}/\sigma^2`.
    activation : str or Activation
    return_stderr : bool
        Also return the entrywise standard error of the mean,
        :math:`\sqrt{(\overline{(X_iX_j)^2} - \overline{X_iX_j}^2)/(n-1)}` (needs ``n >= 2``).
    progress : callable(done, total), optional

    Returns
    -------
    J_n : numpy.ndarray (p, p)
    stderr : numpy.ndarray (p, p), only if ``return_stderr``

    Examples
    --------
    >>> import relufim as rf
    >>> W = rf.sample_weights(2, 5, seed=0)
    >>> Jn, se = rf.monte_carlo_fisher(W, n=20000, seed=1, return_stderr=True)
    >>> bool(np.all(np.abs(Jn - rf.fisher_matrix(W)) < 6 * se + 1e-12))
    True
    """
    W = check_weights(W)
    n = check_positive_int(n, "n")
    sigma = check_sigma(sigma)
    act = get_activation(activation)
    d, p = W.shape
    if return_stderr and n < 2:
        raise ValueError("return_stderr=True needs n >= 2 samples.")
    check_dense_fits(p, what=f"the dense {p} x {p} Monte Carlo FIM", copies=2.0 if return_stderr else 1.0,
                     alternative="use relufim.spectrum(W, method='monte-carlo') which never forms it, or a smaller p")
    acc = np.zeros((p, p))
    acc2 = np.zeros((p, p)) if return_stderr else None
    steps = -(-n // INPUT_CHUNK)
    for s, x in enumerate(gaussian_input_chunks(n, d, seed)):
        X = act.phi(x @ W)
        acc += X.T @ X
        if acc2 is not None:
            X2 = X * X
            acc2 += X2.T @ X2
        if progress is not None:
            progress(s + 1, steps)
    acc /= n
    scale = 1.0 / (sigma * sigma)
    if acc2 is None:
        return acc * scale if scale != 1.0 else acc
    acc2 /= n
    var = np.maximum(acc2 - acc * acc, 0.0) * (n / (n - 1))
    return acc * scale, np.sqrt(var / n) * scale


def empirical_fisher(W: np.ndarray, x: np.ndarray, *, sigma: float = 1.0,
                     activation: str | Activation = "relu") -> np.ndarray:
    r"""Empirical FIM on the user's inputs ``x`` (n, d): :math:`\frac{1}{n\sigma^2} X^\top X`.

    Its nonzero spectrum equals that of the ``n x n`` Gram :math:`XX^\top/(n\sigma^2)`;
    :func:`relufim.spectrum` uses the cheaper side.

    Examples
    --------
    >>> W = np.array([[1.0, 0.0, -1.0]])
    >>> empirical_fisher(W, np.array([[1.0], [-2.0]]))
    array([[0.5, 0. , 0. ],
           [0. , 0. , 0. ],
           [0. , 0. , 2. ]])
    """
    W = check_weights(W)
    x = check_inputs(x, W.shape[0])
    sigma = check_sigma(sigma)
    p = W.shape[1]
    check_dense_fits(p, what=f"the dense {p} x {p} empirical FIM")
    X = get_activation(activation).phi(x @ W)
    return (X.T @ X) / (x.shape[0] * sigma * sigma)

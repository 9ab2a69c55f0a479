r"""Sampled Fisher information: Monte Carlo over fresh Gaussian inputs and the empirical FIM (theory §3).

:math:`J^{(n)} = \frac1n\sum_t X(x_t)^\top X(x_t)`. Its nonzero spectrum equals that of the
``n x n`` Gram :math:`XX^\top/n`; :func:`relufim.spectrum` uses the cheaper side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from scipy.linalg.blas import dsyrk

from .._validation import check_dense_fits, check_inputs, check_positive_int, check_sigma, check_weights
from ..model.activations import Activation, get_activation
from .tiles import symmetrize_upper

__all__ = ["monte_carlo_fisher", "empirical_fisher", "hidden_features", "gaussian_input_chunks", "input_chunks",
           "INPUT_CHUNK", "input_chunk_count", "StreamedGram", "mean_stderr"]

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


def input_chunk_count(n: int) -> int:
    """How many chunks of :data:`INPUT_CHUNK` rows ``n`` inputs come in (the length of a progress bar).

    >>> input_chunk_count(1), input_chunk_count(4096), input_chunk_count(4097)
    (1, 1, 2)
    """
    return -(-n // INPUT_CHUNK)


def gaussian_input_chunks(n: int, d: int, seed: int | np.random.SeedSequence | None) -> Iterator[np.ndarray]:
    """Yield the ``n`` standard Gaussian inputs of ``(n, seed)`` as ``(m, d)`` chunks (m <= 4096).

    Deterministic for an integer seed and independent of how the caller batches them,
    so :func:`monte_carlo_fisher` and the Monte Carlo spectrum see the same samples.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    for start in range(0, n, INPUT_CHUNK):  # one child per chunk, spawned as needed: O(1) memory in n
        child = ss.spawn(1)[0]  # the same children, in order, as ss.spawn(n_chunks)
        yield np.random.default_rng(child).standard_normal((min(INPUT_CHUNK, n - start), d))



def input_chunks(x: np.ndarray) -> Iterator[np.ndarray]:
    """The rows of given inputs ``x`` (n, d) in the same ``(m, d)`` chunks as :func:`gaussian_input_chunks`."""
    return (x[i:i + INPUT_CHUNK] for i in range(0, x.shape[0], INPUT_CHUNK))


class StreamedGram:
    r"""The running mean :math:`\frac1n\sum_t h_th_t^\top` of chunks of features, and its entrywise standard error.

    The one accumulator of every sampled FIM (theory §3): the readout's, a deep network's last layer
    (theory §14) and all parameters' (theory §15). Each chunk ``H`` (rows are samples) costs one BLAS
    ``syrk`` on the upper triangle (half the flops of ``H^T H``); with ``stderr`` a second one on
    ``H * H`` gives :math:`\overline{(h_ih_j)^2}`, from which :func:`mean_stderr` forms the error.

    Examples
    --------
    >>> H = np.random.default_rng(0).standard_normal((50, 3))
    >>> acc = StreamedGram(3, stderr=True)
    >>> acc.add(H[:20]); acc.add(H[20:])
    >>> mean, se = acc.result()
    >>> bool(np.allclose(mean, H.T @ H / 50)), se.shape
    (True, (3, 3))
    """

    def __init__(self, p: int, *, stderr: bool = False) -> None:
        self._acc = np.zeros((p, p), order="F")
        self._acc2 = np.zeros((p, p), order="F") if stderr else None
        self.n = 0

    def add(self, H: np.ndarray, H2: np.ndarray | None = None) -> None:
        """Add the rows of ``H`` (m, p); ``H2 = H * H`` may be passed when the caller has it already."""
        H = np.asarray(H, dtype=np.float64)
        dsyrk(1.0, H.T, beta=1.0, c=self._acc, trans=0, lower=0, overwrite_c=1)
        if self._acc2 is not None:
            dsyrk(1.0, (H * H if H2 is None else H2).T, beta=1.0, c=self._acc2, trans=0, lower=0, overwrite_c=1)
        self.n += H.shape[0]

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(mean, stderr)`` over the rows added (``stderr`` None unless asked for); consumes the accumulator."""
        if self.n == 0:
            raise ValueError("no samples were added.")
        mean = symmetrize_upper(self._acc).T  # symmetric: its transpose is the same matrix, C-ordered
        mean /= self.n
        if self._acc2 is None:
            return mean, None
        second = symmetrize_upper(self._acc2).T
        second /= self.n
        return mean, mean_stderr(second, mean, self.n)


def mean_stderr(second: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    r"""Standard error of a sample mean from the mean of squares: :math:`\sqrt{(\overline{a^2}-\bar a^2)/(n-1)}`.

    Overwrites ``second``. Needs ``n >= 2``.

    Examples
    --------
    >>> a = np.array([1.0, 2.0, 4.0])
    >>> se = mean_stderr(np.array([np.mean(a * a)]), np.array([a.mean()]), 3)
    >>> bool(np.isclose(se[0], a.std(ddof=1) / np.sqrt(3)))
    True
    """
    second -= mean * mean
    np.maximum(second, 0.0, out=second)
    second *= 1.0 / (n - 1)
    return np.sqrt(second, out=second)


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
    acc = StreamedGram(p, stderr=return_stderr)
    steps = input_chunk_count(n)
    for s, x in enumerate(gaussian_input_chunks(n, d, seed)):
        acc.add(act.phi(x @ W))
        if progress is not None:
            progress(s + 1, steps)
    mean, se = acc.result()
    scale = 1.0 / (sigma * sigma)
    if scale != 1.0:
        mean *= scale
    if se is None:
        return mean
    return mean, se * scale


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

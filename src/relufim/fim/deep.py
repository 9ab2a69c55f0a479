r"""The readout FIM of a network with several fixed random hidden layers (theory §14).

For weights ``[W_1, ..., W_L]`` (:meth:`relufim.model.network.Network.sample`) the features are
:math:`h_L(x)` (:func:`deep_features`) and the FIM of the readout ``v`` is

.. math::  I = J/\sigma^2,\qquad J = E_x\big[h_L(x)\,h_L(x)^\top\big]\quad(p_L\times p_L).

Three ways to get it (:func:`deep_fisher`):

* ``"exact"`` — only for one hidden layer, where Lemma 1 gives every entry: delegated to
  :func:`relufim.fisher_matrix` of :math:`\Sigma^{1/2}W_1` (the whitening identity, theory §14.6);
  for ``L >= 2`` no closed form per entry exists (the inputs of the last layer are not Gaussian);
* ``"monte-carlo"`` — :math:`\frac1n\sum_t h_L(x_t)h_L(x_t)^\top` over ``n`` inputs
  :math:`x_t\sim N(0,\Sigma)` drawn by :func:`relufim.fim.gaussian_input_chunks` from ``seed`` (the
  same standard draws as :func:`relufim.monte_carlo_fisher`, times :math:`\Sigma^{1/2}`), streamed
  chunk by chunk with entrywise standard errors;
* ``"empirical"`` — the same average over the user's inputs ``x``.

:func:`feature_moments` is the streaming engine under both sampled routes: one pass over the
inputs, 4096 at a time, accumulates :math:`\sum_t h_th_t^\top` by a rank-``m`` symmetric update
(BLAS ``syrk``, in place: half the flops of a general product and no ``p_L x p_L`` temporary),
optionally :math:`\sum_t (h_t\circ h_t)(h_t\circ h_t)^\top` for the standard errors and
:math:`\sum_t h_t\psi(x_t)^\top` for test functions :math:`\psi` (the function-space vectors of
theory §14.5). Memory is :math:`O(4096\sum_lp_l + p_L^2)` whatever ``n`` is, and a request that
cannot fit is refused before anything is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._validation import check_choice, check_inputs, check_memory, check_positive_int, check_sigma
from ..model.activations import Activation, get_activation
from ..model.network import check_layer_weights, covariance_root, whitened_weights
from .exact import fisher_matrix
from .sampled import (
    INPUT_CHUNK,
    StreamedGram,
    empirical_fisher,
    gaussian_input_chunks,
    input_chunk_count,
    input_chunks,
    mean_stderr,
    monte_carlo_fisher,
)

__all__ = ["FeatureMoments", "deep_features", "feature_moments", "deep_fisher", "moments_memory_bytes"]

Progress = Callable[[int, int], None]
TestFunctions = Callable[[np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------- forward pass

def _activate_inplace(act: Activation, Z: np.ndarray) -> np.ndarray:
    """``phi(Z)`` written over ``Z`` where the activation allows it (the leaky-ReLU family), else a new array."""
    a = act.relu_slope
    if a == 0.0:
        return np.maximum(Z, 0.0, out=Z)
    if a is not None:
        return np.multiply(Z, a, out=Z, where=Z < 0)
    return act.phi(Z)


class _Forward:
    """Forward passes through fixed layers, reusing one buffer per layer for chunks of up to ``rows`` inputs."""

    def __init__(self, weights: list[np.ndarray], act: Activation, rows: int):
        self.weights = weights
        self.act = act
        self.buffers = [np.empty((rows, W.shape[1])) for W in weights]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        m = x.shape[0]
        h = x
        for W, buf in zip(self.weights, self.buffers):
            Z = np.matmul(h, W, out=buf[:m])
            h = _activate_inplace(self.act, Z)
        return h


def deep_features(weights: list[np.ndarray], x: np.ndarray, *, activation: str | Activation = "relu") -> np.ndarray:
    r"""Features :math:`h_L(x)` of the last hidden layer for inputs ``x`` (n, d); returns ``(n, p_L)`` (theory §14.1).

    :math:`h_0 = x`, :math:`h_l = \phi(h_{l-1}W_l)` (rows are inputs). For one layer this is
    :func:`relufim.fim.hidden_features`.

    Examples
    --------
    >>> Ws = [np.array([[1.0, -1.0]]), np.array([[1.0], [2.0]])]
    >>> deep_features(Ws, np.array([[3.0], [-1.0]]))
    array([[3.],
           [2.]])
    """
    weights = check_layer_weights(weights)
    x = check_inputs(x, weights[0].shape[0])
    act = get_activation(activation)
    n, p = x.shape[0], weights[-1].shape[1]
    check_memory(8.0 * n * p, f"the {n} x {p} array of features", "pass fewer inputs at a time")
    forward = _Forward(weights, act, min(n, INPUT_CHUNK))
    out = np.empty((n, p))
    start = 0
    for chunk in input_chunks(x):
        out[start:start + chunk.shape[0]] = forward(chunk)
        start += chunk.shape[0]
    return out


# ----------------------------------------------------------------------------- the streaming engine

@dataclass(frozen=True)
class FeatureMoments:
    r"""What one streamed pass over the inputs accumulates (theory §3, §14).

    Attributes
    ----------
    gram : (p_L, p_L) or None
        :math:`\frac1n\sum_t h_L(x_t)h_L(x_t)^\top` (the sampled :math:`J`, symmetric); None when not asked for.
    gram_stderr : (p_L, p_L) or None
        Entrywise standard error of the mean, :math:`\sqrt{(\overline{(h_ih_j)^2}-\overline{h_ih_j}^2)/(n-1)}`.
    cross : (p_L, q) or None
        :math:`\frac1n\sum_t h_L(x_t)\psi(x_t)^\top` for the test functions :math:`\psi`.
    cross_stderr : (p_L, q) or None
        Its entrywise standard error.
    n : int
        Number of inputs.
    source : str
        ``"monte-carlo"`` or ``"empirical"``.
    """

    gram: np.ndarray | None = field(repr=False)
    gram_stderr: np.ndarray | None = field(repr=False)
    cross: np.ndarray | None = field(repr=False)
    cross_stderr: np.ndarray | None = field(repr=False)
    n: int
    source: str


def moments_memory_bytes(widths: list[int] | tuple[int, ...], d: int, *, stderr: bool = False,
                         n_functions: int = 0, gram: bool = True) -> float:
    r"""Bytes :func:`feature_moments` allocates beyond the weights: chunk buffers and accumulators.

    One buffer of ``4096`` rows per layer, the input chunk (and its image under
    :math:`\Sigma^{1/2}`), with ``gram`` the ``p_L x p_L`` accumulator (two with ``stderr``) and one
    ``p_L x p_L`` temporary for the final symmetrization, the squared features with ``stderr``, and the
    test functions' arrays.

    Examples
    --------
    >>> round(moments_memory_bytes([2000, 2000, 1000], 10) / 1e6)   # MB
    180
    """
    m = INPUT_CHUNK
    pL = widths[-1]
    need = m * (sum(widths) + 2 * d)
    if gram:
        need += 2 * pL * pL + (pL * pL if stderr else 0)
    if stderr:
        need += m * pL
    if n_functions:
        need += (m + pL) * n_functions * (2 if stderr else 1)
    return 8.0 * need


def _check_functions_output(out: Any, m: int) -> np.ndarray:
    arr = np.asarray(out, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != m:
        raise ValueError(f"functions(x) must return an array of shape (m, q) for a chunk of m = {m} inputs, "
                         f"got shape {arr.shape}.")
    return arr


def feature_moments(
    weights: list[np.ndarray],
    *,
    n: int | None = None,
    x: np.ndarray | None = None,
    seed: int | np.random.SeedSequence | None = None,
    activation: str | Activation = "relu",
    input_cov: np.ndarray | None = None,
    functions: TestFunctions | None = None,
    stderr: bool = False,
    gram: bool = True,
    cross_stderr: bool | None = None,
    progress: Progress | None = None,
) -> FeatureMoments:
    r"""Stream inputs through the network once: :math:`E[h_Lh_L^\top]`, :math:`E[h_L\psi^\top]` and their errors.

    Give exactly one of ``n`` (Monte Carlo: ``n`` inputs :math:`x\sim N(0,\Sigma)` from ``seed``) and
    ``x`` (empirical: the user's inputs, streamed in chunks of 4096 rows).

    Parameters
    ----------
    weights : list of arrays
        ``[W_1, ..., W_L]``, ``W_l`` of shape ``(p_{l-1}, p_l)``.
    n : int, optional
        Number of Gaussian inputs (Monte Carlo).
    x : array (n, d), optional
        The inputs (empirical).
    seed : int, optional
        Seed of the Gaussian stream (:func:`relufim.fim.gaussian_input_chunks`).
    activation : str or Activation
    input_cov : array (d, d), optional
        Covariance :math:`\Sigma` of the Gaussian inputs (default the identity); validated
        (symmetric positive definite). Monte Carlo only.
    functions : callable, optional
        :math:`\psi`: maps a chunk of inputs ``(m, d)`` (the inputs the network sees, with their
        covariance) to ``(m, q)`` values; their products with the features are averaged too.
    stderr : bool
        Also the entrywise standard errors (needs ``n >= 2``; about 1.5x the work of the Gram).
    cross_stderr : bool, optional
        Standard errors of the test functions' moments only (default: as ``stderr``); they cost an
        elementwise square, not the second ``p_L^2`` update of the Gram's errors.
    gram : bool
        Accumulate :math:`E[h_Lh_L^\top]` (default). ``False`` skips it (``p_L^2`` work per input) when only
        the moments of ``functions`` are wanted; ``gram`` and ``gram_stderr`` are then None.
    progress : callable(done, total), optional
        Called after each chunk.

    Returns
    -------
    FeatureMoments

    Examples
    --------
    >>> from relufim.model.network import network
    >>> Ws = network(2, [30, 20]).sample(0)
    >>> mom = feature_moments(Ws, n=5000, seed=1, stderr=True)
    >>> mom.gram.shape, bool(np.all(mom.gram_stderr >= 0)), bool(np.allclose(mom.gram, mom.gram.T))
    ((20, 20), True, True)
    """
    weights = check_layer_weights(weights)
    act = get_activation(activation)
    d = weights[0].shape[0]
    if not gram and functions is None:
        raise ValueError("gram=False leaves nothing to compute without functions.")
    if (n is None) == (x is None):
        raise ValueError("give exactly one of n (Monte Carlo over N(0, input_cov) inputs) and x (the empirical "
                         "average over your inputs).")
    if functions is not None and not callable(functions):
        raise TypeError(f"functions must be a callable psi(x) -> array (m, q), got {type(functions).__name__}.")
    if x is not None:
        if input_cov is not None:
            raise ValueError("input_cov is the law of the Monte Carlo inputs; with x the inputs are taken as given "
                             "(leave input_cov out).")
        if seed is not None:
            raise ValueError("seed is for the Monte Carlo inputs; with x the inputs are taken as given.")
        x = check_inputs(x, d)
        total = x.shape[0]
        source = "empirical"
    else:
        total = check_positive_int(n, "n")
        source = "monte-carlo"
    cross_stderr = stderr if cross_stderr is None else bool(cross_stderr)
    if (stderr or cross_stderr) and total < 2:
        raise ValueError("stderr=True needs at least 2 inputs.")
    R = None if input_cov is None else covariance_root(input_cov, d)
    widths = [W.shape[1] for W in weights]
    p = widths[-1]
    q_guess = 0 if functions is None else 64
    check_memory(moments_memory_bytes(widths, d, stderr=stderr, n_functions=q_guess, gram=gram)
                 + (8.0 * INPUT_CHUNK * p if cross_stderr and not stderr else 0.0),
                 f"the streamed FIM of a network with widths {widths} (p_L = {p}: a {p} x {p} accumulator"
                 + (" and its standard errors" if stderr else "") + ")",
                 "use a smaller last width p_L" + (" or stderr=False" if stderr else ""))

    forward = _Forward(weights, act, INPUT_CHUNK)
    acc = StreamedGram(p, stderr=stderr) if gram else None
    cross = cross2 = None
    steps = input_chunk_count(total)
    chunks = input_chunks(x) if x is not None else gaussian_input_chunks(total, d, seed)
    for s, chunk in enumerate(chunks):
        if R is not None:
            chunk = chunk @ R
        H = forward(chunk)
        H2 = H * H if stderr and gram else None
        if acc is not None:
            acc.add(H, H2)
        if functions is not None:
            Psi = _check_functions_output(functions(chunk), chunk.shape[0])
            if cross is None:
                cross = np.zeros((p, Psi.shape[1]))
                cross2 = np.zeros((p, Psi.shape[1])) if cross_stderr else None
            cross += H.T @ Psi
            if cross2 is not None:
                cross2 += (H2 if H2 is not None else H * H).T @ (Psi * Psi)
        if progress is not None:
            progress(s + 1, steps)

    mean = gram_se = cross_se = None
    if acc is not None:
        mean, gram_se = acc.result()
    if cross is not None:
        cross /= total
        if cross2 is not None:
            cross2 /= total
            cross_se = mean_stderr(cross2, cross, total)
    return FeatureMoments(gram=mean, gram_stderr=gram_se, cross=cross, cross_stderr=cross_se, n=total, source=source)


# ----------------------------------------------------------------------------- the FIM

def deep_fisher(
    weights: list[np.ndarray],
    *,
    method: Literal["exact", "monte-carlo", "empirical"] = "monte-carlo",
    n: int | None = None,
    x: np.ndarray | None = None,
    seed: int | None = None,
    activation: str | Activation = "relu",
    input_cov: np.ndarray | None = None,
    sigma: float = 1.0,
    return_stderr: bool = False,
    progress: Progress | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    r"""The FIM of the readout of a network with fixed random hidden layers, :math:`I = J/\sigma^2` (theory §14).

    Parameters
    ----------
    weights : list of arrays
        ``[W_1, ..., W_L]`` (:meth:`relufim.model.network.Network.sample`).
    method : {"exact", "monte-carlo", "empirical"}
        ``"exact"``: one hidden layer only (Lemma 1; :func:`relufim.fisher_matrix` of
        :math:`\Sigma^{1/2}W_1`); ``"monte-carlo"``: ``n`` Gaussian inputs from ``seed``;
        ``"empirical"``: the inputs ``x`` (n, d).
    input_cov : array (d, d), optional
        Covariance of the Gaussian inputs (exact and Monte Carlo; default the identity).
    sigma : float
        Output noise; ``sigma=1`` returns ``J``.
    return_stderr : bool
        Sampled methods: also return the entrywise standard error.
    progress : callable(done, total), optional

    Returns
    -------
    J : numpy.ndarray (p_L, p_L)
    stderr : numpy.ndarray (p_L, p_L), only with ``return_stderr``

    Notes
    -----
    One hidden layer is today's model, and every route delegates to its one home: the exact FIM to
    :func:`relufim.fisher_matrix`, Monte Carlo to :func:`relufim.monte_carlo_fisher` (of
    :math:`\Sigma^{1/2}W_1`: the same law of features, theory §14.6) and the empirical FIM to
    :func:`relufim.empirical_fisher`. Deeper networks go through :func:`feature_moments`.

    Examples
    --------
    >>> import relufim as rf
    >>> from relufim.model.network import network
    >>> Ws = network(3, [40]).sample(0)
    >>> bool(np.array_equal(deep_fisher(Ws, method="exact"), rf.fisher_matrix(rf.sample_weights(3, 40, seed=0))))
    True
    >>> J = deep_fisher(network(3, [40, 30]).sample(0), n=2000, seed=1)
    >>> J.shape
    (30, 30)
    """
    weights = check_layer_weights(weights)
    check_choice(method, "method", ("exact", "monte-carlo", "empirical"))
    sigma = check_sigma(sigma)
    act = get_activation(activation)
    L = len(weights)

    def first_layer() -> np.ndarray:  # one layer on N(0, Sigma) inputs is Sigma^(1/2) W_1 on standard ones (§14.6)
        return weights[0] if input_cov is None else whitened_weights(weights, input_cov)[0]

    if method == "exact":
        if n is not None or x is not None or seed is not None or return_stderr:
            raise ValueError("method='exact' takes no n, x, seed or return_stderr (nothing is sampled).")
        if L > 1:
            raise ValueError(f"method='exact' exists only for one hidden layer (Lemma 1); this network has L = {L}: "
                             "for L >= 2 the inputs of the last layer are not Gaussian and J has no closed form per "
                             "entry (theory §14.1). Use method='monte-carlo' with n=... (or 'empirical' with x).")
        return fisher_matrix(first_layer(), sigma=sigma, activation=act, progress=progress)
    if method == "monte-carlo":
        if x is not None:
            raise ValueError("x is for method='empirical'; with method='monte-carlo' give n (and seed).")
        if n is None:
            raise ValueError("method='monte-carlo' needs the number of Gaussian inputs n, e.g. n=20000.")
        if L == 1:
            return monte_carlo_fisher(first_layer(), n, seed=seed, sigma=sigma, activation=act,
                                      return_stderr=return_stderr, progress=progress)
        mom = feature_moments(weights, n=n, seed=seed, activation=act, input_cov=input_cov, stderr=return_stderr,
                              progress=progress)
    else:
        if x is None:
            raise ValueError("method='empirical' needs the inputs x of shape (n, d).")
        if n is not None or seed is not None or input_cov is not None:
            raise ValueError("with method='empirical' the inputs are x as given: leave n, seed and input_cov out.")
        if L == 1 and not return_stderr:
            return empirical_fisher(weights[0], x, sigma=sigma, activation=act)
        mom = feature_moments(weights, x=x, activation=act, stderr=return_stderr, progress=progress)
    scale = 1.0 / (sigma * sigma)
    J = mom.gram if scale == 1.0 else mom.gram * scale
    if not return_stderr:
        return J
    return J, (mom.gram_stderr if scale == 1.0 else mom.gram_stderr * scale)

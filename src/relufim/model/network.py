r"""Networks with several fixed random hidden layers, and Gaussian inputs with any covariance (theory §14).

The model (theory §14.1): :math:`h_0 = x\in\mathbb R^d`, :math:`h_l = \phi(W_l^\top h_{l-1})\in\mathbb R^{p_l}`
for :math:`l = 1..L`, with fixed :math:`W_l\in\mathbb R^{p_{l-1}\times p_l}` (:math:`p_0 = d`) of i.i.d.
:math:`N(0, s_l)` entries, and a readout :math:`y = h_L\cdot v + \varepsilon`; only ``v`` is learned.
:class:`Network` describes such a network (``d``, the widths, the activation and the entry
variances :math:`s_l`); :func:`network` builds one from a weight convention and
:meth:`Network.sample` draws its weights, a list ``[W_1, ..., W_L]``.

**Weight conventions** (``scale=``; theory §14.4). With :math:`p_0 = d`:

============= ========================================================= ====================================
``scale``     entry variances :math:`s_l`                                limit eigenvalue :math:`\lambda_k` (ReLU)
============= ========================================================= ====================================
``"1/p"``     ``L = 1``: :math:`1/p_1` (today's model, the same draw);    :math:`\tfrac d2\,\mu_k(K_L)`
(default)     ``L >= 2``: :math:`2/p_{l-1}` for :math:`l < L` (He) and
              :math:`d/(p_{L-1}p_L)` for the last layer
``"he"``      :math:`2/p_{l-1}` for every layer (fan-in, He)              :math:`p_L\,\mu_k(K_L)`
``"1/d"``     :math:`1/p_{l-1}` for every layer (fan-in, LeCun)           :math:`2^{-L}p_L\,\mu_k(K_L)`
``"1/width"`` :math:`1/p_l` for every layer                               :math:`2^{-L}d\,\mu_k(K_L)`
a float       that variance for every layer
a sequence    one variance per layer
============= ========================================================= ====================================

(:math:`K_L` the ``L``-fold composition of the normalized ReLU dual, theory §14.2.) Why the default:
at ``L = 1`` it *is* the papers' :math:`N(0, 1/p)` draw, bit for bit (``Network.sample(seed)`` returns
``[sample_weights(d, p, seed)]``). For deeper networks the inner layers use the fan-in (He) variance
:math:`2/p_{l-1}`, which is ReLU's scale-preserving choice: a unit of every inner layer has
:math:`E h_{l,k}(x)^2\to\|x\|^2/d`, so activations neither vanish nor explode with depth. The last layer
then sees inputs whose coordinates have the size of the papers' ``x`` (second moment about 1) and gets
the papers' :math:`1/p` per unit, rescaled by the fan-in ratio :math:`d/p_{L-1}`: its pre-activations
have variance :math:`s_L\|h_{L-1}\|^2\to\|x\|^2/p_L`, exactly the papers' :math:`\|x\|^2/p` for one layer.
Consequently :math:`\operatorname{tr}J\to d/2` (the papers' trace) at every depth and width, and the
limit eigenvalues :math:`\tfrac d2\mu_k(K_L)` do not depend on the widths: only the shape of the
kernel changes with depth.

**Gaussian inputs with covariance** :math:`\Sigma` (theory §14.6). For :math:`x\sim N(0,\Sigma)` write
:math:`x = z\,\Sigma^{1/2}` with :math:`z\sim N(0, I_d)` (row vectors, the symmetric square root). Then
:math:`xW_1 = z\,(\Sigma^{1/2}W_1)`: the network with first layer :math:`\Sigma^{1/2}W_1` on standard
inputs is the same network on :math:`N(0,\Sigma)` inputs, and for one hidden layer
:math:`J(W;\Sigma) = J(\Sigma^{1/2}W; I)` (the whitening identity, :func:`whitened_weights`).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_memory, check_positive_float, check_positive_int, check_square_matrix
from .activations import Activation, get_activation
from .weights import sample_weights

__all__ = [
    "Network",
    "network",
    "check_widths",
    "check_layer_weights",
    "check_covariance",
    "covariance_root",
    "whitened_weights",
    "layer_variances",
    "CONVENTIONS",
    "MAX_DEPTH",
]

#: The named weight conventions accepted by ``scale=`` (the table of the module docstring).
CONVENTIONS = ("1/p", "he", "1/d", "1/width")

#: Deepest network accepted (the limit recursion and the forward passes are linear in depth).
MAX_DEPTH = 1000


def check_widths(widths: Any, name: str = "widths") -> tuple[int, ...]:
    """Hidden widths ``p_1..p_L`` as a tuple of ints ``>= 1`` (an int is one hidden layer).

    Examples
    --------
    >>> check_widths([2000, 2000, 1000]), check_widths(500)
    ((2000, 2000, 1000), (500,))
    """
    if isinstance(widths, (str, bytes)) or widths is None:
        raise TypeError(f"{name} must be a sequence of positive integers (p_1, ..., p_L), got {widths!r}.")
    if isinstance(widths, numbers.Integral) and not isinstance(widths, bool):
        widths = (int(widths),)
    if isinstance(widths, np.ndarray):
        if widths.ndim != 1:
            raise ValueError(f"{name} must be 1-D (p_1, ..., p_L), got an array of shape {widths.shape}.")
        widths = widths.tolist()
    try:
        items = list(widths)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of positive integers (p_1, ..., p_L), got {widths!r}.") from None
    if not items:
        raise ValueError(f"{name} is empty: a network needs at least one hidden layer (depth >= 1), "
                         "e.g. widths=(1000,).")
    if len(items) > MAX_DEPTH:
        raise ValueError(f"{name} has {len(items)} layers; at most {MAX_DEPTH} are supported.")
    out = []
    for i, w in enumerate(items):
        if isinstance(w, bool) or not isinstance(w, (numbers.Integral, float)) or \
                (isinstance(w, float) and not w.is_integer()):
            raise TypeError(f"{name}[{i}] must be a positive integer width, got {w!r}.")
        if int(w) < 1:
            raise ValueError(f"{name}[{i}] must be a positive width (>= 1), got {int(w)}; every hidden layer "
                             "needs at least one unit.")
        out.append(int(w))
    return tuple(out)


def layer_variances(d: int, widths: Sequence[int], scale: str | float | Sequence[float] = "1/p") -> tuple[float, ...]:
    r"""Entry variances :math:`s_1..s_L` of the weight convention ``scale`` (module docstring, theory §14.4).

    Examples
    --------
    >>> layer_variances(10, [1000])                     # today's model: 1/p
    (0.001,)
    >>> layer_variances(10, [2000, 2000, 1000])         # He inside, the papers' scale in the last layer
    (0.2, 0.001, 5e-06)
    >>> layer_variances(4, [100, 50], "1/width")
    (0.01, 0.02)
    """
    d = check_positive_int(d, "d")
    widths = check_widths(widths)
    L = len(widths)
    fan_in = (d,) + widths[:-1]
    if isinstance(scale, str):
        key = scale.strip().lower().replace(" ", "")
        if key == "1/p":
            if L == 1:
                return (1.0 / widths[0],)
            return tuple(2.0 / f for f in fan_in[:-1]) + (d / (fan_in[-1] * widths[-1]),)
        if key == "he":
            return tuple(2.0 / f for f in fan_in)
        if key == "1/d":
            return tuple(1.0 / f for f in fan_in)
        if key == "1/width":
            return tuple(1.0 / p for p in widths)
        if key == "unit":
            raise ValueError("scale='unit' (unit-norm columns) is not an entry variance: a network's layers have "
                             "i.i.d. Gaussian entries; draw unit columns with relufim.sample_weights(d, p, "
                             "scale='unit') and use the one-hidden-layer functions.")
        raise ValueError(f"scale must be one of {', '.join(repr(c) for c in CONVENTIONS)}, a positive float (the "
                         f"entry variance of every layer) or one variance per layer, got {scale!r}.")
    if isinstance(scale, numbers.Real) and not isinstance(scale, bool):
        s = check_positive_float(scale, "scale (the entry variance)")
        return (s,) * L
    if isinstance(scale, (Sequence, np.ndarray)) and not isinstance(scale, bytes):
        vals = list(scale)
        if len(vals) != L:
            raise ValueError(f"scale must give one entry variance per layer ({L} for widths {list(widths)}), "
                             f"got {len(vals)}.")
        return tuple(check_positive_float(v, f"scale[{i}] (the entry variance of layer {i + 1})")
                     for i, v in enumerate(vals))
    raise TypeError(f"scale must be one of {', '.join(repr(c) for c in CONVENTIONS)}, a positive float or a "
                    f"sequence of floats, got {scale!r}.")


@dataclass(frozen=True)
class Network:
    r"""A network with ``L`` fixed random hidden layers and a learned readout (theory §14.1).

    Build it with :func:`network`; draw its weights with :meth:`sample`.

    Attributes
    ----------
    d : int
        Input dimension :math:`p_0`.
    widths : tuple of int
        Hidden widths :math:`p_1..p_L`; the FIM of the readout is :math:`p_L\times p_L`.
    variances : tuple of float
        Entry variance :math:`s_l` of each :math:`W_l` (:math:`p_{l-1}\times p_l`).
    activation : Activation
        The same :math:`\phi` in every layer.
    scale : str or None
        The named convention the variances came from (None when given explicitly).
    """

    d: int
    widths: tuple[int, ...]
    variances: tuple[float, ...]
    activation: Activation
    scale: str | None = "1/p"

    @property
    def depth(self) -> int:
        """Number of hidden layers ``L``."""
        return len(self.widths)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """Shapes ``(p_{l-1}, p_l)`` of the weight matrices."""
        fan_in = (self.d,) + self.widths[:-1]
        return list(zip(fan_in, self.widths))

    @property
    def gains(self) -> tuple[float, ...]:
        r"""Per-layer variance factors of the pre-activations: :math:`s_1` and :math:`s_lp_{l-1}` for ``l >= 2``.

        The pre-activation variance of layer ``l`` at input ``x`` is ``gains[l-1]`` times
        :math:`\|x\|^2` (``l = 1``) or the mean square :math:`\|h_{l-1}\|^2/p_{l-1}` of the layer
        below (theory §14.2).
        """
        fan_in = (1,) + self.widths[:-1]
        return tuple(s * f for s, f in zip(self.variances, fan_in))

    def sample(self, seed: int | np.random.Generator | None = None) -> list[np.ndarray]:
        """Draw the weights ``[W_1, ..., W_L]``, ``W_l`` of shape ``(p_{l-1}, p_l)``.

        One generator, ``numpy.random.default_rng(seed)``, draws the layers in order, each by
        :func:`relufim.sample_weights` with its variance; so a one-layer network with the default
        convention returns exactly ``[sample_weights(d, p, seed)]``.

        Examples
        --------
        >>> net = network(3, [50])
        >>> bool(np.array_equal(net.sample(0)[0], sample_weights(3, 50, seed=0)))
        True
        >>> [W.shape for W in network(3, [20, 10]).sample(0)]
        [(3, 20), (20, 10)]
        """
        check_memory(8.0 * sum(a * b for a, b in self.shapes), f"the weights of a network with widths "
                     f"{list(self.widths)}", "use smaller widths")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return [sample_weights(a, b, seed=rng, scale=s) for (a, b), s in zip(self.shapes, self.variances)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: ``d, widths, depth, variances, activation, scale``."""
        return {"d": self.d, "widths": list(self.widths), "depth": self.depth, "variances": list(self.variances),
                "activation": self.activation.name, "scale": self.scale}


def network(d: int, widths: int | Sequence[int], activation: str | Activation = "relu",
            scale: str | float | Sequence[float] = "1/p") -> Network:
    r"""Describe a network with hidden widths ``p_1..p_L`` on ``d`` inputs (theory §14.1, §14.4).

    Parameters
    ----------
    d : int
        Input dimension (>= 1).
    widths : int or sequence of int
        Hidden widths; an int is one hidden layer (today's model).
    activation : str, Activation or callable
        Any activation of the registry (the same in every layer).
    scale : {"1/p", "he", "1/d", "1/width"}, float or sequence of floats
        The weight convention (module docstring): ``"1/p"`` (default) is today's model at
        ``L = 1`` and He inner layers with the papers' scale in the last layer for ``L >= 2``.

    Returns
    -------
    Network

    Examples
    --------
    >>> net = network(10, [2000, 2000, 1000])
    >>> net.depth, net.variances[0], net.gains
    (3, 0.2, (0.2, 2.0, 0.01))
    """
    d = check_positive_int(d, "d")
    widths = check_widths(widths)
    act = get_activation(activation)
    variances = layer_variances(d, widths, scale)
    name = scale.strip().lower().replace(" ", "") if isinstance(scale, str) else None
    return Network(d=d, widths=widths, variances=variances, activation=act, scale=name)


# ----------------------------------------------------------------------------- validation of weights

def check_layer_weights(weights: Any, d: int | None = None, name: str = "weights") -> list[np.ndarray]:
    """Validate the weights of a network: a list ``[W_1, ..., W_L]`` of finite 2-D arrays whose shapes chain.

    ``W_l`` has shape ``(p_{l-1}, p_l)`` (inner layers may narrow: ``p_{l-1} >= p_l`` is allowed);
    ``d``, when given, must equal ``p_0``. A bare array is refused (it is not a list of layers:
    for one hidden layer pass ``[W]``). Returns C-contiguous float64 arrays.

    Examples
    --------
    >>> [W.shape for W in check_layer_weights([np.ones((3, 5)), np.ones((5, 2))])]
    [(3, 5), (5, 2)]
    >>> check_layer_weights(np.ones((3, 5)))
    Traceback (most recent call last):
    ...
    TypeError: weights must be a list of layer weights [W_1, ..., W_L] (W_l of shape (p_(l-1), p_l)), got an \
array of shape (3, 5); for one hidden layer pass [W].
    """
    if isinstance(weights, np.ndarray):
        raise TypeError(f"{name} must be a list of layer weights [W_1, ..., W_L] (W_l of shape (p_(l-1), p_l)), got "
                        f"an array of shape {weights.shape}; for one hidden layer pass [W].")
    if not isinstance(weights, (list, tuple)):
        raise TypeError(f"{name} must be a list of layer weights [W_1, ..., W_L], got {type(weights).__name__}; "
                        "draw them with relufim.model.network.network(d, widths).sample(seed).")
    if not weights:
        raise ValueError(f"{name} is empty: a network needs at least one hidden layer (depth >= 1).")
    out: list[np.ndarray] = []
    for i, W in enumerate(weights):
        label = f"{name}[{i}] (W_{i + 1})"
        arr = np.asarray(W) if not isinstance(W, (str, bytes)) and W is not None else None
        if arr is None or arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                                      or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"{label} must be a real 2-D array, got {type(W).__name__}.")
        if arr.ndim != 2 or min(arr.shape) < 1:
            raise ValueError(f"{label} must be 2-D with shape (p_{i}, p_{i + 1}), got shape {arr.shape}.")
        expected = (d if i == 0 else out[-1].shape[1])
        if expected is not None and arr.shape[0] != expected:
            what = f"the input dimension d = {d}" if i == 0 else f"the width p_{i} = {expected} of the layer below"
            raise ValueError(f"{label} has {arr.shape[0]} rows but must have {expected} to match {what}; "
                             f"got shapes {[np.shape(w) for w in weights]}.")
        arr = np.ascontiguousarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{label} contains non-finite values (nan or inf).")
        out.append(arr)
    return out


# ----------------------------------------------------------------------------- input covariance

def check_covariance(cov: Any, d: int, name: str = "input_cov") -> np.ndarray:
    r"""Validate an input covariance: finite, shape ``(d, d)``, symmetric, positive definite; returns float64.

    Symmetric means :math:`|\Sigma - \Sigma^\top| \le 10^{-10}\max|\Sigma|` entrywise (it is then
    symmetrized exactly); positive definite means the smallest eigenvalue exceeds
    :math:`d\,\epsilon\,\lambda_{\max}` (the numerical-rank threshold of ``numpy.linalg.matrix_rank``).

    Examples
    --------
    >>> check_covariance(np.diag([2.0, 1.0]), 2)
    array([[2., 0.],
           [0., 1.]])
    >>> check_covariance(np.diag([1.0, 0.0]), 2)
    Traceback (most recent call last):
    ...
    ValueError: input_cov must be positive definite; its smallest eigenvalue is 0 (largest 1): ...
    """
    d = check_positive_int(d, "d")
    if isinstance(cov, (str, bytes)) or cov is None:
        raise TypeError(f"{name} must be a ({d}, {d}) covariance matrix, got {type(cov).__name__}.")
    # real entries (else TypeError), shape (d, d) checked before finiteness (else ValueError), as float64
    S = check_square_matrix(cov, name, size=d, symbol="d", what="the input dimension")
    scale = float(np.abs(S).max())
    if scale == 0.0:
        raise ValueError(f"{name} is zero; a covariance must be positive definite.")
    if not np.allclose(S, S.T, rtol=0.0, atol=1e-10 * scale):
        raise ValueError(f"{name} must be symmetric (largest asymmetry {float(np.abs(S - S.T).max()):.3g}); "
                         "a covariance is (symmetrize with (S + S.T) / 2).")
    S = 0.5 * (S + S.T)
    ev = np.linalg.eigvalsh(S)
    if ev[0] <= d * np.finfo(float).eps * ev[-1]:
        raise ValueError(f"{name} must be positive definite; its smallest eigenvalue is {ev[0]:.3g} (largest "
                         f"{ev[-1]:.3g}): the inputs would lie in a subspace. Drop the degenerate directions "
                         "(e.g. project onto the principal axes of nonzero variance) or add a small ridge.")
    return S


def covariance_root(cov: Any, d: int, name: str = "input_cov") -> np.ndarray:
    r"""The symmetric square root :math:`\Sigma^{1/2}` of a validated covariance (by ``eigh``).

    Examples
    --------
    >>> R = covariance_root([[4.0, 0.0], [0.0, 9.0]], 2)
    >>> R
    array([[2., 0.],
           [0., 3.]])
    """
    S = check_covariance(cov, d, name)
    ev, U = np.linalg.eigh(S)
    R = (U * np.sqrt(ev)) @ U.T
    return 0.5 * (R + R.T)


def whitened_weights(weights: Any, input_cov: Any) -> list[np.ndarray]:
    r"""``[Σ^{1/2} W_1, W_2, ..., W_L]``: the same network on standard inputs (theory §14.6).

    For :math:`x\sim N(0,\Sigma)`, :math:`x W_1 = z\,\Sigma^{1/2}W_1` with :math:`z\sim N(0,I)`; so
    every FIM of the network on :math:`N(0,\Sigma)` inputs is that of these weights on
    :math:`N(0,I)` inputs, and for one layer :math:`J(W;\Sigma) = J(\Sigma^{1/2}W; I)`.

    Examples
    --------
    >>> Ws = whitened_weights([np.eye(2, 3)], np.diag([4.0, 1.0]))
    >>> Ws[0]
    array([[2., 0., 0.],
           [0., 1., 0.]])
    """
    weights = check_layer_weights(weights)
    R = covariance_root(input_cov, weights[0].shape[0])
    return [R @ weights[0], *weights[1:]]


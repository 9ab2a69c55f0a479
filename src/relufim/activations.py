"""Activations and their dual kernels: the registry that ``fisher_matrix`` and friends use.

An :class:`Activation` knows its pointwise function ``phi`` and how to evaluate the
two-unit expectation ``E_x[phi(w_i.x) phi(w_j.x)]`` for Gaussian ``x`` given the two
column norms and their cosine (DESIGN §2, §7). ReLU uses the closed form of
:mod:`relufim.kernels`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .kernels import arccos_kernel

__all__ = ["Activation", "get_activation", "known_activations", "register_activation"]


@dataclass(frozen=True)
class Activation:
    """A pointwise activation with its dual kernel.

    Attributes
    ----------
    name : str
        Registry name (``"relu"``, ...).
    phi : callable
        ``phi(z)`` elementwise on arrays.
    dual : callable
        ``dual(r1, r2, t)`` -> ``E[phi(r1 z1) phi(r2 z2)]`` for standard Gaussians with
        correlation ``t``; broadcasts over its arguments.
    homogeneous : bool
        Positively 1-homogeneous (``phi(c z) = c phi(z)`` for ``c > 0``): then
        ``dual(r1, r2, t) = r1 r2 dual(1, 1, t)`` and the limit factors into radius x sphere.
    description : str
        One line for listings.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray]
    dual: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    homogeneous: bool = False
    description: str = ""
    params: dict = field(default_factory=dict)


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def _relu_dual(r1: np.ndarray, r2: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.asarray(r1) * np.asarray(r2) * arccos_kernel(t)


_REGISTRY: dict[str, Activation] = {}


def register_activation(act: Activation) -> Activation:
    """Add ``act`` to the registry (replacing one of the same name) and return it."""
    _REGISTRY[act.name] = act
    return act


register_activation(
    Activation("relu", _relu, _relu_dual, homogeneous=True, description="max(z, 0); closed-form arc-cosine kernel")
)


def known_activations() -> list[str]:
    """Names accepted by :func:`get_activation`, sorted."""
    return sorted(_REGISTRY)


def get_activation(activation: str | Activation) -> Activation:
    """Look up an activation by name (case-insensitive) or pass an :class:`Activation` through.

    Raises
    ------
    ValueError
        for an unknown name, listing the known ones.
    TypeError
        for anything that is neither a name nor an :class:`Activation`.
    """
    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a name such as 'relu' or an Activation, got {activation!r}.")
    key = activation.strip().lower().replace("_", "-")
    if key not in _REGISTRY:
        raise ValueError(f"unknown activation {activation!r}; known activations: {', '.join(known_activations())}.")
    return _REGISTRY[key]

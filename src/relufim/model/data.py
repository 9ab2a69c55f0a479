r"""Real inputs that ship inside an installable package: no download at run time (theory §14.7).

:func:`load_inputs` returns a data set as network inputs, preprocessed so that it can be put
next to the theory's Gaussian inputs, together with its covariance :math:`\Sigma` (the Gaussian
prediction for the data uses :math:`N(0,\Sigma)`, theory §14.6).

``"digits"``: scikit-learn's handwritten digits (``sklearn.datasets.load_digits``: 1797 images of
8 x 8 pixels with values 0..16, stored inside the scikit-learn wheel). It needs the optional
extra ``relufim[data]`` (scikit-learn); without it :func:`load_inputs` raises an ``ImportError``
that names the extra.

**Preprocessing** (the same for every data set):

1. centre: subtract the mean of each raw feature (the theory's inputs have mean 0, and a ReLU
   network without biases sees an offset as a direction);
2. rotate onto the principal axes and keep the top ``dim`` of them (default: every axis of nonzero
   variance, 61 for the digits, whose three corner pixels are always 0). A rotation changes nothing
   for isotropic random weights; dropping axes of zero variance makes the covariance positive
   definite, and a smaller ``dim`` keeps the leading principal components;
3. scale all coordinates by one factor so that the mean squared norm is ``dim``, as for
   :math:`N(0, I_{\mathrm{dim}})`: the covariance keeps its shape (its anisotropy is the point of the
   comparison), only its trace is fixed.

The covariance returned is the second-moment matrix :math:`\Sigma = x^\top x/n` of the processed
inputs (diagonal, decreasing, trace ``dim``): the Gaussian with the same second moments as the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_positive_int

__all__ = ["InputData", "load_inputs", "known_datasets", "DATA_EXTRA"]

#: The optional dependency group that provides the data sets.
DATA_EXTRA = "relufim[data]"

_DATASETS = {
    "digits": "scikit-learn's handwritten digits (load_digits): 1797 images of 8 x 8 pixels, values 0..16",
}


def known_datasets() -> list[str]:
    """Names accepted by :func:`load_inputs`.

    Examples
    --------
    >>> known_datasets()
    ['digits']
    """
    return sorted(_DATASETS)


@dataclass(frozen=True)
class InputData:
    r"""A data set as network inputs, with the covariance of the Gaussian that predicts it.

    Attributes
    ----------
    name : str
    x : numpy.ndarray (n, d)
        The processed inputs (module docstring): centred, on the top ``d`` principal axes, scaled to
        mean squared norm ``d``.
    covariance : numpy.ndarray (d, d)
        :math:`x^\top x/n`: diagonal (up to round-off), decreasing, trace ``d``.
    labels : numpy.ndarray (n,) or None
        Class labels where the data set has them (not used by the FIM).
    raw_dim : int
        Number of raw features.
    explained_variance : float
        Share of the raw (centred) variance on the kept axes.
    description : str
    """

    name: str
    x: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    labels: np.ndarray | None = field(repr=False)
    raw_dim: int
    explained_variance: float
    description: str

    @property
    def n(self) -> int:
        """Number of inputs."""
        return int(self.x.shape[0])

    @property
    def d(self) -> int:
        """Input dimension after preprocessing."""
        return int(self.x.shape[1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (no arrays but the covariance's eigenvalues)."""
        return {"name": self.name, "n": self.n, "d": self.d, "raw_dim": self.raw_dim,
                "explained_variance": self.explained_variance, "description": self.description,
                "covariance_eigenvalues": np.sort(np.linalg.eigvalsh(self.covariance))[::-1].tolist()}


def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(f"the 'digits' data set comes with scikit-learn, which is not installed: "
                          f"pip install '{DATA_EXTRA}' (or scikit-learn).") from exc
    bunch = load_digits()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)


def load_inputs(name: str, dim: int | None = None) -> InputData:
    r"""Load a data set shipped inside a package as network inputs (module docstring for the preprocessing).

    Parameters
    ----------
    name : str
        One of :func:`known_datasets` (``"digits"``).
    dim : int, optional
        Number of principal axes kept (default: all axes of nonzero variance; 61 for the digits).

    Returns
    -------
    InputData

    Raises
    ------
    ImportError
        when the package that ships the data (scikit-learn, extra ``relufim[data]``) is missing.
    ValueError
        for an unknown name (listing the known ones) or a ``dim`` beyond the data's rank.

    Examples
    --------
    >>> data = load_inputs("digits", dim=10)
    >>> data.x.shape, round(float(np.trace(data.covariance)), 10)
    ((1797, 10), 10.0)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a data set name such as 'digits', got {name!r}.")
    key = name.strip().lower()
    if key not in _DATASETS:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(known_datasets())}.")
    raw, labels = _raw_digits()
    n, raw_dim = raw.shape
    centred = raw - raw.mean(axis=0)
    ev, U = np.linalg.eigh(centred.T @ centred / n)
    ev, U = ev[::-1], U[:, ::-1]
    rank = int(np.count_nonzero(ev > raw_dim * np.finfo(float).eps * ev[0]))
    if dim is None:
        dim = rank
    dim = check_positive_int(dim, "dim")
    if dim > rank:
        raise ValueError(f"dim must be at most {rank} for {key!r} (its centred inputs span {rank} dimensions of "
                         f"{raw_dim}), got {dim}.")
    x = centred @ U[:, :dim]
    x *= np.sqrt(dim / np.mean(np.einsum("ij,ij->i", x, x)))
    cov = x.T @ x / n
    cov = 0.5 * (cov + cov.T)
    return InputData(name=key, x=np.ascontiguousarray(x), covariance=cov, labels=labels, raw_dim=raw_dim,
                     explained_variance=float(ev[:dim].sum() / ev.sum()), description=_DATASETS[key])

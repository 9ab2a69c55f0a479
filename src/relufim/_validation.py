"""Validation at the public boundary (scikit-learn's ``check_array`` habit).

Public functions call these once; internal code then trusts its inputs.
Every error names the argument and says how to fix it.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

__all__ = [
    "check_weights",
    "check_positive_int",
    "check_sigma",
    "check_positive_float",
    "check_inputs",
    "available_memory_bytes",
    "check_dense_fits",
    "format_bytes",
]


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return value


def check_positive_float(value: Any, name: str) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive real number, got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}.")
    return value


def check_sigma(sigma: Any) -> float:
    """Noise standard deviation: a finite float > 0."""
    return check_positive_float(sigma, "sigma")


def check_weights(W: Any, name: str = "W") -> np.ndarray:
    """Validate hidden weights: a finite real 2-D array of shape (d, p), d, p >= 1.

    Returns a C-contiguous float64 copy-or-view.
    """
    if isinstance(W, (str, bytes)) or W is None:
        raise TypeError(f"{name} must be a 2-D array of shape (d, p), got {type(W).__name__}.")
    try:
        arr = np.asarray(W)
    except Exception as exc:  # pragma: no cover - exotic array-likes
        raise TypeError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (d, p) (inputs x hidden units), got shape {arr.shape}."
            + (" Use W.reshape(1, -1) for d = 1." if arr.ndim == 1 else "")
        )
    d, p = arr.shape
    if d < 1 or p < 1:
        raise ValueError(f"{name} must have d >= 1 rows and p >= 1 columns, got shape {arr.shape}.")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (nan or inf); pass finite weights.")
    return arr


def check_inputs(x: Any, d: int, name: str = "x") -> np.ndarray:
    """Validate network inputs: finite array of shape (n, d) with n >= 1."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    if arr.ndim == 1 and arr.shape[0] == d:
        arr = arr.reshape(1, d)
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"{name} must have shape (n, d) = (n, {d}) to match W of shape ({d}, p), got {arr.shape}.")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must contain at least one input (n >= 1), got shape {arr.shape}.")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    return arr


def available_memory_bytes() -> int:
    """Memory available to this process now (``MemAvailable``), or a conservative guess."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 4 * 1024**3


def format_bytes(n: float) -> str:
    """Human-readable size: ``format_bytes(8e8) == '800.0 MB'``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def check_dense_fits(p: int, what: str = "the dense p x p FIM", copies: float = 1.0, fraction: float = 0.8,
                     alternative: str = "use relufim.spectrum(W, method='matrix-free') or relufim.fisher_operator(W)") -> None:
    """Refuse up front when ``copies`` dense float64 ``p x p`` arrays would not fit in memory.

    Raises
    ------
    MemoryError-like ValueError
        with the size needed, the size available and what to use instead.
    """
    check_memory(8.0 * float(p) * float(p) * copies, f"{what}", alternative, fraction=fraction, detail=f" (p = {p})")


def check_memory(need: float, what: str, alternative: str, *, fraction: float = 0.8, detail: str = "") -> None:
    """Refuse up front (``ValueError``) when ``need`` bytes exceed ``fraction`` of the available memory.

    The message names what needed the memory, both sizes and what to use instead, so that a
    request that cannot fit fails at once instead of being killed by the kernel.

    Examples
    --------
    >>> check_memory(1e3, "a small array", "nothing")
    >>> check_memory(1e18, "W", "a smaller p")
    Traceback (most recent call last):
    ...
    ValueError: W needs 1000000.0 TB but only ... is available; a smaller p.
    """
    avail = available_memory_bytes()
    if need > fraction * avail:
        raise ValueError(
            f"{what} needs {format_bytes(need)}{detail} but only {format_bytes(avail)} is available; {alternative}."
        )

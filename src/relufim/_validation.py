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
    "check_float_dtype",
    "peak_memory_bytes",
    "check_vector",
    "check_eigenvalues",
    "check_square_matrix",
    "check_symmetric",
    "check_sphere_dimension",
    "check_choice",
    "check_fraction",
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
    if d >= p:
        hint = ("a square array is a matrix, not hidden weights: for the spectrum of a FIM or any symmetric "
                "matrix use relufim.matrix_spectrum(J)" if d == p else
                f"if this is W transposed, pass {name}.T")
        raise ValueError(f"{name} must be hidden weights of shape (d, p) with fewer inputs than hidden units, "
                         f"d < p (theory §1), got shape {arr.shape}; {hint}.")
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
    if arr.ndim == 1:
        raise ValueError(f"{name} must be 2-D with shape (n, d) = (n, {d}), got a 1-D array of shape {arr.shape}; "
                         f"for one input use {name}.reshape(1, -1).")
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"{name} must have shape (n, d) = (n, {d}) to match W of shape ({d}, p), got {arr.shape}.")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must contain at least one input (n >= 1), got shape {arr.shape}.")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    return arr


def check_vector(v: Any, p: int, name: str = "v", *, what: str = "W of shape (d, {p})") -> np.ndarray:
    """Validate a vector of ``p`` finite reals (output weights, a target, a direction); returns float64 ``(p,)``.

    ``what`` says what ``p`` comes from, for the message.
    """
    if isinstance(v, (str, bytes)) or v is None:
        raise TypeError(f"{name} must be an array of shape ({p},), got {type(v).__name__}.")
    arr = np.asarray(v)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    if arr.shape != (p,):
        raise ValueError(f"{name} must have shape ({p},) to match {what.format(p=p)}, got shape {arr.shape}."
                         + (" Pass one vector at a time." if arr.ndim == 2 else ""))
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    return arr


def check_eigenvalues(values: Any, name: str = "eigenvalues") -> np.ndarray:
    """Validate a 1-D array of finite eigenvalues; returns them in descending order.

    A 2-D array is refused with the fix (a matrix or W is not a list of eigenvalues).
    """
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"{name} must be a 1-D array of eigenvalues, got {type(values).__name__}.")
    arr = np.asarray(values)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    if arr.ndim != 1:
        raise TypeError(f"{name} must be a 1-D array of eigenvalues, got an array of shape {arr.shape}: for a "
                        "matrix J pass relufim.matrix_spectrum(J, k='all') (or its .eigenvalues); for hidden "
                        "weights W pass relufim.spectrum(W, k='all').")
    if arr.size == 0:
        raise ValueError(f"{name} is empty.")
    arr = np.asarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    return np.sort(arr)[::-1]


def check_square_matrix(A: Any, name: str = "A", *, size: int | None = None, symbol: str = "p",
                        what: str = "") -> np.ndarray:
    """Validate a finite real square matrix (``(p, p)``, ``p >= 1``); returns a C-contiguous float64 array.

    A non-square 2-D array is refused with the fix (hidden weights go to ``relufim.spectrum``).
    With ``size`` the shape must be ``(size, size)``, checked before finiteness; the message names
    the size as ``symbol`` and says what it comes from (``what``, e.g. ``"the input dimension"``).

    Examples
    --------
    >>> check_square_matrix(np.eye(2), "S", size=3, symbol="d", what="the input dimension")
    Traceback (most recent call last):
    ...
    ValueError: S must have shape (d, d) = (3, 3) to match the input dimension, got shape (2, 2).
    """
    if isinstance(A, (str, bytes)) or A is None:
        raise TypeError(f"{name} must be a square matrix (p, p), got {type(A).__name__}.")
    M = np.asarray(A)
    if M.dtype == object or not np.issubdtype(M.dtype, np.number) or np.iscomplexobj(M):
        raise TypeError(f"{name} must hold real numbers, got dtype {M.dtype}.")
    if size is not None and M.shape != (size, size):
        raise ValueError(f"{name} must have shape ({symbol}, {symbol}) = ({size}, {size})"
                         + (f" to match {what}" if what else "") + f", got shape {M.shape}"
                         + (" (a vector: for a diagonal matrix pass np.diag(v))" if M.ndim == 1 else "") + ".")
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] < 1:
        hint = (" For hidden weights W of shape (d, p) use relufim.spectrum(W)." if M.ndim == 2 else
                " For eigenvalues use the spectral functionals directly." if M.ndim == 1 else "")
        raise ValueError(f"{name} must be a square matrix (p, p), got shape {M.shape}.{hint}")
    M = np.ascontiguousarray(M, dtype=np.float64)
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} contains non-finite values (nan or inf).")
    return M


def check_symmetric(M: np.ndarray, name: str, fix: str, *, tile: int = 256) -> None:
    """Refuse a square ``M`` that is not symmetric to 1e-10 relative (1e-12 of its largest entry absolute).

    Compared tile pair by tile pair, stopping at the first mismatch: ``np.allclose(M, M.T)`` on the
    whole matrix builds several ``p x p`` temporaries of the transpose (5.4 s and 3 GB at
    p = 10^4, against 0.29 s here; tiles of 256 stay in cache, 1024 take 0.79 s). ``fix`` ends the
    message.

    Examples
    --------
    >>> check_symmetric(np.array([[1.0, 2.0], [0.0, 1.0]]), "A", "symmetrize with (A + A.T) / 2.")
    Traceback (most recent call last):
    ...
    ValueError: A must be symmetric; symmetrize with (A + A.T) / 2.
    """
    p = M.shape[0]
    atol = 1e-12 * max(1.0, float(M.max()), -float(M.min()))
    for i in range(0, p, tile):
        for j in range(i, p, tile):
            if not np.allclose(M[i:i + tile, j:j + tile], M[j:j + tile, i:i + tile].T, rtol=1e-10, atol=atol):
                raise ValueError(f"{name} must be symmetric; {fix}")


def check_sphere_dimension(d: Any, name: str = "d", *, fix: str = "") -> int:
    """An input dimension ``>= 2``, for harmonic analysis in the angle on :math:`S^{d-1}` (theory §6.3, §6.7).

    At ``d = 1`` the sphere :math:`S^0` is two points, with no angle to integrate over; the
    d = 1 convention (theory §6.7) gives its two degrees in closed form instead. ``fix``, when
    given, ends the message with the caller's alternative.

    Examples
    --------
    >>> check_sphere_dimension(3)
    3
    >>> check_sphere_dimension(1)
    Traceback (most recent call last):
    ...
    ValueError: d must be >= 2, got d = 1: the sphere S^(d-1) has an angle only for d >= 2 (S^0 is two points...
    """
    d = check_positive_int(d, name)
    if d < 2:
        raise ValueError(f"{name} must be >= 2, got {name} = {d}: the sphere S^({name}-1) has an angle only for "
                         f"{name} >= 2 (S^0 is two points, whose two harmonic degrees theory §6.7 gives in "
                         "closed form)" + (f"; {fix}" if fix else "."))
    return d


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices`` (strings), else a ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}.")
    return value


def check_float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """``"float64"`` or ``"float32"`` (any spelling NumPy accepts) as a NumPy dtype, or a clear error."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be 'float64' or 'float32', got {dtype!r}.") from exc
    if dt not in (np.float64, np.float32):
        raise ValueError(f"{name} must be 'float64' or 'float32', got {dt}.")
    return dt


def check_fraction(value: Any, name: str) -> float:
    """A float in the open interval (0, 1) (tolerances, shares)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < 1:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}.")
    return float(value)


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


def peak_memory_bytes() -> int:
    """Peak resident memory of this process so far (bytes), the figure reported beside each timing."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def format_bytes(n: float) -> str:
    """Human-readable size: ``format_bytes(8e8) == '800.0 MB'``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def check_dense_fits(p: int, what: str = "the dense p x p FIM", copies: float = 1.0, fraction: float = 0.8,
                     alternative: str = "use relufim.spectrum(W, method='matrix-free') or relufim.fisher_operator(W)",
                     ) -> None:
    """Refuse up front when ``copies`` dense float64 ``p x p`` arrays would not fit in memory.

    Raises
    ------
    MemoryError-like ValueError
        with the size needed, the size available and what to use instead.
    """
    check_memory(8.0 * float(p) * float(p) * copies, f"{what}", alternative, fraction=fraction,
                 detail=f" ({p} x {p} float64)" if copies == 1 else f" ({copies:g} arrays of {p} x {p} float64)")


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

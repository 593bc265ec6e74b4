"""Argument checks shared by every public function of rlnotes.

Each helper raises :class:`ValueError` whose message starts with the argument's name,
so a caller sees at once which input is wrong and why.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Tolerance for "sums to one" checks on probability vectors.
PROB_ATOL = 1e-8


def as_float_array(name: str, x: Any, ndim: int | tuple[int, ...] | None = None) -> FloatArray:
    """Return ``x`` as a float64 array, rejecting non-numeric input, NaN and the wrong rank."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric array-like, got {type(x).__name__}") from err
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have ndim in {allowed}, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def check_finite(name: str, arr: FloatArray) -> FloatArray:
    """Reject infinite entries (NaN is already rejected by :func:`as_float_array`)."""
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains inf")
    return arr


def check_shape(name: str, arr: NDArray[Any], shape: tuple[int, ...]) -> None:
    """Require ``arr.shape == shape``."""
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")


def check_gamma(gamma: Any, name: str = "gamma", *, allow_one: bool = False) -> float:
    """Return a discount factor as float; it must lie in [0, 1) (or [0, 1] if ``allow_one``)."""
    try:
        g = float(gamma)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number, got {gamma!r}") from err
    ok = 0.0 <= g <= 1.0 if allow_one else 0.0 <= g < 1.0
    if not ok:
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {g}")
    return g


def check_positive_real(name: str, value: Any) -> float:
    """Return a finite real number > 0 (a tolerance, a step size, a learning rate)."""
    x = float(as_float_array(name, value, ndim=0))
    if not np.isfinite(x) or x <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {x}")
    return x


def check_index_array(name: str, x: Any, upper: int) -> NDArray[np.int64]:
    """Return ``x`` as an int64 array whose entries lie in ``[0, upper)``.

    Only integer dtypes are accepted, so that a float array is never silently truncated.
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise ValueError(
            f"{name} must lie in [0, {upper}), got values in [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64, copy=False)


def check_distribution(name: str, arr: FloatArray, axis: int = -1) -> FloatArray:
    """Require non-negative entries that sum to one along ``axis``."""
    if (arr < 0).any():
        raise ValueError(f"{name} has negative probabilities")
    sums = arr.sum(axis=axis)
    if not np.allclose(sums, 1.0, atol=PROB_ATOL, rtol=0.0):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"{name} must sum to 1 along axis {axis}; worst deviation {worst:.3g}")
    return arr


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Require an integer (not bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_bool_flags(name: str, flags: Any, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """Return episode-boundary flags as a bool array of ``shape`` (``None`` means all False).

    Only bool arrays, or integer arrays holding 0 and 1, are accepted, so that a float
    array of values is never mistaken for a mask.
    """
    if flags is None:
        return np.zeros(shape, dtype=bool)
    arr = np.asarray(flags)
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be a bool array, got dtype {arr.dtype}")
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0/1 or True/False")
        arr = arr.astype(bool)
    check_shape(name, arr, shape)
    return arr


def read_only_copy(arr: Any, dtype: Any = np.float64) -> NDArray[Any]:
    """A private copy of ``arr`` as ``dtype`` that cannot be written to (for frozen dataclasses)."""
    out = np.array(arr, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out
